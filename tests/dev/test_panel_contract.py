"""Panel contract: after a real `lab run <scenario> --fast` on the native stack, every panel
that promises data for that scenario's family gets data from its queries, and every series a
panel queries is produced by something.

One stack for the module (tests/conftest.py `native_stack`), one --fast run per scenario
(seconds each), FAST_PARALLEL at a time. Queries go to Prometheus as Grafana would send them: dashboard variables
substituted ($scenario = the scenario, $variant = fault), $__rate_interval / $__interval /
$__range expanded for the lab's 5 s interval (lab/dev/panel_contract.py), range queries
over the run's window, instant queries at its end.

A --fast run compresses a run into seconds (serving runs export after every drift window).
Runs at the real pace (PACED_RUNS: exports every 5 s, what Grafana shows), started together
after their scenarios' --fast runs and beside the other --fast runs, must fill every panel of
their family: the rate()/increase() serving panels once more, and the panels a --fast run may
leave empty (a panel's declared `gaps`).
"""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from lab.dashboards import all_dashboards
from lab.dashboards.model import ANY, GENERATIVE, INFERENCE, TRAINING
from lab.dev.panel_contract import Selection, expand, metric_names, query_panel, rate_interval
from lab.repo import ROOT
from lab.specs.loader import known_scenarios, load_scenario

DASHBOARDS = all_dashboards()
SCENARIOS = known_scenarios()
# TrainingSpec.kind -> the dashboard family whose panels must fill
FAMILY_OF_KIND = {"training": TRAINING, "inference": INFERENCE, "generative": GENERATIVE}
# scenario -> `lab run` arguments of a run at the real pace that must fill every panel of its
# family, gaps included. The runs are concurrent (they mostly sleep); about 50 s in all.
PACED_RUNS = {
    # its own pace (100 requests/s, one 500-request drift window per 5 s export) cut to 5
    # windows: 25 s of serving, 5 exports and the final one, so a $__rate_interval (20 s)
    # window holds 4-5 samples; delayed labels arrive from the third window.
    "serving-healthy": ("--set", "stream.windows=5"),
    # the support bot at its own pace (40 questions/s, one 200-question window per 5 s export)
    # cut to 6 windows: 30 s of serving (the bot itself is cached on disk by its --fast run);
    # labels arrive 2 windows late and the quality gauges need 50 of them: from the 4th window.
    "bot-healthy": ("--set", "stream.windows=6"),
    # 3 steps/s: its ~50 finite steps span 17 s (3 exports) before the gradient norm turns inf.
    "diverged": ("--speed", "0.25"),
}
# --fast runs at once: each is one busy core for a few seconds, and the paced runs beside them
# mostly sleep.
FAST_PARALLEL = 2
# Prometheus answers a query at time t with a series' latest sample no older than its lookback
# (5 minutes; series pushed over OTLP get no staleness markers). All the runs together can take
# longer than that (18 scenarios, on a loaded machine 11 minutes were measured), so a run is
# checked, and its panels queried, at its own end (plus AFTER_S for the pipeline's last exports
# and scrapes), never at "now": the first runs' series are out of the lookback by then.
AFTER_S = 30


def family(name: str) -> str:
    kind = load_scenario(name).kind
    assert kind in FAMILY_OF_KIND, f"scenario {name}: kind {kind!r} has no dashboard family (FAMILY_OF_KIND)"
    return FAMILY_OF_KIND[kind]


def launch(native_stack, tmp_path_factory, name: str, args: tuple[str, ...]):
    summary = tmp_path_factory.mktemp("run") / "summary.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "run", name, *args, "--seed", "1", "--plain", "--summary-json", str(summary)],
        cwd=ROOT, env={**os.environ, **native_stack.otel_env()}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, summary


def finish(native_stack, name: str, start: float, proc, summary) -> None:
    """Wait for the run and for its final export to reach Prometheus (newer than `start`: an
    earlier run of the scenario left the same series)."""
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    s = json.loads(summary.read_text())
    sel = f'lab_scenario="{name}",lab_variant="{s["variant"]}"'  # fault; custom for a run with --set
    if family(name) == TRAINING:
        series, n = f"ml_training_steps_total{{{sel}}}", s["steps"]
    elif family(name) == GENERATIVE:  # every window counted, and the run's final export (running = 0)
        series, n = f"ml_genai_windows_total{{{sel}}}", s["windows"]
        native_stack.wait_for_series(f"{series} == {n} and ml_genai_running{{{sel}}} == 0 and timestamp({series}) > {start}",
                                     timeout=90)
        return
    else:
        series, n = f'ml_inference_requests_total{{{sel},outcome="ok"}}', s["requests"] - s["errors"]
    native_stack.wait_for_series(f"{series} == {n} and timestamp({series}) > {start}", timeout=90)


def fast_run(native_stack, tmp_path_factory, name: str) -> tuple[float, float]:
    """One --fast run of the scenario, until its final export is in Prometheus: its window."""
    start = time.time()
    finish(native_stack, name, start, *launch(native_stack, tmp_path_factory, name, ("--fast",)))
    return start - 10, time.time()


@pytest.fixture(scope="module")
def all_runs(native_stack, tmp_path_factory):
    """Every scenario --fast and every PACED_RUNS at the real pace, once per module: two dicts
    name -> (start, end). The paced scenarios' --fast runs go first (a --fast run after a paced
    one could show the paced run's last values); then the paced runs start together and the
    other --fast runs go on beside them. The paced runs are waited for as they end, beside the
    --fast runs: their final export must be checked while it is within Prometheus's lookback."""
    with ThreadPoolExecutor(FAST_PARALLEL) as pool, ThreadPoolExecutor(1) as waiter:
        fast = dict(zip(PACED_RUNS, pool.map(lambda n: fast_run(native_stack, tmp_path_factory, n), PACED_RUNS)))
        start = time.time()
        procs = {n: launch(native_stack, tmp_path_factory, n, args) for n, args in PACED_RUNS.items()}

        def paced_end() -> float:
            for n, (proc, summary) in procs.items():
                finish(native_stack, n, start, proc, summary)
            return time.time()

        paced = waiter.submit(paced_end)
        rest = [n for n in SCENARIOS if n not in fast]
        fast.update(zip(rest, pool.map(lambda n: fast_run(native_stack, tmp_path_factory, n), rest)))
        end = paced.result()
    return fast, {n: (start, end) for n in PACED_RUNS}


@pytest.fixture(scope="module")
def runs(all_runs):
    """name -> (start, end) of the scenario's --fast run."""
    return all_runs[0].__getitem__


@pytest.fixture(scope="module")
def paced_runs(all_runs):
    """name -> (start, end) of the PACED_RUNS, all at once."""
    return all_runs[1]


def panels_needing(fam: str, scenario: str | None = None):
    return [(d, p) for d in DASHBOARDS for p in d.panels if fam in p.needs and scenario not in p.gaps]


def empty_panels(prometheus_url: str, panels, sel: Selection, start: float, end: float, patience: float) -> list[str]:
    """The panels (target by target) still without data over [start, end + AFTER_S] (or now, if
    earlier) after polling for `patience` seconds."""
    deadline = time.time() + patience
    while True:
        until = min(time.time(), end + AFTER_S)
        empty = []
        for d, p in panels:
            for i, series in enumerate(query_panel(prometheus_url, p, sel, start, until)):
                if not series:
                    empty.append(f"{d.title} / {p.title} (target {chr(65 + i)}): {expand(p.targets[i].expr, sel, int(until - start))}")
        if not empty or time.time() > deadline:
            return empty
        time.sleep(5)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_panel_for_the_scenario_family_shows_data(native_stack, runs, scenario):
    start, end = runs(scenario)
    sel = Selection(scenario=scenario, variant="fault")
    panels = panels_needing(family(scenario), scenario)
    assert panels, f"no panel promises data for {scenario}"
    # Grafana refreshes every 5 s: give the pipeline up to 4 refreshes (scrapes of the
    # collector's own counters, the run's last export) before calling a panel empty.
    empty = empty_panels(native_stack.prometheus_url, panels, sel, start, end, patience=20)
    assert not empty, f"{len(empty)} of {len(panels)} panels have no data for {scenario}:\n" + "\n".join(empty)


def test_every_gap_has_a_paced_run():
    for d in DASHBOARDS:
        for p in d.panels:
            for scenario in p.gaps:
                assert scenario in PACED_RUNS, f"{d.title} / {p.title}: gap for {scenario} but no paced run proves the panel"


@pytest.mark.parametrize("name", sorted(PACED_RUNS))
def test_every_panel_shows_data_on_a_paced_run(native_stack, paced_runs, name):
    """A run at the real pace fills every panel of its family, its gaps and rate()/increase() included."""
    start, end = paced_runs[name]
    variant = "custom" if "--set" in PACED_RUNS[name] else "fault"  # a run with --set has its own series
    fam = family(name)
    panels = [(d, p) for d in DASHBOARDS for p in d.panels if fam in p.needs]
    # An earlier --fast run of the scenario wrote the same series. Every run series a panel
    # reads must have fresh samples from this run, and the range starts one $__rate_interval
    # into the run so that no rate()/increase() window reaches back to the --fast run.
    window = int(time.time() - start)
    stale = sorted({n for _, p in panels for t in p.targets for n in metric_names(t.expr) if n.startswith("ml_")
                    if not native_stack.query(f'count_over_time({n}{{lab_scenario="{name}",lab_variant="{variant}"}}[{window}s])')})
    assert not stale, f"no sample from the paced {name} run: {stale}"
    start += rate_interval()
    assert start < end, f"the paced {name} run ended within one $__rate_interval of its start: lengthen it"
    empty = empty_panels(native_stack.prometheus_url, panels, Selection(scenario=name, variant=variant), start, end,
                         patience=20)
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
    # over the last hour: the first runs' series are older than the 5-minute lookback by now
    missing = sorted(n for n in wanted if not native_stack.query(f'count(last_over_time({{__name__="{n}"}}[1h]))'))
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
