"""`make bench-e2e`: delay from a value recorded in the training loop to that value
being queryable in Prometheus, through the running stack (`make up` first).

    python -m lab.dev.bench_e2e --out results [--seconds 60]

A paced overfit run (10 steps/s) streams over OTLP; a poller asks Prometheus for
ml_training_steps_total every 100 ms. When a new count N appears (previous P):
  latest: now - when step N was recorded: the newest value at export time, i.e.
          the pipeline alone (collector batch timeout + OTLP hops + ingestion);
  oldest: now - when step P+1 was recorded: a value recorded just after the
          previous export waits a whole export interval before it is even sent.
Every value's delay lies between the two; theory: latest <= batch timeout (1 s)
plus hops, oldest <= interval (5 s) + that.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path

import requests
import torch

from lab.repo import stack_env_defaults
from lab.specs.loader import load_scenario
from lab.telemetry.observer import BaseObserver
from lab.telemetry.otel import LAB_INTERVAL_SECONDS, RunIdentity, Telemetry, collector_reachable, otlp_endpoint
from lab.training.export import TelemetryObserver
from lab.training.loop import Trainer


class StepClock(BaseObserver):
    def __init__(self):
        self.at: dict[int, float] = {}

    def on_unit(self, rec):
        self.at[rec.step] = time.time()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.dev.bench_e2e", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--seconds", type=float, default=60.0, help="length of the paced run")
    os.environ.update(stack_env_defaults())  # the stack `make up` started (.lab/stack.env), as `lab run` does
    p.add_argument("--prometheus", default=os.environ.get("LAB_PROMETHEUS_URL")
                   or f"http://127.0.0.1:{os.environ.get('LAB_PROMETHEUS_PORT', '9090')}")
    args = p.parse_args(argv)
    if not collector_reachable():
        print(f"no collector at {otlp_endpoint()}: start the stack with `make up` first")
        return 2
    torch.set_num_threads(1)
    spec = load_scenario("overfit", overrides=["pace.steps_per_second=10"])
    steps = int(args.seconds * 10)
    identity = RunIdentity("overfit", "bench-e2e", 0)
    tel = Telemetry(identity, otlp=True)
    clock = StepClock()
    delays: list[float] = []
    oldest: list[float] = []
    seen = 0
    stop = threading.Event()
    sel = f'ml_training_steps_total{{instance="{identity.instance_id}"}}'
    # Only samples written after this run started: an earlier bench run's series may linger.
    query = f"{sel} and timestamp({sel}) > {time.time():.3f}"

    def poll():
        nonlocal seen
        while not stop.is_set():
            try:
                res = requests.get(f"{args.prometheus}/api/v1/query", params={"query": query}, timeout=2).json()
                vals = [int(float(r["value"][1])) for r in res["data"]["result"]]
            except (requests.RequestException, ValueError, KeyError):
                vals = []
            now = time.time()
            for v in vals:
                if v > seen and v in clock.at:
                    delays.append(now - clock.at[v])
                    if seen and seen + 1 in clock.at:
                        oldest.append(now - clock.at[seen + 1])
                    seen = v
            time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    Trainer(spec, 0, fast=False, observers=[clock, TelemetryObserver(tel)], max_steps=steps).run()
    tel.shutdown()
    time.sleep(LAB_INTERVAL_SECONDS * 2)
    stop.set()
    poller.join()
    def stats(v):
        return {"samples": len(v), "min_s": round(min(v), 3), "median_s": round(statistics.median(v), 3),
                "max_s": round(max(v), 3)} if v else None

    res = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "interval_s": LAB_INTERVAL_SECONDS, "batch_timeout_s": 1,
           "run_seconds": args.seconds, "latest_value_delay": stats(delays), "oldest_value_delay": stats(oldest)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_e2e.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0 if delays else 1


if __name__ == "__main__":
    raise SystemExit(main())
