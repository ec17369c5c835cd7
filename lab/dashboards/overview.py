"""Lab overview: what runs, what fires, and whether the telemetry pipeline itself is healthy.

Start here. If the pipeline row is not green, the other dashboards cannot be trusted:
fix the collector / Prometheus / Alertmanager first (docs/stack.md).
"""

from __future__ import annotations

from lab.dashboards.model import (
    ANY,
    ORANGE,
    RED,
    RUN,
    TRAINING,
    Dashboard,
    Panel,
    Row,
    Target,
    Threshold,
    run_variables,
)
from lab.thresholds import HEAD_SERIES_LIMIT

# The lab's interval (LAB_INTERVAL in .env): data older than 3 intervals is late, older
# than 12 (one minute) is stale - the run stopped or the pipeline is broken.
LATE_S = 15
STALE_S = 60


def panels() -> list[Panel | Row]:
    return [
        Row("What runs"),
        Panel(
            "Training runs",
            "One row per run (scenario/variant) with its progress: completed steps / planned steps.",
            "percentunit",
            [Target(f"max by (job, instance, lab_scenario, lab_variant) (ml_training_progress_ratio{{{RUN}}})",
                    instant=True, fmt="table")],
            kind="table", needs=(TRAINING,), width=12, min=0, max=1,
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True},
                                                            "renameByName": {"Value": "progress"}}}],
            overrides=[{"matcher": {"id": "byName", "options": "progress"},
                        "properties": [{"id": "custom.cellOptions", "value": {"type": "gauge", "mode": "basic"}}]}],
        ),
        Panel(
            "Data freshness",
            f"Seconds since each run's last sample reached Prometheus. The SDK exports every 5 s: above {LATE_S} s "
            f"the data is late, above {STALE_S} s the run has stopped or the pipeline is broken.",
            "s",
            [Target(f"time() - max by (lab_scenario, lab_variant) (timestamp(ml_training_steps_total{{{RUN}}}))",
                    "{{lab_scenario}}/{{lab_variant}}")],
            needs=(TRAINING,), width=12, min=0,
            thresholds=[Threshold(LATE_S, ORANGE), Threshold(STALE_S, RED)],
        ),
        Row("What fires"),
        Panel(
            "Firing and pending alerts",
            "Every alert Prometheus holds right now, lab alerts and the stack's Watchdog (always firing: its "
            "absence means alerting is broken). Click an alert name for its runbook.",
            "none",
            [Target('max by (alertname, alertstate, severity, lab_scenario, lab_variant) (ALERTS{alertstate=~"firing|pending"})',
                    instant=True, fmt="table")],
            kind="table", needs=(ANY,), width=12,
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}],
            overrides=[{"matcher": {"id": "byName", "options": "alertname"},
                        "properties": [{"id": "links", "value": [{
                            "title": "Runbook for ${__value.raw}", "url": "${runbooks}/${__value.raw}.md",
                            "targetBlank": True}]}]}],
        ),
        Panel(
            "Alerts over time",
            "Number of firing alerts per alert name: when each alert started and stopped.",
            "none",
            [Target('count by (alertname) (ALERTS{alertstate="firing"})', "{{alertname}}")],
            needs=(ANY,), width=12, min=0, decimals=0,
        ),
        Row("Telemetry pipeline: can the other dashboards be trusted?"),
        Panel(
            "Scrape targets up",
            "1 = Prometheus scraped the component's own metrics (collector, Prometheus, Alertmanager) at the last "
            "attempt. 0 = down. The lab's ML series do not come from scrapes but from OTLP pushes (next panels).",
            "none",
            [Target("min by (job) (up)", "{{job}}")],
            needs=(ANY,), width=8, min=0, max=1, decimals=0,
            thresholds=[Threshold(1, "green")],
            overrides=[{"matcher": {"id": "byType", "options": "number"},
                        "properties": [{"id": "thresholds", "value": {"mode": "absolute", "steps": [
                            {"color": RED, "value": None}, {"color": "green", "value": 1}]}}]}],
        ),
        Panel(
            "Collector: metric points received and exported",
            "OTLP metric points per second the collector accepted (receiver) and sent on (per exporter: Prometheus's "
            "OTLP endpoint and the file exporter). Accepted > 0 while nothing is sent = the export leg is broken.",
            "none",
            [
                Target("sum by (receiver) (rate(otelcol_receiver_accepted_metric_points[$__rate_interval]))", "accepted {{receiver}}"),
                Target("sum by (exporter) (rate(otelcol_exporter_sent_metric_points[$__rate_interval]))", "sent {{exporter}}"),
            ],
            needs=(TRAINING,), width=8, min=0,
        ),
        Panel(
            "Collector: refused and failed points",
            "Metric points the collector's receiver refused (memory limiter, back-pressure) or failed to process. "
            "Anything above 0 means lost telemetry.",
            "none",
            [
                Target("sum by (receiver) (rate(otelcol_receiver_refused_metric_points[$__rate_interval]))", "refused {{receiver}}"),
                Target("sum by (receiver) (rate(otelcol_receiver_failed_metric_points[$__rate_interval]))", "failed {{receiver}}"),
            ],
            needs=(TRAINING,), width=8, min=0,
            thresholds=[Threshold(0.001, RED)],
        ),
        Panel(
            "Prometheus: samples ingested",
            "Samples per second appended to Prometheus's head block (OTLP pushes plus scrapes).",
            "none",
            [Target("sum by (job) (rate(prometheus_tsdb_head_samples_appended_total[$__rate_interval]))", "{{job}}")],
            needs=(ANY,), width=8, min=0,
        ),
        Panel(
            "Prometheus: active series",
            "Series in Prometheus's head block. A training run adds about 40 series, a serving run 94; a steady "
            "climb with every run means a label with unbounded values, a step a flood. The red line is the lab's "
            "memory budget (about 400 MiB).",
            "none",
            [Target("max by (job) (prometheus_tsdb_head_series)", "{{job}}")],
            needs=(ANY,), width=8, min=0,
            thresholds=[Threshold(HEAD_SERIES_LIMIT, RED, alert="MLLabHeadSeriesHigh")],
            runbooks=["MLLabSeriesGrowth", "MLLabHeadSeriesHigh"],
        ),
        Panel(
            "Alert delivery",
            "Rule-evaluation failures and alert notifications Prometheus could not deliver (errors, drops), and "
            "notifications Alertmanager failed to send to the webhook sink. All should be 0.",
            "none",
            [
                Target("sum by (job) (rate(prometheus_rule_evaluation_failures_total[$__rate_interval]))", "rule evaluation failures"),
                Target("sum by (job) (rate(prometheus_notifications_errors_total[$__rate_interval]))", "notification errors"),
                Target("sum by (job) (rate(prometheus_notifications_dropped_total[$__rate_interval]))", "notifications dropped"),
                Target("sum by (job) (rate(alertmanager_notifications_failed_total[$__rate_interval]))", "alertmanager send failures"),
            ],
            needs=(ANY,), width=8, min=0,
            thresholds=[Threshold(0.001, RED)],
        ),
    ]


def dashboard(runbooks_base: str) -> Dashboard:
    return Dashboard(
        uid="ml-lab-overview",
        title="ML Lab / Overview",
        folder="ml-lab",
        filename="overview.json",
        description="Start here: which runs are live, which alerts fire (with runbooks), and whether the "
        "telemetry pipeline (collector, Prometheus, Alertmanager, data freshness) is healthy.",
        tags=["ml-lab", "overview"],
        items=panels(),
        variables=run_variables("ml_training_steps_total", runbooks_base),
        links=[{"title": "ML Lab dashboards", "type": "dashboards", "tags": ["ml-lab"], "asDropdown": True,
                "includeVars": True, "keepTime": True, "icon": "external link", "targetBlank": False, "tooltip": "",
                "url": ""}],
    )
