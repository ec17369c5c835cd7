"""Signal helpers: rolling baseline, interval peak, overfitting tracker."""

import math

import pytest

from lab.training.signals import IntervalPeaks, OverfitTracker, RollingMean, overfitting


def test_rolling_mean_uses_the_last_window_and_skips_non_finite():
    r = RollingMean(window=3, min_count=2)
    r.push(1.0)
    assert not r.ready and math.isnan(RollingMean().mean)
    for v in (2.0, math.nan, math.inf, 3.0, 4.0):
        r.push(v)
    assert r.ready
    assert r.mean == pytest.approx((2 + 3 + 4) / 3)


def test_judge_compares_with_the_previous_values_then_remembers():
    r = RollingMean(window=3, min_count=2)
    assert all(math.isnan(x) for x in r.judge(2.0))  # not ready yet
    assert math.isnan(r.judge(4.0)[1])
    assert r.judge(9.0) == (pytest.approx(3.0), pytest.approx(3.0))  # 9 against mean(2, 4)
    assert r.mean == pytest.approx(5.0)


def test_interval_peak_reports_the_max_then_resets_and_repeats_when_idle():
    p = IntervalPeaks(("x",))
    assert p.read("x") is None
    for v in (1.0, 5.0, 2.0):
        p.update((v,))
    assert p.read("x") == 5.0
    p.update((0.5,))
    assert p.read("x") == 0.5  # reset after the previous read
    assert p.read("x") == 0.5  # nothing new: repeat, so the series stays fresh


def test_interval_peak_keeps_the_finite_spike_before_a_nan():
    # the precursor of a divergence reaches Prometheus even when the NaN follows in the same interval
    p = IntervalPeaks(("x",))
    p.update((1.0,))
    p.update((1e9,))
    p.update((math.nan,))
    p.update((math.inf,))
    assert p.read("x") == 1e9
    p.update((math.nan,))
    assert p.read("x") == 1e9  # only non-finite steps since: the last peak repeats


def test_interval_peaks_keep_each_quantity_apart():
    p = IntervalPeaks(("a", "b"))
    p.update((1.0, 9.0))
    p.update((3.0, math.nan))
    assert p.read("a") == 3.0
    p.update((2.0, 4.0))
    assert (p.read("a"), p.read("b")) == (2.0, 9.0)  # b was not read before: its peak spans both steps
    assert p.read("b") == 9.0  # nothing new since: repeated


def test_overfit_tracker_ratio_running_min_and_stall():
    t = OverfitTracker()
    out = t.update(5, train_loss=1.0, val_loss=1.2)
    assert out["ratio"] == pytest.approx(1.2) and out["rise"] == pytest.approx(1.0) and out["improved"]
    for step in range(10, 60, 5):
        out = t.update(step, train_loss=0.5, val_loss=1.5)
    assert out["ratio"] == pytest.approx(3.0)
    assert out["rise"] == pytest.approx(1.5 / 1.2)
    assert t.evals_since_best == 10
    assert overfitting(out["ratio"], t.evals_since_best)
    assert not overfitting(1.29, 50) and not overfitting(5.0, 9)


def test_overfit_tracker_zero_or_nan_train_loss_gives_nan_not_an_error():
    t = OverfitTracker()
    assert math.isnan(t.update(1, 0.0, 1.0)["ratio"])
    assert math.isnan(t.update(2, math.nan, 1.0)["ratio"])
