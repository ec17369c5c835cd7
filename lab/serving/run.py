"""The serving family as the run session sees it: summary, closing lines, first signals.

`lab run NAME` for an inference scenario is lab.telemetry.session.run_session with FAMILY.
"""

from __future__ import annotations

import math

from lab.serving.console import ServeConsole, fmt
from lab.serving.export import InferenceTelemetryObserver, RequestSampler
from lab.serving.loop import Server, ServeResult
from lab.serving.signatures import LABELS, onsets, peaks, reached
from lab.telemetry.otel import INFERENCE_SERVICE, RunIdentity, Telemetry
from lab.telemetry.session import Family, Outcome, run_session
from lab.thresholds import SUSTAINED_WINDOWS


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
        "signatures": reached(result),
    }


def duration(seconds: float | None) -> str:
    """A latency in the unit that reads best: the model alone answers in microseconds, a wait in milliseconds."""
    v = seconds or 0.0
    return f"{1e6 * v:.0f} us" if v < 1e-3 else f"{1e3 * v:.1f} ms"


def print_summary(view: ServeConsole, s: dict) -> None:
    view.say(f"\n[bold]Run {s['stopped']}[/]: {s['requests']} requests ({s['errors']} rejected) in {s['windows']} windows, "
             f"{s['wall_s']:.1f} s; latency p50 {duration(s['latency_p50_s'])}, p99 {duration(s['latency_p99_s'])}.")
    for sig in s["signatures"]:
        peak = sig["peak"]
        when = f"{sig['elapsed_s']:.1f} s" if sig["elapsed_s"] is not None else "end of run"
        view.say(f"  {LABELS[sig['name']]} for {SUSTAINED_WINDOWS} windows from window {sig['at']} "
                 f"({when}; {sig['paced_s']:.0f} s when paced): {sig['name']}, peak {peak['signal']} {_num(peak['value'])}"
                 + (f" (threshold {peak['threshold']:g})" if peak["threshold"] is not None else ""))
    if not s["signatures"]:
        view.say(f"  no monitor held a flag for {SUSTAINED_WINDOWS} windows: a quiet stream")
    p = s["peaks"]
    # a run stopped before its first window has no peaks yet (None): dashes, not a crash
    view.say(f"  peaks: max PSI {_num(p['max_psi'])}, max JS {_num(p['max_js'])}, output PSI {_num(p['max_output_psi'])}, "
             f"lowest accuracy {fmt(p['min_accuracy'] if p['min_accuracy'] is not None else math.nan)} "
             f"(baseline {s['baseline_accuracy']:.3f}), highest ECE {fmt(p['max_ece'] if p['max_ece'] is not None else math.nan)}")
    if s["retrains"]:
        view.say(f"  retrained after windows {', '.join(map(str, s['retrains']))}")


def _num(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def first_signals(result: ServeResult) -> dict[str, dict]:
    """Each failure signature the run reached, with when: {signature: {at, unit, elapsed_s}}."""
    return {s["name"]: {"at": s["at"], "unit": s["unit"], "elapsed_s": s["elapsed_s"]} for s in reached(result)}


def _otel_observer(tel: Telemetry, spec, *, fast: bool, otlp: bool) -> InferenceTelemetryObserver:
    return InferenceTelemetryObserver(tel, flush_every_window=fast and otlp)


FAMILY = Family(kind="inference", service_name=INFERENCE_SERVICE, loop=Server, console=ServeConsole,
                otel_observer=_otel_observer, summarise=summarise, print_summary=print_summary,
                first_signals=first_signals,
                telemetry_options=lambda spec: {"sampler": RequestSampler(spec.stream.trace_sample_ratio)})


def run_serving(spec, *, max_windows: int | None = None, **kwargs) -> Outcome:
    """An inference scenario through the run session (keyword arguments: run_session's)."""
    return run_session(spec, FAMILY, loop_kwargs={"max_windows": max_windows}, **kwargs)
