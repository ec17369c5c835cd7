"""The drift monitors of the served classifier, built from the statistics of lab/stats.py.

    from lab.serving.drift import DriftMonitor
    monitor = DriftMonitor({"income": ref_income, ...})      # reference held once, binned once
    report = monitor.check({"income": window_income, ...})  # one window of production inputs

Per feature, one window against the reference: PSI, KL and Jensen-Shannon on the
reference's decile bins, Kolmogorov-Smirnov on the raw values, p-values adjusted across
features (lab/stats.py defines each statistic; docs/drift.md says where each number
comes from).

Bad input raises DriftInputError naming the feature: an empty or too-small window,
NaN/inf values, a missing or unknown feature. Nothing is silently skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

import numpy as np

from lab.stats import (
    Correction,
    DriftInputError,
    adjust,
    bin_counts,
    js_distance,
    kl_divergence,
    ks_pvalue,
    ks_statistic,
    proportions,
    psi,
    reference_edges,
)
from lab.thresholds import KS_ALPHA, N_BINS, PSI_MODERATE

MIN_WINDOW = 50  # below this a decile histogram has < 5 values per bin: too noisy to judge


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
