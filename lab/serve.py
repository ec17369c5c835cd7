"""The inference loop every inference scenario uses: a model in production and its monitors.

A small torch classifier is trained on reference data (generated in code, with named
features), then serves a stream of requests one at a time. The stream's inputs (and,
for concept drift, its labels) follow the scenario's schedule; true labels arrive
`stream.label_delay` requests after the prediction. Every `stream.window_size`
requests the drift monitor (lab/drift.py) compares the window's inputs and the
model's confidences with the reference, and accuracy and calibration are measured on
the latest labels. Observers (telemetry, the terminal) see every request and window;
nothing here writes a signal value of its own making.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from lab.drift import DriftMonitor, FeatureDrift, OutputMonitor, WindowReport
from lab.inference_config import FEATURES, ConceptShift, CovariateShift, InferenceSpec, ServeDataSpec, ServeModelSpec
from lab.signals import ACCURACY_DROP, SUSTAINED_WINDOWS

N_INFORMATIVE = 5  # make_classification(shuffle=False) puts the informative features first
ECE_BINS = 10
MIN_LABELS = 100  # accuracy and ECE on fewer labels are too noisy to show
MIN_RETRAIN = 1000  # labelled requests needed before a retrain
MAX_BATCH = 100  # --fast: queued requests answered by one forward pass


# -- data, model, calibration -----------------------------------------------------------

@dataclass(frozen=True)
class World:
    x_ref: np.ndarray
    y_ref: np.ndarray
    x_hold: np.ndarray
    y_hold: np.ndarray
    x_stream: np.ndarray
    y_stream: np.ndarray


def make_world(data: ServeDataSpec, n_stream: int, seed: int) -> World:
    """Reference, held-out and stream samples from one data-generating process.

    The process depends on data.data_seed only; the run seed decides which samples go where.
    Features are standardised with the reference's mean and standard deviation, as a
    serving pipeline's scaler would be.
    """
    from sklearn.datasets import make_classification

    n = data.reference_size + data.holdout_size + n_stream
    x, y = make_classification(n_samples=n, n_features=len(FEATURES), n_informative=N_INFORMATIVE, n_redundant=0,
                               n_classes=2, flip_y=data.label_noise, class_sep=data.class_sep, shuffle=False,
                               random_state=data.data_seed)
    order = np.random.default_rng(seed).permutation(n)
    x, y = x[order], y[order].astype(np.int64)
    r, h = data.reference_size, data.reference_size + data.holdout_size
    mean, std = x[:r].mean(0), x[:r].std(0)
    x = ((x - mean) / std).astype(np.float32)
    return World(x[:r], y[:r], x[r:h], y[r:h], x[h:], y[h:])


def build_classifier(spec: ServeModelSpec, n_in: int = len(FEATURES), n_out: int = 2) -> nn.Module:
    layers: list[nn.Module] = []
    width = n_in
    for h in spec.hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, n_out))


def train_classifier(x: np.ndarray, y: np.ndarray, spec: ServeModelSpec, seed: int, *, epochs: int | None = None) -> nn.Module:
    torch.manual_seed(seed)
    model = build_classifier(spec)
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs or spec.epochs):
        for idx in torch.randperm(len(xt), generator=g).split(spec.batch_size):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


@functools.lru_cache(maxsize=8)
def _initial(data_json: str, model_json: str, n_stream: int, seed: int):
    data, mspec = ServeDataSpec.model_validate_json(data_json), ServeModelSpec.model_validate_json(model_json)
    world = make_world(data, n_stream, seed)
    return world, train_classifier(world.x_ref, world.y_ref, mspec, seed)


def initial_model(spec: InferenceSpec, seed: int) -> tuple[World, nn.Module]:
    """The world and the model trained on its reference; cached per process (tests run many scenarios per seed)."""
    n_stream = spec.stream.windows * spec.stream.window_size
    world, model = _initial(spec.data.model_dump_json(), spec.model.model_dump_json(), n_stream, seed)
    return world, copy.deepcopy(model)


def predict_proba(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))), dim=1).numpy()


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE: sum over equal-width confidence bins of (share of samples) * |accuracy - mean confidence|.

    Bin i is (i/n_bins, (i+1)/n_bins]; a confidence of exactly 0 goes to the first bin.
    """
    conf = np.asarray(confidence, dtype=float)
    corr = np.asarray(correct, dtype=float)
    if conf.size == 0 or conf.size != corr.size:
        raise ValueError(f"expected_calibration_error needs equal, non-empty inputs (got {conf.size} and {corr.size})")
    idx = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in np.unique(idx):
        m = idx == b
        total += m.sum() / conf.size * abs(corr[m].mean() - conf[m].mean())
    return float(total)


# -- records and observers -------------------------------------------------------------

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


class ServeObserver(Protocol):
    def on_start(self, server: "Server") -> None: ...
    def on_request(self, rec: RequestRecord) -> None: ...
    def on_window(self, rec: WindowRecord) -> None: ...
    def on_event(self, ev: ServeEvent) -> None: ...
    def on_end(self, result: ServeResult) -> None: ...


class BaseServeObserver:
    def on_start(self, server: "Server") -> None: pass
    def on_request(self, rec: RequestRecord) -> None: pass
    def on_window(self, rec: WindowRecord) -> None: pass
    def on_event(self, ev: ServeEvent) -> None: pass
    def on_end(self, result: ServeResult) -> None: pass


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
        r = _ramp(s.start_window, s.end_window, w)
        if isinstance(s, CovariateShift):
            for f in s.features:
                i = FEATURES.index(f)
                add[i] += r * s.magnitude
                mul[i] *= 1 + r * (s.scale - 1)
        else:
            concepts.append((s, r))
    return add, mul, concepts


# -- the server ------------------------------------------------------------------------

class Server:
    def __init__(self, spec: InferenceSpec, seed: int = 0, *, fast: bool = False, speed: float = 1.0,
                 observers: list[ServeObserver] = (), max_windows: int | None = None):
        self.spec, self.seed, self.fast, self.speed = spec, seed, fast, speed
        self.observers = list(observers)
        self.windows = min(spec.stream.windows, max_windows or spec.stream.windows)
        self.result = ServeResult(spec, seed)
        self.model_version = 1
        self.rng = np.random.default_rng(seed + 7919)

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

    def run(self) -> ServeResult:
        spec, st, res = self.spec, self.spec.stream, self.result
        t_start = time.monotonic()
        world, model = initial_model(spec, self.seed)
        self._adopt(model, world.x_ref, world.x_hold, world.y_hold)
        res.baseline_accuracy, res.baseline_ece = self.baseline_accuracy, self.baseline_ece
        res.train_s = time.monotonic() - t_start
        for o in self.observers:
            o.on_start(self)
        pending: deque = deque()  # (due request index, x, y, prediction, confidence, model version, served index)
        recent: deque = deque(maxlen=spec.retrain.size)  # labelled (served index, x, y) for retraining
        scored: deque = deque(maxlen=st.accuracy_window)  # (correct, confidence) of the current model
        streak = {"input_drift": 0, "accuracy": 0}
        streak_start = {"input_drift": 0, "accuracy": 0}
        interval = 1.0 / (st.requests_per_second * self.speed)
        t0 = time.monotonic()
        i = n_labels = 0
        try:
            for w in range(self.windows):
                w_start_ns = time.time_ns()
                add, mul, concepts = schedule(spec, w)
                sl = slice(w * st.window_size, (w + 1) * st.window_size)
                x = world.x_stream[sl] * mul + add
                y = world.y_stream[sl].copy()
                share = 0.0
                for c, r in concepts:
                    flip = (x[:, FEATURES.index(c.feature)] > c.above) & (self.rng.random(len(y)) < r)
                    y[flip] = 1 - y[flip]
                    share = max(share, r)
                bad = self.rng.random(len(y)) < st.invalid_rate
                x[bad, self.rng.integers(0, len(FEATURES), bad.sum())] = np.nan
                inputs, confs, errors = [], [], 0
                # Paced: requests arrive one at a time. Fast: all are queued at once and the server
                # answers up to MAX_BATCH queued requests with one forward pass (dynamic batching).
                step = MAX_BATCH if self.fast else 1
                for j0 in range(0, len(y), step):
                    if not self.fast:
                        delay = t0 + i * interval - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                    recs = self._serve(i, w, x[j0:j0 + step])
                    for j, rec in zip(range(j0, j0 + step), recs):
                        res.latencies.append(rec.latency_s)
                        if rec.outcome == "ok":
                            inputs.append(x[j])
                            confs.append(rec.confidence)
                            pending.append((rec.index + st.label_delay, x[j], int(y[j]), rec.prediction, rec.confidence,
                                            rec.model_version, rec.index))
                        else:
                            errors += 1
                        for o in self.observers:
                            o.on_request(rec)
                    i += len(recs)
                    while pending and pending[0][0] < i:
                        _, xl, yl, pl, cl, vl, served = pending.popleft()
                        recent.append((served, xl, yl))
                        n_labels += 1
                        if vl == self.model_version:
                            scored.append((pl == yl, cl))
                res.requests += len(y)
                res.errors += errors
                xw = np.asarray(inputs)
                report = self.monitor.check({f: xw[:, k] for k, f in enumerate(FEATURES)})
                output = self.output_monitor.check(np.asarray(confs))
                acc = ece = math.nan
                if len(scored) >= MIN_LABELS:
                    corr, cf = np.array([s[0] for s in scored]), np.array([s[1] for s in scored])
                    acc, ece = float(corr.mean()), expected_calibration_error(cf, corr)
                rec = WindowRecord(w, {f: float(add[k]) for k, f in enumerate(FEATURES) if add[k] or mul[k] != 1},
                                   share, report, output, acc, ece, len(scored), n_labels, self.baseline_accuracy, len(y), errors,
                                   self.model_version, time.monotonic() - t_start, w_start_ns, time.time_ns())
                res.windows.append(rec)
                for o in self.observers:
                    o.on_window(rec)
                flags = {"input_drift": report.drifted, "accuracy": acc < self.baseline_accuracy - ACCURACY_DROP}
                for k, flagged in flags.items():
                    if flagged and streak[k] == 0:
                        streak_start[k] = w * st.window_size
                    streak[k] = streak[k] + 1 if flagged else 0
                if spec.retrain.enabled:
                    if self._maybe_retrain(w, streak, streak_start, recent):
                        scored.clear()
                        streak = {"input_drift": 0, "accuracy": 0}
        except KeyboardInterrupt:
            res.stopped = "interrupted"
        res.wall_s = time.monotonic() - t_start
        for o in self.observers:
            o.on_end(res)
        return res

    def _serve(self, i: int, w: int, rows: np.ndarray) -> list[RequestRecord]:
        """Answer queued requests: validate each, one forward pass for the valid ones."""
        start_ns = time.time_ns()
        t = time.perf_counter()
        valid = np.isfinite(rows).all(axis=1)  # input validation: the model never sees a row it cannot read
        conf = pred = None
        if valid.any():
            with torch.no_grad():
                p = torch.softmax(self.model(torch.from_numpy(np.ascontiguousarray(rows[valid]))), dim=1)
            conf, pred = p.max(1)
            conf, pred = conf.tolist(), pred.tolist()
        latency, end_ns = time.perf_counter() - t, time.time_ns()
        out, k = [], 0
        for j, ok in enumerate(valid):
            if ok:
                out.append(RequestRecord(i + j, w, "ok", None, pred[k], conf[k], latency, self.model_version, start_ns, end_ns))
                k += 1
            else:
                out.append(RequestRecord(i + j, w, "error", "invalid_input", None, math.nan, latency, self.model_version,
                                         start_ns, end_ns))
        return out

    def _maybe_retrain(self, w: int, streak: dict, streak_start: dict, recent: deque) -> bool:
        """Retrain on the labelled requests served since the change began (the fix for drift)."""
        rs = self.spec.retrain
        due = [k for k in rs.trigger if streak[k] >= rs.patience]
        if not due:
            return False
        st = self.spec.stream
        # An accuracy alarm is raised by labels that arrive label_delay requests late: keep
        # only requests served after the newest label the first alarm saw (surely the new concept).
        since = min(streak_start[k] + (st.window_size - st.label_delay if k == "accuracy" else 0) for k in due)
        rows = [(xl, yl) for served, xl, yl in recent if served >= since]
        if len(rows) < MIN_RETRAIN:
            return False
        x = np.stack([r[0] for r in rows])
        y = np.array([r[1] for r in rows], dtype=np.int64)
        cut = int(len(x) * 0.8)  # hold out the latest 20% for the new baseline and confidence reference
        # As many optimiser steps as the first model had (a few thousand samples need more epochs), at most 4x the epochs.
        epochs = min(4 * self.spec.model.epochs, math.ceil(self.spec.model.epochs * self.spec.data.reference_size / cut))
        model = train_classifier(x[:cut], y[:cut], self.spec.model, self.seed + w, epochs=epochs)
        old = self.baseline_accuracy
        self._adopt(model, x, x[cut:], y[cut:])
        self.model_version += 1
        self._emit("retrain", w, f"window {w}: retrained on {len(x)} labelled requests after {' and '.join(due)} alarms; "
                   f"baseline accuracy {old:.3f} -> {self.baseline_accuracy:.3f}",
                   trigger=",".join(due), samples=len(x), model_version=self.model_version,
                   baseline_accuracy=self.baseline_accuracy)
        return True
