"""Pictures of each failure's shape on its dashboard panel, from real runs (docs/dashboards.md).

    python -m lab.dev.pictures --prometheus http://127.0.0.1:9090 --out docs/img/dashboards

Runs each scenario below (paced, --speed 4, all at once; `diverged` slower and the support bot at
its own pace, SPEEDS) against the stack whose collector the OTEL_* environment points at, then
queries the panel exactly as the dashboard does (lab/dev/panel_contract.py) and draws it small with
matplotlib, thresholds dashed, on the panel's own scale (log where the panel is log). `--only NAME ...`
redraws some pictures and runs only their scenarios.
`make dashboard-pictures` starts a private native stack, runs this and stops the stack
(`make dashboard-pictures ARGS="--only overfit-ratio"`).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lab.dashboards import all_dashboards
from lab.dashboards.model import Panel
from lab.dev.panel_contract import Selection, query_panel
from lab.repo import ROOT


@dataclass(frozen=True)
class Picture:
    name: str  # file name without .png
    dashboard: str  # uid
    panel: str  # title
    scenario: str
    variant: str = "fault"


PICTURES = (
    Picture("healthy-loss", "ml-lab-training-health", "Training and validation loss", "healthy"),
    Picture("overfit-loss", "ml-lab-training-health", "Training and validation loss", "overfit"),
    Picture("overfit-ratio", "ml-lab-training-health", "Validation / training loss ratio", "overfit"),
    Picture("overfit-evals-since-best", "ml-lab-training-health", "Evaluations since best validation loss", "overfit"),
    Picture("stalled-loss", "ml-lab-training-health", "Training and validation loss", "stalled"),
    Picture("diverged-loss", "ml-lab-training-health", "Training and validation loss", "diverged"),
    Picture("diverged-nonfinite", "ml-lab-training-health", "Non-finite steps", "diverged"),
    Picture("loss-spike-batch-loss", "ml-lab-training-health", "Minibatch loss spike (peak / rolling mean)", "loss-spike"),
    Picture("loss-spike-learning-rate", "ml-lab-training-health", "Learning rate", "loss-spike"),
    Picture("dead-relu-dead-ratio", "ml-lab-training-health", "Dead-neuron ratio per layer", "dead-relu"),
    Picture("dead-relu-activation-mean", "ml-lab-training-health", "Activation mean per layer", "dead-relu"),
    # serving: the healthy stream first, for comparison
    Picture("serving-healthy-psi", "ml-lab-production-drift", "PSI per feature (heatmap)", "serving-healthy"),
    Picture("serving-healthy-accuracy", "ml-lab-production-drift", "Accuracy on labelled requests against baseline",
            "serving-healthy"),
    Picture("drift-psi", "ml-lab-production-drift", "PSI per feature (heatmap)", "drift"),
    Picture("drift-drifted-share", "ml-lab-production-drift", "Share of drifted features", "drift"),
    Picture("drift-accuracy", "ml-lab-production-drift", "Accuracy on labelled requests against baseline", "drift"),
    Picture("drift-calibration", "ml-lab-production-drift", "Calibration: expected calibration error", "drift"),
    Picture("drift-latency", "ml-lab-inference-ops", "Request latency percentiles", "drift"),
    Picture("concept-drift-psi", "ml-lab-production-drift", "PSI per feature (heatmap)", "concept-drift"),
    Picture("concept-drift-accuracy", "ml-lab-production-drift", "Accuracy on labelled requests against baseline",
            "concept-drift"),
    # the support bot: the healthy bot first, for comparison
    Picture("bot-healthy-accuracy", "ml-lab-bot-quality", "Accuracy on labelled answers (quality SLI)", "bot-healthy"),
    Picture("bot-new-topic-accuracy", "ml-lab-bot-quality", "Accuracy on labelled answers (quality SLI)", "bot-new-topic"),
    Picture("bot-new-topic-hallucination", "ml-lab-bot-quality", "Hallucination rate", "bot-new-topic"),
    Picture("bot-new-topic-oov", "ml-lab-bot-drift", "Out-of-vocabulary rate", "bot-new-topic"),
    Picture("bot-new-topic-tokens", "ml-lab-bot-operational", "Tokens per request (input / output)", "bot-new-topic"),
    Picture("bot-runaway-tokens", "ml-lab-bot-operational", "Tokens per request (input / output)", "bot-runaway"),
    Picture("bot-runaway-length-share", "ml-lab-bot-operational", "Error rate: answers cut at max_tokens", "bot-runaway"),
    Picture("bot-runaway-cost", "ml-lab-bot-operational", "Cost per 1,000 requests", "bot-runaway"),
    Picture("bot-prompt-bloat-tokens", "ml-lab-bot-operational", "Tokens per request (input / output)", "bot-prompt-bloat"),
    Picture("bot-prompt-bloat-ttft", "ml-lab-bot-operational", "Time to first token p50 / p95", "bot-prompt-bloat"),
    Picture("bot-prompt-bloat-psi", "ml-lab-bot-drift", "Prompt length PSI", "bot-prompt-bloat"),
)


# Scenarios paced slower than the rest. `diverged` reaches NaN after ~50 steps, about 4 s at its
# own pace (12 steps/s): at x4 that is one export, so the loss would show no history before
# NaN. Its loss climbs from ~30 to ~1e29 over its last ten finite steps: at x0.05 (0.6 steps/s,
# 3 steps per export) that climb spans four exports of the minibatch peak (the run: ~2 min).
# The support bot at its own pace (one 200-question window per 5 s export, 150 s): its rate()
# panels (tokens per request, time to first token, the finish-reason share) average over a
# $__rate_interval of 20 s, which at x4 would be 16 of its 30 windows and smear the change.
SPEEDS = {"diverged": 1 / 20, "bot-healthy": 1, "bot-new-topic": 1, "bot-runaway": 1,
          "bot-prompt-bloat": 1}  # paces, not thresholds


def speed_of(scenario: str, speed: float) -> float:
    return SPEEDS.get(scenario, speed)


def run_scenarios(names: list[str], speed: float) -> tuple[float, float]:
    """Run the scenarios concurrently (paced runs mostly sleep); the window they covered."""
    start = time.time()
    procs = [subprocess.Popen([sys.executable, "-m", "lab", "run", n, "--seed", "1", "--speed", str(speed_of(n, speed)),
                               "--quiet"], cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL) for n in names]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"scenario runs failed: {dict(zip(names, codes))}")
    time.sleep(12)  # the last export and two scrapes
    return start - 5, time.time()


def override_style(panel: Panel, legend: str) -> dict:
    """The line style the panel's byRegexp overrides give a series (dashed alert lines, baselines)."""
    style: dict = {}
    for o in panel.overrides:
        m = o.get("matcher", {})
        if m.get("id") != "byRegexp" or not re.fullmatch(m["options"], legend):
            continue
        for prop in o["properties"]:
            if prop["id"] == "custom.lineStyle" and prop["value"].get("fill") == "dash":
                style["ls"] = "--"
            elif prop["id"] == "custom.lineStyle" and prop["value"].get("fill") == "dot":
                style["ls"] = ":"
            elif prop["id"] == "color" and prop["value"].get("mode") == "fixed":
                style["color"] = prop["value"]["fixedColor"]
    return style


# Seconds of a run's end state drawn after the last change (the longest run sets the window,
# which would otherwise leave a long flat tail on every shorter run's picture).
TAIL_S = 10


def last_change(pts: list[tuple[float, float]]) -> float:
    """When a series last took a new value (NaN-aware); its first point if it never changed."""
    t = pts[0][0]
    for (_, prev), (ts, v) in zip(pts, pts[1:]):
        if not (v == prev or (math.isnan(v) and math.isnan(prev))):
            t = ts
    return t


def query(pic: Picture, prometheus: str, start: float, end: float) -> tuple[Panel, list[list[dict]]]:
    dash = next(d for d in all_dashboards() if d.uid == pic.dashboard)
    panel = next(p for p in dash.panels if p.title == pic.panel)
    return panel, query_panel(prometheus, panel, Selection(scenario=pic.scenario, variant=pic.variant), start, end)


def first_sample(pic: Picture, prometheus: str, start: float, end: float) -> float:
    """The earliest sample a picture draws (inf if none): a run's pictures share the earliest as
    their zero, so that their time axes agree (a series can appear an export or more later)."""
    _, results = query(pic, prometheus, start, end)
    return min((float(s["values"][0][0]) for r in results for s in r if s["values"]), default=math.inf)


def draw(pic: Picture, prometheus: str, start: float, end: float, out: Path, speed: float = 4.0,
         t0: float | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panel, results = query(pic, prometheus, start, end)
    fig, ax = plt.subplots(figsize=(4.8, 2.4), dpi=100)
    first = None
    t_last = -math.inf  # the last moment any series changed: after it, Prometheus repeats last values
    for target, series_list in zip(panel.targets, results):
        for s in series_list:
            pts = [(float(t), float(v)) for t, v in s["values"]]
            if not pts:
                continue
            first = pts[0][0] if first is None else min(first, pts[0][0])
            t_last = max(t_last, last_change(pts))
            label = target.legend
            for k, v in s["metric"].items():
                label = label.replace("{{" + k + "}}", v)
            style = override_style(panel, label)
            label = label.replace(f"{pic.scenario}/{pic.variant} ", "").replace(f"{pic.scenario}/{pic.variant}", pic.scenario)
            ax.plot([t for t, _ in pts], [v if math.isfinite(v) else float("nan") for _, v in pts], label=label, lw=1.6,
                    **style)
    if first is None:
        raise SystemExit(f"{pic.name}: no data for {pic.panel} / {pic.scenario}")
    t0 = first if t0 is None else t0
    for line in ax.get_lines():
        line.set_xdata([x - t0 for x in line.get_xdata()])
    for th in panel.thresholds:
        ax.axhline(th.value, color="red" if th.color == "red" else "darkorange", ls="--", lw=1)
    if panel.unit == "s":
        ax.set_ylabel("seconds", fontsize=7)
    if panel.log_scale:
        ax.set_yscale("log")
    if panel.unit == "percentunit":
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.relim()
    ax.autoscale_view()
    ax.set_xlim(right=min(ax.get_xlim()[1], t_last - t0 + TAIL_S))
    if panel.log_scale:
        low, high = ax.get_ylim()
        if high / low < 100:  # within two decades matplotlib labels minor ticks as 6x10^-1: plain numbers read better
            plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
    ax.set_title(f"{pic.panel} - {pic.scenario}", fontsize=8)
    ax.set_xlabel(f"seconds since the run started (paced x{speed_of(pic.scenario, speed):g})", fontsize=7)
    ax.tick_params(which="both", labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="best", ncol=2 if len(ax.get_lines()) > 4 else 1)  # per-feature panels: 8 lines
    fig.tight_layout()
    path = out / f"{pic.name}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.dev.pictures", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prometheus", required=True, help="Prometheus URL of the stack the runs export to")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "dashboards")
    ap.add_argument("--speed", type=float, default=4.0, help="pace multiplier of the runs (default 4)")
    ap.add_argument("--redraw-last", type=float, metavar="SECONDS",
                    help="do not run: redraw from the runs of the last SECONDS (after a run that failed to draw)")
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=[p.name for p in PICTURES],
                    help="draw only these pictures (file names without .png), running only their scenarios")
    args = ap.parse_args(argv)
    pictures = [p for p in PICTURES if not args.only or p.name in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.redraw_last:
        start, end = time.time() - args.redraw_last, time.time()
    else:
        start, end = run_scenarios(sorted({p.scenario for p in pictures}), args.speed)
    zero: dict[str, float] = {}
    for pic in pictures:
        zero[pic.scenario] = min(zero.get(pic.scenario, math.inf), first_sample(pic, args.prometheus, start, end))
    for pic in pictures:
        path = draw(pic, args.prometheus, start, end, args.out, args.speed, t0=zero[pic.scenario])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
