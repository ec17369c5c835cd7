"""Interpretation drills drawn from real runs: docs/exercises/README.md and its pictures.

    python -m lab.practice.exercises --out docs/exercises      (make exercises; ~1 min, no stack)

Each drill shows the same signal from a few real `--fast` runs under neutral letters and
asks what each is and what to do. The answers are built from the scenario files' stories
(the same answer key practice mode uses), in collapsed blocks under each drill.
"""

from __future__ import annotations

import argparse
import math
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from lab.generative.loop import BotServer
from lab.serving.run import run_serving
from lab.specs.loader import load_scenario
from lab.thresholds import (
    COST_PER_1K_REQUESTS_USD,
    DEAD_RATIO_THRESHOLD,
    GRAD_SPIKE_CRITICAL,
    GRAD_SPIKE_WARNING,
    OVERFIT_RATIO_THRESHOLD,
    PSI_MAJOR,
)
from lab.training.loop import Trainer


@dataclass(frozen=True)
class Drill:
    slug: str
    title: str
    question: str
    scenarios: tuple[str, ...]
    signal: str  # what draw() plots


DRILLS = (
    Drill("curves", "Three training runs: training and validation loss",
          "Each panel is one real run's training loss (solid) and validation loss (dashed). Which one is healthy, "
          "which is overfitting, which is unstable? For each: what would you do next?",
          ("healthy", "overfit", "loss-spike"), "loss"),
    Drill("gradients", "Gradient norm against its rolling baseline",
          "Each panel shows the global gradient norm divided by the mean of the previous 50 steps (peak per 10 "
          "steps, log scale; dashed lines at 5x and 10x). Which is noise, which a one-off spike, which a run away?",
          ("healthy", "loss-spike", "diverged"), "grad"),
    Drill("dead", "Dead units in the second hidden layer",
          "Each panel shows the share of layer2's units that never fire on the probe batch (dashed line at 20%). "
          "Two runs lost units: how did each lose them, and which one also shows it in its loss?",
          ("healthy", "dead-relu", "loss-spike"), "dead"),
    Drill("drift", "A served model: input drift against accuracy",
          f"Each panel shows, per window, the largest PSI over the input features (solid, dashed line at {PSI_MAJOR}) and "
          "the accuracy on labelled samples (dotted, right axis). What happened in each stream, and why does one "
          "of them fool the input monitor?",
          ("serving-healthy", "drift", "concept-drift"), "drift"),
    Drill("bot-tokens", "A support bot: tokens per request and cost",
          "Each panel shows, per window of 200 questions, the mean input and output tokens per request (solid and "
          f"dashed, log scale) and the cost per 1,000 questions (dotted, right axis; dashed line at "
          f"{COST_PER_1K_REQUESTS_USD:g} USD). What changed in each, which latency would you expect to move with it, "
          "and where would you look for the cause?",
          ("bot-healthy", "bot-prompt-bloat", "bot-runaway"), "tokens"),
)


def _series(name: str, signal: str, seed: int) -> dict[str, list]:
    spec = load_scenario(name)
    if spec.kind == "generative":
        ws = BotServer(spec, seed, fast=True).run().windows
        return {"x": [w.index for w in ws], "in": [w.input_tokens / w.requests for w in ws],
                "out": [w.output_tokens / w.requests for w in ws], "cost": [1000 * w.cost_usd / w.requests for w in ws]}
    if spec.kind == "inference":
        r = run_serving(spec, seed=seed, fast=True, telemetry="off", quiet=True).result
        return {"x": [w.index for w in r.windows], "psi": [w.report.max_psi for w in r.windows],
                "acc": [w.accuracy for w in r.windows]}
    r = Trainer(spec, seed, fast=True).run()
    if signal == "loss":
        return {"x": [e.step for e in r.evals], "train": [e.train_loss for e in r.evals],
                "val": [e.val_loss for e in r.evals]}
    if signal == "dead":
        return {"x": [e.step for e in r.evals], "dead": [e.dead_ratio.get("layer2", math.nan) for e in r.evals]}
    g = r.grad_ratios
    peaks = [max((v for v in g[i:i + 10] if math.isfinite(v)), default=math.nan) for i in range(0, len(g), 10)]
    return {"x": list(range(1, len(g) + 1, 10)), "grad": peaks}


def draw(drill: Drill, runs: list[tuple[str, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(3.6 * len(runs), 2.6), dpi=110)
    for ax, (letter, s) in zip(axes, runs):
        ax.set_title(f"Run {letter}", fontsize=10)
        ax.tick_params(labelsize=7)
        if drill.signal == "loss":
            ax.plot(s["x"], s["train"], lw=1.2, label="training")
            ax.plot(s["x"], s["val"], lw=1.2, ls="--", label="validation")
            ax.set_xlabel("step", fontsize=8)
            ax.legend(fontsize=7)
        elif drill.signal == "grad":
            ax.plot(s["x"], s["grad"], lw=1.0)
            ax.set_yscale("log")
            ax.set_ylabel("norm / baseline", fontsize=7)
            for y in (GRAD_SPIKE_WARNING, GRAD_SPIKE_CRITICAL):
                ax.axhline(y, color="grey", ls="--", lw=0.8)
            ax.set_xlabel("step", fontsize=8)
        elif drill.signal == "dead":
            ax.plot(s["x"], s["dead"], lw=1.2)
            ax.axhline(DEAD_RATIO_THRESHOLD, color="grey", ls="--", lw=0.8)
            ax.set_ylim(-0.02, 1.0)
            ax.set_ylabel("dead share of layer2", fontsize=7)
            ax.set_xlabel("step", fontsize=8)
        elif drill.signal == "tokens":
            ax.plot(s["x"], s["in"], lw=1.2, label="input")
            ax.plot(s["x"], s["out"], lw=1.2, ls="--", label="output")
            ax.set_yscale("log")
            ax.set_ylim(1, 300)
            ax.set_xlabel("window", fontsize=8)
            ax.set_ylabel("tokens per request", fontsize=7)
            ax.legend(fontsize=7, loc="upper left")
            ax2 = ax.twinx()
            ax2.plot(s["x"], s["cost"], lw=1.2, ls=":", color="tab:red")
            ax2.axhline(COST_PER_1K_REQUESTS_USD, color="grey", ls="--", lw=0.8)
            ax2.set_ylim(0, 120)
            ax2.set_ylabel("USD per 1,000 questions (dotted)", fontsize=7)
            ax2.tick_params(labelsize=7)
        else:
            ax.plot(s["x"], s["psi"], lw=1.2, label="max PSI")
            ax.axhline(PSI_MAJOR, color="grey", ls="--", lw=0.8)
            ax.set_xlabel("window", fontsize=8)
            ax.set_ylabel("max PSI (solid)", fontsize=7)
            ax2 = ax.twinx()
            ax2.set_ylabel("accuracy (dotted)", fontsize=7)
            ax2.plot(s["x"], s["acc"], lw=1.2, ls=":", color="tab:red", label="accuracy")
            ax2.set_ylim(0.5, 1.0)
            ax2.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def answer(name: str) -> str:
    s = load_scenario(name)
    fix = f" The remedy, shown by `lab run {name} --fix`: {s.story.fix}" if s.has_fix else ""
    return (f"**{s.title}** (`{name}`; practice-mode diagnosis `{s.story.diagnosis}`). "
            f"{s.story.what_the_signals_show} *What to do:* {s.story.what_to_do}{fix}")


def orders(seed: int = 0, drills=DRILLS) -> list[list[str]]:
    """The scenarios of each drill in the order of its letters (shuffled: never the question's order)."""
    rng = random.Random(seed)
    out = []
    for drill in drills:
        order = list(drill.scenarios)
        rng.shuffle(order)
        out.append(order)
    return out


def markdown(seed: int = 0, drills=DRILLS) -> str:
    lines = ["# Interpretation drills", "",
             "<!-- Generated by `make exercises` (lab/practice/exercises.py) from real runs: do not edit by hand. -->", "",
             "Each picture comes from real `--fast` runs of the lab's scenarios (seed 0). Look first, decide, "
             "then open the answer. Thresholds are the ones the alert rules use "
             f"(loss ratio {OVERFIT_RATIO_THRESHOLD}, gradient {GRAD_SPIKE_WARNING:g}x/{GRAD_SPIKE_CRITICAL:g}x, "
             f"dead units {DEAD_RATIO_THRESHOLD:.0%}). Teach-back questions: [teach-back.md](teach-back.md).", ""]
    for n, (drill, order) in enumerate(zip(drills, orders(seed, drills)), start=1):
        lines += [f"## {n}. {drill.title}", "", drill.question, "",
                  f"![{drill.title}](img/{drill.slug}.png)", "", "<details><summary>Answers</summary>", ""]
        lines += [f"- **Run {chr(ord('A') + i)}**: {answer(name)}" for i, name in enumerate(order)]
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def build(out: Path, seed: int = 0, drills=DRILLS) -> Path:
    img = out / "img"
    img.mkdir(parents=True, exist_ok=True)
    for drill, order in zip(drills, orders(seed, drills)):
        runs = [(chr(ord("A") + i), _series(name, drill.signal, seed)) for i, name in enumerate(order)]
        draw(drill, runs, img / f"{drill.slug}.png")
    readme = out / "README.md"
    readme.write_text(markdown(seed, drills))
    return readme


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.practice.exercises", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("docs/exercises"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"wrote {build(args.out, args.seed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
