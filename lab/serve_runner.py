"""Run one inference scenario with telemetry and a terminal view: what `lab run` does for kind = "inference"."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field

import torch
from rich.console import Console

from lab.drift import PSI_MAJOR
from lab.runner import START_STACK_HINT, open_stream, report_export_errors
from lab.serve import BaseServeObserver, ServeEvent, ServeObserver, ServeResult, Server, WindowRecord
from lab.serve_signatures import SERVE_SIGNATURES, flags, onsets, peaks
from lab.signals import SUSTAINED_WINDOWS
from lab.telemetry import INFERENCE_SERVICE, RunIdentity, Telemetry


@dataclass
class ServeOutcome:
    result: ServeResult
    identity: RunIdentity
    streamed: bool
    export_errors: int = 0
    summary: dict = field(default_factory=dict)


def _f(v: float, spec: str = ".3f") -> str:
    return format(v, spec) if math.isfinite(v) else "  -  "


class ServeConsole(BaseServeObserver):
    """One line per drift window (and per retrain), readable paced or in a pipe."""

    def __init__(self, *, quiet: bool = False, stream=None):
        self.console = Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)
        self.quiet = quiet
        self.show_truth = True

    def say(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text)

    def on_start(self, server: Server) -> None:
        s = server.spec
        from lab.triage import MYSTERY

        self.show_truth = s.name != MYSTERY  # practice mode: the injected shift is the answer
        self.say(f"[bold]{s.name}[/] ({s.variant}) · seed {server.seed} · model {s.model.name} "
                 f"(baseline accuracy {server.baseline_accuracy:.3f}) · {server.windows} windows of {s.stream.window_size} "
                 f"requests · {'fast' if server.fast else f'{s.stream.requests_per_second * server.speed:g} requests/s'}")

    def on_window(self, w: WindowRecord) -> None:
        fl = flags(w)
        drifted = [f.feature for f in w.report.features if f.drifted]
        shift = max(w.true_shift.values(), default=0.0)
        mark = "[red]DRIFT[/]" if fl["input_drift"] else "     "
        acc_mark = "[red]LOW[/]" if fl["accuracy_degraded"] else "   "
        self.say(f"window {w.index:3d}  drifted {len(drifted)}/{len(w.report.features)} {mark} "
                 f"max PSI {w.report.max_psi:5.3f}{'!' if w.report.max_psi > PSI_MAJOR else ' '} "
                 f"JS {w.report.max_js:5.3f}  out PSI {w.output.psi:5.3f}  "
                 f"acc {_f(w.accuracy)} {acc_mark} (base {w.baseline_accuracy:.3f})  ECE {_f(w.ece)}  "
                 f"errors {w.errors}" + (f"  [dim]true shift {shift:.2f} SD[/]" if shift and self.show_truth else "")
                 + (f"  [dim]{', '.join(drifted)}[/]" if drifted else ""))

    def on_event(self, ev: ServeEvent) -> None:
        self.say(f"[yellow]{ev.message}[/]")


def summarise(result: ServeResult, identity: RunIdentity) -> dict:
    lat = sorted(result.latencies)
    return {
        "scenario": result.spec.name, "variant": result.spec.variant, "kind": "inference", "seed": result.seed,
        "run_id": identity.run_id, "windows": len(result.windows), "requests": result.requests,
        "errors": result.errors, "stopped": result.stopped, "wall_s": round(result.wall_s, 3),
        "baseline_accuracy": result.baseline_accuracy,
        "latency_p50_s": lat[len(lat) // 2] if lat else None, "latency_p99_s": lat[int(len(lat) * 0.99)] if lat else None,
        "onsets": onsets(result), "peaks": peaks(result),
        "retrains": [e.window for e in result.events if e.name == "retrain"],
        "expected_alerts": result.spec.alerts,
    }


def run_inference(spec, *, seed: int = 0, fast: bool = False, speed: float = 1.0, telemetry: str = "auto",
                  quiet: bool = False, extra_observers: list[ServeObserver] = (), telemetry_kwargs: dict | None = None,
                  console_stream=None, max_windows: int | None = None, print_summary: bool = True,
                  instance: str | None = None) -> ServeOutcome:
    """telemetry: auto (stream if a collector answers), on (always configure OTLP), off.

    instance overrides service.instance.id (default <host>:<scenario>:<variant>).
    """
    torch.set_num_threads(int(os.environ.get("LAB_TORCH_THREADS", "1")))
    identity = RunIdentity(scenario=spec.name, variant=spec.variant, seed=seed, service_name=INFERENCE_SERVICE,
                           instance=instance)
    view = ServeConsole(quiet=quiet, stream=console_stream)
    otlp, endpoint = open_stream(telemetry, view, identity)
    tel = None
    observers: list[ServeObserver] = [view, *extra_observers]
    if otlp or telemetry_kwargs:
        from lab.inference_export import InferenceTelemetryObserver, RequestSampler

        kwargs = {"sampler": RequestSampler(spec.stream.trace_sample_ratio), **(telemetry_kwargs or {})}
        tel = Telemetry(identity, otlp=otlp, **kwargs)
        observers.insert(0, InferenceTelemetryObserver(tel, flush_every_window=fast and otlp))
    view.say(f"Training {spec.model.name} on {spec.data.reference_size:,} reference samples, then serving it "
             f"(a few seconds) ...")
    try:
        result = Server(spec, seed, fast=fast, speed=speed, observers=observers, max_windows=max_windows).run()
    finally:
        if tel is not None:
            tel.shutdown()
    errors = report_export_errors(view, tel, otlp, endpoint)
    summary = summarise(result, identity)
    if not quiet and print_summary:  # practice mode hides it: it names what was detected
        _print_summary(view, summary, streamed=otlp)
    return ServeOutcome(result, identity, otlp, errors, summary)


_LABELS = {
    "input_drift": "input drift (KS, Bonferroni-adjusted p < 0.05 on a feature)",
    "psi_major": f"PSI above {PSI_MAJOR} on a feature",
    "js_drift": "Jensen-Shannon distance above its threshold on a feature",
    "output_drift": f"confidence distribution PSI above {PSI_MAJOR}",
    "accuracy_degraded": "accuracy more than 0.05 below baseline",
    "miscalibrated": "calibration error above its threshold",
}


def _print_summary(view: ServeConsole, s: dict, *, streamed: bool) -> None:
    view.say(f"\n[bold]Run {s['stopped']}[/]: {s['requests']} requests ({s['errors']} rejected) in {s['windows']} windows, "
             f"{s['wall_s']:.1f} s; latency p50 {1e6 * (s['latency_p50_s'] or 0):.0f} us, p99 {1e6 * (s['latency_p99_s'] or 0):.0f} us.")
    hit = [k for k in SERVE_SIGNATURES if s["onsets"][k] is not None]
    for k in hit:
        view.say(f"  {_LABELS[k]} for {SUSTAINED_WINDOWS} windows from window {s['onsets'][k]}")
    if not hit:
        view.say(f"  no monitor held a flag for {SUSTAINED_WINDOWS} windows: a quiet stream")
    p = s["peaks"]
    view.say(f"  peaks: max PSI {p['max_psi']:.3f}, max JS {p['max_js']:.3f}, output PSI {p['max_output_psi']:.3f}, "
             f"lowest accuracy {_f(p['min_accuracy'] if p['min_accuracy'] is not None else math.nan)} "
             f"(baseline {s['baseline_accuracy']:.3f}), highest ECE {_f(p['max_ece'] if p['max_ece'] is not None else math.nan)}")
    if s["retrains"]:
        view.say(f"  retrained after windows {', '.join(map(str, s['retrains']))}")
    if not streamed:
        view.say(f"  Signals were not streamed. {START_STACK_HINT}")
