"""The training loop: gradient norm, schedules and faults, early stopping, divergence."""

import math

import pytest
import torch
from torch import nn

from lab.specs.loader import build_spec
from lab.specs.training import ModelSpec
from lab.telemetry.observer import BaseObserver
from lab.thresholds import MAX_NONFINITE_STREAK
from lab.training.loop import Trainer, global_grad_norm
from lab.training.models import build_model


def test_global_grad_norm_matches_torch():
    m = build_model(4, 3, ModelSpec(hidden=[10, 8]))
    m(torch.rand(16, 4)).sum().backward()
    params = list(m.parameters())
    expected = nn.utils.get_total_norm([p.grad for p in params]).item()
    assert global_grad_norm(params) == pytest.approx(expected, rel=1e-6)


def test_lr_burst_changes_the_applied_learning_rate_and_is_announced(tiny_raw):
    tiny_raw["faults"] = [{"kind": "lr_burst", "at_step": 8, "steps": 3, "factor": 10.0}]
    tiny_raw["optimizer"] = {"name": "adam", "lr": 1e-3}
    seen = []

    class Lr(BaseObserver):
        def on_unit(self, rec):
            seen.append((rec.step, rec.lr))

    r = Trainer(build_spec(tiny_raw), 0, fast=True, observers=[Lr()]).run()
    lrs = dict(seen)
    assert lrs[7] == pytest.approx(1e-3) and lrs[8] == lrs[10] == pytest.approx(1e-2) and lrs[11] == pytest.approx(1e-3)
    changes = [e for e in r.events if e.name == "lr_change"]
    assert [e.step for e in changes] == [8, 11]


def test_corrupt_batch_scales_the_inputs(tiny_raw):
    tiny_raw["faults"] = [{"kind": "corrupt_batch", "at_step": 5, "scale": 20.0}]
    t = Trainer(build_spec(tiny_raw), 0, fast=True)
    x = torch.ones(2, 3)
    assert torch.equal(t._corrupt(5, x), x * 20) and torch.equal(t._corrupt(6, x), x)


def test_early_stopping_restores_the_best_checkpoint(tiny_raw):
    tiny_raw["train"].update(epochs=60, early_stopping_patience=2)
    tiny_raw["optimizer"] = {"name": "adam", "lr": 1e-2}
    r = Trainer(build_spec(tiny_raw), 0, fast=True).run()
    assert r.stopped == "early_stopped"
    stop = next(e for e in r.events if e.name == "early_stop")
    assert r.evals[-1].evals_since_best == 2
    assert stop.attributes["best_step"] == min(r.evals, key=lambda e: e.val_loss).step


def test_divergence_is_reported_honestly_and_stops_the_run(tiny_raw):
    # an input batch of inf poisons the weights with NaN for good
    tiny_raw["faults"] = [{"kind": "corrupt_batch", "at_step": 3, "scale": 1e39}]
    tiny_raw["train"]["epochs"] = 20
    r = Trainer(build_spec(tiny_raw), 0, fast=True).run()
    assert r.stopped == "diverged"
    names = [e.name for e in r.events]
    assert names.count("nonfinite") >= 1 and names.count("diverged") == 1
    assert not math.isfinite(r.losses[-1])
    last = r.evals[-1]
    assert math.isnan(last.dead_ratio["layer1"])  # NaN activations never read as 0% dead
    assert sum(not math.isfinite(x) for x in r.losses[-MAX_NONFINITE_STREAK:]) == MAX_NONFINITE_STREAK


def test_same_seed_same_run(tiny_spec):
    a = Trainer(tiny_spec, 4, fast=True).run()
    b = Trainer(tiny_spec, 4, fast=True).run()
    assert a.losses == b.losses
    c = Trainer(tiny_spec, 5, fast=True).run()
    assert a.losses != c.losses
