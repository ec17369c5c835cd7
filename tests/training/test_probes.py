"""Activation probes: dead-unit ratio and mean, checked on hand-built networks."""

import math

import pytest
import torch

from lab.specs.training import ModelSpec
from lab.training.models import build_model
from lab.training.probes import probe_activations


def _model(activation="relu"):
    torch.manual_seed(0)
    return build_model(4, 3, ModelSpec(hidden=[10, 8], activation=activation))


def test_dead_ratio_counts_units_negative_for_every_probe_sample():
    m = _model()
    x = torch.rand(64, 4)
    lin1 = m.body.linear1
    with torch.no_grad():
        lin1.weight.zero_()
        lin1.bias.copy_(torch.tensor([-1.0] * 3 + [1.0] * 7))  # 3 of 10 units can never fire
    _, means, dead = probe_activations(m, x)
    assert dead["layer1"] == pytest.approx(0.3)
    assert means["layer1"] == pytest.approx(0.7)
    assert set(dead) == {"layer1", "layer2"}


def test_leaky_relu_dead_units_are_counted_from_pre_activations():
    m = _model("leaky_relu")
    with torch.no_grad():
        m.body.linear1.weight.zero_()
        m.body.linear1.bias.fill_(-2.0)
    _, means, dead = probe_activations(m, torch.rand(32, 4))
    assert dead["layer1"] == 1.0  # outputs are -0.02, never exactly 0, yet every unit is off
    assert means["layer1"] < 0


def test_non_finite_activations_give_nan_not_zero():
    m = _model()
    with torch.no_grad():
        m.body.linear1.weight.fill_(float("nan"))
    _, means, dead = probe_activations(m, torch.rand(16, 4))
    assert math.isnan(dead["layer1"]) and math.isnan(means["layer1"])


def test_probe_leaves_training_mode_and_hooks_as_they_were():
    m = _model()
    m.train()
    probe_activations(m, torch.rand(8, 4))
    assert m.training
    assert all(not mod._forward_hooks for mod in m.activations.values())



@pytest.mark.parametrize("norm", ["layernorm", "batchnorm"])
def test_probe_measures_the_normalised_pre_activation(norm):
    torch.manual_seed(0)
    m = build_model(4, 3, ModelSpec(hidden=[10, 8], norm=norm))
    assert [n for n, _ in m.body.named_children()][:3] == ["linear1", "norm1", "layer1"]
    with torch.no_grad():
        m.body.norm1.bias.fill_(-50.0)  # shift every normalised unit far below zero
    _, _, dead = probe_activations(m, torch.rand(64, 4))
    assert dead["layer1"] == 1.0 and dead["layer2"] < 1.0


def test_invalid_norm_names_the_allowed_values(tiny_raw):
    from lab.specs.base import SpecError
    from lab.specs.loader import build_spec

    tiny_raw["model"] = {"norm": "groupnorm"}
    with pytest.raises(SpecError, match=r"model\.norm.*'none', 'layernorm' or 'batchnorm'"):
        build_spec(tiny_raw)
