"""The numeric command-line options every command shares, validated one way (`lab run`, `lab triage start|fix`).

Each converter is an argparse ``type=``: it accepts only finite numbers inside the
documented range and otherwise raises ``argparse.ArgumentTypeError``, which argparse turns
into ``lab run: error: argument --speed: ...`` and exit status 2 before anything starts
(no case is opened, no model is trained). Foundation layer: imports nothing of lab.
"""

from __future__ import annotations

import argparse
import math

# Seeds feed torch, numpy and scikit-learn (whose random_state must fit in 32 bits, after
# the loops add small offsets): one range for every command.
SEED_MIN, SEED_MAX = 0, 2**31 - 1
# Pace multiplier of paced runs: 1/100 of the scenario's pace up to 1000 times it.
SPEED_MIN, SPEED_MAX = 0.01, 1000.0


def seed(text: str) -> int:
    """A seed: an integer in [SEED_MIN, SEED_MAX]."""
    try:
        v = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number from {SEED_MIN} to {SEED_MAX}, got {text!r}") from None
    if not SEED_MIN <= v <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"expected a whole number from {SEED_MIN} to {SEED_MAX}, got {text!r}")
    return v


def speed(text: str) -> float:
    """A pace multiplier: a finite number in [SPEED_MIN, SPEED_MAX]."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from {SPEED_MIN:g} to {SPEED_MAX:g}, got {text!r}") from None
    if not (math.isfinite(v) and SPEED_MIN <= v <= SPEED_MAX):
        raise argparse.ArgumentTypeError(f"expected a number from {SPEED_MIN:g} to {SPEED_MAX:g}, got {text!r}")
    return v
