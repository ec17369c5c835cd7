"""The generative family as the run session sees it: summary, closing lines, first signals.

`lab run NAME` for a generative scenario is lab.telemetry.session.run_session with FAMILY.
"""

from __future__ import annotations

import statistics

from lab.generative.console import BotConsole, duration, fmt
from lab.generative.export import GenerativeTelemetryObserver, telemetry_options
from lab.generative.loop import BotResult, BotServer
from lab.generative.signatures import LABELS, onsets
from lab.telemetry.otel import GENERATIVE_SERVICE, RunIdentity, Telemetry
from lab.telemetry.session import Family, Outcome, run_session
from lab.thresholds import SUSTAINED_WINDOWS


def summarise(result: BotResult, identity: RunIdentity) -> dict:
    ws = result.windows
    requests = max(result.requests, 1)
    at = onsets(result)
    per_second = result.spec.stream.requests_per_second
    return {
        "scenario": result.spec.name, "variant": result.spec.variant, "kind": "generative", "seed": result.seed,
        "run_id": identity.run_id, "windows": len(ws), "requests": result.requests, "stopped": result.stopped,
        "wall_s": round(result.wall_s, 3), "train_s": round(result.train_s, 3), "parameters": result.parameters,
        "reference_accuracy": result.reference_accuracy,
        "input_tokens": sum(w.input_tokens for w in ws), "output_tokens": sum(w.output_tokens for w in ws),
        "cost_usd": round(sum(w.cost_usd for w in ws), 6),
        "cost_per_1k_requests_usd": round(1000 * sum(w.cost_usd for w in ws) / requests, 4),
        "ttft_p95_s_median": statistics.median(w.ttft_p95_s for w in ws) if ws else None,
        "lowest_accuracy": min((w.accuracy for w in ws if w.accuracy == w.accuracy), default=None),
        "onsets": at,
        "signatures": [{"name": k, "at": v, "unit": "window", "elapsed_s": ws[v].elapsed_s + _before(ws, v),
                        "paced_s": (v + 1) * result.spec.stream.window_size / per_second}
                       for k, v in at.items() if v is not None],
        "expected_alerts": result.spec.alerts,
    }


def _before(ws, index: int) -> float:
    return sum(w.elapsed_s for w in ws[:index])


def print_summary(view: BotConsole, s: dict) -> None:
    view.say(f"\n[bold]Run {s['stopped']}[/]: {s['requests']} questions in {s['windows']} windows, {s['wall_s']:.1f} s "
             f"(training {s['train_s']:.1f} s); {s['input_tokens']:,} input and {s['output_tokens']:,} output tokens, "
             f"${s['cost_usd']:.2f} (${s['cost_per_1k_requests_usd']:.2f} per 1,000 questions); "
             f"TTFT p95 {duration(s['ttft_p95_s_median'] or float('nan'))} (median window).")
    for sig in s["signatures"]:
        view.say(f"  {LABELS[sig['name']]} for {SUSTAINED_WINDOWS} windows from window {sig['at']} "
                 f"({sig['elapsed_s']:.1f} s; {sig['paced_s']:.0f} s when paced): {sig['name']}")
    if not s["signatures"]:
        view.say(f"  no signal held a flag for {SUSTAINED_WINDOWS} windows: a healthy bot")
    low = s["lowest_accuracy"]
    view.say(f"  lowest accuracy on labelled answers {fmt(low if low is not None else float('nan'))} "
             f"(reference {s['reference_accuracy']:.3f})")


def first_signals(result: BotResult) -> dict[str, dict]:
    """Each failure signature the run reached, with when: {signature: {at, unit, elapsed_s}}."""
    ws = result.windows
    return {k: {"at": v, "unit": "window", "elapsed_s": _before(ws, v) + ws[v].elapsed_s}
            for k, v in onsets(result).items() if v is not None}


def _otel_observer(tel: Telemetry, spec, *, fast: bool, otlp: bool) -> GenerativeTelemetryObserver:
    return GenerativeTelemetryObserver(tel, flush_every_window=fast and otlp)


FAMILY = Family(kind="generative", service_name=GENERATIVE_SERVICE, loop=BotServer, console=BotConsole,
                otel_observer=_otel_observer, summarise=summarise, print_summary=print_summary,
                first_signals=first_signals, telemetry_options=telemetry_options)


def run_generative(spec, *, max_windows: int | None = None, **kwargs) -> Outcome:
    """A generative scenario through the run session (keyword arguments: run_session's)."""
    return run_session(spec, FAMILY, loop_kwargs={"max_windows": max_windows}, **kwargs)
