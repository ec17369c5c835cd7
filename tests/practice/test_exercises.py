"""Interpretation drills: answers come from the scenario files, pictures from real runs."""


from lab.practice import exercises as ex
from lab.repo import ROOT
from lab.specs.loader import load_scenario


def test_committed_drills_are_current_with_the_scenario_stories():
    # Regenerate with `make exercises` when a scenario's story changes.
    assert (ROOT / "docs/exercises/README.md").read_text() == ex.markdown()
    for drill in ex.DRILLS:
        assert (ROOT / "docs/exercises/img" / f"{drill.slug}.png").is_file()


def test_letters_are_shuffled_and_every_answer_names_its_scenario():
    orders = ex.orders()
    assert any(o != list(d.scenarios) for o, d in zip(orders, ex.DRILLS))
    text = ex.markdown()
    for order in orders:
        for name in order:
            assert load_scenario(name).title in text and f"(`{name}`;" in text


def test_build_draws_a_picture_from_real_runs(tmp_path):
    readme = ex.build(tmp_path, drills=ex.DRILLS[:1])
    png = tmp_path / "img" / f"{ex.DRILLS[0].slug}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "Run C" in readme.read_text()
