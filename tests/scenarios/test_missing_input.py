"""The missing-input scenario over 5 seeds: a client stops sending a field for a share of the
requests, input validation rejects them and the error budget burns from that window on, while
the answered requests (drift, accuracy, calibration) look as before; the fix imputes the
training median and rejects nothing, with every monitor still clear."""

import pytest

from lab.dev.calibrate import TEST_SEEDS, result_of
from lab.serving.signatures import onsets
from lab.specs.loader import load_scenario
from lab.thresholds import ERROR_BUDGET, SUSTAINED_WINDOWS

NAME = "missing-input"


def start() -> int:
    return load_scenario(NAME).shifts[0].start_window


@pytest.mark.parametrize("seed", TEST_SEEDS)
def test_the_error_budget_burns_from_the_release_and_nothing_else_moves(seed):
    r = result_of(NAME, False, seed)
    at = start()
    o = onsets(r)
    assert o["error_rate"] == at + SUSTAINED_WINDOWS - 1
    assert all(v is None for k, v in o.items() if k != "error_rate"), o  # drift, accuracy, calibration, latency quiet
    rate = [w.error_share for w in r.windows]
    assert all(x <= ERROR_BUDGET for x in rate[:at])
    share = load_scenario(NAME).shifts[0].share
    assert all(ERROR_BUDGET < x < 2 * share + 0.01 for x in rate[at:])  # ~4% (+ the healthy 0.2%) in every window
    assert all(w.report.n == w.requests - w.errors for w in r.windows)  # a rejected request never reaches the monitor


@pytest.mark.parametrize("seed", TEST_SEEDS)
def test_imputing_the_training_median_rejects_nothing_and_stays_clear(seed):
    r = result_of(NAME, True, seed)
    assert r.errors == 0
    assert all(v is None for v in onsets(r).values()), onsets(r)
    assert all(w.report.n == w.requests for w in r.windows)
