"""Loss spike and dead ReLUs: each fault reaches its signatures on every seed, its fix none.

Bounds are the measured onsets (results/scenarios.md, docs/signals.md) with headroom:
loss-spike crosses 5x gradient and 3x loss at steps 301-302 (the jump starts at 300) and
reads > 20% dead from step 360; dead-relu reads > 20% dead (3 evaluations) by step 150-200.
"""

import math

import pytest

from lab.dev.calibrate import TEST_SEEDS, result_of
from lab.specs.loader import load_scenario
from lab.thresholds import GRAD_SPIKE_CRITICAL
from lab.training.signatures import onsets, peaks

SEEDS = TEST_SEEDS  # disjoint from the calibration's (lab/dev/calibrate.py)


def _runs(name, fix):
    return [result_of(name, fix, s) for s in SEEDS]


def test_loss_spike_spikes_at_the_jump_then_partly_recovers():
    jump = load_scenario("loss-spike").faults[0].at_step
    for r in _runs("loss-spike", fix=False):
        o, p = onsets(r), peaks(r)
        assert jump < o["gradient_spike"] <= jump + 5 and jump < o["loss_spike"] <= jump + 5, (r.seed, o)
        assert p["gradient_norm_ratio"] > GRAD_SPIKE_CRITICAL  # at its worst, past 10x
        assert o["dead_units"] is not None and o["dead_units"] <= jump + 100  # the jump kills units
        assert o["overfitting"] is None and o["stalled"] is None and o["diverged"] is None, (r.seed, o)
        before = max(e.train_loss for e in r.evals if jump - 100 <= e.step < jump)
        worst = max(e.train_loss for e in r.evals if e.step >= jump)
        final = r.evals[-1].train_loss
        assert worst > 2 * before  # loss jumps several-fold ...
        assert final < 0.5 * worst  # ... and partly recovers


def test_dead_relu_climbs_without_any_instability():
    for r, fixed in zip(_runs("dead-relu", fix=False), _runs("dead-relu", fix=True)):
        o = onsets(r)
        assert o["dead_units"] is not None and o["dead_units"] <= 300, (r.seed, o)
        assert {k for k, v in o.items() if v is not None} == {"dead_units"}, (r.seed, o)
        first, last = r.evals[0].dead_ratio["layer2"], r.evals[-1].dead_ratio["layer2"]
        assert last > first and last > 0.5  # a climb, not a bad start
        # the layer's mean activation collapses against the same seed's fixed run
        assert r.evals[-1].activation_mean["layer2"] < 0.5 * fixed.evals[-1].activation_mean["layer2"]


@pytest.mark.parametrize("name", ["loss-spike", "dead-relu"])
def test_fix_stays_clear_of_every_signature(name):
    for r in _runs(name, fix=True):
        assert all(v is None for v in onsets(r).values()), f"{name} --fix seed {r.seed}: {onsets(r)}"
        assert r.evals[-1].val_acc > 0.8
        assert all(math.isfinite(x) for x in r.losses)
