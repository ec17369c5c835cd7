"""The calibration's reductions (lab/dev/calibrate.py): each signal decides its alert as the rule does.

Checked against plain numpy, on real runs (the tiny scenario, diverged), and on the command line.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from lab.dev.calibrate import (
    CALIBRATION_SEEDS,
    PACED_LEAD_S,
    TEST_SEEDS,
    TRAINING_ALERTS,
    crosses,
    dead_signal,
    held,
    paced_alerts,
    percentiles,
    rule_facts,
    training_signals,
    verdict,
)
from lab.specs.loader import build_spec, load_scenario
from lab.thresholds import DEAD_SUSTAINED_EVALS, STALL_LOSS_FRACTION
from lab.training.loop import Trainer


def test_held_is_the_largest_value_kept_for_n_windows():
    rng = np.random.default_rng(7)
    for _ in range(50):
        v = rng.random(int(rng.integers(3, 40)))
        windows = np.lib.stride_tricks.sliding_window_view(v, 3)
        assert held(list(v), 3) == pytest.approx(windows.min(axis=1).max())
    assert held([0.9, 0.1, 0.9, 0.9], 3) == pytest.approx(0.1)  # a one-window dip breaks the hold
    assert held([1.0, 2.0], 3) == 0.0  # shorter than the hold: never held


def test_percentiles_match_numpy():
    v = list(np.random.default_rng(3).normal(size=50))
    p = percentiles(v)
    assert (p["min"], p["max"]) == (min(v), max(v))
    assert p["p5"] == pytest.approx(np.percentile(v, 5)) and p["median"] == pytest.approx(np.median(v))


def test_the_stall_alert_fires_at_or_above_its_fraction():
    stalled = next(a for a in TRAINING_ALERTS if a.name == "MLLabTrainingStalled")
    assert crosses(stalled, STALL_LOSS_FRACTION) and not crosses(stalled, STALL_LOSS_FRACTION - 1e-9)


def test_rule_facts_come_from_the_rules():
    assert rule_facts("MLLabGradientNormSpike") == (0.0, False)  # the precursor of a divergence
    assert rule_facts("MLLabDeadNeurons") == (15.0, True)
    assert rule_facts("MLLabOverfitting") == (15.0, False)
    assert rule_facts("MLLabTrainingDiverged") == (0.0, False)


def test_seed_ranges_are_disjoint():
    assert not set(CALIBRATION_SEEDS) & set(TEST_SEEDS)


def _tiny(tiny_raw, **optimizer):
    tiny_raw = {**tiny_raw, "optimizer": {"name": "sgd", "momentum": 0.9, **optimizer}}
    return Trainer(build_spec(tiny_raw, source="tiny"), 0, fast=True).run()


def test_a_diverging_run_reports_its_spikes_before_the_first_nan_only():
    r = Trainer(load_scenario("diverged"), CALIBRATION_SEEDS[0], fast=True).run()
    nan_step = next(i for i, x in enumerate(r.losses, start=1) if not math.isfinite(x))
    s = training_signals(r)
    assert s["MLLabTrainingDiverged"]["value"] >= 1
    before = [g for g in r.grad_ratios[:nan_step - 1] if math.isfinite(g)]
    assert s["MLLabGradientNormSpike"]["value"] == max(before, default=0.0)
    assert s["MLLabGradientNormSpike"]["lead_s"] is None  # no NaN silences a spike alert
    lead = s["MLLabDeadNeurons"]["lead_s"]
    if lead is not None:  # a dead layer was seen: its lead is counted back from the first NaN
        assert lead <= nan_step / r.spec.pace.steps_per_second - 15


def test_a_healthy_tiny_run_crosses_nothing(tiny_raw):
    r = _tiny(tiny_raw, lr=0.05)
    s = training_signals(r)
    assert s["MLLabTrainingDiverged"]["value"] == 0
    assert s["MLLabGradientNormSpike"]["lead_s"] in (None, math.inf)
    per_eval = [max(e.dead_ratio.values()) for e in r.evals]
    value, onset = dead_signal(r)
    assert value <= max(per_eval) and len(per_eval) >= DEAD_SUSTAINED_EVALS and onset is None


def test_verdicts_name_misses_false_alarms_and_uncertain_precursors():
    base = {"seeds": 50, "crossed": 50, "expected": True}
    assert verdict(base) == "ok"
    assert verdict({**base, "crossed": 47}) == "MISSED on 3"
    assert verdict({**base, "expected": False, "crossed": 2}) == "FIRES on 2"
    spike = {**base, "expected": False, "crossed": 4, "paced": 0, "uncertain": 4}
    assert verdict(spike).startswith("uncertain on 4") and f"{PACED_LEAD_S:.0f} s" in verdict(spike)
    assert verdict({**spike, "paced": 3, "uncertain": 1}).startswith("FIRES paced on 3")
    assert verdict({**base, "paced": 48, "uncertain": 2}) == "paced: silent or uncertain on 2"
    # in a scenario that expects the divergence, a NaN-silenced alert on the way is reported, not failed
    assert verdict({**spike, "paced": 1, "steps_aside": True}).startswith("ok: may fire before the NaN on 5")


@pytest.mark.parametrize("args, message", [(["--seeds", "0"], "at least 1"),
                                           (["no-such-scenario"], "unknown scenario"),
                                           (["--jobs", "x"], "invalid int")])
def test_bad_options_get_one_clear_line(args, message):
    proc = subprocess.run([sys.executable, "-m", "lab.dev.calibrate", *args], capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_paced_alerts_count_a_long_lead_as_fired_a_short_one_as_luck_and_a_negative_one_as_silent():
    quiet = {a.name: {"value": 0.0, "lead_s": None} for a in TRAINING_ALERTS}
    runs = {**quiet, "MLLabGradientNormSpike": {"value": 40.0, "lead_s": None},
            "MLLabDeadNeurons": {"value": 0.5, "lead_s": PACED_LEAD_S - 1},
            "MLLabTrainingStalled": {"value": 0.95, "lead_s": -PACED_LEAD_S - 1},
            "MLLabTrainingDiverged": {"value": 20.0, "lead_s": None}}
    assert paced_alerts("training", runs) == ({"MLLabGradientNormSpike", "MLLabTrainingDiverged"}, {"MLLabDeadNeurons"})
    runs["MLLabDeadNeurons"]["lead_s"] = PACED_LEAD_S + 1
    assert paced_alerts("training", runs)[0] >= {"MLLabDeadNeurons"}
    assert paced_alerts("training", quiet) == (set(), set())
