"""Production dashboards for the inference scenarios: drift and quality, and operations.

Built against the serving metrics of lab/serving/export.py (ml.inference.*, ml.drift.*;
docs/metrics.md). Thresholds come from lab/thresholds.py (PSI, KS, Jensen-Shannon, accuracy
drop, calibration error).
"""

from __future__ import annotations

from lab import thresholds
from lab.dashboards.model import (
    INFERENCE,
    ORANGE,
    RED,
    RUN,
    RUN_LEGEND,
    Dashboard,
    Panel,
    Row,
    Target,
    Threshold,
    run_variables,
)

# Panels on rate()/increase() need two samples of a series inside their window: --fast
# serving runs export after every drift window (lab/serving/export.py), and the contract
# test also holds every serving panel to data on a run at the real 5 s pace
# (tests/dev/test_panel_contract.py, PACED_RUNS).


def _m(name: str) -> str:
    return f"{name}{{{RUN}}}"


def drift_panels() -> list[Panel | Row]:
    per_feature = "max by (lab_scenario, lab_variant, feature) ({})"
    return [
        Row("Inputs: which features moved, and how far?"),
        Panel(
            "Share of drifted features",
            f"Share of the model's input features whose KS p-value (adjusted for testing every feature) is below "
            f"{thresholds.KS_ALPHA} in the latest drift window. Gradual drift climbs step by step; sudden drift jumps.",
            "percentunit",
            [Target(f"max by (lab_scenario, lab_variant) ({_m('ml_drift_drifted_share_ratio')})", RUN_LEGEND)],
            needs=(INFERENCE,), width=12, min=0, max=1,
            thresholds=[Threshold(0.001, ORANGE)], runbooks=["MLLabInputDrift"],
        ),
        Panel(
            "PSI per feature (heatmap)",
            f"Population stability index of each feature's latest window against the reference deciles. Below "
            f"{thresholds.PSI_MODERATE} stable, {thresholds.PSI_MODERATE}-{thresholds.PSI_MAJOR} moderate, above {thresholds.PSI_MAJOR} "
            "a major shift (the cell colours use the same cuts).",
            "none",
            [Target(per_feature.format(_m("ml_drift_psi")), "{{feature}}")],
            kind="heatmap", needs=(INFERENCE,), width=12,
            thresholds=[Threshold(thresholds.PSI_MODERATE, ORANGE), Threshold(thresholds.PSI_MAJOR, RED)],
            options={"calculate": False, "yAxis": {"unit": "none"},
                     "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64, "min": 0, "max": thresholds.PSI_MAJOR * 2}},
            runbooks=["MLLabInputDrift"],
        ),
        Panel(
            "Drift statistics per feature (latest window)",
            f"Per feature: PSI (cuts {thresholds.PSI_MODERATE} / {thresholds.PSI_MAJOR}), KS statistic, KS p-value adjusted "
            f"for every feature (drifted below {thresholds.KS_ALPHA}) and Jensen-Shannon distance (above "
            f"{thresholds.JS_THRESHOLD} = a material shift). Cells are coloured by the alert thresholds.",
            "none",
            [Target(per_feature.format(_m("ml_drift_psi")), instant=True, fmt="table"),
             Target(per_feature.format(_m("ml_drift_ks_statistic")), instant=True, fmt="table"),
             Target(per_feature.format(_m("ml_drift_ks_p_value_ratio")), instant=True, fmt="table"),
             Target(per_feature.format(_m("ml_drift_js_distance")), instant=True, fmt="table")],
            kind="table", needs=(INFERENCE,), width=24, height=9,
            transformations=[
                {"id": "merge", "options": {}},
                {"id": "organize", "options": {"excludeByName": {"Time": True},
                                               "renameByName": {"Value #A": "PSI", "Value #B": "KS statistic",
                                                                "Value #C": "KS p-value (adjusted)",
                                                                "Value #D": "Jensen-Shannon"}}},
            ],
            overrides=[
                {"matcher": {"id": "byName", "options": "PSI"}, "properties": [
                    {"id": "thresholds", "value": {"mode": "absolute", "steps": [
                        {"color": "green", "value": None}, {"color": ORANGE, "value": thresholds.PSI_MODERATE},
                        {"color": RED, "value": thresholds.PSI_MAJOR}]}},
                    {"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
                {"matcher": {"id": "byName", "options": "KS p-value (adjusted)"}, "properties": [
                    {"id": "thresholds", "value": {"mode": "absolute", "steps": [
                        {"color": RED, "value": None}, {"color": "green", "value": thresholds.KS_ALPHA}]}},
                    {"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
                {"matcher": {"id": "byName", "options": "Jensen-Shannon"}, "properties": [
                    {"id": "thresholds", "value": {"mode": "absolute", "steps": [
                        {"color": "green", "value": None}, {"color": RED, "value": thresholds.JS_THRESHOLD}]}},
                    {"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
            ],
            runbooks=["MLLabInputDrift"],
        ),
        Panel(
            "Jensen-Shannon distance per feature",
            f"Jensen-Shannon distance (base 2, 0..1) of each feature's window against the reference, over time. "
            f"Above {thresholds.JS_THRESHOLD} the shift is material.",
            "none",
            [Target(per_feature.format(_m("ml_drift_js_distance")), "{{feature}}")],
            needs=(INFERENCE,), width=12, min=0,
            thresholds=[Threshold(thresholds.JS_THRESHOLD, RED)], runbooks=["MLLabInputDrift"],
        ),
        Panel(
            "Prediction drift (model output)",
            "PSI and Jensen-Shannon distance of the model's confidence in the latest window against its confidence "
            "on held-out reference data. Input drift moves it; concept drift does not (same inputs, same "
            "confidence): only accuracy shows that.",
            "none",
            [Target(f"max by (lab_scenario, lab_variant) ({_m('ml_drift_output_psi')})", f"{RUN_LEGEND} PSI"),
             Target(f"max by (lab_scenario, lab_variant) ({_m('ml_drift_output_js_distance')})", f"{RUN_LEGEND} JS")],
            needs=(INFERENCE,), width=12, min=0,
            thresholds=[Threshold(thresholds.PSI_MODERATE, ORANGE), Threshold(thresholds.PSI_MAJOR, RED)],
        ),
        Row("Quality: is the model still right?"),
        Panel(
            "Accuracy on labelled requests against baseline",
            f"Accuracy on the latest labelled requests (labels arrive late) and the model's held-out baseline; the "
            f"dashed line is the baseline minus {thresholds.ACCURACY_DROP}, below which accuracy has degraded.",
            "percentunit",
            [Target(f"max by (lab_scenario, lab_variant) ({_m('ml_inference_accuracy_ratio')})", f"{RUN_LEGEND} accuracy"),
             Target(f"max by (lab_scenario, lab_variant) ({_m('ml_inference_accuracy_baseline_ratio')})", f"{RUN_LEGEND} baseline"),
             Target(f"max by (lab_scenario, lab_variant) ({_m('ml_inference_accuracy_baseline_ratio')}) - {thresholds.ACCURACY_DROP}",
                    f"{RUN_LEGEND} alert line")],
            needs=(INFERENCE,), width=12, max=1,
            overrides=[{"matcher": {"id": "byRegexp", "options": ".*alert line"},
                        "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                                       {"id": "color", "value": {"mode": "fixed", "fixedColor": RED}}]}],
            runbooks=["MLLabAccuracyDegraded"],
        ),
        Panel(
            "Calibration: expected calibration error",
            f"Expected calibration error (10 confidence bins) on the same labelled requests: how far the model's "
            f"confidence is from its accuracy. Above {thresholds.ECE_THRESHOLD} the probabilities can no longer be trusted.",
            "none",
            [Target(f"max by (lab_scenario, lab_variant) ({_m('ml_inference_calibration_error_ratio')})", RUN_LEGEND)],
            needs=(INFERENCE,), width=12, min=0,
            thresholds=[Threshold(thresholds.ECE_THRESHOLD, RED, alert="MLLabMiscalibrated")], runbooks=["MLLabMiscalibrated"],
        ),
        Panel(
            "Confidence distribution",
            "Share of predictions per confidence bucket over the dashboard range (from the confidence histogram). "
            "Drift usually shifts mass from the top bucket towards the middle.",
            "percentunit",
            [Target("sum by (le) (increase(" + _m("ml_inference_confidence_bucket") + "[$__range])) / scalar(sum(increase("
                    + _m("ml_inference_confidence_count") + "[$__range])))", "{{le}}", instant=True)],
            kind="bargauge", needs=(INFERENCE,), width=12, min=0, max=1,
        ),
        Panel(
            "Labels received and retrains",
            "Delayed true labels received per second, and model retrains (the concept-drift fix retrains on recent "
            "labelled requests).",
            "none",
            [Target(f"sum by (lab_scenario, lab_variant) (rate({_m('ml_inference_labels_total')}[$__rate_interval]))",
                    f"{RUN_LEGEND} labels/s"),
             Target(f"max by (lab_scenario, lab_variant) ({_m('ml_inference_retrains_total')})", f"{RUN_LEGEND} retrains")],
            needs=(INFERENCE,), width=12, min=0,
        ),
    ]


def ops_panels() -> list[Panel | Row]:
    dur = _m("ml_inference_request_duration_seconds_bucket")
    return [
        Row("Traffic"),
        Panel(
            "Request rate by outcome",
            "Prediction requests per second; outcome=error are requests rejected by input validation.",
            "reqps",
            [Target(f"sum by (lab_scenario, lab_variant, outcome) (rate({_m('ml_inference_requests_total')}[$__rate_interval]))",
                    f"{RUN_LEGEND} {{{{outcome}}}}")],
            needs=(INFERENCE,), width=12, min=0,
        ),
        Panel(
            "Error ratio",
            "Share of requests that failed input validation.",
            "percentunit",
            # `or ... * 0`: no error series exists until the first error; show 0, not "no data"
            [Target(f'(sum by (lab_scenario, lab_variant) (rate(ml_inference_requests_total{{{RUN},outcome="error"}}[$__rate_interval])) '
                    f"or 0 * sum by (lab_scenario, lab_variant) (rate({_m('ml_inference_requests_total')}[$__rate_interval]))) "
                    f"/ sum by (lab_scenario, lab_variant) (rate({_m('ml_inference_requests_total')}[$__rate_interval]))", RUN_LEGEND)],
            needs=(INFERENCE,), width=12, min=0, max=1,
        ),
        Row("Latency"),
        Panel(
            "Request latency percentiles",
            "p50 / p95 / p99 of request latency (input validation, batch-queue wait, forward pass) from the latency histogram. "
            "Exemplars link to request traces where the datasource has them.",
            "s",
            [Target(f"histogram_quantile({q}, sum by (le, lab_scenario, lab_variant) (rate({dur}[$__rate_interval])))",
                    f"{RUN_LEGEND} p{int(q * 100)}", exemplar=(q == 0.99)) for q in (0.5, 0.95, 0.99)],
            needs=(INFERENCE,), width=24, min=0,
        ),
    ]


def drift_dashboard(runbooks_base: str) -> Dashboard:
    return Dashboard(
        uid="ml-lab-production-drift",
        title="ML Lab / Production drift and quality",
        folder="ml-lab",
        filename="production-drift.json",
        description="Has the data the model serves moved away from what it was trained on, and is the model still "
        "right? Per-feature PSI, KS and Jensen-Shannon, drifted-feature share, accuracy on labelled requests, "
        "confidence and calibration.",
        tags=["ml-lab", "serving", "drift"],
        items=drift_panels(),
        variables=run_variables("ml_inference_requests_total", runbooks_base),
    )


def ops_dashboard(runbooks_base: str) -> Dashboard:
    return Dashboard(
        uid="ml-lab-inference-ops",
        title="ML Lab / Inference operations",
        folder="ml-lab",
        filename="inference-operations.json",
        description="The serving process as an SRE sees it: request rate, errors and latency percentiles. "
        "(The lab's models are tabular: there is no token usage to show.)",
        tags=["ml-lab", "serving"],
        items=ops_panels(),
        variables=run_variables("ml_inference_requests_total", runbooks_base),
    )
