"""The install: one lock for every supported platform, and the torch choice of `make venv`.

Offline checks of requirements.lock against pyproject.toml (markers evaluated per platform)
and of scripts/venv_sync.py's choice between the CPU-only index and PyPI. `make check-lock`
(run by .ci/run) adds what needs PyPI's metadata: a wheel for every pin on every platform.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import socket
import time
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from lab.repo import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PLATFORMS = {
    "linux-x86_64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"},
    "linux-aarch64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64"},
    "macos-arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"},
}
PY311 = {"python_version": "3.11", "python_full_version": "3.11.7", "implementation_name": "cpython",
         "platform_python_implementation": "CPython", "os_name": "posix"}
CUDA = re.compile(r"^(nvidia-|cuda-|triton$)")


def lock_entries() -> list[tuple[str, str, Marker | None]]:
    """(name, version, marker) for each pin of requirements.lock."""
    entries = []
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if not line or line.startswith((" ", "#")):
            continue
        pin, _, marker = line.partition(";")
        name, sep, version = pin.strip().partition("==")
        assert sep and version, f"not an exact pin: {line!r}"
        entries.append((canonicalize_name(name), version, Marker(marker.strip()) if marker.strip() else None))
    return entries


def installed_on(platform: str) -> dict[str, str]:
    env = {**PY311, **PLATFORMS[platform]}
    chosen: dict[str, str] = {}
    for name, version, marker in lock_entries():
        if marker is None or marker.evaluate(env):
            assert name not in chosen, f"{name} pinned twice on {platform}"
            chosen[name] = version
    return chosen


@pytest.mark.parametrize("platform", PLATFORMS)
def test_lock_covers_every_direct_dependency_on_each_platform(platform: str) -> None:
    chosen = installed_on(platform)
    project = PYPROJECT["project"]
    for spec in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in chosen, f"{name} missing from requirements.lock on {platform}"
        assert Version(chosen[name]) in req.specifier, f"{name}=={chosen[name]} outside {req.specifier}"


def test_cuda_wheels_only_on_linux_and_the_excluded_ones_nowhere() -> None:
    assert not [n for n in installed_on("macos-arm64") if CUDA.match(n)]
    for platform in ("linux-x86_64", "linux-aarch64"):
        assert [n for n in installed_on(platform) if CUDA.match(n)], f"PyPI's torch needs its CUDA libraries on {platform}"
    excluded = {canonicalize_name(n) for n in PYPROJECT["tool"]["uv"]["exclude-dependencies"]}
    assert excluded and not excluded & {name for name, _, _ in lock_entries()}


def test_torch_source_is_the_declared_explicit_cpu_index() -> None:
    indexes = {i["name"]: i for i in PYPROJECT["tool"]["uv"]["index"]}
    (source,) = PYPROJECT["tool"]["uv"]["sources"]["torch"]
    assert source["index"] in indexes and indexes[source["index"]].get("explicit") is True
    assert Marker(source["marker"]).evaluate({**PY311, **PLATFORMS["linux-aarch64"]})
    assert not Marker(source["marker"]).evaluate({**PY311, **PLATFORMS["macos-arm64"]})


def load_venv_sync():
    spec = importlib.util.spec_from_file_location("venv_sync", ROOT / "scripts" / "venv_sync.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_venv_sync_falls_back_to_pypi_quickly_when_the_cpu_index_does_not_answer() -> None:
    venv_sync = load_venv_sync()
    assert venv_sync.cpu_index_url() == "https://download.pytorch.org/whl/cpu"
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/whl/cpu"
        start = time.monotonic()
        path, line = venv_sync.choose("auto", "linux", url, timeout=1.0)
        assert time.monotonic() - start < 3
    assert path == "pypi" and "unreachable: timed out after 1 s" in line
    assert line.startswith("torch: ") and "\n" not in line


def test_venv_sync_forced_paths_and_macos_do_not_probe() -> None:
    venv_sync = load_venv_sync()
    unroutable = "http://127.0.0.1:9/whl/cpu"  # a probe would say 'refused'; none may happen
    assert venv_sync.choose("pypi", "linux", unroutable)[0] == "pypi"
    assert venv_sync.choose("cpu", "linux", unroutable)[0] == "cpu"
    path, line = venv_sync.choose("auto", "darwin", unroutable)
    assert path == "pypi" and "unreachable" not in line


def test_the_venv_is_byte_compiled() -> None:
    # scripts/venv_sync.py installs with --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set
    # (CI) every process would otherwise compile torch's sources again (~13 s a `lab run`)
    for name in ("torch", "opentelemetry.sdk.metrics", "scipy.stats"):
        module = importlib.import_module(name)
        source = module.__file__
        assert Path(importlib.util.cache_from_source(source)).exists(), f"no bytecode for {source}"
