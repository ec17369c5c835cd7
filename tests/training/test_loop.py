"""The training loop: gradient norm, schedules and faults, early stopping, divergence."""

import math

import pytest
import torch
from torch import nn

from lab.specs.loader import build_spec
from lab.specs.training import ModelSpec
from lab.telemetry.observer import BaseObserver
from lab.thresholds import MAX_NONFINITE_STREAK
from lab.training.loop import UNIT_BURST, Trainer, TrainWindow, global_grad_norm
from lab.training.models import build_model
from lab.training.run import run_training


def test_global_grad_norm_matches_torch():
    m = build_model(4, 3, ModelSpec(hidden=[10, 8]))
    m(torch.rand(16, 4)).sum().backward()
    params = list(m.parameters())
    expected = nn.utils.get_total_norm([p.grad for p in params]).item()
    assert global_grad_norm(params) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("scale, expected", [
    (1e18, None),  # squares near float32's top
    (1e25, math.inf),  # squares overflow float32, as in torch's own norm
    (math.inf, math.inf),
    (math.nan, math.nan),
])
def test_global_grad_norm_gives_torchs_answer_at_the_edges(scale, expected):
    m = build_model(4, 3, ModelSpec(hidden=[10, 8]))
    m(torch.rand(16, 4)).sum().backward()
    params = list(m.parameters())
    params[1].grad[0] = scale
    want = nn.utils.get_total_norm([p.grad for p in params]).item()
    got = global_grad_norm(params)
    if expected is None:
        assert math.isfinite(got) and got == pytest.approx(want, rel=1e-6)
    elif math.isnan(expected):
        assert math.isnan(got) and math.isnan(want)
    else:
        assert got == want == expected


def test_global_grad_norm_skips_parameters_without_gradients():
    m = build_model(4, 3, ModelSpec(hidden=[10, 8]))
    assert global_grad_norm(list(m.parameters())) == 0.0


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


def test_progress_is_told_before_the_first_step_and_reaches_stderr_not_stdout(tiny_spec, capsys):
    said = []

    class First(BaseObserver):
        def on_start(self, run):
            said.append("on_start")

    Trainer(tiny_spec, 0, fast=True, observers=[First()], progress=said.append).run()
    assert said == ["loading data ...", "building the model ...", "preparing the optimizer ...", "on_start"]
    run_training(tiny_spec, fast=True, telemetry="off", live=False)
    out, err = capsys.readouterr()
    assert err.index("loading data ...") < err.index("building the model ...")
    assert "loading data" not in out and out.startswith("tiny (fault)")  # the run itself starts stdout


class _Sequence(BaseObserver):
    """Everything the loop reports, in the order it arrives."""

    def __init__(self):
        self.seen = []

    def on_unit(self, rec):
        self.seen.append(("unit", rec.step, rec.loss, rec.grad_norm))

    def on_report(self, rec):
        self.seen.append(("report", rec.step, rec.train_loss, rec.train_acc))

    def on_event(self, ev):
        self.seen.append(("event", ev.step, ev.name))


def test_fast_runs_hand_over_steps_in_bursts_without_reordering_anything(tiny_raw):
    # --fast dispatches step records in bursts; paced runs one by one: the observers must see
    # the same units, reports and events in the same order either way
    tiny_raw["train"].update(epochs=14, eval_every=7)
    tiny_raw["faults"] = [{"kind": "lr_burst", "at_step": 9, "steps": 2, "factor": 3.0}]
    fast, paced = _Sequence(), _Sequence()
    Trainer(build_spec(tiny_raw), 3, fast=True, observers=[fast]).run()
    Trainer(build_spec(tiny_raw), 3, fast=False, speed=1e6, observers=[paced]).run()
    assert fast.seen == paced.seen
    kinds = [s[0] for s in fast.seen]
    assert kinds.count("unit") > 2 * UNIT_BURST and "event" in kinds and "report" in kinds


def test_an_interrupt_mid_burst_still_delivers_every_step(tiny_raw):
    tiny_raw["train"].update(epochs=6, eval_every=1000)

    class StopAt(_Sequence):
        def on_unit(self, rec):
            super().on_unit(rec)
            if rec.step == 5:
                raise KeyboardInterrupt

    obs, later = StopAt(), _Sequence()
    r = Trainer(build_spec(tiny_raw), 0, fast=True, observers=[obs, later]).run()
    assert r.stopped == "interrupted"
    units = [s[1] for s in later.seen if s[0] == "unit"]
    assert units == list(range(1, r.steps + 1))  # none lost, none twice, in order


def test_train_window_accuracy_is_the_same_folded_or_not():
    torch.manual_seed(0)
    batches = [(torch.randn(8, 3), torch.randint(0, 3, (8,))) for _ in range(11)]
    expected = sum(int((lg.argmax(1) == y).sum()) for lg, y in batches) / 88
    for fold in (1, 4, 256):
        w = TrainWindow()
        w.FOLD = fold
        for lg, y in batches:
            w.add(0.5, lg, y)
        assert w.take() == (pytest.approx(0.5), pytest.approx(expected))
    assert math.isnan(TrainWindow().take()[1])
