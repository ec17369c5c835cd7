"""Record a run's metrics as Prometheus would store them, on the run's own clock.

    lab run overfit --fast --record overfit.json

A `--fast` run takes seconds, but its signals are meant to be seen over the minutes of
a paced run. The recorder reads the run's real OpenTelemetry instruments (the same
family's OTel observer that streams over OTLP, through an in-memory reader instead of
the OTLP exporter) once per lab interval of the run's *virtual* clock, unit / (pace x
speed) - a step of a training run, a request of an inference run: the moments the SDK
would export in a paced run. Each reading is translated the way
Prometheus's OTLP receiver does it (names, units, `_total`, histogram series, `job`,
`instance`, promoted resource attributes), so the recording holds the series Prometheus
would hold. lab/dev/replay.py turns a recording into a promtool test of the alert rules;
lab.families.record_run runs a scenario with the recorder.

Differences from a live run, by design: the final export is placed on the next interval
tick after the last step (live: whenever the run ends), and time spent evaluating is not
on the virtual clock (live pacing absorbs it when compute is faster than the pace).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from opentelemetry.sdk.metrics.export import Gauge, Histogram, InMemoryMetricReader, Sum
from pydantic_core import to_json

from lab.telemetry.observer import BaseObserver
from lab.telemetry.otel import LAB_INTERVAL_SECONDS

# Resource attributes promoted to labels (prometheus/prometheus.yml, otlp.promote_resource_attributes).
PROMOTED_RESOURCE_ATTRIBUTES = ("lab.scenario", "lab.variant")
# OTLP unit -> Prometheus name suffix (prometheus/otlptranslator, UnderscoreEscapingWithSuffixes).
# "1" becomes _ratio for gauges only; a unit in {braces} is an annotation and adds nothing.
UNIT_SUFFIXES = {"": "", "s": "seconds", "ms": "milliseconds", "By": "bytes", "%": "percent"}
FORMAT = "ml-lab-recording/1"


def _sanitize(text: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-zA-Z0-9_:]", "_", text))


def prometheus_name(name: str, unit: str, kind: str, monotonic: bool = False) -> str:
    """OTel instrument -> Prometheus metric name (histograms: the base of _bucket/_sum/_count)."""
    base = _sanitize(name)
    if unit.startswith("{") and unit.endswith("}"):
        suffix = ""
    elif unit == "1":
        suffix = "ratio" if kind == "gauge" else ""
    elif unit in UNIT_SUFFIXES:
        suffix = UNIT_SUFFIXES[unit]
    else:
        raise ValueError(f"unit {unit!r} of {name}: add its Prometheus suffix to lab.telemetry.record.UNIT_SUFFIXES")
    if suffix and not base.endswith("_" + suffix):
        base += "_" + suffix
    if kind == "counter" and monotonic:
        base += "_total"
    return base


def format_le(bound: float) -> str:
    """A bucket boundary as Prometheus writes it in `le` (Go strconv 'f', -1: 0.0005, 1, +Inf)."""
    if math.isinf(bound):
        return "+Inf"
    return np.format_float_positional(bound, trim="-")  # shortest round-trip digits, no exponent


def series_key(labels: dict[str, str]) -> str:
    name = labels["__name__"]
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}"


def translate(metrics_data) -> dict[str, float]:
    """One collection (MetricsData) -> {series key: value}, as Prometheus's OTLP receiver stores it."""
    out: dict[str, float] = {}
    for rm in metrics_data.resource_metrics:
        res = rm.resource.attributes
        ns, svc = res.get("service.namespace"), res.get("service.name")
        base_labels = {"job": f"{ns}/{svc}" if ns else str(svc), "instance": str(res.get("service.instance.id", ""))}
        for attr in PROMOTED_RESOURCE_ATTRIBUTES:
            if attr in res:
                base_labels[_sanitize(attr)] = str(res[attr])
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                data = m.data
                if isinstance(data, Histogram):
                    name = prometheus_name(m.name, m.unit or "", "histogram")
                    for p in data.data_points:
                        labels = {**base_labels, **{_sanitize(k): str(v) for k, v in p.attributes.items()}}
                        running = 0
                        for bound, count in zip([*p.explicit_bounds, math.inf], p.bucket_counts):
                            running += count
                            out[series_key({**labels, "__name__": name + "_bucket", "le": format_le(bound)})] = running
                        out[series_key({**labels, "__name__": name + "_sum"})] = p.sum
                        out[series_key({**labels, "__name__": name + "_count"})] = p.count
                    continue
                if isinstance(data, Sum):
                    name = prometheus_name(m.name, m.unit or "", "counter", data.is_monotonic)
                elif isinstance(data, Gauge):
                    name = prometheus_name(m.name, m.unit or "", "gauge")
                else:  # pragma: no cover - the lab has no other kinds
                    raise ValueError(f"{m.name}: unsupported metric data {type(data).__name__}")
                for p in data.data_points:
                    labels = {**base_labels, **{_sanitize(k): str(v) for k, v in p.attributes.items()},
                              "__name__": name}
                    out[series_key(labels)] = float(p.value)
    return out


def spec_digest(spec) -> str:
    """Fingerprint of a scenario's settings: a recording made from other settings is stale."""
    # exclude_defaults: a new optional setting elsewhere does not invalidate every recording.
    # has_fix is serialised last, where it stood before the kinds shared a header, so the
    # digests of the checked-in recordings stay valid.
    settings = spec.model_dump(exclude={"story"}, exclude_defaults=True)
    if "has_fix" in settings:
        settings["has_fix"] = settings.pop("has_fix")
    return hashlib.sha256(to_json(settings)).hexdigest()[:16]


@dataclass
class Recording:
    scenario: str
    variant: str
    seed: int
    interval_s: int
    steps_per_second: float
    spec_digest: str
    expected_alerts: list[str]
    steps: int = 0
    stopped: str = ""
    # The fix acts on the alarm (an inference fix retrains once drift or an accuracy drop has
    # held for a few windows): its alerts may fire, then must resolve.
    alarm_driven_fix: bool = False
    samples: list[dict[str, float]] = field(default_factory=list)  # one {series: value} per interval tick

    def series(self) -> dict[str, list[float | None]]:
        """{series key: one value per tick, None where the series had no sample}."""
        keys = sorted({k for s in self.samples for k in s})
        return {k: [s.get(k) for s in self.samples] for k in keys}

    def to_json(self) -> str:
        def enc(v):
            if v is None:
                return None
            if math.isnan(v):
                return "NaN"
            if math.isinf(v):
                return "+Inf" if v > 0 else "-Inf"
            return float(f"{v:.9g}")

        head = {k: getattr(self, k) for k in ("scenario", "variant", "seed", "interval_s", "steps_per_second",
                                             "spec_digest", "expected_alerts", "steps", "stopped", "alarm_driven_fix")}
        lines = [json.dumps({"format": FORMAT, **head})]
        lines += [json.dumps({"series": k, "values": [enc(v) for v in vals]}) for k, vals in self.series().items()]
        return "\n".join(lines) + "\n"

    @classmethod
    def load(cls, path: Path) -> "Recording":
        lines = path.read_text().splitlines()
        head = json.loads(lines[0])
        if head.pop("format", None) != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file")
        rec = cls(**head)
        series = [json.loads(ln) for ln in lines[1:] if ln.strip()]
        n = max((len(s["values"]) for s in series), default=0)
        rec.samples = [{} for _ in range(n)]
        for s in series:
            for i, v in enumerate(s["values"]):
                if v is not None:
                    rec.samples[i][s["series"]] = float(v) if not isinstance(v, str) else float(v.replace("Inf", "inf"))
        return rec


class Recorder(BaseObserver):
    """Collects the run's instruments once per lab interval of the virtual clock.

    Must come after the family's OTel observer in the observer list (the run session puts
    it first), so each unit's values are in the instruments before they are read.
    """

    def __init__(self, reader: InMemoryMetricReader, spec, seed: int, speed: float = 1.0,
                 interval_s: int = LAB_INTERVAL_SECONDS):
        self.reader = reader
        self.interval_s = interval_s
        self.units_per_s = spec.units_per_second * speed
        self.recording = Recording(spec.name, spec.variant, seed, interval_s, self.units_per_s, spec_digest(spec),
                                   list(spec.alerts), alarm_driven_fix=spec.alarm_driven_fix)
        self._next_tick = interval_s  # the SDK's first export comes one interval after start

    def _collect(self) -> None:
        self.recording.samples.append(translate(self.reader.get_metrics_data()))
        self._next_tick += self.interval_s

    def on_unit(self, rec) -> None:
        # The exporter thread would have fired at every tick passed since this unit's moment.
        while rec.clock / self.units_per_s >= self._next_tick:
            self._collect()

    def on_end(self, result) -> None:
        # The final export (Telemetry.shutdown in a live run), on the next tick.
        self._collect()
        self.recording.steps, self.recording.stopped = result.units, result.stopped


def recording_name(scenario: str, variant: str) -> str:
    return f"{scenario}.json" if variant == "fault" else f"{scenario}-{variant}.json"
