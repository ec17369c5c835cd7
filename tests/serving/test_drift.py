"""lab/serving/drift.py: every statistic against scipy on shared vectors, PSI on hand-computed cases, bad input."""

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, false_discovery_control, ks_2samp

from lab.serving.drift import (
    EPSILON,
    DriftInputError,
    DriftMonitor,
    OutputMonitor,
    benjamini_hochberg,
    bin_counts,
    bonferroni,
    js_distance,
    kl_divergence,
    ks_pvalue,
    ks_statistic,
    proportions,
    psi,
    reference_edges,
)

TOL = 1e-9


def _pairs():
    rng = np.random.default_rng(7)
    yield rng.normal(size=2000), rng.normal(0.1, 1.0, size=500)  # continuous, slight shift
    yield rng.normal(size=20000), rng.normal(size=1000)  # the monitor's shape: big reference, a window
    yield rng.integers(0, 5, size=3000).astype(float), rng.integers(0, 6, size=400).astype(float)  # ties
    yield rng.exponential(size=800), rng.exponential(2.0, size=800)
    yield rng.standard_t(1.2, size=10000), rng.standard_t(1.2, size=1000) * 1.1  # heavy tails (near Cauchy)
    yield rng.normal(size=10000), rng.normal(0.3, 1.0, size=50)  # the smallest window the monitor takes


# -- agreement with scipy ------------------------------------------------------------

@pytest.mark.parametrize("pair", list(_pairs()), ids=["shift", "large", "ties", "scale", "heavy", "tiny"])
def test_ks_matches_scipy_ks_2samp(pair):
    ref, cur = pair
    d = ks_statistic(np.sort(ref), cur)
    expected = ks_2samp(ref, cur, method="asymp")
    assert abs(d - expected.statistic) < TOL
    assert abs(float(ks_pvalue(d, ref.size, cur.size)) - expected.pvalue) < TOL
    # argument order does not matter
    assert abs(float(ks_pvalue(d, cur.size, ref.size)) - expected.pvalue) < TOL


def test_ks_pvalue_matches_scipy_auto_for_a_reference_above_10000():
    # scipy's default switches to the asymptotic p-value above 10,000 samples: the lab's reference size
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=12000), rng.normal(0.05, 1, size=500)
    d = ks_statistic(np.sort(ref), cur)
    assert abs(float(ks_pvalue(d, ref.size, cur.size)) - ks_2samp(ref, cur).pvalue) < TOL


@pytest.mark.parametrize("seed", range(5))
def test_kl_matches_scipy_entropy(seed):
    rng = np.random.default_rng(seed)
    p, q = rng.uniform(0.01, 1, size=10), rng.uniform(0.01, 1, size=10)  # unnormalised, no empty bins
    assert abs(kl_divergence(p, q) - entropy(p, q)) < TOL
    assert abs(kl_divergence(p, p)) < TOL


@pytest.mark.parametrize("seed", range(5))
def test_js_distance_matches_scipy_jensenshannon(seed):
    rng = np.random.default_rng(seed)
    p, q = rng.uniform(0, 1, size=10), rng.uniform(0, 1, size=10)
    p[3] = 0.0  # JS needs no empty-bin rule
    assert abs(js_distance(p, q) - jensenshannon(p, q, base=2)) < TOL
    assert abs(js_distance([1, 0], [0, 1]) - 1.0) < TOL  # disjoint supports: the maximum, 1
    assert js_distance(p, p) < TOL


def test_benjamini_hochberg_matches_scipy():
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.uniform(size=20), [1e-5, 0.001, 0.02, 0.02]])
    assert np.max(np.abs(benjamini_hochberg(p) - false_discovery_control(p, method="bh"))) < TOL


def test_bonferroni_by_hand():
    assert np.allclose(bonferroni([0.01, 0.2, 0.001, 0.5]), [0.04, 0.8, 0.004, 1.0], atol=TOL)


# -- binning and PSI by hand ----------------------------------------------------------

def test_reference_deciles_put_a_tenth_of_the_reference_in_each_bin():
    ref = np.arange(100.0)
    edges = reference_edges(ref)
    assert np.allclose(edges, [9.9, 19.8, 29.7, 39.6, 49.5, 59.4, 69.3, 79.2, 89.1])
    assert bin_counts(ref, edges).tolist() == [10] * 10
    # values beyond the reference range land in the open outer bins
    assert bin_counts([-1e9, 1e9], edges).tolist() == [1] + [0] * 8 + [1]


def test_psi_hand_computed():
    # (0.25-0.5)*ln(0.25/0.5) + (0.75-0.5)*ln(0.75/0.5)
    assert abs(psi([0.5, 0.5], [0.25, 0.75]) - 0.27465307216702745) < TOL
    assert psi([0.1] * 10, [0.1] * 10) == 0.0


def test_psi_empty_bin_rule_floors_at_epsilon_without_renormalising():
    # current bin 2 empty: its proportion becomes 1e-4
    expected = (1.0 - 0.5) * math.log(1.0 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert abs(psi([0.5, 0.5], [1.0, 0.0]) - expected) < TOL
    # reference bin empty, current not
    expected = (0.5 - 1e-4) * math.log(0.5 / 1e-4) + (0.5 - 1.0) * math.log(0.5 / 1.0)
    assert abs(psi([0.0, 1.0], [0.5, 0.5]) - expected) < TOL
    assert EPSILON == 1e-4


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
