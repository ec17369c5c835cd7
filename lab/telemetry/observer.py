"""The one protocol through which every scenario family's loop reports what happened.

A loop (training's Trainer, serving's Server) calls, in order:

    on_start(run)       once; `run` has spec, seed, fast, speed and planned_units
    on_unit(rec)        after every unit of work: a training step, a served request.
                        Every unit record has `clock`: its position on the paced clock in
                        units (step number, request index), so clock / units per second is
                        the second of a paced run at which it happens.
    on_report(rec)      after every periodic aggregate: an evaluation, a drift window
    on_event(ev)        a notable moment (checkpoint, learning-rate change, retrain ...):
                        every event has name, message and attributes
    on_end(result)      once, with the loop's result (also after an interrupt)

Observers are telemetry (each family's OTel observer), the terminal view, recorders
and practice mode; none of them writes a signal value of its own making. Practice mode
and the recorder rely on this protocol only, so they work for any family.
"""

from __future__ import annotations

from typing import Any, Protocol


class Run(Protocol):
    spec: Any
    seed: int
    fast: bool
    speed: float

    @property
    def planned_units(self) -> int: ...


class Observer(Protocol):
    def on_start(self, run: Run) -> None: ...
    def on_unit(self, rec: Any) -> None: ...
    def on_report(self, rec: Any) -> None: ...
    def on_event(self, ev: Any) -> None: ...
    def on_end(self, result: Any) -> None: ...


class BaseObserver:
    """No-op observer to subclass."""

    def on_start(self, run: Run) -> None: pass
    def on_unit(self, rec: Any) -> None: pass
    def on_report(self, rec: Any) -> None: pass
    def on_event(self, ev: Any) -> None: pass
    def on_end(self, result: Any) -> None: pass

