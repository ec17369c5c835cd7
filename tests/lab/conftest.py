import pytest

from lab.config import build_spec

# A tiny but real scenario for fast unit tests: 2 hidden layers on digits.
TINY = {
    "name": "tiny",
    "title": "tiny test scenario",
    "data": {"dataset": "digits", "train_size": 200, "val_size": 200},
    "model": {"hidden": [32, 16], "init": "he_normal"},
    "train": {"epochs": 3, "batch_size": 32, "eval_every": 5},
    "story": {"what_you_will_see": "x", "root_cause": "y", "what_to_do": "z"},
    "fix": {"model": {"dropout": 0.2}},
}


@pytest.fixture
def tiny_raw():
    import copy

    return copy.deepcopy(TINY)


@pytest.fixture
def tiny_spec(tiny_raw):
    return build_spec(tiny_raw, source="tiny")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # As `lab run` does: small models run faster on one thread, and a busy second
    # core (the stack, a build) makes multi-threaded spin-waits crawl.
    import torch

    torch.set_num_threads(1)
