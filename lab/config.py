"""Scenario specification: the schema of a file in scenarios/ and how it is loaded.

A scenario is one TOML file. Its tables map to the models below; unknown keys
are rejected so a typo never silently does nothing. ``[fix]`` holds overrides
that ``--fix`` deep-merges over the rest before validation.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SpecError(ValueError):
    """A scenario file or a --set override is invalid; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Strict):
    # Real data only: bundled with scikit-learn or generated in code.
    dataset: Literal["digits", "synthetic"] = "digits"
    train_size: int | None = Field(None, gt=0, description="training samples; None = all that remain")
    val_size: int = Field(500, gt=0)
    split_seed: int = Field(0, description="fixes the validation set (also the activation probe batch) across run seeds")
    # synthetic only
    n_features: int = Field(20, gt=1)
    n_classes: int = Field(3, gt=1)
    n_samples: int = Field(6000, gt=10)
    label_noise: float = Field(0.0, ge=0.0, le=1.0)


class ModelSpec(_Strict):
    kind: Literal["mlp"] = "mlp"
    hidden: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [256, 256], min_length=1)
    activation: Literal["relu", "leaky_relu", "tanh", "gelu"] = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # Normalisation between each Linear and its activation: keeps pre-activations centred,
    # so a large update cannot push a unit negative for every input (the dead-ReLU remedy).
    norm: Literal["none", "layernorm", "batchnorm"] = "none"
    init: Literal["default", "he_normal"] = "default"
    bias_init: float = 0.0


class OptimizerSpec(_Strict):
    name: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)


class TrainSpec(_Strict):
    epochs: int = Field(60, gt=0)
    batch_size: int = Field(32, gt=0)
    eval_every: int = Field(5, gt=0, description="steps between evaluations (validation loss and activation probes)")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    grad_clip: float | None = Field(None, gt=0, description="max global gradient norm; None = no clipping")
    early_stopping_patience: int | None = Field(None, gt=0, description="evaluations without improvement before stopping")
    lr_schedule: Literal["constant", "cosine", "step"] = "constant"
    lr_step_every: int = Field(100, gt=0, description="steps between decays for lr_schedule=step")
    lr_step_gamma: float = Field(0.5, gt=0, le=1.0)


class PaceSpec(_Strict):
    # Paced runs let a person follow the failure on a dashboard; --fast ignores this.
    steps_per_second: float = Field(2.0, gt=0)


class LrBurst(_Strict):
    """Multiply the learning rate by `factor` for `steps` steps starting at `at_step`."""

    kind: Literal["lr_burst"]
    at_step: int = Field(gt=0)
    steps: int = Field(1, gt=0)
    factor: float = Field(gt=0)


class CorruptBatch(_Strict):
    """Scale the inputs of the batches at `at_step` (for `steps` steps) by `scale`."""

    kind: Literal["corrupt_batch"]
    at_step: int = Field(gt=0)
    steps: int = Field(1, gt=0)
    scale: float = 20.0


Fault = Annotated[Union[LrBurst, CorruptBatch], Field(discriminator="kind")]


class Story(_Strict):
    what_you_will_see: str
    root_cause: str
    what_the_signals_show: str = ""
    what_to_do: str
    fix: str = Field("", description="what --fix changes, in words")
    # Practice mode's answer key (lab/triage.py): the failure class a trainee must name,
    # shared by scenarios that teach the same failure ("healthy" for no failure), and
    # progressive hints, from where to look to what the signal means.
    diagnosis: str = Field("", pattern=r"^([a-z][a-z0-9-]*)?$")
    hints: list[str] = Field(default_factory=list)


class ScenarioSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str
    kind: Literal["training"] = "training"  # "inference": lab/inference_config.py
    variant: Literal["fault", "fix"] = "fault"
    alerts: list[str] = Field(default_factory=list, description="alerts this scenario should fire (none for fix variants)")
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    optimizer: OptimizerSpec = OptimizerSpec()
    train: TrainSpec = TrainSpec()
    pace: PaceSpec = PaceSpec()
    faults: list[Fault] = Field(default_factory=list)
    story: Story
    has_fix: bool = False


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
        field = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and p in {"lr_burst", "corrupt_batch", "covariate", "concept"})) or "(top level)"
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


def build_spec(raw: dict, *, fix: bool = False, overrides: list[str] = (), source: str = "scenario"):
    """Validate a raw scenario dict, applying the fix overrides and then --set overrides.

    Returns a ScenarioSpec, or an InferenceSpec (lab/inference_config.py) for kind = "inference".
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
    try:
        if raw.get("kind") == "inference":
            from lab.inference_config import InferenceSpec

            return InferenceSpec.model_validate(raw)
        return ScenarioSpec.model_validate(raw)
    except ValidationError as err:
        raise SpecError(_format_error(err, source)) from None
