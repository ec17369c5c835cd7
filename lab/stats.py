"""Statistics for comparing a window with its reference: one function per statistic,
each checked against scipy (tests/test_stats.py). Every family's drift monitor builds on
these (lab/serving/drift.py: inputs and confidence of the served classifier).

- Bins come from the **reference** only: the deciles of the reference values are the
  inner edges, the outer bins are open (-inf, +inf), so a current value outside the
  reference range still lands in a bin. Bin i is [edge[i-1], edge[i]). Tied quantiles
  collapse to one edge, and a value that is two or more deciles at once (a point mass)
  gets its own bin [v, v]: a constant reference c has the bins (-inf, c), [c, c],
  (c, inf), so a moved constant is still seen.
- **Empty-bin rule** (PSI and KL only): a proportion below EPSILON (1e-4) is raised to
  EPSILON before the logarithm, without renormalising. Jensen-Shannon needs no such
  rule (the mixture is never zero where either side is not).
- PSI = sum((cur - ref) * ln(cur / ref)); KL(cur || ref) in nats; Jensen-Shannon
  **distance** (the square root of the divergence) in base 2, so it lies in [0, 1].
- Kolmogorov-Smirnov: two-sample statistic on the raw values, asymptotic two-sided
  p-value (Smirnov's distribution, as scipy's ks_2samp(method="asymp")).
- Many tests at once: Bonferroni or Benjamini-Hochberg adjusted p-values.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from scipy.stats import kstwo

from lab.thresholds import N_BINS

EPSILON = 1e-4  # floor for empty-bin proportions in PSI and KL (Evidently and most PSI write-ups use 1e-4)
Correction = Literal["bonferroni", "benjamini-hochberg", "none"]


class DriftInputError(ValueError):
    """A window or reference the monitor cannot judge; the message names the feature."""


def reference_edges(reference: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Inner bin edges from the reference's quantiles (unique; outer bins are open)."""
    q = np.quantile(np.asarray(reference, dtype=float), np.linspace(0, 1, n_bins + 1)[1:-1])
    values, repeats = np.unique(q, return_counts=True)
    # A value that is several quantiles at once is a point mass (a constant feature, a
    # zero-inflated one): give it its own bin [v, v] so mass moving off it is seen.
    masses = [np.nextafter(v, math.inf) for v, r in zip(values, repeats) if r > 1]
    return np.unique(np.concatenate([values, masses]))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin: bin i is [edges[i-1], edges[i]), bin 0 is (-inf, edges[0]), the last [edges[-1], inf)."""
    idx = np.searchsorted(edges, np.asarray(values, dtype=float), side="right")
    return np.bincount(idx, minlength=edges.size + 1)


def proportions(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0:
        raise DriftInputError("no values to bin (empty sample)")
    return counts / total


def psi(ref_props: np.ndarray, cur_props: np.ndarray, eps: float = EPSILON) -> float:
    """Population stability index of two proportion vectors on the same bins (empty-bin rule: floor at eps)."""
    e = np.maximum(np.asarray(ref_props, dtype=float), eps)
    a = np.maximum(np.asarray(cur_props, dtype=float), eps)
    return float(np.sum((a - e) * np.log(a / e)))


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = EPSILON) -> float:
    """KL(p || q) in nats; inputs are normalised to sum 1, proportions below eps raised to eps.

    Equals scipy.stats.entropy(p, q) whenever neither has a proportion below eps.
    """
    p = np.maximum(proportions(p), eps)
    q = np.maximum(proportions(q), eps)
    return float(np.sum(p * np.log(p / q)))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2 (in [0, 1]); equals scipy.spatial.distance.jensenshannon(p, q, base=2)."""
    p = proportions(p)
    q = proportions(q)
    m = 0.5 * (p + q)

    def kl(a):
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return math.sqrt(max(0.0, 0.5 * kl(p) + 0.5 * kl(q)))


def ks_statistic(ref_sorted: np.ndarray, cur: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs.

    ref_sorted must be sorted (the monitor sorts the reference once).
    """
    cur_sorted = np.sort(np.asarray(cur, dtype=float))
    both = np.concatenate([ref_sorted, cur_sorted])
    cdf_ref = np.searchsorted(ref_sorted, both, side="right") / ref_sorted.size
    cdf_cur = np.searchsorted(cur_sorted, both, side="right") / cur_sorted.size
    return float(np.max(np.abs(cdf_ref - cdf_cur)))


def ks_pvalue(statistic: float | np.ndarray, n_ref: int, n_cur: int) -> float | np.ndarray:
    """Asymptotic two-sided p-value (Smirnov), as scipy.stats.ks_2samp(method="asymp")."""
    m, n = sorted((float(n_ref), float(n_cur)), reverse=True)
    return np.clip(kstwo.sf(statistic, np.round(m * n / (m + n))), 0.0, 1.0)


def bonferroni(pvalues: np.ndarray) -> np.ndarray:
    """Bonferroni-adjusted p-values: p * k, capped at 1 (controls the family-wise error rate)."""
    p = np.asarray(pvalues, dtype=float)
    return np.minimum(p * p.size, 1.0)


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (controls the false discovery rate); as scipy.stats.false_discovery_control."""
    p = np.asarray(pvalues, dtype=float)
    k = p.size
    order = np.argsort(p)
    ranked = p[order] * k / np.arange(1, k + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(k)
    out[order] = np.minimum(ranked, 1.0)
    return out


def adjust(pvalues: np.ndarray, correction: Correction) -> np.ndarray:
    if correction == "bonferroni":
        return bonferroni(pvalues)
    if correction == "benjamini-hochberg":
        return benjamini_hochberg(pvalues)
    if correction == "none":
        return np.asarray(pvalues, dtype=float)
    raise DriftInputError(f"correction={correction!r}; allowed values: 'bonferroni', 'benjamini-hochberg', 'none'")
