"""lab/serving/loop.py and its telemetry: a small real served model, delayed labels, ECE, validation, OTel output."""

import io
import math
import re

import numpy as np
import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import Gauge, Histogram, InMemoryMetricReader, Sum
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from lab.serving.console import ServeConsole
from lab.serving.loop import MIN_LABELS, Server, ServeResult, schedule
from lab.serving.model import expected_calibration_error, make_world
from lab.serving.run import print_summary, run_serving, summarise
from lab.specs.base import HIDDEN_VARIANT, SpecError
from lab.specs.loader import build_spec
from lab.specs.serving import FEATURES
from lab.telemetry.catalogue import ALLOWED_ATTRIBUTES, CATALOGUE
from lab.telemetry.otel import RunIdentity
from lab.thresholds import PSI_MAJOR

SMALL = {
    "name": "small", "title": "small serving test", "kind": "inference",
    "data": {"reference_size": 2000, "holdout_size": 500},
    "model": {"epochs": 3},
    "stream": {"windows": 6, "window_size": 200, "label_delay": 300, "accuracy_window": 200, "invalid_rate": 0.02,
               "trace_sample_ratio": 1.0},
    "story": {"what_you_will_see": "x", "root_cause": "y", "what_to_do": "z"},
}
INFERENCE = {i.name: i for i in CATALOGUE if i.family == "inference"}


def small(**changes):
    raw = {**SMALL, **changes}
    return build_spec(raw, source="small")


# -- calibration -------------------------------------------------------------------------

def test_ece_hand_computed():
    # all in the (0.8, 0.9] bin: |accuracy 0.75 - confidence 0.9|
    assert abs(expected_calibration_error([0.9] * 4, [1, 1, 1, 0]) - 0.15) < 1e-12
    # two bins, half the samples each: 0.5 * |1 - 0.6| + 0.5 * |0.5 - 0.95|
    ece = expected_calibration_error([0.6, 0.6, 0.95, 0.95], [1, 1, 1, 0])
    assert abs(ece - (0.5 * 0.4 + 0.5 * 0.45)) < 1e-12
    assert expected_calibration_error([1.0, 1.0], [1, 1]) == 0.0
    with pytest.raises(ValueError, match="equal, non-empty"):
        expected_calibration_error([], [])


# -- data and schedule -----------------------------------------------------------------

def test_world_is_fixed_by_data_seed_and_standardised_on_the_reference():
    spec = small()
    a, b = make_world(spec.data, 1000, seed=0), make_world(spec.data, 1000, seed=0)
    assert np.array_equal(a.x_stream, b.x_stream)
    assert np.allclose(a.x_ref.mean(0), 0, atol=1e-5) and np.allclose(a.x_ref.std(0), 1, atol=1e-4)
    c = make_world(spec.data, 1000, seed=1)  # another run seed: same world, other samples
    assert not np.array_equal(a.x_ref, c.x_ref)


def test_schedule_ramps_and_steps():
    spec = small(shifts=[{"kind": "covariate", "features": ["income"], "start_window": 2, "end_window": 4, "magnitude": 1.0},
                         {"kind": "covariate", "features": ["debt_ratio"], "start_window": 3, "scale": 2.0},
                         {"kind": "concept", "feature": "income", "start_window": 5}])
    i, d = FEATURES.index("income"), FEATURES.index("debt_ratio")
    assert [float(schedule(spec, w)[0][i]) for w in range(6)] == [0, 0, 0, 0.5, 1, 1]
    assert [float(schedule(spec, w)[1][d]) for w in range(6)] == [1, 1, 1, 2, 2, 2]
    assert [c[1] for c in schedule(spec, 5)[2]] == [1.0] and schedule(spec, 4)[2][0][1] == 0.0


def test_bad_inference_settings_name_the_field_and_allowed_values():
    with pytest.raises(SpecError, match=r"shifts\.0\.features\.0: got 'salary'; allowed values: 'income'"):
        small(shifts=[{"kind": "covariate", "features": ["salary"], "start_window": 1}])
    with pytest.raises(SpecError, match=r"start_window=9 is not inside the run's 6 windows"):
        small(shifts=[{"kind": "covariate", "features": ["income"], "start_window": 9}])
    with pytest.raises(SpecError, match=r"monitor\.correction: got 'holm'"):
        small(monitor={"correction": "holm"})
    with pytest.raises(SpecError, match=r"stream\.window_size"):
        small(stream={"window_size": 10})
    with pytest.raises(SpecError, match=r"server\.from_window=6 is not inside the run's 6 windows"):
        small(server={"batch_max_size": 8, "batch_max_wait_s": 0.1, "from_window": 6})
    with pytest.raises(SpecError, match=r"server\.batch_max_wait_s"):
        small(server={"batch_max_wait_s": -1})


def test_batches_go_when_full_or_when_the_first_request_has_waited():
    # 100 requests/s: one every 10 ms. Batches of 4 fill in 30 ms, before a 150 ms timer: each
    # goes at its 4th arrival. With room for 64 the timer decides: 15 arrive within 150 ms.
    full = Server(small(server={"batch_max_size": 4, "batch_max_wait_s": 0.15}), fast=True)
    b = list(full._virtual_batches(10))
    assert [(j0, j1) for j0, j1, _ in b] == [(0, 4), (4, 8), (8, 10)]
    assert np.allclose(b[0][2], [0.03, 0.02, 0.01, 0.0]) and np.allclose(b[2][2], [0.15, 0.14])  # the last: the timer
    timer = Server(small(server={"batch_max_size": 64, "batch_max_wait_s": 0.15}), fast=True)
    b = list(timer._virtual_batches(40))
    assert [j1 - j0 for j0, j1, _ in b] == [15, 15, 10]
    assert np.allclose(b[0][2], 0.15 - 0.01 * np.arange(15))


def test_a_release_turns_batching_on_at_its_window_and_says_so():
    r = Server(small(server={"batch_max_size": 64, "batch_max_wait_s": 0.15, "from_window": 3}), fast=True).run()
    assert [(e.name, e.window) for e in r.events] == [("release", 3)]
    assert all(w.slow_share == 0 for w in r.windows[:3]) and all(w.slow_share > 0.25 for w in r.windows[3:])


# -- the serving loop ------------------------------------------------------------------

@pytest.fixture(scope="module")
def healthy_run():
    return Server(small(), seed=0, fast=True).run()


def test_invalid_requests_are_rejected_and_never_reach_the_monitor(healthy_run):
    r = healthy_run
    assert r.requests == 6 * 200 and r.errors > 0
    for w in r.windows:
        assert w.report.n == w.requests - w.errors


def test_labels_arrive_with_the_delay(healthy_run):
    # labels of the first requests arrive after 300 more; accuracy needs MIN_LABELS of them
    ws = healthy_run.windows
    first = next(w.index for w in ws if not math.isnan(w.accuracy))
    assert (first + 1) * 200 >= 300 + MIN_LABELS and math.isnan(ws[0].accuracy)
    # every accepted request of the first 900 has its label by the end; rejected ones never get one
    assert 900 - healthy_run.errors <= ws[-1].labels_total <= 900
    assert 0.8 < ws[-1].accuracy <= 1.0 and 0 <= ws[-1].ece < 0.2


def test_a_sudden_shift_is_seen_in_its_window():
    r = Server(small(shifts=[{"kind": "covariate", "features": ["income", "loan_amount"], "start_window": 3,
                              "magnitude": 1.5}]), seed=1, fast=True).run()
    assert all(w.report.max_psi < 0.25 for w in r.windows[:3])
    for w in r.windows[3:]:
        assert {f.feature for f in w.report.features if f.drifted} >= {"income", "loan_amount"}
        assert w.report.by_feature()["income"].psi > 0.25
        assert w.true_shift == {"income": 1.5, "loan_amount": 1.5}


def test_retraining_swaps_model_and_reference():
    spec = small(stream={**SMALL["stream"], "windows": 12, "label_delay": 200}, retrain={"enabled": True, "patience": 2},
                 shifts=[{"kind": "covariate", "features": ["income", "debt_ratio"], "start_window": 2, "magnitude": 1.5}])
    r = Server(spec, seed=0, fast=True).run()
    ev = [e for e in r.events if e.name == "retrain"]
    assert ev and ev[0].attributes["samples"] >= 1000
    after = [w for w in r.windows if w.model_version > 1]
    assert after and not after[-1].report.drifted  # the new reference is the shifted data


# -- telemetry ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported():
    reader, spans, logs = InMemoryMetricReader(), InMemorySpanExporter(), InMemoryLogRecordExporter()
    out = run_serving(small(), seed=0, fast=True, telemetry="off", quiet=True,
                        telemetry_kwargs={"metric_readers": [reader], "span_exporters": [spans], "log_exporters": [logs]})
    return out, reader.get_metrics_data(), spans.get_finished_spans(), logs.get_finished_logs()


def _points(data):
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    yield rm.resource, m, p


def test_every_inference_instrument_is_emitted_with_its_unit_kind_and_bounded_attributes(exported):
    out, data, *_ = exported
    seen = {}
    for resource, m, p in _points(data):
        seen.setdefault(m.name, (m, set()))[1].add(tuple(sorted(p.attributes)))
        for k, v in p.attributes.items():
            allowed = ALLOWED_ATTRIBUTES[k] or {"feature": FEATURES, "model": ("credit-risk",)}[k]
            assert v in allowed, f"{m.name}: {k}={v!r}"
        assert resource.attributes["service.name"] == "ml-lab-inference"
        assert resource.attributes["lab.scenario"] == "small" and resource.attributes["lab.variant"] == "fault"
    assert set(seen) == set(INFERENCE)
    kinds = {"gauge": Gauge, "counter": Sum, "histogram": Histogram}
    for name, (m, attr_sets) in seen.items():
        inst = INFERENCE[name]
        assert m.unit == inst.unit and isinstance(m.data, kinds[inst.kind]), name
        assert attr_sets == {tuple(sorted(inst.attributes))}, name


def test_request_counts_and_drift_values_match_the_run(exported):
    out, data, *_ = exported
    r = out.result
    pts = {}
    for _, m, p in _points(data):
        pts.setdefault(m.name, []).append(p)
    req = {p.attributes["outcome"]: p.value for p in pts["ml.inference.requests"]}
    assert req == {"ok": r.requests - r.errors, "error": r.errors}
    assert sum(p.count for p in pts["ml.inference.request.duration"]) == r.requests
    last = r.windows[-1].report.by_feature()
    for p in pts["ml.drift.psi"]:
        assert p.value == last[p.attributes["feature"]].psi
    assert [p.value for p in pts["ml.drift.windows"]] == [6]
    assert [p.value for p in pts["ml.inference.accuracy"]] == [r.windows[-1].accuracy]


def test_request_spans_follow_the_conventions(exported):
    out, _, spans, logs = exported
    req = [s for s in spans if s.name == "predict credit-risk"]
    assert len(req) == out.result.requests  # trace_sample_ratio = 1 here
    ok = next(s for s in req if s.status.status_code != StatusCode.ERROR)
    assert ok.attributes["ml.operation.name"] == "predict" and ok.attributes["ml.model.name"] == "credit-risk"
    assert 0.5 <= ok.attributes["ml.prediction.confidence"] <= 1.0 and ok.kind.name == "SERVER"
    bad = [s for s in req if s.status.status_code == StatusCode.ERROR]
    assert len(bad) == out.result.errors and all(s.attributes["error.type"] == "invalid_input" for s in bad)
    checks = [s for s in spans if s.name == "drift_check"]
    root = next(s for s in spans if s.name == "serve small")
    assert len(checks) == 6 and all(c.parent.span_id == root.context.span_id for c in checks)
    assert {lg.log_record.attributes["lab.event"] for lg in logs} >= {"serve_start", "serve_end"}
    assert not any(re.search(r"run|seed|request", k) for s in checks for k in s.attributes if k.startswith("ml."))


def test_a_collector_that_is_down_never_crashes_a_serving_run(monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    out = run_serving(small(stream={**SMALL["stream"], "windows": 2}), fast=True, telemetry="on", quiet=True)
    assert out.result.stopped == "completed" and len(out.result.windows) == 2
    assert out.export_errors > 0


# -- the CLI handles both families -------------------------------------------------------

def test_cli_lists_shows_and_runs_inference_scenarios(capsys, tmp_path):
    import json

    from lab.cli import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^drift\s+inference\s+yes\s+MLLabInputDrift", out, re.M) and re.search(r"^overfit\s+training", out, re.M)
    assert main(["show", "concept-drift"]) == 0
    assert "Root cause" in capsys.readouterr().out
    summary = tmp_path / "s.json"
    assert main(["run", "drift-sudden", "--fast", "--plain", "--telemetry", "off", "--seed", "2",
                 "--set", "stream.windows=15", "--summary-json", str(summary)]) == 0
    out = capsys.readouterr().out
    assert "window  12  drifted 2/8 DRIFT" in out and "Run completed: 7500 requests" in out
    s = json.loads(summary.read_text())
    assert s["kind"] == "inference" and s["onsets"]["input_drift"] == 12 + 2
    # the same `signatures` list as a training run's: every onset, with window, time and peak
    assert {g["name"]: g["at"] for g in s["signatures"]} == {k: w for k, w in s["onsets"].items() if w is not None}
    psi = next(g for g in s["signatures"] if g["name"] == "psi_major")
    assert psi["unit"] == "window" and psi["elapsed_s"] > 0 and psi["paced_s"] == (psi["at"] + 1) * 5.0
    assert psi["peak"] == {"signal": "max_psi", "value": s["peaks"]["max_psi"], "threshold": PSI_MAJOR}
    assert f"from window {psi['at']} (" in out and f"psi_major, peak max_psi {psi['peak']['value']:.3f}" in out


def test_cli_unknown_names_and_bad_settings(capsys):
    from lab.cli import main

    assert main(["run", "drift-suden", "--fast"]) == 2
    err = capsys.readouterr().err
    for name in ("drift", "drift-sudden", "concept-drift", "serving-healthy", "overfit"):
        assert name in err
    assert main(["run", "drift", "--fast", "--set", "monitor.alpha=2"]) == 2
    assert "monitor.alpha" in capsys.readouterr().err


def test_request_spans_are_sampled_but_run_and_window_spans_always_kept():
    spans = InMemorySpanExporter()
    out = run_serving(small(stream={**SMALL["stream"], "trace_sample_ratio": 0.1}), seed=3, fast=True, telemetry="off",
                        quiet=True, telemetry_kwargs={"span_exporters": [spans]})
    got = spans.get_finished_spans()
    req = [s for s in got if s.name == "predict credit-risk"]
    assert 0 < len(req) < 0.3 * out.result.requests
    assert sum(s.name == "drift_check" for s in got) == 6 and sum(s.name == "serve small" for s in got) == 1


def test_series_budget_of_an_inference_run(exported):
    # docs/metrics.md: 93 Prometheus series, whatever the number of windows or requests
    _, data, *_ = exported
    total = sum(len(p.bucket_counts) + 2 if isinstance(m.data, Histogram) else 1 for _, m, p in _points(data))
    assert total == 93


def test_request_latencies_keep_exemplars_of_sampled_request_traces(exported):
    _, data, spans, _ = exported
    requests = {s.context.trace_id for s in spans if s.name == "predict credit-risk"}
    ex = [e for _, m, p in _points(data) if m.name == "ml.inference.request.duration" for e in p.exemplars]
    assert ex and {e.trace_id for e in ex} <= requests


def test_a_practice_case_leaves_its_length_and_seed_out_of_spans_and_logs():
    reader, spans, logs = InMemoryMetricReader(), InMemorySpanExporter(), InMemoryLogRecordExporter()
    case = small().model_copy(update={"name": "mystery", "variant": HIDDEN_VARIANT})
    run_serving(case, seed=3, fast=True, telemetry="off", quiet=True,
                telemetry_kwargs={"metric_readers": [reader], "span_exporters": [spans], "log_exporters": [logs]})
    root = next(s for s in spans.get_finished_spans() if s.name == "serve mystery")
    assert not {"lab.seed", "lab.windows", "lab.window_size"} & set(root.attributes)
    assert "lab.seed" not in root.resource.attributes
    start = next(lg.log_record for lg in logs.get_finished_logs() if lg.log_record.attributes["lab.event"] == "serve_start")
    assert "windows" not in str(start.body)


def test_a_run_stopped_before_its_first_window_prints_its_summary():
    # SIGTERM or Ctrl-C while the first window fills: no window, no peak yet; the summary
    # says so with dashes instead of failing on None (it once ended in a TypeError, exit 1)
    result = ServeResult(spec=small(), seed=0, baseline_accuracy=0.9, requests=120, stopped="interrupted")
    out = io.StringIO()
    print_summary(ServeConsole(stream=out), summarise(result, RunIdentity("small")))
    text = out.getvalue()
    assert "Run interrupted" in text and "in 0 windows" in text
    assert "peaks: max PSI -, max JS -, output PSI -" in text
