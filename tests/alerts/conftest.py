"""Fixtures for the alert-rule tests (`make test-alerts`): the pinned promtool and pint.

Both come from scripts/native/build.sh (cached in ~/.cache/ml-obs-lab; a fresh machine
builds them first; a failed build fails the test with the build's message).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab.repo import ROOT


def _build(component: str) -> dict[str, Path]:
    proc = subprocess.run([str(ROOT / "scripts/native/build.sh"), "--print-paths", component],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        pytest.fail(f"native build failed: {lines[-1] if lines else 'no output'}", pytrace=False)
    return {k: Path(v) for k, v in (ln.split("=", 1) for ln in proc.stdout.splitlines() if "=" in ln)}


@pytest.fixture(scope="session")
def promtool() -> Path:
    return _build("prometheus")["promtool"]


@pytest.fixture(scope="session")
def pint() -> Path:
    return _build("pint")["pint"]
