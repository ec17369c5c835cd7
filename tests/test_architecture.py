"""The shape of lab/: layers that import downward only, no hidden imports, one home per number.

Layers, lowest first (docs/architecture.md): a module may import its own layer and the
layers below it; the families (training, serving, generative) never import each other; lab.dev is
tooling that nothing else in lab/ imports.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from lab import families, thresholds
from lab.repo import ROOT

LAB = ROOT / "lab"
LAYERS = (
    ("lab", "lab.repo", "lab.stackproc", "lab.thresholds"),
    ("lab.specs",),
    ("lab.telemetry",),
    ("lab.training", "lab.serving", "lab.generative", "lab.dashboards"),  # the families (and dashboards): siblings
    ("lab.families",),
    ("lab.practice",),
    ("lab.cli", "lab.__main__"),
    ("lab.dev",),
)
SIBLINGS = ("lab.training", "lab.serving", "lab.generative")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(LAB.rglob("*.py"))}


def group_of(module: str) -> str:
    """The longest layer entry the module belongs to."""
    best = max((g for layer in LAYERS for g in layer if module == g or module.startswith(g + ".")), key=len)
    return best


def level_of(module: str) -> int:
    g = group_of(module)
    return next(i for i, layer in enumerate(LAYERS) if g in layer)


def lab_imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported lab module, line, at module level) for every import of a lab module in the file.

    The family registry's module names (lab/families.py FAMILY_MODULES, imported on first
    use) count as module-level imports: they obey the same layers and cycle rules.
    """
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    out = []
    if path == LAB / "families.py":
        out += [(m, 0, True) for m in families.FAMILY_MODULES.values()]
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from lab import thresholds` imports the submodule lab.thresholds
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module for a in node.names]
        for name in names:
            if name == "lab" or name.startswith("lab."):
                out.append((name, node.lineno, id(node) in top))
    return out


def test_every_family_module_is_registered_and_exposes_its_record():
    for kind, module in families.FAMILY_MODULES.items():
        assert group_of(module) in SIBLINGS and module in MODULES, module
        assert families.family_of(type("Spec", (), {"kind": kind})()).kind == kind


def test_every_module_belongs_to_a_layer():
    for name in MODULES:
        assert level_of(name) is not None, name


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_downward(name):
    mine = level_of(name)
    for imported, line, _ in lab_imports(MODULES[name]):
        theirs = level_of(imported)
        assert theirs <= mine, f"{name}:{line} imports {imported} from a higher layer ({LAYERS[theirs]})"
        if group_of(name) in SIBLINGS and group_of(imported) in SIBLINGS:
            assert group_of(name) == group_of(imported), f"{name}:{line}: one family imports another ({imported})"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_function_local_imports_of_lab_modules(name):
    hidden = [(imported, line) for imported, line, top in lab_imports(MODULES[name]) if not top]
    assert not hidden, f"{name} imports lab modules inside functions (an import cycle in disguise?): {hidden}"


def test_no_import_cycles():
    graph = {name: {i for i, _, _ in lab_imports(p) if i in MODULES and i != name} for name, p in MODULES.items()}
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for m in graph[n]:
            if state.get(m) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path[path.index(m):], m]))
            if m not in state:
                visit(m, [*path, m])
        state[n] = 2

    for n in graph:
        if n not in state:
            visit(n, [n])


def test_dev_tooling_is_imported_by_nothing_at_run_time():
    for name, path in MODULES.items():
        if group_of(name) != "lab.dev":
            assert not [i for i, _, _ in lab_imports(path) if i.startswith("lab.dev")], name


# -- one home per number ------------------------------------------------------------------------

# The teaching thresholds whose value alone identifies them. Whole numbers (3, 5x, 10x,
# 20 steps) are too common in code and prose to search for, 0.1 is PSI_MODERATE and 0.01
# KS_ALPHA but also every other default (slopes, buckets, rates); those are held to the
# rules and dashboards by name (tests/alerts/test_alert_rules.py,
# tests/dashboards/test_thresholds_match_rules.py).
DISTINCT = {name: v for name, v in vars(thresholds).items()
            if name.isupper() and isinstance(v, float) and not v.is_integer() and v not in (0.1, 0.01)}
# Literals that equal a threshold by coincidence, with the reason.
NOT_A_THRESHOLD = {
    ("lab/telemetry/catalogue.py", 0.25): "histogram bucket boundaries (seconds, confidence)",
    ("lab/telemetry/catalogue.py", 0.9): "confidence histogram bucket boundary",
    ("lab/telemetry/catalogue.py", 0.2): "the support bot's confidence histogram bucket boundary",
    ("lab/telemetry/catalogue.py", 0.05): "latency histogram bucket boundary",
    ("lab/specs/serving.py", 0.05): "label_noise default: the share of labels flipped, not a threshold",
    ("lab/specs/generative.py", 0.25): "word_dropout default: a training regulariser, not a threshold",
    ("lab/specs/generative.py", 0.2): "label_share default: the share of answers sent for labelling",
    ("lab/specs/generative.py", 0.05): "feedback_noise default: the share of user ratings flipped",
    ("lab/training/loop.py", 0.2): "a learning-rate change of more than 20% is announced as an event",
    ("lab/dev/alert_matrix.py", 0.25): "poll interval (seconds)",
    ("lab/dev/drift_bench.py", 0.25): "shift magnitudes of the benchmark grid (reference standard deviations)",
}


def _literal_copies(path: Path) -> list[tuple[int, str]]:
    rel = str(path.relative_to(ROOT))
    hits = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, float) and not isinstance(node.value, bool):
            for name, v in DISTINCT.items():
                if node.value == v and (rel, v) not in NOT_A_THRESHOLD:
                    hits.append((node.lineno, f"{node.value} (= {name})"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for name, v in DISTINCT.items():
                if re.search(rf"(?<![\d.]){re.escape(f'{v:g}')}(?![\d])", node.value) and (rel, v) not in NOT_A_THRESHOLD:
                    hits.append((node.lineno, f"{node.value[:60]!r} names {v:g} (= {name})"))
    return hits


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n != "lab.thresholds"))
def test_no_literal_copy_of_a_teaching_threshold(name):
    hits = _literal_copies(MODULES[name])
    assert not hits, f"{name} repeats a threshold of lab/thresholds.py instead of importing it: {hits}"


def test_tests_that_need_the_stack_live_where_the_stack_marker_is_set():
    from_conftest = {"stack", "e2e", "dev"}
    for path in (ROOT / "tests").rglob("test_*.py"):
        if path == Path(__file__):
            continue
        text = path.read_text()
        if re.search(r"\bnative_stack\b|\bnative_bins\b", text):
            top = path.relative_to(ROOT / "tests").parts[0]
            assert top in from_conftest or top == "alerts" and "native_stack" not in text, \
                f"{path.relative_to(ROOT)} uses the stack but its directory is not marked `stack`"
