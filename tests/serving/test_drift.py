"""lab/serving/drift.py: the monitors report the statistics of lab/stats.py, decide on them, and reject bad input."""

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import false_discovery_control, ks_2samp

from lab.serving.drift import DriftMonitor, OutputMonitor
from lab.stats import (
    DriftInputError,
    bin_counts,
    kl_divergence,
    proportions,
    psi,
    reference_edges,
)

TOL = 1e-9


def test_psi_of_a_shifted_window_on_reference_deciles():
    m = DriftMonitor({"x": np.arange(100.0)}, min_window=10)
    f = m.check({"x": np.arange(100.0) + 10}).features[0]
    # bins now hold 0, 10 x8 and 20 (values 90..109 in the open top bin)
    expected = (1e-4 - 0.1) * math.log(1e-4 / 0.1) + (0.2 - 0.1) * math.log(0.2 / 0.1)
    assert abs(f.psi - expected) < TOL
    assert abs(f.ks_statistic - 0.1) < TOL


def test_constant_feature_gets_its_own_bin():
    ref = np.full(200, 3.0)
    assert bin_counts(ref, reference_edges(ref)).tolist() == [0, 200, 0]
    m = DriftMonitor({"c": ref})
    same = m.check({"c": np.full(100, 3.0)}).features[0]
    assert same.psi == 0.0 and same.ks_statistic == 0.0 and not same.drifted
    moved = m.check({"c": np.full(100, 4.0)}).features[0]
    # [0, 1, 0] -> [0, 0, 1]: two bins at the floor
    assert abs(moved.psi - 2 * (1 - 1e-4) * math.log(1 / 1e-4)) < TOL
    assert moved.ks_statistic == 1.0 and moved.drifted


def test_point_mass_in_a_zero_inflated_feature_is_separated():
    ref = np.concatenate([np.zeros(700), np.linspace(1, 10, 300)])
    edges = reference_edges(ref)
    counts = bin_counts(ref, edges)
    assert counts[np.searchsorted(edges, 0.0, side="right")] == 700  # the zeros alone in [0, 0]
    m = DriftMonitor({"z": ref})
    # zeros replaced by small positives: same bin without the point-mass rule
    shifted = np.concatenate([np.full(70, 0.5), np.linspace(1, 10, 30)])
    assert m.check({"z": shifted}).features[0].psi > 1.0


# -- the monitor ----------------------------------------------------------------------

def test_monitor_reports_the_same_numbers_as_the_functions():
    rng = np.random.default_rng(11)
    ref = {"a": rng.normal(size=5000), "b": rng.uniform(size=5000)}
    cur = {"a": rng.normal(0.3, 1, size=500), "b": rng.uniform(size=500)}
    rep = DriftMonitor(ref, correction="benjamini-hochberg").check(cur)
    raw = []
    for f in rep.features:
        edges = reference_edges(ref[f.feature])
        rp, cp = proportions(bin_counts(ref[f.feature], edges)), proportions(bin_counts(cur[f.feature], edges))
        assert abs(f.psi - psi(rp, cp)) < TOL
        assert abs(f.kl - kl_divergence(cp, rp)) < TOL
        assert abs(f.js - jensenshannon(cp, rp, base=2)) < TOL
        expected = ks_2samp(ref[f.feature], cur[f.feature], method="asymp")
        assert abs(f.ks_statistic - expected.statistic) < TOL and abs(f.ks_pvalue - expected.pvalue) < TOL
        raw.append(f.ks_pvalue)
    assert np.allclose([f.ks_pvalue_adjusted for f in rep.features], false_discovery_control(raw), atol=TOL)
    by = rep.by_feature()
    assert by["a"].drifted and not by["b"].drifted and rep.drifted_share == 0.5 and rep.drifted


def test_bonferroni_decision_uses_the_adjusted_pvalue():
    rng = np.random.default_rng(5)
    ref = {f"f{i}": rng.normal(size=4000) for i in range(10)}
    cur = {f"f{i}": rng.normal(size=400) for i in range(10)}
    cur["f0"] = cur["f0"] + 0.2
    rep = DriftMonitor(ref).check(cur)
    for f in rep.features:
        assert f.ks_pvalue_adjusted == min(1.0, 10 * f.ks_pvalue)
        assert f.drifted == (f.ks_pvalue_adjusted < 0.05)


def test_ks_plus_psi_decision_needs_a_material_shift():
    rng = np.random.default_rng(2)
    ref = {"x": rng.normal(size=20000)}
    small = {"x": rng.normal(0.25, 1, size=5000)}  # significant at n=5000, PSI ~0.07
    assert DriftMonitor(ref).check(small).drifted
    assert not DriftMonitor(ref, decision="ks+psi").check(small).drifted


def test_output_monitor_compares_confidence():
    rng = np.random.default_rng(4)
    om = OutputMonitor(rng.beta(8, 2, size=3000))
    assert om.check(rng.beta(2, 2, size=500)).psi > 0.25


# -- bad input: a clear error, never a silent number -----------------------------------

@pytest.fixture
def monitor():
    rng = np.random.default_rng(0)
    return DriftMonitor({"income": rng.normal(size=1000), "age": rng.normal(size=1000)})


def test_empty_window_is_an_error(monitor):
    with pytest.raises(DriftInputError, match="'income' is empty"):
        monitor.check({"income": [], "age": []})


def test_too_small_window_is_an_error(monitor):
    with pytest.raises(DriftInputError, match="has 10 values; at least 50"):
        monitor.check({"income": np.zeros(10), "age": np.zeros(10)})


def test_nan_in_window_is_an_error_naming_the_feature(monitor):
    w = {"income": np.zeros(100), "age": np.zeros(100)}
    w["age"][3] = np.nan
    with pytest.raises(DriftInputError, match="'age' has 1 NaN/inf values of 100"):
        monitor.check(w)


def test_missing_and_unknown_features_are_errors(monitor):
    with pytest.raises(DriftInputError, match=r"lacks feature\(s\) \['age'\]"):
        monitor.check({"income": np.zeros(100)})
    with pytest.raises(DriftInputError, match=r"unknown feature\(s\) \['zip'\]"):
        monitor.check({"income": np.zeros(100), "age": np.zeros(100), "zip": np.zeros(100)})


def test_ragged_window_and_bad_settings_are_errors(monitor):
    with pytest.raises(DriftInputError, match="different lengths"):
        monitor.check({"income": np.zeros(100), "age": np.zeros(90)})
    with pytest.raises(DriftInputError, match="allowed values: 'bonferroni', 'benjamini-hochberg', 'none'"):
        DriftMonitor({"x": np.zeros(100)}, correction="holm")
    with pytest.raises(DriftInputError, match="reference for feature 'x' has 1 NaN"):
        DriftMonitor({"x": np.r_[np.zeros(99), np.nan]})
    with pytest.raises(DriftInputError, match="no values"):
        proportions([0, 0])
