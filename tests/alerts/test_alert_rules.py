"""The alert rules: house style, agreement with lab/thresholds.py, unit-test coverage, pint.

    .venv/bin/python -m pytest tests/alerts        (`make test-alerts`)

promtool runs the unit tests beside the rules (prometheus/alerts/*.test.yml) in
tests/stack/test_config_validation.py; here we check that those tests pin every
threshold and `for:` from both sides (mutants of the rules must fail them).
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from lab import thresholds
from lab.repo import ROOT, RUNBOOKS_DIR, alert_rules, duration_s, rule_runbook_url
from lab.telemetry.catalogue import REQUEST_DURATION_BUCKETS
from lab.telemetry.otel import LAB_INTERVAL_SECONDS

ALERTS_DIR = ROOT / "prometheus" / "alerts"
RULE_FILES = sorted(ALERTS_DIR.glob("*.rules.yml"))
SECTIONS = ("What you see", "Root cause", "What the signals show", "What to do")
SEVERITIES = {"none", "info", "warning", "critical"}


ALERTS = {name: {**rule, "_file": path} for path in RULE_FILES for name, rule in alert_rules([path]).items()}


def test_there_are_alerts_for_every_failure_the_lab_teaches():
    for name in ("MLLabOverfitting", "MLLabGradientNormSpike", "MLLabGradientNormSpikeCritical", "MLLabLossSpike",
                 "MLLabDeadNeurons", "MLLabTrainingStalled", "MLLabTrainingDiverged", "MLLabTelemetryStopped",
                 "MLLabCollectorExportFailures", "MLLabCollectorRefusingData", "MLLabTargetDown", "MLLabWatchdog", "MLLabInputDrift",
                 "MLLabAccuracyDegraded", "MLLabMiscalibrated", "MLLabInferenceLatencySLO", "MLLabInferenceErrors"):
        assert name in ALERTS


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alert_follows_the_house_style(name):
    rule = ALERTS[name]
    assert re.fullmatch(r"MLLab[A-Z][A-Za-z]+", name)
    assert rule["labels"]["severity"] in SEVERITIES
    ann = rule["annotations"]
    summary = ann["summary"]
    assert summary[0].isupper() and summary.endswith(".") and ". " not in summary and "{{" not in summary, summary
    assert "{{" in ann["description"], "the description must be templated (labels/value)"
    url = ann["runbook_url"]
    # one base for rules and dashboard links (LAB_RUNBOOK_BASE in .env), one page per alert
    assert url == rule_runbook_url(name), url
    page = (RUNBOOKS_DIR / f"{name}.md").read_text()
    headings = re.findall(r"^## (.+)$", page, flags=re.M)
    assert tuple(headings) == SECTIONS, f"{url}: sections {headings}"
    assert all(len(chunk.strip()) > 40 for chunk in re.split(r"^## .+$", page, flags=re.M)[1:]), f"{url}: empty section"


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_each_threshold_says_where_it_comes_from(name):
    # The YAML block of the rule (from `- alert: name` to the next rule) has a comment.
    text = ALERTS[name]["_file"].read_text()
    block = re.search(rf"- alert: {name}\n(.*?)(?=\n      - alert:|\Z)", text, flags=re.S).group(1)
    assert re.search(r"^\s+# \S", block, flags=re.M), f"{name}: no comment explaining its threshold"


def test_thresholds_equal_lab_signals():
    """The rules repeat lab/thresholds.py's constants: a change in one place must show here."""
    g = lambda x: f"{x:g}"  # noqa: E731
    s = thresholds
    expected = {
        "MLLabOverfitting": [f"ml_training_loss_ratio > {g(s.OVERFIT_RATIO_THRESHOLD)}",
                             f"ml_training_validation_evals_since_best >= {s.OVERFIT_STALL_EVALS}"],
        "MLLabGradientNormSpike": [f"max_over_time(ml_training_gradient_norm_ratio[1m]) > {g(s.GRAD_SPIKE_WARNING)}"],
        "MLLabGradientNormSpikeCritical": [f"max_over_time(ml_training_gradient_norm_ratio[1m]) > {g(s.GRAD_SPIKE_CRITICAL)}"],
        "MLLabLossSpike": [f"max_over_time(ml_training_batch_loss_ratio[1m]) > {g(s.LOSS_SPIKE_THRESHOLD)}"],
        "MLLabDeadNeurons": [f"ml_training_activation_dead_ratio > {g(s.DEAD_RATIO_THRESHOLD)}"],
        "MLLabTrainingStalled": [f"ml_training_best_loss_ratio >= {g(s.STALL_LOSS_FRACTION)}",
                                 f"ml_training_progress_ratio >= {g(s.STALL_AFTER_PROGRESS)}"],
        "MLLabTrainingDiverged": ["ml_training_nonfinite_steps_total > 0"],
        "MLLabInputDrift": [f"(ml_drift_ks_p_value_ratio) < {g(thresholds.KS_ALPHA)}", f"(ml_drift_psi) > {g(thresholds.PSI_MAJOR)}",
                            f"(ml_drift_js_distance) > {g(thresholds.JS_THRESHOLD)}"],
        "MLLabAccuracyDegraded": [f"ml_inference_accuracy_baseline_ratio - {g(s.ACCURACY_DROP)}"],
        "MLLabMiscalibrated": [f"ml_inference_calibration_error_ratio > {g(s.ECE_THRESHOLD)}"],
        "MLLabInferenceLatencySLO": [f'le="{g(s.LATENCY_OBJECTIVE_S)}"', f") > {g(s.LATENCY_BUDGET)}"],
        "MLLabInferenceErrors": [f"> {g(s.ERROR_BUDGET)}"],
        "MLLabSeriesGrowth": [f'delta(prometheus_tsdb_head_series{{job="prometheus"}}[5m]) > {s.SERIES_GROWTH_5M}'],
        "MLLabHeadSeriesHigh": [f'prometheus_tsdb_head_series{{job="prometheus"}} > {s.HEAD_SERIES_LIMIT}'],
    }
    for name, fragments in expected.items():
        expr = " ".join(ALERTS[name]["expr"].split())
        for fragment in fragments:
            assert fragment in expr, f"{name}: expected `{fragment}` (lab/thresholds.py) in `{expr}`"
    # Dead units must be sustained for DEAD_SUSTAINED_EVALS evaluations: `for:` covers at
    # least that many intervals (scenarios evaluate at least once per interval).
    assert duration_s(ALERTS["MLLabDeadNeurons"]["for"]) >= s.DEAD_SUSTAINED_EVALS * LAB_INTERVAL_SECONDS
    # Drift windows come one per interval: `for:` covers the signature's sustained windows
    # (3) plus the one-interval margin for windows and exports not being phase-locked.
    for name in ("MLLabInputDrift", "MLLabAccuracyDegraded", "MLLabMiscalibrated"):
        assert duration_s(ALERTS[name]["for"]) == s.SUSTAINED_WINDOWS * LAB_INTERVAL_SECONDS, name


def test_latency_objective_is_a_bucket_boundary():
    # The rule reads the bucket at the objective: without that boundary it would read another one.
    assert thresholds.LATENCY_OBJECTIVE_S in REQUEST_DURATION_BUCKETS


def test_for_durations_are_a_few_intervals():
    for name, rule in ALERTS.items():
        d = duration_s(rule.get("for", "0s"))
        assert d % LAB_INTERVAL_SECONDS == 0 and d <= 6 * LAB_INTERVAL_SECONDS, f"{name}: for: {rule.get('for')}"


def test_every_scenario_expects_only_alerts_that_exist():
    for path in sorted((ROOT / "scenarios").glob("*.toml")):
        expected = tomllib.loads(path.read_text()).get("alerts", [])
        unknown = set(expected) - set(ALERTS)
        assert not unknown, f"{path.name}: alerts {sorted(unknown)} are not defined in prometheus/alerts/"


def _unit_test_cases() -> dict[str, dict[str, int]]:
    seen: dict[str, dict[str, int]] = {}
    for path in ALERTS_DIR.glob("*.test.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                kind = "firing" if case.get("exp_alerts") else "quiet"
                seen.setdefault(case["alertname"], {"firing": 0, "quiet": 0})[kind] += 1
    return seen


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_every_alert_has_firing_and_quiet_unit_tests(name):
    cases = _unit_test_cases().get(name, {})
    assert cases.get("firing"), f"{name}: no promtool case where it fires"
    if name != "MLLabWatchdog":  # always firing by design
        assert cases.get("quiet"), f"{name}: no promtool case where it stays quiet"


# Mutants: each threshold nudged just past the nearest boundary case in both directions,
# and each `for:` one interval shorter and longer. The promtool tests must reject every one
# of them, which proves the boundary cases are really there.
MUTANTS = [
    ("training", "ml_training_loss_ratio > 1.3", ["ml_training_loss_ratio > 1.313", "ml_training_loss_ratio > 1.287"]),
    ("training", "ml_training_validation_evals_since_best >= 10",
     ["ml_training_validation_evals_since_best >= 11", "ml_training_validation_evals_since_best >= 9"]),
    ("training", "ml_training_gradient_norm_ratio[1m]) > 5", ["ml_training_gradient_norm_ratio[1m]) > 5.05",
                                                             "ml_training_gradient_norm_ratio[1m]) > 4.95"]),
    ("training", "ml_training_gradient_norm_ratio[1m]) > 10", ["ml_training_gradient_norm_ratio[1m]) > 10.1",
                                                              "ml_training_gradient_norm_ratio[1m]) > 9.9"]),
    ("training", "ml_training_gradient_norm_ratio[1m])", ["ml_training_gradient_norm_ratio[2m])",
                                                         "ml_training_gradient_norm_ratio[30s])"]),
    ("training", "ml_training_batch_loss_ratio[1m]) > 3", ["ml_training_batch_loss_ratio[1m]) > 3.03",
                                                          "ml_training_batch_loss_ratio[1m]) > 2.97"]),
    ("training", "ml_training_activation_dead_ratio > 0.2", ["ml_training_activation_dead_ratio > 0.202",
                                                            "ml_training_activation_dead_ratio > 0.198"]),
    ("training", "ml_training_best_loss_ratio >= 0.9", ["ml_training_best_loss_ratio >= 0.909",
                                                       "ml_training_best_loss_ratio >= 0.891"]),
    ("training", "ml_training_progress_ratio >= 0.25", ["ml_training_progress_ratio >= 0.2525",
                                                       "ml_training_progress_ratio >= 0.2475"]),
    ("training", "ml_training_nonfinite_steps_total > 0", ["ml_training_nonfinite_steps_total > 1",
                                                          "ml_training_nonfinite_steps_total > -1"]),
    ("training", "for: 15s", ["for: 10s", "for: 20s"]),
    ("stack", "timestamp(ml_training_running) > 15", ["timestamp(ml_training_running) > 20",
                                                     "timestamp(ml_training_running) > 10"]),
    ("stack", "ml_training_running == 1", ["ml_training_running >= 0"]),
    ("stack", "timestamp(ml_inference_running) > 15", ["timestamp(ml_inference_running) > 20",
                                                      "timestamp(ml_inference_running) > 10"]),
    ("stack", "ml_inference_running == 1", ["ml_inference_running >= 0"]),
    ("stack", "[1m])\n            or", ["[2m])\n            or", "[30s])\n            or"]),
    # a single failed item gives an (extrapolated) increase of 1 to ~1.2
    ("stack", "          ) > 0", ["          ) > 1.5", "          ) > -1"]),
    ("stack", "[5m]) > 10000", ["[5m]) > 10100", "[5m]) > 9900", "[4m]) > 10000", "[6m]) > 10000"]),
    ("stack", '{job="prometheus"} > 100000', ['{job="prometheus"} > 101000', '{job="prometheus"} > 99000']),
    ("stack", "for: 30s", ["for: 25s", "for: 35s"]),
    ("stack", "up == 0", ["up == 1"]),
    ("stack", "for: 10s", ["for: 5s", "for: 15s"]),
    ("stack", "for: 15s", ["for: 10s", "for: 20s"]),
    ("inference", "(ml_drift_ks_p_value_ratio) < 0.01", ["(ml_drift_ks_p_value_ratio) < 0.0101",
                                                        "(ml_drift_ks_p_value_ratio) < 0.0099"]),
    ("inference", "(ml_drift_psi) > 0.25", ["(ml_drift_psi) > 0.2525", "(ml_drift_psi) > 0.2475"]),
    ("inference", "(ml_drift_js_distance) > 0.13", ["(ml_drift_js_distance) > 0.1313", "(ml_drift_js_distance) > 0.1287"]),
    ("inference", "ml_inference_accuracy_baseline_ratio - 0.05", ["ml_inference_accuracy_baseline_ratio - 0.0505",
                                                                 "ml_inference_accuracy_baseline_ratio - 0.0495"]),
    ("inference", "ml_inference_calibration_error_ratio > 0.08", ["ml_inference_calibration_error_ratio > 0.0808",
                                                                 "ml_inference_calibration_error_ratio > 0.0792"]),
    # the tests probe 0.9% and 1.1%: rates carry float noise, so the nudges are 15%
    ("inference", "          ) > 0.01", ["          ) > 0.0115", "          ) > 0.0085"]),
    ("inference", "          > 0.01", ["          > 0.0115", "          > 0.0085"]),
    ("inference", 'le="0.1"', ['le="0.25"']),
    ("inference", "for: 15s", ["for: 10s", "for: 20s"]),
    ("inference", "increase(ml_drift_windows_total[15s]) > 0", ["increase(ml_drift_windows_total[10s]) > 0",
                                                               "increase(ml_drift_windows_total[20s]) > 0",
                                                               "increase(ml_drift_windows_total[10m]) > 0"]),
    ("inference", "for: 30s", ["for: 25s", "for: 35s"]),
]


def _mutants() -> dict[str, tuple[str, str]]:
    """id -> (stem, mutated rules text), one per occurrence of each original."""
    out = {}
    for stem, original, replacements in MUTANTS:
        text = (ALERTS_DIR / f"{stem}.rules.yml").read_text()
        assert original in text, f"{original!r} is no longer in {stem}.rules.yml: update MUTANTS"
        parts = text.split(original)
        for i in range(len(parts) - 1):  # mutate each occurrence on its own
            for new in replacements:
                mutated = original.join(parts[:i + 1]) + new + original.join(parts[i + 1:])
                out[f"{stem}:{original.strip()}#{i}->{new.strip()}"] = (stem, mutated)
    return out


MUTANT_IDS = sorted(_mutants())


@pytest.fixture(scope="module")
def mutant_verdicts(promtool, tmp_path_factory) -> dict[str, int]:
    """promtool's exit status on every mutant, run in parallel (each run is a separate process)."""
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    base = tmp_path_factory.mktemp("mutants")

    def judge(item):
        key, (stem, mutated) = item
        d = Path(tempfile.mkdtemp(dir=base))  # thread-safe, unlike mktemp's numbering
        (d / f"{stem}.rules.yml").write_text(mutated)
        (d / f"{stem}.test.yml").write_text((ALERTS_DIR / f"{stem}.test.yml").read_text())
        proc = subprocess.run([str(promtool), "test", "rules", f"{stem}.test.yml"], cwd=d,
                              capture_output=True, text=True, timeout=120)
        return key, proc.returncode

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(judge, _mutants().items()))


@pytest.mark.parametrize("mutant", MUTANT_IDS)
def test_unit_tests_reject_the_mutant(mutant_verdicts, mutant):
    assert mutant_verdicts[mutant] != 0, f"the unit tests accept the mutated rules: {mutant}"


def test_the_unmutated_rules_pass(promtool):
    # Control for the mutants: the same invocation passes on the real files.
    for test in sorted(ALERTS_DIR.glob("*.test.yml")):
        proc = subprocess.run([str(promtool), "test", "rules", test.name], cwd=ALERTS_DIR,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr


# --- pint ----------------------------------------------------------------------------------


def run_pint(pint: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(pint), "--no-color", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_pint_offline_passes(pint):
    proc = run_pint(pint, "--offline", "lint", "--min-severity=info", "prometheus/")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Problems found" not in out, out


def test_pint_catches_a_rule_without_runbook(pint, tmp_path):
    # Control: the house-style checks in .pint.hcl are live.
    (tmp_path / "prometheus/alerts").mkdir(parents=True)
    (tmp_path / ".pint.hcl").write_text((ROOT / ".pint.hcl").read_text())
    rules = (ALERTS_DIR / "training.rules.yml").read_text().replace(
        f"          runbook_url: {rule_runbook_url('MLLabLossSpike')}\n", "", 1)
    (tmp_path / "prometheus/alerts/training.rules.yml").write_text(rules)
    proc = run_pint(pint, "--offline", "lint", "prometheus/", cwd=tmp_path)
    assert proc.returncode != 0 and "runbook_url" in proc.stdout + proc.stderr


def test_pint_catches_a_runbook_under_another_base(pint, tmp_path):
    # .pint.hcl's pattern is LAB_RUNBOOK_BASE's (make runbook-links), not any URL ending in .md.
    (tmp_path / "prometheus/alerts").mkdir(parents=True)
    (tmp_path / ".pint.hcl").write_text((ROOT / ".pint.hcl").read_text())
    rules = (ALERTS_DIR / "training.rules.yml").read_text().replace(
        f"runbook_url: {rule_runbook_url('MLLabLossSpike')}\n", "runbook_url: https://example.org/elsewhere/MLLabLossSpike.md\n", 1)
    assert "example.org" in rules
    (tmp_path / "prometheus/alerts/training.rules.yml").write_text(rules)
    proc = run_pint(pint, "--offline", "lint", "prometheus/", cwd=tmp_path)
    assert proc.returncode != 0 and "runbook_url" in proc.stdout + proc.stderr
