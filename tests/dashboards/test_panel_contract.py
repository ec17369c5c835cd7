"""Panel contract: after a real `lab run <scenario> --fast` on the native stack, every panel
that promises data for that scenario's family gets data from its queries, and every series a
panel queries is produced by something.

One stack for the module (tests/conftest.py `native_stack`), one --fast run per scenario
(seconds each). Queries go to Prometheus as Grafana would send them: dashboard variables
substituted ($scenario = the scenario, $variant = fault), $__rate_interval / $__interval /
$__range expanded for the lab's 5 s interval (lab/dashboards/contract.py), range queries
over the run's window, instant queries at its end.

A --fast run compresses a run into seconds (serving runs export after every drift window),
so the family's panels, rate()/increase() ones included, are also held to data on a run at
the real pace (PACED_RUNS: one export per 5 s, what Grafana shows), after the --fast runs.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest
import requests

from lab.dashboards import ROOT, all_dashboards
from lab.dashboards.contract import Selection, expand, metric_names, query_panel, rate_interval
from lab.dashboards.model import ANY, INFERENCE, TRAINING
from lab.scenarios import known_scenarios, load_scenario

DASHBOARDS = all_dashboards()
SCENARIOS = known_scenarios()
# ScenarioSpec.kind -> the dashboard family whose panels must fill
FAMILY_OF_KIND = {"training": TRAINING, "inference": INFERENCE}
# family -> (scenario, extra `lab run` arguments) of a run at the real pace that must fill every
# panel of the family: serving-healthy at its own pace (100 requests/s, one 500-request drift
# window per 5 s export interval) cut to 5 windows, i.e. 25 s of serving, 5 exports plus the
# final one, so a $__rate_interval (20 s) window holds 4-5 samples; delayed labels arrive from
# the third window. Training panels are held to the --fast runs only.
PACED_RUNS = {INFERENCE: ("serving-healthy", ["--set", "stream.windows=5"])}


def family(name: str) -> str:
    kind = load_scenario(name).kind
    assert kind in FAMILY_OF_KIND, f"scenario {name}: kind {kind!r} has no dashboard family (FAMILY_OF_KIND)"
    return FAMILY_OF_KIND[kind]


@pytest.fixture(scope="module")
def runs(native_stack, tmp_path_factory):
    """Run each scenario at most once per session (lazily), --fast or with `args` (paced);
    (name, args) -> (start, end) of its window."""
    done: dict[tuple[str, tuple[str, ...]], tuple[float, float]] = {}

    def run(name: str, args: tuple[str, ...] = ("--fast",)) -> tuple[float, float]:
        if (name, args) in done:
            return done[name, args]
        summary = tmp_path_factory.mktemp("run") / "summary.json"
        start = time.time()
        proc = subprocess.run(
            [sys.executable, "-m", "lab", "run", name, *args, "--seed", "1", "--plain", "--summary-json", str(summary)],
            cwd=ROOT, env={**os.environ, **native_stack.otel_env()}, capture_output=True, text=True, timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        sel = f'lab_scenario="{name}",lab_variant="fault"'
        s = json.loads(summary.read_text())
        if family(name) == TRAINING:
            native_stack.wait_for_series(f"ml_training_steps_total{{{sel}}} == {s['steps']}", timeout=90)
        else:  # the run's final export has arrived (an earlier run of the scenario served more requests)
            native_stack.wait_for_series(f'ml_inference_requests_total{{{sel},outcome="ok"}} == {s["requests"] - s["errors"]}',
                                         timeout=90)
        done[name, args] = (start - 10, time.time())
        return done[name, args]

    return run


def panels_needing(fam: str, scenario: str | None = None):
    return [(d, p) for d in DASHBOARDS for p in d.panels if fam in p.needs and scenario not in p.gaps]


def empty_panels(prometheus_url: str, panels, sel: Selection, start: float, patience: float) -> list[str]:
    """The panels (target by target) still without data after polling for `patience` seconds."""
    deadline = time.time() + patience
    while True:
        end = time.time()
        empty = []
        for d, p in panels:
            for i, series in enumerate(query_panel(prometheus_url, p, sel, start, end)):
                if not series:
                    empty.append(f"{d.title} / {p.title} (target {chr(65 + i)}): {expand(p.targets[i].expr, sel, int(end - start))}")
        if not empty or time.time() > deadline:
            return empty
        time.sleep(5)


def gaps_of(scenario: str):
    return [(d, p) for d in DASHBOARDS for p in d.panels if scenario in p.gaps]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_panel_for_the_scenario_family_shows_data(native_stack, runs, scenario):
    start, _ = runs(scenario)
    sel = Selection(scenario=scenario, variant="fault")
    panels = panels_needing(family(scenario), scenario)
    assert panels, f"no panel promises data for {scenario}"
    # Grafana refreshes every 5 s: give the pipeline up to 4 refreshes (scrapes of the
    # collector's own counters, the run's last export) before calling a panel empty.
    empty = empty_panels(native_stack.prometheus_url, panels, sel, start, patience=20)
    assert not empty, f"{len(empty)} of {len(panels)} panels have no data for {scenario}:\n" + "\n".join(empty)
    # a declared gap must still be a gap: once fixed, remove it from the panel's `gaps`
    for d, p in gaps_of(scenario):
        results = query_panel(native_stack.prometheus_url, p, sel, start, time.time())
        assert not all(results), f"{d.title} / {p.title} now has data for {scenario}: remove the gap ({p.gaps[scenario]})"


@pytest.mark.parametrize("fam", sorted(PACED_RUNS))
def test_every_panel_shows_data_on_a_paced_run(native_stack, runs, fam):
    """A run at the real pace fills every panel of its family, the rate()/increase() ones included."""
    name, args = PACED_RUNS[fam]
    assert family(name) == fam, (fam, name)
    start, end = runs(name, tuple(args))
    # Start the range one $__rate_interval after the run started, so every rate()/increase()
    # window lies inside this run: an earlier --fast run of the scenario writes the same
    # series and must not be what fills them.
    start += 10 + rate_interval()
    assert start < end, f"the paced {name} run ended within one $__rate_interval of its start: lengthen it"
    panels = panels_needing(fam, name)
    assert any(re.search(r"\b(rate|increase)\(", t.expr) for _, p in panels for t in p.targets), \
        f"no {fam} panel is built on rate()/increase(): is the paced run still needed?"
    empty = empty_panels(native_stack.prometheus_url, panels, Selection(scenario=name, variant="fault"), start, patience=20)
    assert not empty, f"{len(empty)} of {len(panels)} panels have no data over a paced {name} run:\n" + "\n".join(empty)


def test_stack_panels_show_data_whatever_runs(native_stack, runs):
    start, _ = runs(SCENARIOS[0])
    deadline = time.time() + 30  # a fresh stack needs two self-scrapes inside a rate window
    while True:
        empty = [f"{d.title} / {p.title}" for d, p in panels_needing(ANY)
                 if not all(query_panel(native_stack.prometheus_url, p, Selection(), start, time.time()))]
        if not empty or time.time() > deadline:
            break
        time.sleep(5)
    assert not empty, empty


def test_no_panel_queries_a_series_that_nothing_produces(native_stack, runs):
    for name in SCENARIOS:
        runs(name)
    # panels of a family with no scenario yet (serving dashboards before the inference
    # scenarios land) cannot be held to this; every other panel can
    present = {family(n) for n in SCENARIOS} | {ANY}
    wanted = {n for d in DASHBOARDS for p in d.panels if not p.needs or set(p.needs) & present
              for t in p.targets for n in metric_names(t.expr)}
    missing = sorted(n for n in wanted if not native_stack.query(f'count({{__name__="{n}"}})'))
    assert not missing, f"queried by a panel but produced by nothing: {missing}"


def test_annotation_queries_are_valid_promql(native_stack, runs):
    start, end = runs(SCENARIOS[0])
    for d in DASHBOARDS:
        for a in d.annotations:
            expr = expand(a["expr"], Selection(), int(end - start))
            r = requests.get(f"{native_stack.prometheus_url}/api/v1/query_range",
                             params={"query": expr, "start": start, "end": end, "step": 5}, timeout=30)
            assert r.status_code == 200 and r.json()["status"] == "success", (a["name"], r.text)


def test_metric_names_extraction_on_hand_built_cases():
    assert metric_names('max by (lab_scenario, split) (ml_training_loss{job=~"$job",split="train"})') == {"ml_training_loss"}
    assert metric_names("histogram_quantile(0.95, sum by (le) (rate(x_bucket{a=\"b\"}[$__rate_interval])))") == {"x_bucket"}
    assert metric_names("time() - max(timestamp(up)) > 1e-3 and on() vector(1)") == {"up"}
