"""scripts/native/build.sh as the test session uses it: --missing, per-component locks, order.

A cold session starts build.sh --sequential in the background (tests/conftest.py) and each
fixture's own build.sh waits only for its component; these tests hold a component's lock
the way a running build does and check who waits.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path

import pytest

from lab.dev.stack import BUILD_RANK, FIXTURE_COMPONENTS, NATIVE, missing_native

BUILD = NATIVE / "build.sh"


def _components_of_build_sh() -> set[str]:
    text = BUILD.read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("ALL_COMPONENTS=("))
    return set(line.split("(", 1)[1].rstrip(")").split())


def _cache_dir(promtool: Path) -> Path:
    return promtool.parent.parent  # <cache>/bin/promtool-<version>


def test_every_component_has_a_rank_and_every_fixture_names_real_components():
    components = _components_of_build_sh()
    assert set(BUILD_RANK) == components
    assert {c for cs in FIXTURE_COMPONENTS.values() for c in cs} <= components


def test_missing_lists_only_what_an_empty_cache_lacks(tmp_path, promtool, pint):
    assert missing_native("prometheus", "pint") == []
    proc = subprocess.run([BUILD, "--missing", "pint", "prometheus"], capture_output=True, text=True,
                          env={**os.environ, "LAB_CACHE_DIR": str(tmp_path)}, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["pint", "prometheus"]  # in the order asked, nothing built
    assert not any((tmp_path / "bin").glob("*"))


def test_a_build_waits_only_for_its_own_components_lock(promtool, pint):
    lock = _cache_dir(promtool) / ".build-prometheus.lock"
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running prometheus build holds it
        other = subprocess.run([BUILD, "--print-paths", "pint"], capture_output=True, text=True, timeout=30)
        assert other.returncode == 0 and f"pint={pint}" in other.stdout
        waiting = subprocess.Popen([BUILD, "--print-paths", "prometheus"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert waiting.poll() is None, "build.sh prometheus did not wait for the prometheus build's lock"
        fcntl.flock(held, fcntl.LOCK_UN)
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 0, err
    assert f"promtool={promtool}" in out and "already built" in err


@pytest.mark.parametrize("flag", ["--sequential", ""])
def test_both_modes_reuse_built_binaries_and_print_their_paths(flag, promtool, pint):
    proc = subprocess.run([BUILD, *([flag] if flag else []), "--print-paths", "prometheus", "pint"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [f"prometheus={promtool.parent / promtool.name.replace('promtool', 'prometheus')}",
                                   f"promtool={promtool}", f"pint={pint}"]
