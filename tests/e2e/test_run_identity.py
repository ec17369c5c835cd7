"""Run identity through the real stack: concurrent runs never share a series, and a run id joins.

Two runs of one scenario at the same time used to interleave in one series (the steps
counter reset at every export of the other run). Each run now holds an instance slot
(lab/telemetry/slots.py): the second gets `<host>:<scenario>:<variant>:2`. The run id is on
`target_info` only; the join documented in docs/stack.md picks each instance's newest
target_info, so it still works right after a re-run, where the plain join fails on two
target_info series of one instance.
"""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from lab.repo import ROOT

HOST = socket.gethostname()
BASE = f"{HOST}:healthy:custom"  # --set makes the variant "custom"
# The join of docs/stack.md ("Which run is this?"): the newest target_info of each instance.
RUN_ID_JOIN = ("ml_training_steps_total{{instance=~\"{pattern}\"}} * on (job, instance) group_left (lab_run_id) "
               "(topk by (job, instance) (1, timestamp(target_info)) * 0 + 1)")
ARGS = ("--speed", "4", "--set", "train.epochs=2", "--telemetry", "on", "--plain")


def _run(native_stack, summary, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lab", "run", "healthy", *ARGS, *extra, "--summary-json", str(summary)],
                            cwd=ROOT, env={**os.environ, **native_stack.otel_env()},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_concurrent_runs_keep_their_own_series_and_each_joins_its_run_id(native_stack, tmp_path):
    t0 = time.time()
    runs = [_run(native_stack, tmp_path / f"{i}.json") for i in range(2)]
    outputs = [p.communicate(timeout=240) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], [err for _, err in outputs]
    assert sum("Another run of healthy (custom) is going on this host" in err for _, err in outputs) == 1
    summaries = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(2)]

    pattern = f"{BASE}|{BASE}:2"
    span = int(time.time() - t0)
    final = native_stack.wait_for_series(f'count(ml_training_steps_total{{instance=~"{pattern}"}} '
                                         f'and timestamp(ml_training_steps_total) > {t0}) == 2', 60)
    assert final
    # each instance's counter only went up: no interleaving of the two runs
    resets = native_stack.query(f'resets(ml_training_steps_total{{instance=~"{pattern}"}}[{span - 2}s])')
    assert len(resets) == 2 and all(float(r["value"][1]) == 0 for r in resets), resets
    steps = {r["metric"]["instance"]: float(r["value"][1])
             for r in native_stack.query(f'ml_training_steps_total{{instance=~"{pattern}"}}')}
    assert sorted(steps.values()) == sorted(float(s["steps"]) for s in summaries), steps

    joined = native_stack.query(RUN_ID_JOIN.format(pattern=pattern))
    assert {r["metric"]["lab_run_id"] for r in joined} == {s["run_id"] for s in summaries}, joined


def test_the_run_id_join_works_right_after_a_rerun(native_stack, tmp_path):
    ids = []
    for i in range(2):  # back to back: the same instance, two target_info series within the lookback
        p = _run(native_stack, tmp_path / f"{i}.json", "--fast")
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        ids.append(json.loads((tmp_path / f"{i}.json").read_text())["run_id"])
    native_stack.wait_for_series(f'target_info{{instance="{BASE}",lab_run_id="{ids[1]}"}}', 60)
    with pytest.raises(requests.HTTPError):  # the plain join: two target_info series match one instance
        native_stack.query(f'ml_training_steps_total{{instance="{BASE}"}} * on (job, instance) group_left (lab_run_id) '
                           'target_info')
    joined = native_stack.query(RUN_ID_JOIN.format(pattern=BASE))
    assert [r["metric"]["lab_run_id"] for r in joined] == [ids[1]], joined
