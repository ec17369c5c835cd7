"""Find, merge and validate the declarative scenario files in scenarios/.

The one module that knows every scenario kind: ``build_spec`` picks the schema from
the file's ``kind`` (training by default). Order of application: the file, over a
``base = "other"`` scenario's settings; then ``[fix]`` (with --fix); then --set.
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lab.repo import ROOT
from lab.specs.base import ScenarioHeader, SpecError
from lab.specs.serving import InferenceSpec
from lab.specs.training import TrainingSpec

SCHEMAS: dict[str, type[ScenarioHeader]] = {"training": TrainingSpec, "inference": InferenceSpec}
# Discriminator values of tagged unions (faults, shifts): left out of error paths.
_UNION_TAGS = {"lr_burst", "corrupt_batch", "covariate", "concept"}


class UnknownScenario(SpecError):
    pass


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _format_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid scenario settings in {source}:"]
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and p in _UNION_TAGS)) or "(top level)"
        msg = e["msg"]
        ctx = e.get("ctx") or {}
        if e["type"] == "literal_error" and "expected" in ctx:
            msg = f"got {e.get('input')!r}; allowed values: {ctx['expected']}"
        elif e["type"] == "extra_forbidden":
            msg = "unknown setting"
        lines.append(f"  {field}: {msg}")
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse `--set a.b=value`; the value is read as TOML (so 1e-3, true, [1,2], "x" work)."""
    if "=" not in text:
        raise SpecError(f"--set {text!r}: expected KEY=VALUE, e.g. optimizer.lr=0.01")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise SpecError(f"--set {text!r}: empty key")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # bare words such as adam or leaky_relu
    return path, value


def load_raw(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None


def _apply_override(raw: dict, text: str) -> None:
    keys, value = parse_override(text)
    cursor = raw
    for k in keys[:-1]:
        nxt = cursor.get(k)
        if not isinstance(nxt, dict):
            nxt = {} if nxt is None else nxt
            if not isinstance(nxt, dict):
                raise SpecError(f"--set {text!r}: {k} is not a table of settings")
            cursor[k] = nxt
        cursor = nxt
    cursor[keys[-1]] = value


def build_spec(raw: dict, *, fix: bool = False, overrides: list[str] = (), source: str = "scenario"):
    """Validate a raw scenario dict, applying the fix overrides and then --set overrides.

    Returns the spec of the file's kind (TrainingSpec, InferenceSpec).
    """
    raw = dict(raw)
    fix_table = raw.pop("fix", None)
    raw["has_fix"] = fix_table is not None
    if fix:
        if fix_table is None:
            raise SpecError(f"{source} has no fix variant ([fix] table)")
        raw = deep_merge(raw, fix_table)
        raw["variant"] = "fix"
        raw["alerts"] = []  # a fix must stay quiet
    for text in overrides:
        _apply_override(raw, text)
    kind = raw.get("kind", "training")
    schema = SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise SpecError(f"invalid scenario settings in {source}:\n  kind: got {kind!r}; allowed values: "
                        + ", ".join(repr(k) for k in SCHEMAS))
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise SpecError(_format_error(err, source)) from None


def scenarios_dir() -> Path:
    # LAB_SCENARIOS_DIR lets tests and users point at another folder.
    env = os.environ.get("LAB_SCENARIOS_DIR")
    if env:
        return Path(env)
    return ROOT / "scenarios"


def known_scenarios(directory: Path | None = None) -> list[str]:
    directory = directory or scenarios_dir()
    return sorted(p.stem for p in directory.glob("*.toml"))


def load_scenario(name: str, *, fix: bool = False, overrides: list[str] = (), directory: Path | None = None):
    directory = directory or scenarios_dir()
    path = directory / f"{name}.toml"
    if not path.is_file():
        known = known_scenarios(directory)
        raise UnknownScenario(f"unknown scenario {name!r}; known scenarios: {', '.join(known) or '(none found in ' + str(directory) + ')'}")
    raw = load_raw(path)
    base = raw.pop("base", None)
    if base is not None:
        # `base = "healthy"`: start from another scenario's settings (not its fix or story)
        base_path = directory / f"{base}.toml"
        if not base_path.is_file():
            raise SpecError(f"{path}: base = {base!r} is not a scenario; known scenarios: {', '.join(known_scenarios(directory))}")
        base_raw = load_raw(base_path)
        for key in ("fix", "base", "story", "alerts", "faults", "shifts"):
            base_raw.pop(key, None)
        raw = deep_merge(base_raw, raw)
    if raw.get("name", name) != name:
        raise SpecError(f"{path}: name = {raw.get('name')!r} must match the file name {name!r}")
    return build_spec(raw, fix=fix, overrides=list(overrides), source=str(path.relative_to(directory.parent)) if directory.parent in path.parents else str(path))
