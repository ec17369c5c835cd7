"""The inference loop every inference scenario uses: a model in production and its monitors.

A small torch classifier (lab/serving/model.py) is trained on reference data, then
serves a stream of requests, one at a time or in the batches its server's configuration
forms (spec.server: a release can turn dynamic batching on mid-run). The stream's inputs (and, for concept
drift, its labels) follow the scenario's schedule; true labels arrive
`stream.label_delay` requests after the prediction. Every `stream.window_size`
requests the drift monitor (lab/serving/drift.py) compares the window's inputs and
the model's confidences with the reference, and accuracy and calibration are measured
on the latest labels. Observers (lab/telemetry/observer.py: a request is the unit, a
drift window the report) see every request and window; nothing here writes a signal
value of its own making.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lab.serving.drift import DriftMonitor, FeatureDrift, OutputMonitor, WindowReport
from lab.serving.model import expected_calibration_error, initial_model, predict_proba, train_classifier
from lab.specs.serving import FEATURES, ConceptShift, CovariateShift, InferenceSpec, MissingInput
from lab.telemetry.observer import Observer
from lab.thresholds import ACCURACY_DROP, LATENCY_OBJECTIVE_S

MIN_LABELS = 100  # accuracy and ECE on fewer labels are too noisy to show
MIN_RETRAIN = 1000  # labelled requests needed before a retrain
# After a retrain the drift monitor compares with the inputs of the newest windows served, not with
# the labelled rows the model retrained on: those lag label_delay requests and, under a gradual
# shift, mix several windows of the ramp, so a stream that has stopped moving still differs from
# them by a fraction of a standard deviation (enough for KS to flag 3 windows in a row on 4 of
# 50 seeds). Two windows: a reference of ~1000 rows, the size of the smallest retrain.
REFERENCE_WINDOWS = 2
MAX_BATCH = 100  # --fast: queued requests answered by one forward pass
ALARMS = ("input_drift", "accuracy")  # the monitors a retrain can be triggered by


@dataclass
class RequestRecord:
    index: int
    window: int
    outcome: str  # ok | error
    error_type: str | None
    prediction: int | None
    confidence: float
    latency_s: float
    model_version: int
    start_ns: int
    end_ns: int

    @property
    def clock(self) -> int:
        """Position on the paced clock, in requests (request i arrives at i / requests per second)."""
        return self.index


@dataclass
class WindowRecord:
    index: int
    true_shift: dict[str, float]  # the injected mean shift per moved feature (reference SDs): ground truth for teaching
    concept_share: float  # share of the concept region relabelled
    report: WindowReport
    output: FeatureDrift
    accuracy: float  # NaN until MIN_LABELS labels of the current model arrived
    ece: float
    labels: int  # labels the accuracy is computed on
    labels_total: int  # labels received since the start of the run
    baseline_accuracy: float
    requests: int
    errors: int
    model_version: int
    elapsed_s: float
    start_ns: int
    end_ns: int
    slow_share: float = 0.0  # share of the window's requests answered later than LATENCY_OBJECTIVE_S

    @property
    def error_share(self) -> float:
        """Share of the window's requests that failed."""
        return self.errors / self.requests if self.requests else 0.0


@dataclass
class ServeEvent:
    name: str  # retrain
    window: int
    message: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServeResult:
    spec: InferenceSpec
    seed: int
    windows: list[WindowRecord] = field(default_factory=list)
    events: list[ServeEvent] = field(default_factory=list)
    baseline_accuracy: float = math.nan
    baseline_ece: float = math.nan
    requests: int = 0
    errors: int = 0
    stopped: str = "completed"  # completed | interrupted
    train_s: float = 0.0
    wall_s: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def units(self) -> int:
        """Units of work done (the observer protocol's unit: a request)."""
        return self.requests


@dataclass(slots=True)
class PendingLabel:
    """A served prediction waiting for its true label."""

    due: int  # request index after which the label arrives
    x: np.ndarray
    y: int
    prediction: int
    confidence: float
    model_version: int
    served: int  # the request's own index


@dataclass
class WindowTraffic:
    """One window's requests as they arrive: inputs (some invalid) and the true labels."""

    x: np.ndarray
    y: np.ndarray
    true_shift: dict[str, float]
    concept_share: float


@dataclass
class Served:
    """What serving one window's requests gave: valid inputs, their confidences, rejections."""

    inputs: list[np.ndarray] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    errors: int = 0
    slow: int = 0  # answered later than LATENCY_OBJECTIVE_S


# -- the schedule ----------------------------------------------------------------------

def _ramp(start: int, end: int | None, w: int) -> float:
    if w < start:
        return 0.0
    if end is None or end <= start:
        return 1.0
    return min(1.0, (w - start) / (end - start))


def schedule(spec: InferenceSpec, w: int) -> tuple[np.ndarray, np.ndarray, list[tuple[ConceptShift, float]]]:
    """Additive shift and spread factor per feature, and the active concept shifts, at window w."""
    add = np.zeros(len(FEATURES), dtype=np.float32)
    mul = np.ones(len(FEATURES), dtype=np.float32)
    concepts = []
    for s in spec.shifts:
        if isinstance(s, MissingInput):  # not a change of values: _traffic drops the field
            continue
        r = _ramp(s.start_window, s.end_window, w)
        if isinstance(s, CovariateShift):
            for f in s.features:
                i = FEATURES.index(f)
                add[i] += r * s.magnitude
                mul[i] *= 1 + r * (s.scale - 1)
        elif isinstance(s, ConceptShift):
            concepts.append((s, r))
    return add, mul, concepts


# -- the server ------------------------------------------------------------------------

class Server:
    def __init__(self, spec: InferenceSpec, seed: int = 0, *, fast: bool = False, speed: float = 1.0,
                 observers: list[Observer] = (), max_windows: int | None = None,
                 progress: Callable[[str], None] | None = None):
        """progress: told what the set-up is doing (the terminal view's `note`), before the first window."""
        self.spec, self.seed, self.fast, self.speed = spec, seed, fast, speed
        self._progress = progress or (lambda text: None)
        self.observers = list(observers)
        self.windows = min(spec.stream.windows, max_windows or spec.stream.windows)
        self.result = ServeResult(spec, seed)
        self.model_version = 1
        self.rng = np.random.default_rng(seed + 7919)

    @property
    def planned_units(self) -> int:
        return self.windows * self.spec.stream.window_size

    # reference state: the model, its monitors and its baseline -----------------------
    def _adopt(self, model: nn.Module, x_ref: np.ndarray, x_hold: np.ndarray, y_hold: np.ndarray) -> None:
        self.model = model
        m = self.spec.monitor
        self.monitor = DriftMonitor({f: x_ref[:, i] for i, f in enumerate(FEATURES)}, n_bins=m.n_bins,
                                    correction=m.correction, alpha=m.alpha, decision=m.decision)
        p = predict_proba(model, x_hold)
        conf, pred = p.max(1), p.argmax(1)
        self.output_monitor = OutputMonitor(conf, n_bins=m.n_bins)
        self.baseline_accuracy = float((pred == y_hold).mean())
        self.baseline_ece = expected_calibration_error(conf, pred == y_hold)

    def _emit(self, name: str, window: int, message: str, **attrs: Any) -> None:
        ev = ServeEvent(name, window, message, attrs)
        self.result.events.append(ev)
        for o in self.observers:
            o.on_event(ev)

    # the loop -----------------------------------------------------------------------
    def run(self) -> ServeResult:
        self._begin()
        try:
            for w in range(self.windows):
                self._serve_window(w)
        except KeyboardInterrupt:
            self.result.stopped = "interrupted"
        self.result.wall_s = time.monotonic() - self._t_start
        for o in self.observers:
            o.on_end(self.result)
        return self.result

    def _begin(self) -> None:
        spec, res = self.spec, self.result
        self._t_start = time.monotonic()
        # No sizes here: practice mode shows this line too, and it must not fingerprint a case.
        self._progress("loading data and training the reference model (a few seconds), then serving it ...")
        world, model = initial_model(spec, self.seed)
        self._world = world
        self._medians = np.median(world.x_ref, axis=0).astype(world.x_ref.dtype)  # server.impute_missing
        self._adopt(model, world.x_ref, world.x_hold, world.y_hold)
        res.baseline_accuracy, res.baseline_ece = self.baseline_accuracy, self.baseline_ece
        res.train_s = time.monotonic() - self._t_start
        for o in self.observers:
            o.on_start(self)
        self._pending: deque[PendingLabel] = deque()
        self._recent: deque = deque(maxlen=spec.retrain.size)  # labelled (served index, x, y) for retraining
        self._newest_inputs: deque = deque(maxlen=REFERENCE_WINDOWS)  # valid inputs of the newest windows
        self._scored: deque = deque(maxlen=spec.stream.accuracy_window)  # (correct, confidence) of the current model
        self._streak = dict.fromkeys(ALARMS, 0)  # consecutive flagged windows per alarm
        self._streak_start = dict.fromkeys(ALARMS, 0)  # request index where the current streak began
        self._retrained_at: int | None = None  # requests served when the model last retrained
        self._interval = 1.0 / (spec.stream.requests_per_second * self.speed)
        self._t0 = time.monotonic()
        self._i = 0  # requests served
        self._n_labels = 0

    def _serve_window(self, w: int) -> None:
        w_start_ns = time.time_ns()
        sv = self.spec.server
        if w == sv.from_window and sv.from_window > 0:
            how = (f"dynamic batching (up to {sv.batch_max_size} requests, waiting up to {1000 * sv.batch_max_wait_s:g} ms)"
                   if sv.batching else "one request at a time")
            self._emit("release", w, f"window {w}: a new server release is live: {how}",
                       batch_max_size=sv.batch_max_size, batch_max_wait_s=sv.batch_max_wait_s)
        traffic = self._traffic(w)
        served = self._serve_requests(w, traffic)
        self.result.requests += len(traffic.y)
        self.result.errors += served.errors
        rec = self._check_window(w, traffic, served, w_start_ns)
        self._newest_inputs.append(served.inputs)
        self.result.windows.append(rec)
        for o in self.observers:
            o.on_report(rec)
        self._track_alarms(w, rec)
        if self.spec.retrain.enabled and self._maybe_retrain(w):
            self._scored.clear()
            self._streak = dict.fromkeys(ALARMS, 0)

    def _traffic(self, w: int) -> WindowTraffic:
        """Window w's requests: the stream moved by the schedule, concept labels flipped, some inputs broken."""
        st = self.spec.stream
        add, mul, concepts = schedule(self.spec, w)
        sl = slice(w * st.window_size, (w + 1) * st.window_size)
        x = self._world.x_stream[sl] * mul + add
        y = self._world.y_stream[sl].copy()
        share = 0.0
        for c, r in concepts:
            flip = (x[:, FEATURES.index(c.feature)] > c.above) & (self.rng.random(len(y)) < r)
            y[flip] = 1 - y[flip]
            share = max(share, r)
        bad = self.rng.random(len(y)) < st.invalid_rate
        x[bad, self.rng.integers(0, len(FEATURES), bad.sum())] = np.nan
        for s in self.spec.shifts:  # a client that stopped sending a field
            if isinstance(s, MissingInput) and w >= s.start_window:
                x[self.rng.random(len(y)) < s.share, FEATURES.index(s.feature)] = np.nan
        true_shift = {f: float(add[k]) for k, f in enumerate(FEATURES) if add[k] or mul[k] != 1}
        return WindowTraffic(x, y, true_shift, share)

    def _serve_requests(self, w: int, t: WindowTraffic) -> Served:
        """The window's requests, one forward pass per batch that _batches() forms."""
        label_delay = self.spec.stream.label_delay
        out = Served()
        x = self._impute(t.x) if self.spec.server.impute_missing else t.x
        for j0, j1, waits in self._batches(w, len(t.y)):
            recs = self._serve(self._i, w, x[j0:j1], waits)
            for j, rec in zip(range(j0, j1), recs):
                self.result.latencies.append(rec.latency_s)
                out.slow += rec.latency_s > LATENCY_OBJECTIVE_S
                if rec.outcome == "ok":
                    out.inputs.append(x[j])
                    out.confidences.append(rec.confidence)
                    self._pending.append(PendingLabel(rec.index + label_delay, x[j], int(t.y[j]), rec.prediction,
                                                      rec.confidence, rec.model_version, rec.index))
                else:
                    out.errors += 1
                for o in self.observers:
                    o.on_unit(rec)
            self._i += len(recs)
            self._collect_labels()
        return out

    def _impute(self, x: np.ndarray) -> np.ndarray:
        """Missing inputs replaced by their median in the training data (the first model's reference)."""
        return np.where(np.isnan(x), self._medians, x)

    def _batches(self, w: int, n: int):
        """(first, stop, queue wait of each) per forward pass over the window's n requests.

        Without batching, paced requests are answered one at a time as they arrive; --fast queues
        them all and answers up to MAX_BATCH per pass (throughput only: nobody waited). With the
        server's dynamic batching released, requests wait for their batch (_paced_batches)."""
        sv = self.spec.server
        if sv.batching and w >= sv.from_window:
            yield from (self._virtual_batches(n) if self.fast else self._paced_batches(n))
            return
        step = MAX_BATCH if self.fast else 1
        for j0 in range(0, n, step):
            self._pace()
            j1 = min(n, j0 + step)
            yield j0, j1, np.zeros(j1 - j0)

    def _paced_batches(self, n: int):
        """Dynamic batching on the wall clock, as a model server does it: the first request opens a
        batch, which goes when batch_max_size requests are in it or when the first has waited
        batch_max_wait_s. The server really waits; each request's wait is measured from its arrival on
        the paced clock (a server busy with the previous batch leaves it queued, as a real one would)."""
        sv = self.spec.server
        j0 = 0
        while j0 < n:
            self._pace()
            arrivals = [self._arrival(self._i)]
            deadline = arrivals[0] + sv.batch_max_wait_s
            j1 = j0 + 1
            while j1 < n and j1 - j0 < sv.batch_max_size:
                arrival = self._arrival(self._i + j1 - j0)
                if arrival >= deadline:
                    break
                time.sleep(max(0.0, arrival - time.monotonic()))
                arrivals.append(arrival)
                j1 += 1
            if j1 - j0 < sv.batch_max_size:  # not full: the timer sends it
                time.sleep(max(0.0, deadline - time.monotonic()))
            yield j0, j1, time.monotonic() - np.array(arrivals)
            j0 = j1

    def _virtual_batches(self, n: int):
        """The same batching policy on the paced clock's virtual time (--fast, recordings): request
        i arrives at i / requests_per_second, so each wait follows from the arrivals and the policy
        as it would on the wall clock; the forward pass itself is measured."""
        sv = self.spec.server
        dt = 1.0 / self.spec.stream.requests_per_second
        in_time = max(1, math.ceil(round(sv.batch_max_wait_s / dt, 9)))  # arrivals before the first one's deadline
        j0 = 0
        while j0 < n:
            size = min(n - j0, sv.batch_max_size, in_time)
            dispatch = (size - 1) * dt if size == sv.batch_max_size else sv.batch_max_wait_s
            yield j0, j0 + size, dispatch - dt * np.arange(size)
            j0 += size

    def _arrival(self, i: int) -> float:
        """When request i arrives on the paced clock (time.monotonic)."""
        return self._t0 + i * self._interval

    def _pace(self) -> None:
        if self.fast:
            return
        delay = self._arrival(self._i) - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _collect_labels(self) -> None:
        """Labels whose delay has passed arrive; the current model's predictions are scored."""
        while self._pending and self._pending[0].due < self._i:
            p = self._pending.popleft()
            self._recent.append((p.served, p.x, p.y))
            self._n_labels += 1
            if p.model_version == self.model_version:
                self._scored.append((p.prediction == p.y, p.confidence))

    def _check_window(self, w: int, t: WindowTraffic, served: Served, w_start_ns: int) -> WindowRecord:
        """The monitors on the window's inputs and confidences; accuracy and ECE on the latest labels."""
        xw = np.asarray(served.inputs)
        report = self.monitor.check({f: xw[:, k] for k, f in enumerate(FEATURES)})
        output = self.output_monitor.check(np.asarray(served.confidences))
        acc = ece = math.nan
        if len(self._scored) >= MIN_LABELS:
            corr = np.array([s[0] for s in self._scored])
            cf = np.array([s[1] for s in self._scored])
            acc, ece = float(corr.mean()), expected_calibration_error(cf, corr)
        return WindowRecord(w, t.true_shift, t.concept_share, report, output, acc, ece, len(self._scored), self._n_labels,
                            self.baseline_accuracy, len(t.y), served.errors, self.model_version,
                            time.monotonic() - self._t_start, w_start_ns, time.time_ns(), served.slow / max(1, len(t.y)))

    def _track_alarms(self, w: int, rec: WindowRecord) -> None:
        flagged = {"input_drift": rec.report.drifted, "accuracy": rec.accuracy < self.baseline_accuracy - ACCURACY_DROP}
        for k, on in flagged.items():
            if on and self._streak[k] == 0:
                self._streak_start[k] = w * self.spec.stream.window_size
            self._streak[k] = self._streak[k] + 1 if on else 0

    def _serve(self, i: int, w: int, rows: np.ndarray, waits: np.ndarray) -> list[RequestRecord]:
        """Answer queued requests: validate each, one forward pass for the valid ones. A request's
        latency is its wait in the batcher's queue (waits) and the pass; one that fails validation
        is rejected as it arrives."""
        t = time.perf_counter()
        valid = np.isfinite(rows).all(axis=1)  # input validation: the model never sees a row it cannot read
        conf = pred = None
        if valid.any():
            with torch.no_grad():
                p = torch.softmax(self.model(torch.from_numpy(np.ascontiguousarray(rows[valid]))), dim=1)
            conf, pred = p.max(1)
            conf, pred = conf.tolist(), pred.tolist()
        compute, end_ns = time.perf_counter() - t, time.time_ns()
        out, k = [], 0
        for j, ok in enumerate(valid):
            latency = compute + float(waits[j]) if ok else compute
            start_ns = end_ns - round(latency * 1e9)
            if ok:
                out.append(RequestRecord(i + j, w, "ok", None, pred[k], conf[k], latency, self.model_version, start_ns, end_ns))
                k += 1
            else:
                out.append(RequestRecord(i + j, w, "error", "invalid_input", None, math.nan, latency, self.model_version,
                                         start_ns, end_ns))
        return out

    def _maybe_retrain(self, w: int) -> bool:
        """Retrain on the labelled requests served since the change began (the fix for drift)."""
        rs = self.spec.retrain
        st = self.spec.stream
        due = [k for k in rs.trigger if self._streak[k] >= rs.patience]
        if due:
            # An accuracy alarm is raised by labels that arrive label_delay requests late: keep
            # only requests served after the newest label the first alarm saw (surely the new concept).
            since = min(self._streak_start[k] + (st.window_size - st.label_delay if k == "accuracy" else 0) for k in due)
        elif self._retrained_at is not None:
            # Once the stream has moved enough to retrain, it may still be moving: one flagged window
            # fewer is enough, on the requests served since that retrain (the regime the model already
            # follows). With the full patience, a drift that ended a few windows after the last
            # retrain stayed flagged on and off to the end of the run; a single window is not enough
            # either: ~1% of healthy windows are flagged, and the refreshed reference would then
            # hold that outlier window (docs/signals.md).
            due = [k for k in rs.trigger if self._streak[k] >= max(1, rs.patience - 1)]
            since = self._retrained_at
        if not due:
            return False
        rows = [(xl, yl) for served, xl, yl in self._recent if served >= since]
        if len(rows) < MIN_RETRAIN:
            return False
        x = np.stack([r[0] for r in rows])
        y = np.array([r[1] for r in rows], dtype=np.int64)
        cut = int(len(x) * 0.8)  # hold out the latest 20% for the new baseline and confidence reference
        # As many optimiser steps as the first model had (a few thousand samples need more epochs), at most 4x the epochs.
        epochs = min(4 * self.spec.model.epochs, math.ceil(self.spec.model.epochs * self.spec.data.reference_size / cut))
        model = train_classifier(x[:cut], y[:cut], self.spec.model, self.seed + w, epochs=epochs)
        old = self.baseline_accuracy
        self._adopt(model, np.stack([v for inputs in self._newest_inputs for v in inputs]), x[cut:], y[cut:])
        self.model_version += 1
        self._retrained_at = self._i
        self._emit("retrain", w, f"window {w}: retrained on {len(x)} labelled requests after {' and '.join(due)} alarms; "
                   f"baseline accuracy {old:.3f} -> {self.baseline_accuracy:.3f}",
                   trigger=",".join(due), samples=len(x), model_version=self.model_version,
                   baseline_accuracy=self.baseline_accuracy)
        return True
