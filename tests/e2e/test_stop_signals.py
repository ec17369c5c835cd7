"""SIGTERM stops a streamed run (training and serving) the way Ctrl-C does, through the real collector and Prometheus.

`timeout`, `docker stop`, systemd and a cancelled CI job send SIGTERM. A run must then end as
on Ctrl-C: last export with `running` 0 (so MLLabTelemetryStopped stays quiet for a deliberate
stop), run-end record, root span, the summary, exit status 143.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from lab.repo import ROOT

HOST = socket.gethostname()


# (scenario, a console line that shows the run under way, root span, run-end event, running gauge)
FAMILIES = [
    ("healthy", "step ", "train healthy", "run_end", "ml_training_running"),
    ("serving-healthy", "window ", "serve serving-healthy", "serve_end", "ml_inference_running"),
]


@pytest.mark.parametrize("scenario,under_way,root_span,end_event,running", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_sigterm_ends_a_run_like_ctrl_c_with_status_143(native_stack, tmp_path, scenario, under_way, root_span,
                                                         end_event, running):
    summary = tmp_path / "summary.json"
    p = subprocess.Popen([sys.executable, "-m", "lab", "run", scenario, "--plain", "--speed", "4", "--telemetry", "on",
                          "--summary-json", str(summary)], cwd=ROOT, env={**os.environ, **native_stack.otel_env()},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in p.stdout:  # the view flushes every line: wait until the run is under way
        lines.append(line)
        if line.startswith(under_way):
            break
    sent = time.time()
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert "Run interrupted" in "".join(lines) + out
    assert "Traceback" not in err + out
    s = json.loads(summary.read_text())
    assert s["stopped"] == "interrupted"

    # the final export reached Prometheus after the signal, with running = 0
    sel = f'{running}{{instance="{HOST}:{scenario}:fault"}}'
    native_stack.wait_for_series(f"{sel} == 0 and timestamp({sel}) >= {sent - 1}", timeout=60)
    mine = lambda item: item["resource"].get("lab.run.id") == s["run_id"]  # noqa: E731
    root = native_stack.wait_for_exported("traces", lambda i: mine(i) and i["name"] == root_span)[0]
    assert root["attributes"]["lab.outcome"] == "interrupted"
    end = native_stack.wait_for_exported("logs", lambda i: mine(i) and i["attributes"].get("lab.event") == end_event)[0]
    assert end["attributes"]["lab.outcome"] == "interrupted" and end["traceId"] == root["traceId"]
