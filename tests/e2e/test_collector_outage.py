"""A collector outage in the middle of a streamed run costs the run nothing it could keep.

A drill of issue 16 on the real native stack, one paced run through two faults:
- `--telemetry auto` started while the collector is down: the run probes, holds its batches,
  and streams (backlog first) from the moment the collector is back;
- then the collector is stopped for 20 s: the run's retry buffers (lab/telemetry/retry.py)
  hold what failed and send it late.
Prometheus ends with no hole in the run's series, and every evaluation log record and epoch
span arrives. Before the buffers the same 20 s outage left a 25 s hole (measured: no sample
inside it), and an auto run that started without a collector streamed nothing.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from lab.repo import ROOT
from lab.telemetry.otel import LAB_INTERVAL_SECONDS

HOST = socket.gethostname()
OUTAGE_S = 20

@pytest.fixture(scope="module")
def native_stack(own_stack):
    """This module breaks its stack on purpose: one of its own (tests/e2e/conftest.py)."""
    return own_stack


def _start(native_stack, scenario: str, summary, *args: str) -> subprocess.Popen:
    # unbuffered: the test reads the run's lines while it runs
    return subprocess.Popen([sys.executable, "-m", "lab", "run", scenario, "--plain", "--summary-json", str(summary), *args],
                            cwd=ROOT, env={**os.environ, **native_stack.otel_env(), "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read_lines(stream) -> tuple[list[str], threading.Thread]:
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(stream), daemon=True)
    reader.start()
    return lines, reader


def _sample_times(native_stack, instance: str, since: float) -> list[float]:
    span = int(time.time() - since) + 30
    got = native_stack.query(f'ml_training_steps_total{{instance="{instance}"}}[{span}s]')
    return [float(t) for t, _ in got[0]["values"]] if got else []


def test_a_run_streams_through_a_late_collector_and_a_20_s_outage(native_stack, tmp_path, drill_report):
    summary = tmp_path / "s.json"
    instance = f"{HOST}:healthy:fault"
    t0 = time.time()
    # --telemetry auto, and no collector when the run starts: it probes and holds its batches
    with native_stack.component_down("otel-collector"):
        p = _start(native_stack, "healthy", summary, "--speed", "3", "--telemetry", "auto")
        out_lines, out_reader = _read_lines(p.stdout)
        err_lines, err_reader = _read_lines(p.stderr)
        # Under way (its first evaluation is 1.4 s into the run; start-up takes 5 s, a minute on
        # a machine busy compiling), then two export intervals more: its first exports are held.
        native_stack.poll("the run's first evaluation", lambda: any(ln.startswith("step ") for ln in out_lines), 180)
        time.sleep(2 * LAB_INTERVAL_SECONDS + 2)
    appeared = time.time()
    try:
        native_stack.wait_for_series(f'ml_training_steps_total{{instance="{instance}"}} > 0 '
                                     f'and timestamp(ml_training_steps_total{{instance="{instance}"}}) > {t0}', 60)
        # then the collector goes away mid-run and is back OUTAGE_S later. SIGTERM: it first hands on
        # what it accepted. A SIGKILL also loses the up to 1 s of data in its batch processor, which
        # the run counts as delivered (docs/stack.md: the collector's queue is not persisted yet).
        with native_stack.component_down("otel-collector", signal.SIGTERM) as down_at:
            time.sleep(OUTAGE_S)
        up_at = time.time()
        p.wait(timeout=180)
        out_reader.join(30)
        err_reader.join(30)
        out, err = "".join(out_lines), "".join(err_lines)
    finally:
        p.kill()
    assert p.returncode == 0, err
    s = json.loads(summary.read_text())

    # every export interval reached Prometheus at its own timestamp: those held before the
    # collector appeared, and those of the outage, sent late
    native_stack.poll("the run's final sample", lambda: (ts := _sample_times(native_stack, instance, t0))
                      and ts[-1] > up_at, 60)
    times = [t for t in _sample_times(native_stack, instance, t0) if t >= t0]
    before = [t for t in times if t < appeared]
    during = [t for t in times if down_at <= t <= up_at]
    gaps = [b - a for a, b in zip(times, times[1:])]
    late = next((ln for ln in err.splitlines() if "Sent late" in ln), "")
    print(f"collector late {appeared - t0:.1f} s: {len(before)} samples before it appeared; outage {up_at - down_at:.1f} s: "
          f"{len(during)} samples inside it; largest gap {max(gaps):.1f} s; {late}")
    assert before, (t0, appeared, times[:3])
    assert len(during) >= OUTAGE_S // LAB_INTERVAL_SECONDS - 1, (during, times)
    # 2 intervals: during the outage each export waits out its 3 s timeout before the next interval
    assert max(gaps) < 2 * LAB_INTERVAL_SECONDS + 1, gaps

    # every evaluation log record (one per console line) and every epoch span
    mine = lambda item: item["resource"].get("lab.run.id") == s["run_id"]  # noqa: E731
    evaluations = sum(line.startswith("step ") for line in out.splitlines())

    def records():
        return [i for i in native_stack.exported("logs") if mine(i) and i["attributes"].get("lab.event") == "evaluation"]

    try:
        native_stack.poll(f"{evaluations} evaluation records", lambda: len(records()) >= evaluations, 30)
    except AssertionError:
        got = sorted(int(i["attributes"]["lab.step"]) for i in records())
        want = [int(ln.split()[1]) for ln in out.splitlines() if ln.startswith("step ")]
        raise AssertionError(f"evaluation records of steps {sorted(set(want) - set(got))} never arrived") from None
    print(f"{len(records())} of {evaluations} evaluation records")
    epochs = sorted(int(i["attributes"]["lab.epoch"]) for i in native_stack.exported("traces")
                    if mine(i) and i["name"] == "epoch")
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 2, epochs
    assert "No OpenTelemetry collector at" in err and " yet: " in err, err
    assert "A collector appeared" in err and "Signals were not streamed" not in out + err
    assert "Sent late, kept in the run's buffer while the collector was away" in err, err
    assert "Telemetry lost" not in err
    drill_report("collector late, then down mid-run", f"paced `healthy` run (`--telemetry auto`); collector absent for "
                 f"the first {appeared - t0:.0f} s, then stopped (SIGTERM) for {up_at - down_at:.0f} s",
                 {"samples inside the gaps": f"{len(before)} before it appeared, {len(during)} during the outage",
                  "largest gap between samples": f"{max(gaps):.1f} s (without the buffers: 24.8 s, no sample inside)",
                  "evaluation records": f"{len(records())} of {evaluations}", "epoch spans": f"{len(epochs)}, none missing",
                  "sent late": late.split(": ", 1)[-1].rstrip("."), "lost": "nothing"})
