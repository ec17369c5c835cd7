"""lab/stats.py: every statistic against scipy on shared vectors, binning and PSI on hand-computed cases."""

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, false_discovery_control, ks_2samp

from lab.stats import (
    EPSILON,
    benjamini_hochberg,
    bin_counts,
    bonferroni,
    js_distance,
    kl_divergence,
    ks_pvalue,
    ks_statistic,
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
