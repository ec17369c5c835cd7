"""Datasets: real data bundled with scikit-learn, or data generated in code. Nothing is downloaded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lab.specs.training import DataSpec


@dataclass(frozen=True)
class Splits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_features: int
    n_classes: int


def _raw(spec: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    if spec.dataset == "digits":
        from sklearn.datasets import load_digits  # ships with scikit-learn

        d = load_digits()
        return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=spec.n_samples,
        n_features=spec.n_features,
        n_informative=max(2, spec.n_features // 2),
        n_redundant=0,
        n_classes=spec.n_classes,
        flip_y=spec.label_noise,
        random_state=spec.split_seed,
    )
    x = (x - x.mean(0)) / x.std(0)
    return x.astype(np.float32), y.astype(np.int64)


def load_splits(spec: DataSpec, seed: int) -> Splits:
    """The validation set depends on split_seed only; the training subset on the run seed.

    The validation inputs double as the fixed probe batch for activation statistics,
    so one forward pass per evaluation gives both.
    """
    from sklearn.model_selection import train_test_split

    x, y = _raw(spec)
    if spec.val_size >= len(x):
        raise ValueError(f"data.val_size={spec.val_size} must be below the dataset size {len(x)}")
    x_pool, x_val, y_pool, y_val = train_test_split(
        x, y, test_size=spec.val_size, stratify=y, random_state=spec.split_seed
    )
    if spec.train_size is not None:
        if spec.train_size > len(x_pool):
            raise ValueError(f"data.train_size={spec.train_size} exceeds the {len(x_pool)} samples left after validation")
        if spec.train_size < len(x_pool):
            x_pool, _, y_pool, _ = train_test_split(
                x_pool, y_pool, train_size=spec.train_size, stratify=y_pool, random_state=seed
            )
    t = torch.from_numpy
    return Splits(
        x_train=t(np.ascontiguousarray(x_pool)),
        y_train=t(np.ascontiguousarray(y_pool)),
        x_val=t(np.ascontiguousarray(x_val)),
        y_val=t(np.ascontiguousarray(y_val)),
        n_features=x.shape[1],
        n_classes=int(y.max()) + 1,
    )
