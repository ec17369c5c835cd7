"""What every scenario kind shares: the strict model base, the header and the story.

Unknown keys are rejected everywhere (``extra="forbid"``) so a typo never silently
does nothing; specs are frozen so a running loop cannot change its own settings.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SpecError(ValueError):
    """A scenario file or a --set override is invalid; the message names the field."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class ScenarioHeader(Strict):
    """The fields every kind has; each kind's spec adds its own tables after these."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str
    kind: str
    variant: Literal["fault", "fix"] = "fault"
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
