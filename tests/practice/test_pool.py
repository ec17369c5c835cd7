"""Practice mode's pool: which scenarios a case is drawn from, and what a class seed picks."""

import shutil
import subprocess

import pytest

from lab.practice import triage as t
from lab.repo import ROOT
from lab.specs.loader import known_scenarios

OPTED_IN = '''base = "overfit"
title = "My own overfit, smaller model"

[model]
hidden = [64]

[story]
what_you_will_see = "Validation loss turns up while training loss keeps falling."
root_cause = "A small model memorises a small training set."
what_to_do = "More data, or regularise."
diagnosis = "memorising"
hints = ["Compare the two loss curves.", "Validation rises while training falls: it memorises."]
'''
# Its own [story] without a diagnosis: runs with `lab run`, but has no answer key.
BLANK = OPTED_IN.replace('diagnosis = "memorising"\n', "")
# Inherits overfit's whole story, diagnosis included: a tweak that may cure the very failure.
INHERITED = 'base = "overfit"\n\n[optimizer]\nweight_decay = 0.1\n'


def _shipped() -> set[str]:
    """The scenario files the repository ships (git's list; the folder's when there is no git)."""
    try:
        out = subprocess.run(["git", "ls-files", "scenarios/*.toml"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return set(known_scenarios(ROOT / "scenarios"))
    return {line.rsplit("/", 1)[-1].removesuffix(".toml") for line in out.split()}


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def own_files(tmp_path, monkeypatch):
    """The lab's scenarios plus a student's own files, as LAB_SCENARIOS_DIR."""
    folder = tmp_path / "scenarios"
    shutil.copytree(ROOT / "scenarios", folder)
    (folder / "aa-mine.toml").write_text(OPTED_IN)  # sorts first: it would shift every pick of a sorted pool
    (folder / "mine-blank.toml").write_text(BLANK)
    (folder / "mine-inherited.toml").write_text(INHERITED)
    (folder / "mine-broken.toml").write_text("this is not = = toml\n")
    monkeypatch.setenv("LAB_SCENARIOS_DIR", str(folder))
    return folder


def test_the_built_in_pool_is_what_the_lab_ships():
    assert set(t.BUILT_IN_POOL) == _shipped()
    assert list(t.BUILT_IN_POOL) == sorted(t.BUILT_IN_POOL)
    assert t.pool() == list(t.BUILT_IN_POOL)  # the repository itself has no custom scenario


def test_own_scenarios_join_the_pool_only_with_a_diagnosis_of_their_own(own_files):
    assert {"aa-mine", "mine-blank", "mine-inherited"} <= set(known_scenarios())  # all of them run
    assert t.custom_cases() == ["aa-mine"]
    key = t.answer_key()
    assert key["aa-mine"] == "memorising" and "mine-blank" not in key and "mine-inherited" not in key
    assert "" not in key.values() and "memorising" in t.diagnoses()
    assert t.answer_key(custom=False) == {n: key[n] for n in t.BUILT_IN_POOL}


def test_a_seed_picks_the_same_built_in_case_whatever_other_files_there_are(own_files, monkeypatch):
    # the picks with the lab's own folder alone, then with the student's files beside them
    monkeypatch.setenv("LAB_SCENARIOS_DIR", str(ROOT / "scenarios"))
    alone = [t.pick_case(s) for s in range(200)]
    monkeypatch.setenv("LAB_SCENARIOS_DIR", str(own_files))
    beside = [t.pick_case(s) for s in range(200)]
    fields = lambda c: (c.case_id, c.scenario, c.diagnosis, c.run_seed, c.confounder, c.pool)  # noqa: E731
    assert [fields(c) for c in beside] == [fields(c) for c in alone]
    assert {c.scenario for c in beside} == set(t.BUILT_IN_POOL) and {c.pool for c in beside} == {t.BUILT_IN}
    # nor does the order the folder lists its files in matter
    monkeypatch.setattr(t, "known_scenarios", lambda directory=None: sorted(known_scenarios(directory), reverse=True))
    assert [fields(t.pick_case(s)) for s in range(200)] == [fields(c) for c in alone]


def test_own_scenarios_are_drawn_without_a_seed_or_with_custom(own_files):
    with_own = [t.pick_case(s, custom=True) for s in range(200)]
    assert "aa-mine" in {c.scenario for c in with_own} and {c.pool for c in with_own} == {t.WITH_CUSTOM}
    assert not {"mine-blank", "mine-inherited", "mine-broken"} & {c.scenario for c in with_own}
    again = t.pick_case(7, custom=True)
    assert (again.scenario, again.run_seed) == (with_own[7].scenario, with_own[7].run_seed)
    assert again.case_id != t.pick_case(7).case_id  # another draw, another case id
    assert t.pick_case().pool == t.WITH_CUSTOM  # no seed: the whole pool
    assert t.pick_case(custom=False).pool == t.BUILT_IN


def test_no_own_scenarios_means_the_built_in_pool_even_without_a_seed():
    assert t.pick_case().pool == t.BUILT_IN and t.pick_case(custom=True).pool == t.BUILT_IN


def test_a_missing_built_in_case_says_where_practice_mode_looks(tmp_path, monkeypatch):
    (tmp_path / "only-mine.toml").write_text(OPTED_IN.replace('base = "overfit"\n', "") + '\n')
    monkeypatch.setenv("LAB_SCENARIOS_DIR", str(tmp_path))
    with pytest.raises(t.TriageError, match="built-in case 'batching-latency' is not in .*LAB_SCENARIOS_DIR"):
        t.pick_case(3)


def test_start_takes_custom_or_no_custom_not_both(capsys):
    from lab.cli import main

    assert main(["triage", "start", "--custom", "--no-custom"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
