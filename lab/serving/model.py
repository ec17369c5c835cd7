"""The served model's world: reference, held-out and stream data from one process, the
classifier trained on the reference, and its calibration error.

Features are generated in code (scikit-learn make_classification) and named like a
credit-risk model's inputs (lab.specs.serving.FEATURES).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lab.specs.serving import FEATURES, InferenceSpec, ServeDataSpec, ServeModelSpec

N_INFORMATIVE = 5  # make_classification(shuffle=False) puts the informative features first
ECE_BINS = 10


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
