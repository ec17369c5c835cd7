"""Find, merge and validate the declarative scenario files in scenarios/ (docs/scenarios.md).

The one module that knows every scenario kind: ``build_spec`` picks the schema from
the file's ``kind`` (training by default). Order of application: the file, over a
``base = "other"`` scenario (every field inherited, recursively; the file's own tables merge
key by key, its own ``[story]`` and ``[fix]`` replace the base's whole); then ``[fix]`` (with
--fix); then --set, which may not touch a scenario's identity (IDENTITY) and labels the run
variant "custom" so it never mixes into the canonical scenario's series.
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from lab.repo import ROOT
from lab.specs.base import ScenarioHeader, SpecError
from lab.specs.generative import GenerativeSpec
from lab.specs.serving import InferenceSpec
from lab.specs.training import TrainingSpec

SCHEMAS: dict[str, type[ScenarioHeader]] = {"training": TrainingSpec, "inference": InferenceSpec, "generative": GenerativeSpec}
# Discriminator values of tagged unions (faults, shifts): left out of error paths.
_UNION_TAGS = {"lr_burst", "corrupt_batch", "covariate", "concept"}
# What makes a scenario the scenario it is: its name (the lab_scenario label), its kind (the
# schema), its variant and has_fix (set by the loader from [fix] and --fix), and practice
# mode's answer key. `--set` may not change them: copy the file (`base = "NAME"`) instead.
IDENTITY = ("name", "kind", "variant", "has_fix", "story.diagnosis")
# The variant of a run with --set overrides: its own series, never the canonical scenario's.
CUSTOM_VARIANT = "custom"
# Top-level keys of a file that are not fields of the validated spec.
FILE_ONLY_KEYS = ("base", "fix")
# Fields the loader sets; a file does not.
_LOADER_SET = ("variant", "has_fix")
# Tables a derived scenario replaces whole when it has its own (a half-inherited story or fix would be wrong).
_REPLACED_WHOLE = ("story", "fix")


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


def _models_in(annotation) -> list[type[BaseModel]]:
    """The models an annotation can hold (through Optional, list, Annotated and unions)."""
    out, todo = [], [annotation]
    while todo:
        a = todo.pop()
        if isinstance(a, type) and issubclass(a, BaseModel):
            out.append(a)
        else:
            todo.extend(get_args(a))
    return out


def valid_keys(schema: type[BaseModel], loc: tuple = ()) -> list[str]:
    """The settings a table accepts: at the top level of a file, or inside `loc` (e.g. ("optimizer",))."""
    models = [schema]
    for part in loc:
        if isinstance(part, int):
            continue
        if part in _UNION_TAGS:  # the tag of a fault or shift picks its member of the union
            models = [m for m in models if "kind" in m.model_fields and part in get_args(m.model_fields["kind"].annotation)]
            continue
        models = [sub for m in models if part in m.model_fields for sub in _models_in(m.model_fields[part].annotation)]
    keys = sorted({k for m in models for k in m.model_fields})
    if not loc:
        keys = sorted((set(keys) - set(_LOADER_SET)) | set(FILE_ONLY_KEYS))
    return keys


def _format_error(err: ValidationError, source: str, schema: type[BaseModel]) -> str:
    lines = [f"invalid scenario settings in {source}:"]
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and p in _UNION_TAGS)) or "(top level)"
        msg = e["msg"]
        ctx = e.get("ctx") or {}
        if e["type"] == "literal_error" and "expected" in ctx:
            msg = f"got {e.get('input')!r}; allowed values: {ctx['expected']}"
        elif e["type"] == "extra_forbidden":
            msg = f"unknown setting; valid here: {', '.join(valid_keys(schema, tuple(e['loc'][:-1])))}"
        lines.append(f"  {field}: {msg}")
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse `--set a.b=value`; the value is read as TOML (so 1e-3, true, [1,2], "x" work)."""
    if "=" not in text:
        raise SpecError(f"--set {text!r}: expected KEY=VALUE, e.g. optimizer.lr=0.003")
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
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot be read: {exc}") from None


def _apply_override(raw: dict, text: str) -> None:
    keys, value = parse_override(text)
    dotted = ".".join(keys)
    touched = [f for f in IDENTITY if f == dotted or f.startswith(dotted + ".")]
    if touched:
        raise SpecError(f"--set {text!r}: {touched[0]} is part of the scenario's identity and cannot be set from the "
                        f"command line (identity: {', '.join(IDENTITY)}); write a scenario file with "
                        f"base = \"{raw.get('name', 'NAME')}\" instead (docs/scenarios.md)")
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


def _validate(raw: dict, source: str):
    kind = raw.get("kind", "training")
    schema = SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise SpecError(f"invalid scenario settings in {source}:\n  kind: got {kind!r}; allowed values: "
                        + ", ".join(repr(k) for k in SCHEMAS))
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise SpecError(_format_error(err, source, schema)) from None


def build_spec(raw: dict, *, fix: bool = False, overrides: list[str] = (), source: str = "scenario"):
    """Validate a raw scenario dict, applying the fix overrides and then --set overrides.

    Returns the spec of the file's kind (TrainingSpec, InferenceSpec). The file (with its
    [fix]) is validated before any --set, so an error names the one to blame; a spec with
    --set overrides has variant CUSTOM_VARIANT.
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
    spec = _validate(raw, source)
    if not overrides:
        return spec
    raw = copy.deepcopy(raw)
    for text in overrides:
        _apply_override(raw, text)
    raw["variant"] = CUSTOM_VARIANT
    return _validate(raw, "--set " + " --set ".join(overrides) + f" (over {source})")


def scenarios_dir() -> Path:
    # LAB_SCENARIOS_DIR lets tests and users point at another folder.
    env = os.environ.get("LAB_SCENARIOS_DIR")
    if env:
        return Path(env)
    return ROOT / "scenarios"


def known_scenarios(directory: Path | None = None) -> list[str]:
    directory = directory or scenarios_dir()
    return sorted(p.stem for p in directory.glob("*.toml"))


def resolve_raw(name: str, directory: Path, chain: tuple[str, ...] = ()) -> dict:
    """The file `name`.toml over everything its `base =` chain gives it; `name` is the file's stem.

    Every field is inherited: tables merge key by key (the file's keys win), lists and values
    are replaced, and a file's own [story] or [fix] replaces the base's whole.
    """
    path = directory / f"{name}.toml"
    if not path.is_file():
        known = known_scenarios(directory)
        raise UnknownScenario(f"unknown scenario {name!r}; known scenarios: {', '.join(known) or '(none found in ' + str(directory) + ')'}")
    raw = load_raw(path)
    if raw.get("name", name) != name:
        raise SpecError(f"{path}: name = {raw.get('name')!r} must match the file name {name!r}")
    base = raw.pop("base", None)
    if base is not None:
        if not isinstance(base, str):
            raise SpecError(f"{path}: base must be a scenario name, got {base!r}")
        if base == name or base in chain:
            raise SpecError(f"{path}: base = {base!r} makes a cycle: {' -> '.join((*chain, name, base))}")
        if not (directory / f"{base}.toml").is_file():
            raise SpecError(f"{path}: base = {base!r} is not a scenario; known scenarios: {', '.join(known_scenarios(directory))}")
        inherited = resolve_raw(base, directory, (*chain, name))
        for key in _REPLACED_WHOLE:
            if key in raw:
                inherited.pop(key, None)
        raw = deep_merge(inherited, raw)
    raw["name"] = name
    return raw


def load_scenario(name: str, *, fix: bool = False, overrides: list[str] = (), directory: Path | None = None):
    directory = directory or scenarios_dir()
    raw = resolve_raw(name, directory)
    path = directory / f"{name}.toml"
    return build_spec(raw, fix=fix, overrides=list(overrides), source=str(path.relative_to(directory.parent)) if directory.parent in path.parents else str(path))


def scenario_json_schema() -> dict:
    """The JSON Schema of a scenario *file* (any kind), for editors: `python -m lab schema`.

    Each kind's spec schema, as a file writes it: `base` and `[fix]` added, the fields the
    loader sets (variant, has_fix) removed, nothing required (a `base =` may provide it all).
    Published as docs/scenario.schema.json (tests/specs/test_loader.py keeps it current).
    """
    defs: dict = {}
    kinds = []
    for schema in SCHEMAS.values():
        js = schema.model_json_schema()
        defs.update(js.pop("$defs", {}))
        props = js["properties"]
        for key in _LOADER_SET:
            props.pop(key, None)
        props["name"]["description"] = "optional: the file name (without .toml) is the scenario's name"
        props["base"] = {"type": "string", "description": "start from this scenario (a file name without .toml): every "
                                                          "field is inherited; tables merge key by key, an own [story] or [fix] replaces the base's"}
        props["fix"] = {"type": "object", "description": "what --fix changes: the same tables as the file, deep-merged over it"}
        js["required"] = []
        kinds.append(js)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "ML observability lab scenario (scenarios/NAME.toml)",
            "description": "One scenario file of any kind (training by default; kind = \"inference\"). See docs/scenarios.md.",
            "anyOf": kinds, "$defs": dict(sorted(defs.items()))}
