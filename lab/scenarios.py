"""Find and load the declarative scenario files in scenarios/."""

from __future__ import annotations

import os
from pathlib import Path

from lab.config import ScenarioSpec, SpecError, build_spec, deep_merge, load_raw


class UnknownScenario(SpecError):
    pass


def scenarios_dir() -> Path:
    # LAB_SCENARIOS_DIR lets tests and users point at another folder.
    env = os.environ.get("LAB_SCENARIOS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "scenarios"


def known_scenarios(directory: Path | None = None) -> list[str]:
    directory = directory or scenarios_dir()
    return sorted(p.stem for p in directory.glob("*.toml"))


def load_scenario(name: str, *, fix: bool = False, overrides: list[str] = (), directory: Path | None = None) -> ScenarioSpec:
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
