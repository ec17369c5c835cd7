"""The drill report: what each fault drill measured, written as results/drills.md by `make drills`.

Drills (test_collector_outage.py, test_drills.py, test_series_flood.py) call
`drill_report(drill, fault, figures)`; with LAB_DRILLS_REPORT set (the Makefile's `drills`
target) the session writes one table of every figure to that path. In `make test` the same
drills run and their figures are only checked, not written.

Modules that break their stack on purpose (collector down or crashed, Prometheus restarted,
floods, bad samples) take ``own_stack`` (tests/conftest.py), a private native stack for the module, under the
name ``native_stack``: `make test` runs modules on several workers in an order that varies
with machine load, and a module that shares the session's stack must never find it flooded
or with an alert still firing from a drill.
"""

import os
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def drill_report():
    rows: list[tuple[str, str, dict]] = []
    yield lambda drill, fault, figures: rows.append((drill, fault, figures))
    out = os.environ.get("LAB_DRILLS_REPORT")
    if out and rows:
        lines = ["# Fault drills", "",
                 f"Written by `make drills` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: real faults against "
                 "private native stacks (collector, Prometheus, Alertmanager, Jaeger, VictoriaLogs, webhook sink) on "
                 "127.0.0.1, one of its own for each drill module. The drills are tests (tests/e2e), so `make test` runs and checks the same ones.", "",
                 "| drill | fault | measured |", "|---|---|---|"]
        lines += [f"| {d} | {f} | {'; '.join(f'{k}: {v}' for k, v in figures.items())} |" for d, f, figures in rows]
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text("\n".join(lines) + "\n")

