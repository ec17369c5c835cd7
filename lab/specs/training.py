"""Training scenario specification (`kind = "training"`, the default).

A training scenario names the data, the model, the optimizer and its schedule, the
pace a person can follow, and faults injected at given steps. ``[fix]`` holds the
overrides that ``--fix`` deep-merges over the rest (lab/specs/loader.py).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from lab.specs.base import ScenarioHeader, Strict


class DataSpec(Strict):
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


class ModelSpec(Strict):
    kind: Literal["mlp"] = "mlp"
    hidden: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [256, 256], min_length=1)
    activation: Literal["relu", "leaky_relu", "tanh", "gelu"] = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # Normalisation between each Linear and its activation: keeps pre-activations centred,
    # so a large update cannot push a unit negative for every input (the dead-ReLU remedy).
    norm: Literal["none", "layernorm", "batchnorm"] = "none"
    init: Literal["default", "he_normal"] = "default"
    bias_init: float = 0.0


class OptimizerSpec(Strict):
    name: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)


class TrainSpec(Strict):
    epochs: int = Field(60, gt=0)
    batch_size: int = Field(32, gt=0)
    eval_every: int = Field(5, gt=0, description="steps between evaluations (validation loss and activation probes)")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    grad_clip: float | None = Field(None, gt=0, description="max global gradient norm; None = no clipping")
    early_stopping_patience: int | None = Field(None, gt=0, description="evaluations without improvement before stopping")
    lr_schedule: Literal["constant", "cosine", "step"] = "constant"
    lr_step_every: int = Field(100, gt=0, description="steps between decays for lr_schedule=step")
    lr_step_gamma: float = Field(0.5, gt=0, le=1.0)


class PaceSpec(Strict):
    # Paced runs let a person follow the failure on a dashboard; --fast ignores this.
    steps_per_second: float = Field(2.0, gt=0)


class LrBurst(Strict):
    """Multiply the learning rate by `factor` for `steps` steps starting at `at_step`."""

    kind: Literal["lr_burst"]
    at_step: int = Field(gt=0)
    steps: int = Field(1, gt=0)
    factor: float = Field(gt=0)


class CorruptBatch(Strict):
    """Scale the inputs of the batches at `at_step` (for `steps` steps) by `scale`."""

    kind: Literal["corrupt_batch"]
    at_step: int = Field(gt=0)
    steps: int = Field(1, gt=0)
    scale: float = 20.0


Fault = Annotated[Union[LrBurst, CorruptBatch], Field(discriminator="kind")]


class TrainingSpec(ScenarioHeader):
    """kind = "training": a model trained for real into (or away from) a failure."""

    kind: Literal["training"] = "training"
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    optimizer: OptimizerSpec = OptimizerSpec()
    train: TrainSpec = TrainSpec()
    pace: PaceSpec = PaceSpec()
    faults: list[Fault] = Field(default_factory=list)

    @property
    def units_per_second(self) -> float:
        return self.pace.steps_per_second
