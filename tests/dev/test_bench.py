"""make bench's overhead measurement: what it counts per step, and its options."""

import pytest

from lab.dev import bench
from lab.specs.loader import load_scenario
from lab.training.loop import RunResult


def test_a_step_costs_the_run_without_its_evaluations():
    r = RunResult(spec=load_scenario("overfit"), seed=0, steps=100, wall_s=1.5, eval_s=0.5)
    assert bench._per_step(r) == pytest.approx(0.01)


def test_overhead_pairs_each_round_with_its_own_bare_run():
    out = bench.overhead(2, configs=("bare", "signals"))
    assert set(out) == {"bare", "signals"}
    assert out["bare"]["overhead_vs_bare_pct"] == 0.0
    s = out["signals"]
    assert s["min_ms_per_step"] <= s["median_ms_per_step"] <= s["max_ms_per_step"]
    assert s["overhead_q1_pct"] <= s["overhead_vs_bare_pct"] <= s["overhead_q3_pct"]
    assert "| signals |" in "\n".join(bench._table(out))


@pytest.mark.parametrize("bad", ["0", "-3", "x", "1001"])
def test_bad_round_counts_get_a_clear_error(bad, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--rounds", bad])
    assert exc.value.code == 2
    assert "expected a whole number from 1 to 1000" in capsys.readouterr().err
