"""Small networks whose layers carry stable, bounded names (used as the `layer` attribute)."""

from __future__ import annotations

import torch
from torch import nn

from lab.specs.training import ModelSpec

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


_NORMS = {"layernorm": nn.LayerNorm, "batchnorm": nn.BatchNorm1d}


class MLP(nn.Module):
    """Linear (-> norm) -> activation (-> dropout) per hidden layer, then a linear head.

    Hidden layers are named layer1, layer2, ...; `activations` maps those names to
    the activation modules that probes hook.
    """

    def __init__(self, n_in: int, n_out: int, spec: ModelSpec):
        super().__init__()
        self.body = nn.Sequential()
        self.activations: dict[str, nn.Module] = {}
        width = n_in
        for i, h in enumerate(spec.hidden, start=1):
            lin = nn.Linear(width, h)
            if spec.init == "he_normal":
                nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
                nn.init.zeros_(lin.bias)
            if spec.bias_init:
                nn.init.constant_(lin.bias, spec.bias_init)
            act = _ACTIVATIONS[spec.activation]()
            self.body.add_module(f"linear{i}", lin)
            if spec.norm != "none":
                self.body.add_module(f"norm{i}", _NORMS[spec.norm](h))
            self.body.add_module(f"layer{i}", act)
            self.activations[f"layer{i}"] = act
            if spec.dropout:
                self.body.add_module(f"dropout{i}", nn.Dropout(spec.dropout))
            width = h
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def build_model(n_in: int, n_out: int, spec: ModelSpec) -> MLP:
    return MLP(n_in, n_out, spec)
