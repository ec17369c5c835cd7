"""Scenario files: schema, fix merge, --set overrides and the errors a user sees."""

import pytest

from lab.specs.base import SpecError
from lab.specs.loader import UnknownScenario, build_spec, known_scenarios, load_scenario


def test_every_scenario_file_is_valid_and_tells_its_story():
    names = known_scenarios()
    assert "overfit" in names
    for name in names:
        spec = load_scenario(name)
        assert spec.name == name
        assert spec.story.what_you_will_see and spec.story.root_cause and spec.story.what_to_do
        if getattr(spec, "faults", None) or getattr(spec, "shifts", None) or spec.has_fix:  # training faults or inference shifts
            assert spec.alerts, f"{name}: a fault scenario names the alert(s) it should fire"
        else:
            assert spec.alerts == [], f"{name}: a baseline without faults or a fix fires nothing"
        assert all(a.startswith("MLLab") for a in spec.alerts)
        if spec.has_fix:
            fixed = load_scenario(name, fix=True)
            assert fixed.variant == "fix" and fixed.alerts == []
            assert spec.story.fix, f"{name}: describe what --fix changes"


def test_fix_deep_merges_over_the_base(tiny_raw):
    base = build_spec(tiny_raw)
    fixed = build_spec(tiny_raw, fix=True)
    assert base.model.dropout == 0.0 and fixed.model.dropout == 0.2
    assert fixed.model.hidden == base.model.hidden  # untouched keys survive the merge


def test_fix_on_a_scenario_without_one_is_an_error(tiny_raw):
    del tiny_raw["fix"]
    with pytest.raises(SpecError, match="no fix variant"):
        build_spec(tiny_raw, fix=True)


def test_overrides_are_typed_and_validated(tiny_raw):
    spec = build_spec(tiny_raw, overrides=["optimizer.lr=3e-3", "model.hidden=[8, 8, 8]", "optimizer.name=sgd"])
    assert spec.optimizer.lr == pytest.approx(3e-3)
    assert spec.model.hidden == [8, 8, 8]
    assert spec.optimizer.name == "sgd"


def test_invalid_choice_names_the_field_and_the_allowed_values(tiny_raw):
    with pytest.raises(SpecError) as err:
        build_spec(tiny_raw, overrides=["model.activation=swish"])
    msg = str(err.value)
    assert "model.activation" in msg and "swish" in msg
    for allowed in ("relu", "leaky_relu", "tanh", "gelu"):
        assert allowed in msg


def test_unknown_and_out_of_range_settings_are_rejected(tiny_raw):
    with pytest.raises(SpecError) as err:
        build_spec(tiny_raw, overrides=["train.epoch=3", "optimizer.lr=-1"])
    msg = str(err.value)
    assert "train.epoch: unknown setting" in msg
    assert "optimizer.lr" in msg and "greater than 0" in msg


def test_malformed_override():
    with pytest.raises(SpecError, match="KEY=VALUE"):
        build_spec({"name": "x", "title": "t", "story": {"what_you_will_see": "a", "root_cause": "b", "what_to_do": "c"}},
                   overrides=["optimizer.lr"])


def test_unknown_scenario_lists_the_known_ones():
    with pytest.raises(UnknownScenario) as err:
        load_scenario("overfitt")
    assert "overfitt" in str(err.value)
    for name in known_scenarios():
        assert name in str(err.value)


def test_faults_are_a_tagged_union(tiny_raw):
    tiny_raw["faults"] = [{"kind": "lr_burst", "at_step": 10, "steps": 2, "factor": 30.0}]
    spec = build_spec(tiny_raw)
    assert spec.faults[0].factor == 30.0
    tiny_raw["faults"] = [{"kind": "gremlins", "at_step": 10}]
    with pytest.raises(SpecError, match="faults"):
        build_spec(tiny_raw)
