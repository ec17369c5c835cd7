"""What every scenario kind shares: the strict model base, the header and the story.

Unknown keys are rejected everywhere (``extra="forbid"``) so a typo never silently
does nothing; numbers must be finite; specs are frozen so a running loop cannot change its own settings.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SpecError(ValueError):
    """A scenario file or a --set override is invalid; the message names the field."""


class Strict(BaseModel):
    # allow_inf_nan=False: every number of a scenario is finite (`--set optimizer.lr=inf` is an error, not a run).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Story(Strict):
    what_you_will_see: str
    root_cause: str
    what_the_signals_show: str = ""
    what_to_do: str
    fix: str = Field("", description="what --fix changes, in words")
    # Practice mode's answer key (lab/practice/triage.py): the failure class a trainee must
    # name, shared by scenarios that teach the same failure ("healthy" for no failure), and
    # progressive hints, from where to look to what the signal means.
    diagnosis: str = Field("", pattern=r"^([a-z][a-z0-9-]*)?$")
    hints: list[str] = Field(default_factory=list)


# The variant of a practice-mode hidden run (lab/practice: `lab triage`). Its telemetry must not
# carry what fingerprints the scenario (the run's planned length, its recipe, its seed), so the
# loops and observers leave those out of messages, spans and the resource when `hidden(spec)`.
HIDDEN_VARIANT = "case"


def hidden(spec) -> bool:
    return spec.variant == HIDDEN_VARIANT


class ScenarioHeader(Strict):
    """The fields every kind has; each kind's spec adds its own tables after these."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str
    kind: str
    # fault: the scenario as written; fix: with its [fix] (--fix); custom: with --set overrides,
    # so a tweaked run never mixes into the canonical scenario's series (lab_variant).
    variant: Literal["fault", "fix", "custom"] = "fault"
    alerts: list[str] = Field(default_factory=list, description="alerts this scenario should fire (none for fix variants)")
    story: Story
    has_fix: bool = False

    @property
    def units_per_second(self) -> float:
        """Paced speed in the loop's units (steps, requests) at speed 1."""
        raise NotImplementedError

    @property
    def alarm_driven_fix(self) -> bool:
        """A fix that acts on the alarm itself, so its alerts may fire and must then resolve."""
        return False
