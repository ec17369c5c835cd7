"""Activation statistics on a fixed probe batch: per-layer mean and dead-unit ratio.

Hooks are attached only for the evaluation pass (the validation set is the probe
batch), so ordinary training steps pay nothing and evaluation pays one forward pass.
"""

from __future__ import annotations

import math

import torch

from lab.training.models import MLP


@torch.no_grad()
def probe_activations(model: MLP, x_probe: torch.Tensor) -> tuple[torch.Tensor, dict[str, float], dict[str, float]]:
    """Return (logits, {layer: mean activation}, {layer: dead ratio}) for one eval-mode pass.

    A unit is dead when its pre-activation is <= 0 for every probe sample. Using the
    pre-activation (not "output == 0") makes the count honest for LeakyReLU too,
    whose outputs are never exactly zero. Non-finite activations give NaN, never 0%.
    """
    captured: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = [
        module.register_forward_hook(lambda _m, inp, out, name=name: captured.__setitem__(name, (inp[0], out)))
        for name, module in model.activations.items()
    ]
    was_training = model.training
    model.eval()  # dropout off: the probe measures the network, not the noise
    try:
        logits = model(x_probe)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    means: dict[str, float] = {}
    dead: dict[str, float] = {}
    for name, (pre, post) in captured.items():
        if not (torch.isfinite(pre).all() and torch.isfinite(post).all()):
            means[name] = dead[name] = math.nan
            continue
        means[name] = post.mean().item()
        dead[name] = (pre <= 0).all(dim=0).float().mean().item()
    return logits, means, dead
