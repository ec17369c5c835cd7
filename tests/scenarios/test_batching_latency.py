"""The latency scenario over 5 seeds: a batching release makes requests wait for a timer, so the
latency objective is missed from the release on while the model, its inputs and its quality do
not change; the fix's short wait keeps every request inside the objective. --fast runs the
batching policy on the paced clock's virtual time; one short paced run checks that the wall
clock gives the same waits."""

import numpy as np
import pytest

from lab.dev.calibrate import TEST_SEEDS, result_of
from lab.serving.loop import Server
from lab.serving.signatures import onsets
from lab.specs.loader import load_scenario
from lab.thresholds import LATENCY_BUDGET, LATENCY_OBJECTIVE_S, SUSTAINED_WINDOWS

NAME = "batching-latency"


def release_window() -> int:
    return load_scenario(NAME).server.from_window


def window_latencies(r, w: int) -> np.ndarray:
    size = r.spec.stream.window_size
    return np.asarray(r.latencies[w * size:(w + 1) * size])


@pytest.mark.parametrize("seed", TEST_SEEDS)
def test_the_release_misses_the_latency_objective_and_nothing_else_moves(seed):
    r = result_of(NAME, False, seed)
    at = release_window()
    o = onsets(r)
    assert o["latency_slo"] == at + SUSTAINED_WINDOWS - 1  # from the release's own window
    assert all(v is None for k, v in o.items() if k != "latency_slo"), o  # drift, accuracy, calibration quiet
    before, after = r.windows[:at], r.windows[at:]
    assert all(w.slow_share == 0 for w in before)
    # A 150 ms timer at 100 requests/s: waits spread over 0-150 ms, about 40% past 100 ms.
    assert all(0.25 < w.slow_share < 0.6 for w in after)
    # The model is not slower: before the release a request takes well under a millisecond
    # (1.5 ms on a machine busy compiling), a small fraction of the objective.
    assert np.median(np.concatenate([window_latencies(r, w) for w in range(at)])) < LATENCY_OBJECTIVE_S / 20
    # p99, not the maximum: a forward pass is timed for real, and a busy machine can stall one
    assert np.percentile(r.latencies, 99) < r.spec.server.batch_max_wait_s + 0.05
    assert r.errors < 0.01 * r.requests


@pytest.mark.parametrize("seed", TEST_SEEDS)
def test_the_fix_keeps_every_request_inside_the_objective(seed):
    r = result_of(NAME, True, seed)
    assert any(e.name == "release" for e in r.events)  # the same release, with a short wait
    assert all(v is None for v in onsets(r).values()), onsets(r)
    assert all(w.slow_share <= LATENCY_BUDGET for w in r.windows)
    assert np.percentile(r.latencies, 99) < r.spec.server.batch_max_wait_s + 0.05 < LATENCY_OBJECTIVE_S


def test_paced_waits_on_the_wall_clock_match_the_virtual_ones():
    # 800 requests/s for 2 windows of 200: the 150 ms timer still decides (120 requests arrive in it).
    spec = load_scenario(NAME, overrides=["stream.windows=2", "stream.window_size=200", "server.from_window=0",
                                          "stream.requests_per_second=800"])
    paced = Server(spec, 0).run()
    virtual = Server(spec, 0, fast=True).run()
    assert paced.wall_s - paced.train_s >= 400 / 800  # it really waited for its requests
    # Waits count from each request's arrival on the paced clock, so a busy machine (a late
    # wake-up, a slow batch) can only make them longer than the virtual run's, never shorter:
    # the paced run is held to that, with a loose bound above (0 if nothing waited).
    wait = spec.server.batch_max_wait_s
    assert max(paced.latencies) >= wait
    for p, v in zip(paced.windows, virtual.windows):
        assert v.slow_share - 0.05 < p.slow_share < v.slow_share + 0.4, (p.slow_share, v.slow_share)
    assert np.percentile(virtual.latencies, 99) == pytest.approx(wait, abs=0.005)
