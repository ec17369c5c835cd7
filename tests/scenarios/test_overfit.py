"""The overfit scenario overfits for real on every seed; its fix does not."""

import math

import pytest

from lab.dev.calibrate import TEST_SEEDS, result_of
from lab.specs.loader import load_scenario
from lab.thresholds import OVERFIT_RATIO_THRESHOLD
from lab.training.loop import Trainer
from lab.training.signals import overfitting
from lab.training.signatures import onsets

SEEDS = TEST_SEEDS  # disjoint from the calibration's (lab/dev/calibrate.py)
# The fault must show within these bounds (measured: ratio > 1.3 by step 45-55,
# the full signature by step 190-430 of 600).
MAX_STEP_RATIO = 150
MAX_STEP_SIGNATURE = 600


@pytest.fixture(scope="module")
def fault_runs():
    return [result_of("overfit", False, s) for s in SEEDS]


@pytest.fixture(scope="module")
def fix_runs():
    return [result_of("overfit", True, s) for s in SEEDS]


def test_ratio_crosses_1_3_on_every_seed(fault_runs):
    for r in fault_runs:
        cross = r.first_eval(lambda e: e.ratio > OVERFIT_RATIO_THRESHOLD)
        assert cross is not None and cross.step <= MAX_STEP_RATIO, f"seed {r.seed}"


def test_validation_loss_turns_upward_while_training_loss_keeps_falling(fault_runs):
    for r in fault_runs:
        sig = r.first_eval(lambda e: overfitting(e.ratio, e.evals_since_best))
        assert sig is not None and sig.step <= MAX_STEP_SIGNATURE, f"seed {r.seed}"
        best = min(r.evals, key=lambda e: e.val_loss)
        last = r.evals[-1]
        assert last.val_loss > best.val_loss and last.train_loss < best.train_loss, f"seed {r.seed}"
        assert last.train_acc == 1.0 and last.val_acc < 0.97


def test_overfitting_is_not_an_optimisation_failure(fault_runs):
    # the lesson: gradients and activations look healthy while the model overfits
    for r in fault_runs:
        reached = {k for k, v in onsets(r).items() if v is not None}
        assert reached == {"overfitting"}, f"seed {r.seed}: {reached}"
        assert max(d for e in r.evals for d in e.dead_ratio.values()) < 0.2
        assert all(math.isfinite(x) for x in r.losses)


def test_fix_stays_below_1_3_on_the_same_seeds(fix_runs):
    for r in fix_runs:
        assert max(e.ratio for e in r.evals) <= OVERFIT_RATIO_THRESHOLD, f"seed {r.seed}"
        assert not any(overfitting(e.ratio, e.evals_since_best) for e in r.evals)
        assert all(v is None for v in onsets(r).values()), f"seed {r.seed}: {onsets(r)}"
        assert max(e.val_acc for e in r.evals) > 0.95


def test_paced_and_fast_runs_produce_the_same_signals_per_step():
    spec = load_scenario("overfit")
    fast = Trainer(spec, 3, fast=True, max_steps=30).run()
    paced = Trainer(spec, 3, fast=False, speed=40.0, max_steps=30).run()  # 100 steps/s
    assert paced.losses == fast.losses
    assert [e.val_loss for e in paced.evals] == [e.val_loss for e in fast.evals]
    assert paced.wall_s >= 30 / 100 * 0.9  # it really was paced
