"""The healthy baseline stays clear of every failure signature on every seed."""

import pytest

from lab.dev.calibrate import TEST_SEEDS, result_of
from lab.thresholds import GRAD_SPIKE_WARNING, LOSS_SPIKE_THRESHOLD, OVERFIT_RATIO_THRESHOLD
from lab.training.signatures import onsets, peaks

SEEDS = TEST_SEEDS  # disjoint from the calibration's (lab/dev/calibrate.py)


@pytest.fixture(scope="module")
def runs():
    return [result_of("healthy", False, s) for s in SEEDS]


def test_no_signature_on_any_seed(runs):
    for r in runs:
        assert r.stopped == "completed"
        assert all(v is None for v in onsets(r).values()), f"seed {r.seed}: {onsets(r)}"


def test_it_learns_and_keeps_a_margin_to_every_threshold(runs):
    for r in runs:
        p = peaks(r)
        assert r.evals[-1].val_acc > 0.8
        # measured peaks: ratio <= 1.03, gradient 2.1-2.8x, batch loss 1.9-2.1x (see docs/signals.md)
        assert p["loss_ratio_val_train"] < OVERFIT_RATIO_THRESHOLD
        assert p["gradient_norm_ratio"] < 0.7 * GRAD_SPIKE_WARNING
        assert p["batch_loss_ratio"] < 0.9 * LOSS_SPIKE_THRESHOLD
