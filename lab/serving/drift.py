"""Drift statistics: one function per statistic, and a per-feature monitor built from them.

    from lab.serving.drift import DriftMonitor
    monitor = DriftMonitor({"income": ref_income, ...})      # reference held once, binned once
    report = monitor.check({"income": window_income, ...})  # one window of production inputs

Definitions (docs/drift.md says where each number comes from):

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
- Many features tested at once: Bonferroni or Benjamini-Hochberg adjusted p-values.

Bad input raises DriftInputError naming the feature: an empty or too-small window,
NaN/inf values, a missing or unknown feature. Nothing is silently skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Mapping

import numpy as np
from scipy.stats import kstwo

from lab.thresholds import KS_ALPHA, N_BINS, PSI_MODERATE

EPSILON = 1e-4  # floor for empty-bin proportions in PSI and KL (Evidently and most PSI write-ups use 1e-4)
MIN_WINDOW = 50  # below this a decile histogram has < 5 values per bin: too noisy to judge
Correction = Literal["bonferroni", "benjamini-hochberg", "none"]


class DriftInputError(ValueError):
    """A window or reference the monitor cannot judge; the message names the feature."""


# -- one statistic per function --------------------------------------------------------

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


# -- the monitor ---------------------------------------------------------------------

@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float  # raw
    ks_pvalue_adjusted: float  # after the correction across features
    kl: float  # KL(current || reference), nats
    js: float  # Jensen-Shannon distance, base 2
    drifted: bool  # the monitor's decision (see DriftMonitor)


@dataclass(frozen=True)
class WindowReport:
    n: int
    features: tuple[FeatureDrift, ...]
    drifted_share: float  # share of features with drifted=True
    correction: str

    @property
    def drifted(self) -> bool:
        """Dataset-level decision: at least one feature drifted (the correction bounds the false-alarm rate of this)."""
        return self.drifted_share > 0

    def by_feature(self) -> dict[str, FeatureDrift]:
        return {f.feature: f for f in self.features}

    @property
    def max_psi(self) -> float:
        return max(f.psi for f in self.features)

    @property
    def max_js(self) -> float:
        return max(f.js for f in self.features)


def _check_values(name: str, values, *, what: str, min_n: int) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise DriftInputError(f"{what} for feature {name!r} is empty")
    if v.size < min_n:
        raise DriftInputError(f"{what} for feature {name!r} has {v.size} values; at least {min_n} are needed")
    bad = ~np.isfinite(v)
    if bad.any():
        raise DriftInputError(f"{what} for feature {name!r} has {int(bad.sum())} NaN/inf values of {v.size}; "
                              "drop or impute them before the monitor (a silent skip would hide a data problem)")
    return v


class DriftMonitor:
    """Compares windows of production values with a reference, feature by feature.

    A feature is `drifted` when its KS p-value, adjusted across all features with
    `correction`, is below `alpha`. PSI, KL and JS are reported on the same reference
    bins for reading the size of a shift; `decision="ks+psi"` also requires PSI above
    PSI_MODERATE (a significant *and* material shift).
    """

    def __init__(self, reference: Mapping[str, np.ndarray], *, n_bins: int = N_BINS,
                 correction: Correction = "bonferroni", alpha: float = KS_ALPHA,
                 decision: Literal["ks", "ks+psi"] = "ks", min_window: int = MIN_WINDOW):
        if not reference:
            raise DriftInputError("the reference has no features")
        if correction not in ("bonferroni", "benjamini-hochberg", "none"):
            raise DriftInputError(f"correction={correction!r}; allowed values: 'bonferroni', 'benjamini-hochberg', 'none'")
        if decision not in ("ks", "ks+psi"):
            raise DriftInputError(f"decision={decision!r}; allowed values: 'ks', 'ks+psi'")
        self.features = tuple(reference)
        self.correction, self.alpha, self.decision, self.min_window = correction, alpha, decision, min_window
        lengths = {np.asarray(v).size for v in reference.values()}
        if len(lengths) != 1:
            raise DriftInputError(f"reference features have different lengths {sorted(lengths)}")
        self._sorted: dict[str, np.ndarray] = {}
        self._edges: dict[str, np.ndarray] = {}
        self._ref_props: dict[str, np.ndarray] = {}
        for name, values in reference.items():
            v = _check_values(name, values, what="reference", min_n=max(min_window, n_bins))
            self._sorted[name] = np.sort(v)
            self._edges[name] = reference_edges(v, n_bins)
            self._ref_props[name] = proportions(bin_counts(v, self._edges[name]))

    def check(self, window: Mapping[str, np.ndarray]) -> WindowReport:
        missing = [f for f in self.features if f not in window]
        if missing:
            raise DriftInputError(f"window lacks feature(s) {missing}; the monitor's features are {list(self.features)}")
        unknown = [f for f in window if f not in self._sorted]
        if unknown:
            raise DriftInputError(f"window has unknown feature(s) {unknown}; the monitor's features are {list(self.features)}")
        cols = {f: _check_values(f, window[f], what="window", min_n=self.min_window) for f in self.features}
        sizes = {v.size for v in cols.values()}
        if len(sizes) != 1:
            raise DriftInputError(f"window features have different lengths {sorted(sizes)}")
        n = sizes.pop()
        stats = []
        for f in self.features:
            ref_p = self._ref_props[f]
            cur_p = proportions(bin_counts(cols[f], self._edges[f]))
            stats.append((psi(ref_p, cur_p), ks_statistic(self._sorted[f], cols[f]), kl_divergence(cur_p, ref_p),
                          js_distance(cur_p, ref_p)))
        d = np.array([s[1] for s in stats])
        p_raw = np.atleast_1d(ks_pvalue(d, self._sorted[self.features[0]].size, n))
        p_adj = adjust(p_raw, self.correction)
        out = []
        for i, f in enumerate(self.features):
            drifted = bool(p_adj[i] < self.alpha) and (self.decision == "ks" or stats[i][0] > PSI_MODERATE)
            out.append(FeatureDrift(f, stats[i][0], stats[i][1], float(p_raw[i]), float(p_adj[i]), stats[i][2],
                                    stats[i][3], drifted))
        share = sum(x.drifted for x in out) / len(out)
        return WindowReport(n, tuple(out), share, self.correction)


class OutputMonitor:
    """The model's output (prediction confidence) against its reference: PSI, KS, JS on reference bins."""

    def __init__(self, reference: np.ndarray, *, n_bins: int = N_BINS):
        self._m = DriftMonitor({"confidence": reference}, n_bins=n_bins, correction="none")

    def check(self, window: np.ndarray) -> FeatureDrift:
        return self._m.check({"confidence": window}).features[0]
