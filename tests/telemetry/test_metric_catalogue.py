"""docs/metrics.md and lab/telemetry/catalogue.py must describe the same instruments."""

import re

from lab.repo import ROOT
from lab.telemetry.catalogue import CATALOGUE, prometheus_series_count

DOC = ROOT / "docs" / "metrics.md"


def _rows():
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0].startswith(("`ml.", "`gen_ai.")):
            rows[cells[0].strip("`")] = cells
    return rows


def test_catalogue_page_lists_exactly_the_instruments_in_the_code():
    assert set(_rows()) == {i.name for i in CATALOGUE}


def test_each_row_matches_the_code():
    rows = _rows()
    for inst in CATALOGUE:
        name, kind, unit, attrs, prom, signal, cadence, meaning = rows[inst.name]
        assert kind == inst.kind, inst.name
        assert unit == (f"`{inst.unit}`" if inst.unit else "(none)"), inst.name
        assert re.findall(r"`([^`]+)`", attrs) == list(inst.attributes), inst.name
        assert prom == f"`{inst.prometheus}`", inst.name
        assert signal == inst.signal and cadence == inst.cadence, inst.name
        assert meaning == inst.description, inst.name


def test_every_classic_signal_is_covered():
    signals = " ".join(i.signal for i in CATALOGUE)
    for classic in ("training_loss", "validation_loss", "gradient_norm", "activation_mean",
                    "dead_neuron_ratio", "learning_rate", "accuracy", "step", "epoch"):
        assert classic in signals, classic


def test_the_documented_series_budget_of_a_bot_run_is_the_catalogues():
    budget = re.search(r"a bot run produces (\d+) series", DOC.read_text()).group(1)
    assert int(budget) == prometheus_series_count(family="generative")
