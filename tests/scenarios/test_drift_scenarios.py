"""Inference scenarios over 5 seeds in --fast mode: each drift reaches its signature within
bounded windows, the healthy stream and the fixes end clear, and concept drift drops accuracy
while PSI and KS stay quiet. Signatures: lab/serving/signatures.py."""


import pytest

from lab.dev.calibrate import FIX_TAIL_WINDOWS, TEST_SEEDS, result_of
from lab.serving.signatures import SERVE_SIGNATURES, onsets, peaks, tail_onsets
from lab.specs.loader import load_scenario

SEEDS = TEST_SEEDS  # disjoint from the calibration's (lab/dev/calibrate.py)
# The alert each signature stands for (the rules live in prometheus/alerts/, docs/drift.md).
ALERT_OF = {"input_drift": "MLLabInputDrift", "accuracy_degraded": "MLLabAccuracyDegraded",
            "miscalibrated": "MLLabMiscalibrated", "latency_slo": "MLLabInferenceLatencySLO",
            "error_rate": "MLLabInferenceErrors"}


def run(name: str, fix: bool, seed: int):
    return result_of(name, fix, seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_healthy_stream_stays_clear(seed):
    r = run("serving-healthy", False, seed)
    assert all(v is None for v in onsets(r).values()), onsets(r)
    p = peaks(r)
    assert p["max_psi"] < 0.1 and p["min_accuracy"] > r.baseline_accuracy - 0.05
    assert 0 < r.errors < 0.01 * r.requests  # the rejected inputs show as errors, never reach the monitor
    assert all(w.report.n == w.requests - w.errors for w in r.windows)


@pytest.mark.parametrize("seed", SEEDS)
def test_gradual_drift_is_caught_by_ks_before_psi_and_before_accuracy(seed):
    r = run("drift", False, seed)
    o = onsets(r)
    # the ramp starts at window 6 and adds 0.05 SD per window; KS (Bonferroni) needs ~0.15 SD
    assert 8 <= o["input_drift"] <= 14
    assert o["input_drift"] < o["psi_major"] <= 22
    assert o["input_drift"] < o["accuracy_degraded"] <= 26
    assert o["miscalibrated"] is not None
    drifted = {f.feature for f in r.windows[-1].report.features if f.drifted}
    assert drifted == {"income", "debt_ratio", "credit_utilisation"}


@pytest.mark.parametrize("seed", SEEDS)
def test_sudden_shift_fires_in_the_window_it_happens(seed):
    r = run("drift-sudden", False, seed)
    o = onsets(r)
    assert r.windows[12].report.drifted and not any(w.report.max_psi > 0.1 for w in r.windows[:12])
    assert o["psi_major"] == 12 + 2  # held for 3 windows
    # KS flags a healthy window now and then (~5%, results/scenarios.md): one just before the
    # shift starts the streak a window early
    assert o["input_drift"] in (12 + 1, 12 + 2) and (o["input_drift"] == 14 or r.windows[11].report.drifted)
    # accuracy only moves once the labels of shifted requests arrive (1000 requests = 2 windows)
    assert 14 <= o["accuracy_degraded"] <= 18


@pytest.mark.parametrize("seed", SEEDS)
def test_concept_drift_drops_accuracy_while_psi_and_ks_stay_quiet(seed):
    r = run("concept-drift", False, seed)
    o = onsets(r)
    assert 14 <= o["accuracy_degraded"] <= 18 and o["miscalibrated"] is not None
    assert o["input_drift"] is None and o["psi_major"] is None and o["output_drift"] is None
    assert peaks(r)["max_psi"] < 0.1
    assert min(w.accuracy for w in r.windows[16:]) < r.baseline_accuracy - 0.2


@pytest.mark.parametrize("name", ["drift", "drift-sudden", "concept-drift"])
@pytest.mark.parametrize("seed", SEEDS)
def test_fix_retrains_and_ends_clear(name, seed):
    r = run(name, True, seed)
    assert any(e.name == "retrain" for e in r.events) and r.windows[-1].model_version > 1
    # Ends clear: no alert's signature (accuracy and calibration included) holds in the last
    # windows. One window's accuracy alone is not the alert: against a baseline measured on a
    # retrain's few-hundred-row holdout it dips 0.05 under on 2-6% of seeds with nothing wrong
    # (docs/signals.md); the alert needs three windows in a row.
    tail = tail_onsets(r, FIX_TAIL_WINDOWS)
    assert all(v is None for v in tail.values()), tail
    fault = run(name, False, seed)
    assert tail_accuracy(r) > tail_accuracy(fault) + 0.05  # the fix really helps


def tail_accuracy(r) -> float:
    return sum(w.accuracy for w in r.windows[-FIX_TAIL_WINDOWS:]) / FIX_TAIL_WINDOWS


@pytest.mark.parametrize("name", ["serving-healthy", "drift", "drift-sudden", "concept-drift", "batching-latency",
                                  "missing-input"])
def test_expected_alerts_are_the_signatures_every_seed_reaches(name):
    spec = load_scenario(name)
    reached = set()
    for sig, alert in ALERT_OF.items():
        if all(onsets(run(name, False, s))[sig] is not None for s in SEEDS):
            reached.add(alert)
    assert set(spec.alerts) == reached
    assert set(SERVE_SIGNATURES) >= set(ALERT_OF)
