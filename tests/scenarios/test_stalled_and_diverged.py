"""Stalled and diverged: each fault reaches its signature on every seed, its fix none."""

import math

import pytest

from lab.dev.calibrate import TEST_SEEDS, TRAINING_ALERTS, crosses, result_of, training_signals
from lab.specs.loader import load_scenario
from lab.training.signatures import onsets

SEEDS = TEST_SEEDS  # disjoint from the calibration's (lab/dev/calibrate.py)
# Measured onsets (docs/signals.md): stalled at step 600 on every seed (the first
# evaluation after 25% of 2,376 steps); diverged's first NaN at steps 12-39 on 150 seeds.
BOUNDS = {"stalled": 600, "diverged": 100}


def _runs(name, fix):
    return [result_of(name, fix, s) for s in SEEDS]


@pytest.mark.parametrize("name", ["stalled", "diverged"])
def test_fault_reaches_its_signature_on_every_seed(name):
    for r in _runs(name, fix=False):
        step = onsets(r)[name]
        assert step is not None and step <= BOUNDS[name], f"{name} seed {r.seed}: {onsets(r)}"
        if name == "diverged":
            assert r.stopped == "diverged"
            assert math.isnan(r.evals[-1].dead_ratio["layer1"])  # reported as NaN, not 0% dead
        else:
            assert r.evals[-1].val_acc < 0.6  # still near chance (3 classes)


def test_divergence_is_announced_by_every_spike_alert_before_the_first_nan():
    # the scenario's expected alerts are what a paced run shows: the spikes' finite peaks first
    spikes = [a for a in TRAINING_ALERTS if "Spike" in a.name]
    assert {a.name for a in spikes} <= set(load_scenario("diverged").alerts)
    for r in _runs("diverged", fix=False):
        s = training_signals(r)
        assert all(crosses(a, s[a.name]["value"]) for a in spikes), (r.seed, s)


@pytest.mark.parametrize("name", ["stalled", "diverged"])
def test_fix_stays_clear_of_every_signature(name):
    for r in _runs(name, fix=True):
        assert all(v is None for v in onsets(r).values()), f"{name} --fix seed {r.seed}: {onsets(r)}"
        assert r.evals[-1].val_acc > 0.8


def test_base_scenario_inherits_settings_but_not_the_story():
    healthy, stalled = load_scenario("healthy"), load_scenario("stalled")
    assert stalled.data == healthy.data and stalled.model == healthy.model
    assert stalled.optimizer.lr == 1e-6 and stalled.story != healthy.story
    assert stalled.alerts == ["MLLabTrainingStalled"]
