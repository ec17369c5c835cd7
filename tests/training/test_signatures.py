"""Failure signatures on hand-built run histories."""

import math

from lab.specs.loader import build_spec
from lab.training.loop import EvalRecord, RunResult
from lab.training.signatures import onsets


def _eval(step, train, val, since_best=0, dead=0.0):
    return EvalRecord(step, 1, train, val, 0.9, 0.9, val / train, 1.0, since_best, {"layer1": 0.1},
                      {"layer1": dead}, 0, 0, 0.0)


def _result(tiny_raw, evals, losses=(), grad=(), loss_ratios=(), planned=100):
    r = RunResult(spec=build_spec(tiny_raw), seed=0, planned_steps=planned, steps=planned)
    r.evals = list(evals)
    r.losses, r.grad_ratios, r.loss_ratios = list(losses), list(grad), list(loss_ratios)
    return r


def test_a_quiet_run_has_no_signature(tiny_raw):
    r = _result(tiny_raw, [_eval(s, 1.0 - s / 200, 1.0 - s / 200) for s in range(10, 101, 10)],
                losses=[0.5] * 100, grad=[1.0] * 100, loss_ratios=[1.0] * 100)
    assert all(v is None for v in onsets(r).values())


def test_each_signature_fires_at_its_first_step(tiny_raw):
    evals = [_eval(10, 1.0, 1.0), _eval(20, 0.99, 1.0, dead=0.3), _eval(30, 0.98, 1.0, dead=0.3),
             _eval(40, 0.5, 0.9, dead=0.3), _eval(50, 0.5, 0.9, since_best=10), _eval(60, 0.3, 0.9, since_best=11)]
    grad = [1.0] * 100
    grad[41] = 5.5  # step 42
    loss_ratios = [1.0] * 100
    loss_ratios[6] = 3.5  # step 7
    losses = [0.5] * 100
    losses[89] = math.nan  # step 90
    o = onsets(_result(tiny_raw, evals, losses, grad, loss_ratios))
    assert o == {"overfitting": 50, "gradient_spike": 42, "loss_spike": 7, "dead_units": 40,
                 "stalled": 30, "diverged": 90}


def test_a_dead_layer_must_be_sustained(tiny_raw):
    evals = [_eval(10, 1, 1, dead=0.3), _eval(20, 1, 1, dead=0.3), _eval(30, 1, 1, dead=0.1), _eval(40, 1, 1, dead=0.3)]
    assert onsets(_result(tiny_raw, evals))["dead_units"] is None


def test_stalled_uses_the_best_loss_so_far(tiny_raw):
    # the loss fell, then went back up (as after a collapse): not a stalled run
    evals = [_eval(10, 1.0, 1.0), _eval(20, 0.4, 0.4), _eval(30, 1.0, 1.0), _eval(40, 1.0, 1.0)]
    assert onsets(_result(tiny_raw, evals))["stalled"] is None
