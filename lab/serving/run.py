"""The serving family as the run session sees it: summary, closing lines, first signals.

`lab run NAME` for an inference scenario is lab.telemetry.session.run_session with SERVING.
"""

from __future__ import annotations

import math

from lab.serving.console import ServeConsole, fmt
from lab.serving.export import InferenceTelemetryObserver, RequestSampler
from lab.serving.loop import Server, ServeResult
from lab.serving.signatures import LABELS, SERVE_SIGNATURES, onsets, peaks
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
    }


def print_summary(view: ServeConsole, s: dict) -> None:
    view.say(f"\n[bold]Run {s['stopped']}[/]: {s['requests']} requests ({s['errors']} rejected) in {s['windows']} windows, "
             f"{s['wall_s']:.1f} s; latency p50 {1e6 * (s['latency_p50_s'] or 0):.0f} us, p99 {1e6 * (s['latency_p99_s'] or 0):.0f} us.")
    hit = [k for k in SERVE_SIGNATURES if s["onsets"][k] is not None]
    for k in hit:
        view.say(f"  {LABELS[k]} for {SUSTAINED_WINDOWS} windows from window {s['onsets'][k]}")
    if not hit:
        view.say(f"  no monitor held a flag for {SUSTAINED_WINDOWS} windows: a quiet stream")
    p = s["peaks"]
    view.say(f"  peaks: max PSI {p['max_psi']:.3f}, max JS {p['max_js']:.3f}, output PSI {p['max_output_psi']:.3f}, "
             f"lowest accuracy {fmt(p['min_accuracy'] if p['min_accuracy'] is not None else math.nan)} "
             f"(baseline {s['baseline_accuracy']:.3f}), highest ECE {fmt(p['max_ece'] if p['max_ece'] is not None else math.nan)}")
    if s["retrains"]:
        view.say(f"  retrained after windows {', '.join(map(str, s['retrains']))}")


def first_signals(result: ServeResult) -> dict[str, dict]:
    """Each failure signature the run reached, with when: {signature: {at, unit, elapsed_s}}."""
    out: dict[str, dict] = {}
    for sig, w in onsets(result).items():
        if w is not None:
            rec = next((r for r in result.windows if r.index == w), None)
            out[sig] = {"at": w, "unit": "window", "elapsed_s": None if rec is None else rec.elapsed_s}
    return out


def _otel_observer(tel: Telemetry, spec, *, fast: bool, otlp: bool) -> InferenceTelemetryObserver:
    return InferenceTelemetryObserver(tel, flush_every_window=fast and otlp)


def _announce(spec) -> str:
    return f"Training {spec.model.name} on {spec.data.reference_size:,} reference samples, then serving it (a few seconds) ..."


SERVING = Family(kind="inference", service_name=INFERENCE_SERVICE, loop=Server, console=ServeConsole,
                 otel_observer=_otel_observer, summarise=summarise, print_summary=print_summary,
                 first_signals=first_signals,
                 telemetry_options=lambda spec: {"sampler": RequestSampler(spec.stream.trace_sample_ratio)},
                 announce=_announce)


def run_serving(spec, *, max_windows: int | None = None, **kwargs) -> Outcome:
    """An inference scenario through the run session (keyword arguments: run_session's)."""
    return run_session(spec, SERVING, loop_kwargs={"max_windows": max_windows}, **kwargs)
