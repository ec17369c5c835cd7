"""Inference scenario specification: a served model and a request stream (`kind = "inference"`).

The file shape matches training scenarios (the header of lab/specs/base.py, [fix],
`base = "other"`); lab/specs/loader.py picks this schema when kind = "inference".
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from lab.specs.base import ScenarioHeader, Strict
from lab.thresholds import KS_ALPHA, N_BINS

# The served model's input features: generated in code (scikit-learn make_classification,
# standardised with the reference's mean and standard deviation), named like a credit-risk
# model's inputs. The first five carry the label; the last three are noise the model should ignore.
FEATURES = ("income", "debt_ratio", "credit_utilisation", "late_payments", "account_age",
            "loan_amount", "open_accounts", "employment_years")
FeatureName = Literal[FEATURES]  # type: ignore[valid-type]


class ServeDataSpec(Strict):
    reference_size: int = Field(10000, ge=500, description="training samples; also the drift monitor's reference")
    holdout_size: int = Field(2000, ge=200, description="held-out reference data: baseline accuracy and the confidence reference")
    label_noise: float = Field(0.05, ge=0.0, le=0.5, description="share of labels assigned at random (make_classification flip_y)")
    class_sep: float = Field(1.0, gt=0)
    data_seed: int = Field(0, description="fixes the world (the data-generating process) across run seeds")


class ServeModelSpec(Strict):
    name: str = Field("credit-risk", pattern=r"^[a-z][a-z0-9-]*$", description="model name on spans and metrics")
    hidden: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [32, 32], min_length=1)
    epochs: int = Field(15, gt=0)
    batch_size: int = Field(128, gt=0)
    lr: float = Field(3e-3, gt=0)


class StreamSpec(Strict):
    windows: int = Field(40, gt=0, description="drift windows the run serves")
    window_size: int = Field(500, ge=50, description="requests per drift window (tumbling windows)")
    requests_per_second: float = Field(100.0, gt=0, description="paced runs; --fast ignores it")
    label_delay: int = Field(1000, ge=0, description="requests between a prediction and the arrival of its true label")
    accuracy_window: int = Field(500, ge=50, description="latest labels that accuracy and calibration error are computed on")
    invalid_rate: float = Field(0.002, ge=0.0, lt=1.0, description="share of requests arriving with a missing value (rejected: outcome=error)")
    trace_sample_ratio: float = Field(0.1, ge=0.0, le=1.0, description="share of requests traced (head sampling)")


class ServerSpec(Strict):
    """How the model server answers: one request at a time, or dynamic batching (requests wait in a
    queue until `batch_max_size` have arrived or the oldest has waited `batch_max_wait_s`, then one
    forward pass answers them all), from window `from_window` on (a release at that window)."""

    batch_max_size: int = Field(1, ge=1, le=1024, description="requests per forward pass at most (1: no batching)")
    batch_max_wait_s: float = Field(0.0, ge=0.0, le=2.0, description="the oldest queued request's longest wait before a batch goes")
    from_window: int = Field(0, ge=0, description="window at which this configuration is released (before it: one at a time)")
    impute_missing: bool = Field(False, description="answer a request with a missing input using that input's median in "
                                                    "the training data, instead of rejecting it")

    @property
    def batching(self) -> bool:
        return self.batch_max_size > 1 and self.batch_max_wait_s > 0


class MonitorSpec(Strict):
    n_bins: int = Field(N_BINS, ge=2, description="reference quantile bins for PSI, KL and JS")
    correction: Literal["bonferroni", "benjamini-hochberg", "none"] = "bonferroni"
    alpha: float = Field(KS_ALPHA, gt=0, lt=1)
    decision: Literal["ks", "ks+psi"] = "ks"


class CovariateShift(Strict):
    """Move `features` by `magnitude` reference standard deviations, ramping linearly from
    `start_window` to `end_window` (equal for a sudden shift); labels stay attached."""

    kind: Literal["covariate"]
    features: list[FeatureName] = Field(min_length=1)
    start_window: int = Field(ge=0)
    end_window: int | None = Field(None, ge=0, description="None: sudden (the full shift at start_window)")
    magnitude: float = Field(1.0, description="mean shift in reference standard deviations")
    scale: float = Field(1.0, gt=0, description="multiplies the spread (1 = unchanged)")

    @model_validator(mode="after")
    def _order(self):
        if self.end_window is not None and self.end_window < self.start_window:
            raise ValueError(f"end_window ({self.end_window}) must not be before start_window ({self.start_window})")
        return self


class ConceptShift(Strict):
    """Inputs unchanged; the right answer changes: labels flip where `feature` > `above`,
    for a share of those requests ramping from 0 at `start_window` to 1 at `end_window`."""

    kind: Literal["concept"]
    feature: FeatureName
    above: float = 0.0
    start_window: int = Field(ge=0)
    end_window: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _order(self):
        if self.end_window is not None and self.end_window < self.start_window:
            raise ValueError(f"end_window ({self.end_window}) must not be before start_window ({self.start_window})")
        return self


class MissingInput(Strict):
    """From `start_window` on, a `share` of the requests arrive without `feature` (a client that
    stopped sending it): input validation rejects them, unless the server imputes (server.impute_missing)."""

    kind: Literal["missing"]
    feature: FeatureName
    share: float = Field(gt=0, le=1)
    start_window: int = Field(ge=0)


Shift = Annotated[Union[CovariateShift, ConceptShift, MissingInput], Field(discriminator="kind")]


class RetrainSpec(Strict):
    """Retrain on the latest labelled requests when a monitor fires (the fix for drift)."""

    enabled: bool = False
    trigger: list[Literal["input_drift", "accuracy"]] = Field(default_factory=lambda: ["input_drift", "accuracy"])
    patience: int = Field(3, gt=0, description="consecutive flagged windows before the first retrain (one fewer after it)")
    size: int = Field(4000, ge=500, description="latest labelled requests to retrain on")


class InferenceSpec(ScenarioHeader):
    """kind = "inference": a trained model serving a request stream that drifts (or not)."""

    kind: Literal["inference"] = "inference"
    data: ServeDataSpec = ServeDataSpec()
    model: ServeModelSpec = ServeModelSpec()
    stream: StreamSpec = StreamSpec()
    server: ServerSpec = ServerSpec()
    monitor: MonitorSpec = MonitorSpec()
    shifts: list[Shift] = Field(default_factory=list)
    retrain: RetrainSpec = RetrainSpec()

    @property
    def units_per_second(self) -> float:
        return self.stream.requests_per_second

    @property
    def alarm_driven_fix(self) -> bool:
        # The drift fix retrains once an alarm has held for a few windows: its alerts may fire, then resolve.
        return self.variant == "fix" and self.retrain.enabled

    @model_validator(mode="after")
    def _shifts_inside_the_run(self):
        for i, s in enumerate(self.shifts):
            if s.start_window >= self.stream.windows:
                raise ValueError(f"shifts.{i}.start_window={s.start_window} is not inside the run's "
                                 f"{self.stream.windows} windows (stream.windows)")
        if self.server.from_window >= self.stream.windows:
            raise ValueError(f"server.from_window={self.server.from_window} is not inside the run's "
                             f"{self.stream.windows} windows (stream.windows)")
        return self
