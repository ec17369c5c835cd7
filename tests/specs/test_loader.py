"""Scenario files: schema, fix merge, --set overrides and the errors a user sees."""

import json

import pytest

from lab.repo import ROOT
from lab.specs.base import SpecError
from lab.specs.loader import UnknownScenario, build_spec, known_scenarios, load_scenario, scenario_json_schema

SCHEMA_FILE = ROOT / "docs" / "scenario.schema.json"


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


# -- custom scenarios: base inheritance, --set rules ---------------------------------------------

def _write(directory, name, text):
    (directory / f"{name}.toml").write_text(text)


def test_base_inherits_every_field_including_title_story_alerts_faults_and_fix(tmp_path):
    for name in ("loss-spike", "healthy"):
        (tmp_path / f"{name}.toml").write_text((ROOT / "scenarios" / f"{name}.toml").read_text())
    _write(tmp_path, "my-spike", 'base = "loss-spike"\n[optimizer]\nlr = 2e-3\n')
    mine, theirs = load_scenario("my-spike", directory=tmp_path), load_scenario("loss-spike", directory=tmp_path)
    assert mine.name == "my-spike" and mine.optimizer.lr == 2e-3
    assert (mine.title, mine.story, mine.alerts, mine.faults, mine.has_fix) == \
        (theirs.title, theirs.story, theirs.alerts, theirs.faults, True)
    assert mine.model == theirs.model and mine.data == theirs.data  # through loss-spike's own base, healthy
    fixed = load_scenario("my-spike", fix=True, directory=tmp_path)
    assert mine.faults and fixed.faults == [] and fixed.train.grad_clip == 1.0  # the inherited [fix] applies
    assert (fixed.faults, fixed.train) == (load_scenario("loss-spike", fix=True, directory=tmp_path).faults,
                                           load_scenario("loss-spike", fix=True, directory=tmp_path).train)


def test_an_own_story_or_fix_replaces_the_base_one_whole(tmp_path):
    (tmp_path / "overfit.toml").write_text((ROOT / "scenarios" / "overfit.toml").read_text())
    _write(tmp_path, "mine", 'base = "overfit"\ntitle = "Mine"\n[story]\nwhat_you_will_see = "a"\nroot_cause = "b"\n'
                             'what_to_do = "c"\n[fix.model]\ndropout = 0.5\n')
    s = load_scenario("mine", directory=tmp_path)
    assert s.title == "Mine" and s.story.diagnosis == "" and s.story.hints == []  # nothing half-inherited
    fixed = load_scenario("mine", fix=True, directory=tmp_path)
    assert fixed.model.dropout == 0.5 and fixed.data.train_size == 150  # overfit's [fix.data] is not inherited


def test_a_base_cycle_is_an_error(tmp_path):
    _write(tmp_path, "a", 'base = "b"\n')
    _write(tmp_path, "b", 'base = "a"\n')
    with pytest.raises(SpecError, match="cycle: a -> b -> a"):
        load_scenario("a", directory=tmp_path)


def test_set_errors_name_set_and_not_the_file(tiny_raw):
    with pytest.raises(SpecError) as err:
        build_spec(tiny_raw, overrides=["optimizer.lr=-1"], source="scenarios/tiny.toml")
    msg = str(err.value)
    assert msg.startswith("invalid scenario settings in --set optimizer.lr=-1 (over scenarios/tiny.toml):")
    tiny_raw["optimizer"] = {"lr": -1}
    with pytest.raises(SpecError, match=r"^invalid scenario settings in scenarios/tiny.toml:"):
        build_spec(tiny_raw, overrides=["optimizer.lr=0.1"], source="scenarios/tiny.toml")  # the file is to blame


def test_an_unknown_key_lists_the_valid_ones(tiny_raw):
    with pytest.raises(SpecError) as err:
        build_spec(tiny_raw, overrides=["optimizer.learning_rate=0.1"])
    assert "optimizer.learning_rate: unknown setting; valid here: lr, momentum, name, weight_decay" in str(err.value)
    tiny_raw["bogus"] = 1
    with pytest.raises(SpecError) as err:
        build_spec(tiny_raw)
    top = str(err.value)
    assert "bogus: unknown setting; valid here: " in top and "base, data, faults, fix" in top and "has_fix" not in top
    tiny_raw.pop("bogus")
    tiny_raw["faults"] = [{"kind": "lr_burst", "at_step": 3, "factor": 2.0, "scale": 3}]
    with pytest.raises(SpecError, match=r"faults.0.scale: unknown setting; valid here: at_step, factor, kind, steps"):
        build_spec(tiny_raw)


@pytest.mark.parametrize("override", ["name=overfit", "kind=inference", "variant=fix", "has_fix=false",
                                      "story.diagnosis=healthy", "story={}"])
def test_identity_fields_cannot_be_set(tiny_raw, override):
    with pytest.raises(SpecError) as err:
        build_spec(tiny_raw, overrides=[override])
    assert f"--set {override!r}" in str(err.value) and "identity" in str(err.value)


def test_a_run_with_set_is_variant_custom(tiny_raw):
    assert build_spec(tiny_raw).variant == "fault"
    assert build_spec(tiny_raw, overrides=["optimizer.lr=0.01"]).variant == "custom"
    assert build_spec(tiny_raw, fix=True, overrides=["optimizer.lr=0.01"]).variant == "custom"
    assert build_spec(tiny_raw, overrides=["story.hints=['look']"]).story.hints == ["look"]  # not identity


def test_the_published_json_schema_is_current():
    assert json.loads(SCHEMA_FILE.read_text()) == json.loads(json.dumps(scenario_json_schema())), \
        "docs/scenario.schema.json is stale: regenerate it with `python -m lab schema > docs/scenario.schema.json`"
