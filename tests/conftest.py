"""Shared fixtures, and markers set by directory.

Markers (pyproject.toml): every test under tests/stack, tests/e2e and tests/dev is
``stack`` (it builds and starts the native stack), every test under tests/scenarios is
``slow`` (it trains several seeds). `pytest -m "not stack"` therefore never starts a stack.

Order and builds: test modules run by what they need built (none first, then promtool, pint
and compose-check, then the whole native stack, then Docker Compose), the longest modules
first within that, and the session starts ``scripts/native/build.sh --sequential`` for what
is missing, in that order, at the lowest CPU priority, before its first test. On a cold
machine the builds thus use the CPU that the tests needing nothing leave idle; a fixture
waits only for its own component's build.

Workers: `make test` runs whole modules on pytest-xdist workers (TEST_WORKERS, 3). Each worker
is a session of its own: its own ``native_stack`` and its own background build (starting at a
different component, so cold builds run side by side; build.sh locks each component).

Fixtures (session-scoped, so a session builds and starts things at most once):

- ``lab_env``: the KEY=VALUE pairs of the repository's ``.env`` (lab.repo.read_dotenv).
- ``native_bins``: ``{"otelcol": Path, "prometheus": Path, "promtool": Path,
  "alertmanager": Path, "amtool": Path, "jaeger": Path, "victorialogs": Path}``, the pinned
  binaries built from Go modules (in parallel) by ``scripts/native/build.sh`` (cached under
  ``~/.cache/ml-obs-lab``). A failed build fails
  the test with the build's one-line message; nothing is skipped.
- ``promtool``, ``pint``, ``compose_check``: further binaries built the same way.
- ``tiny_raw``, ``tiny_spec``: a tiny but real training scenario (raw dict, validated spec).
- ``native_stack``: a running native stack on free ports in a temporary state directory
  (lab.dev.stack.private_native_stack, whose docstring lists the helpers), stopped at the
  end of the session; ``own_stack``: the same for one module.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from lab.dev.stack import (
    BUILD_RANK,
    FIXTURE_COMPONENTS,
    STACK_BUILD,
    NativeStack,
    StackError,
    background_build,
    build_native,
    missing_native,
    private_native_stack,
)
from lab.repo import read_dotenv
from lab.specs.loader import build_spec

MARKERS_BY_DIRECTORY = {"stack": "stack", "e2e": "stack", "dev": "stack", "scenarios": "slow"}


def _components(item: pytest.Item) -> list[str]:
    return [c for name in item.fixturenames for c in FIXTURE_COMPONENTS.get(name, ())]


def pytest_configure(config) -> None:
    # Instance slots are host-wide (lab/telemetry/slots.py); each xdist worker has its own stacks,
    # so its runs (in-process and `lab run` children, which inherit this) take slots of their own.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and "LAB_SLOTS_DIR" not in os.environ:
        slots = Path(tempfile.gettempdir()) / f"ml-obs-lab-slots-{os.getpid()}-{worker}"
        slots.mkdir(exist_ok=True)
        os.environ["LAB_SLOTS_DIR"] = str(slots)
        config.add_cleanup(lambda: shutil.rmtree(slots, ignore_errors=True))


_MISSING = pytest.StashKey[list[str]]()


def _missing_at_start(config, components: list[str]) -> list[str]:
    """Which of `components` were not built when the run began, asked once per run. Under
    pytest-xdist the controller asks for every component and hands the answer to each worker
    (pytest_configure_node): the workers must sort their tests alike, even after one worker's
    background build has finished something."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "lab_missing" in workerinput:
        return workerinput["lab_missing"]
    if _MISSING not in config.stash:
        config.stash[_MISSING] = missing_native(*components) if components else []
    return config.stash[_MISSING]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    node.workerinput["lab_missing"] = _missing_at_start(node.config, list(BUILD_RANK))


def pytest_collection_modifyitems(config, items) -> None:
    tests = Path(__file__).parent
    for item in items:
        parts = Path(item.fspath).relative_to(tests).parts
        marker = MARKERS_BY_DIRECTORY.get(parts[0]) if len(parts) > 1 else None
        if marker:
            item.add_marker(marker)
    # Modules run by the most one of their tests still needs built (BUILD_RANK; everything is
    # rank 0 once built), then the longest modules first, then directory order: the tests
    # needing no binary run while the background build works, and `make test`'s workers
    # (pytest-xdist, whole modules per worker) start the long waits early and end together.
    # Whole modules move, so module-scoped fixtures (the Docker engine) are set up once.
    missing = set(_missing_at_start(config, list(dict.fromkeys(c for item in items for c in _components(item)))))
    rank: dict[str, int] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        needs = [BUILD_RANK[c] for c in _components(item) if c in missing]
        rank[module] = max([rank.get(module, 0), *needs])

    def order(item: pytest.Item) -> tuple[int, int]:
        module = item.nodeid.split("::")[0]
        long = LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)
        return rank[module], long

    items.sort(key=order)


# The modules that take longest in `make test` (per module, 2026-12-05 on 3 workers: the alert
# matrix 378 s, the drills 171, the compose stack 162, the series flood 111, the bot's
# signatures 78, the panel contract 73, the collector outage 71, the bot's model 59, the
# overload drill 55): started first, so that no worker is left with one of them at the end.
LONGEST_FIRST = [
    "tests/dev/test_alert_matrix.py",
    "tests/e2e/test_drills.py",
    "tests/stack/test_compose_stack.py",
    "tests/e2e/test_series_flood.py",
    "tests/generative/test_signatures.py",
    "tests/dev/test_panel_contract.py",
    "tests/e2e/test_collector_outage.py",
    "tests/generative/test_model.py",
    "tests/e2e/test_overload.py",
]


_BACKGROUND = pytest.StashKey[subprocess.Popen]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start building the binaries the selected tests need, in the order they need them."""
    if session.config.option.collectonly or not session.items:
        return
    # in the order the sorted tests need them
    wanted = list(dict.fromkeys(c for item in session.items for c in _components(item)))
    at_start = set(_missing_at_start(session.config, wanted))
    missing = [c for c in wanted if c in at_start]
    # Under pytest-xdist every worker builds; worker k starts k components further down the
    # list, so the workers build different components at once (a per-component lock in
    # build.sh makes the others wait for, then skip, what one of them is building).
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    shift = int(worker[2:]) % len(missing) if missing and worker[2:].isdigit() else 0
    missing = missing[shift:] + missing[:shift]
    if missing:
        session.config.stash[_BACKGROUND] = background_build(missing)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"building in the background, lowest CPU priority: {', '.join(missing)} "
                                "(a cold build takes minutes; logs: scripts/native/build.sh --help)")


def pytest_sessionfinish(session: pytest.Session) -> None:
    proc = session.config.stash.get(_BACKGROUND, None)
    if proc is not None and proc.poll() is None:
        # Tests that needed nothing more ended the session: stop the builds nobody waits for.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


# A tiny but real scenario for fast unit tests: 2 hidden layers on digits.
TINY = {
    "name": "tiny",
    "title": "tiny test scenario",
    "data": {"dataset": "digits", "train_size": 200, "val_size": 200},
    "model": {"hidden": [32, 16], "init": "he_normal"},
    "train": {"epochs": 3, "batch_size": 32, "eval_every": 5},
    "story": {"what_you_will_see": "x", "root_cause": "y", "what_to_do": "z"},
    "fix": {"model": {"dropout": 0.2}},
}


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # As `lab run` does: small models run faster on one thread, and a busy second
    # core (the stack, a build) makes multi-threaded spin-waits crawl.
    torch.set_num_threads(1)


@pytest.fixture
def tiny_raw():
    return copy.deepcopy(TINY)


@pytest.fixture
def tiny_spec(tiny_raw):
    return build_spec(tiny_raw, source="tiny")


def _build(*components: str) -> dict[str, Path]:
    try:
        return build_native(*components)
    except StackError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def lab_env() -> dict[str, str]:
    return read_dotenv()


@pytest.fixture(scope="session")
def native_bins() -> dict[str, Path]:
    return _build(*STACK_BUILD)


@pytest.fixture(scope="session")
def promtool() -> Path:
    return _build("prometheus")["promtool"]


@pytest.fixture(scope="session")
def pint() -> Path:
    return _build("pint")["pint"]


@pytest.fixture(scope="session")
def compose_check() -> Path:
    return _build("compose-check")["compose-check"]


def _private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    try:
        with private_native_stack(tmp_path_factory.mktemp("lab-state")) as stack:
            yield stack
    except StackError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def native_stack(tmp_path_factory: pytest.TempPathFactory, native_bins: dict[str, Path]) -> Iterator[NativeStack]:
    yield from _private_stack(tmp_path_factory)


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory, native_bins: dict[str, Path]) -> Iterator[NativeStack]:
    """A stack for one module that breaks it on purpose (tests/e2e/conftest.py says which)."""
    yield from _private_stack(tmp_path_factory)
