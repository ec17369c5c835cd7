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
from lab.telemetry.catalogue import GENAI_DURATION_BUCKETS, REQUEST_DURATION_BUCKETS
from lab.telemetry.otel import LAB_INTERVAL_SECONDS

ALERTS_DIR = ROOT / "prometheus" / "alerts"
RECORDING_DIR = ROOT / "prometheus" / "rules"
RULE_FILES = sorted(ALERTS_DIR.glob("*.rules.yml"))
SECTIONS = ("What you see", "Root cause", "What the signals show", "What to do")
SEVERITIES = {"none", "info", "warning", "critical"}


ALERTS = {name: {**rule, "_file": path} for path in RULE_FILES for name, rule in alert_rules([path]).items()}


def test_there_are_alerts_for_every_failure_the_lab_teaches():
    for name in ("MLLabOverfitting", "MLLabGradientNormSpike", "MLLabGradientNormSpikeCritical", "MLLabLossSpike",
                 "MLLabDeadNeurons", "MLLabTrainingStalled", "MLLabTrainingDiverged", "MLLabTelemetryStopped",
                 "MLLabCollectorExportFailures", "MLLabCollectorRefusingData", "MLLabTargetDown", "MLLabWatchdog", "MLLabInputDrift",
                 "MLLabAccuracyDegraded", "MLLabMiscalibrated", "MLLabInferenceLatencySLO", "MLLabInferenceErrors",
                 "MLLabBotHallucinations", "MLLabBotInputDrift", "MLLabBotConfidenceDrift", "MLLabBotPromptGrowth",
                 "MLLabBotRunawayGeneration", "MLLabBotCostHigh", "MLLabBotQualityBudgetBurn", "MLLabBotLatencyBudgetBurn"):
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
        "MLLabBotHallucinations": [f"ml_genai_quality_hallucination_rate_ratio > {g(s.HALLUCINATION_RATE_THRESHOLD)}"],
        "MLLabBotInputDrift": [f"ml_genai_drift_oov_rate_ratio > {g(s.OOV_RATE_THRESHOLD)}"],
        "MLLabBotConfidenceDrift": [f"ml_genai_drift_confidence_ks_p_value_ratio < {g(s.KS_ALPHA)}"],
        "MLLabBotPromptGrowth": [f"ml_genai_drift_prompt_length_psi > {g(s.PSI_MAJOR)}"],
        "MLLabBotRunawayGeneration": ['{finish_reason="length"}', f") > {g(s.LENGTH_FINISH_SHARE)}"],
        "MLLabBotCostHigh": ["1000 * sum", f") > {g(s.COST_PER_1K_REQUESTS_USD)}"],
        "MLLabBotQualityBudgetBurn": [
            f"ratio_rate{prom_duration(long)} / (1 - {g(s.QUALITY_SLI_OBJECTIVE)}) > {g(burn)}"
            for burn, long, _ in (s.SLO_TICKET_FAST, s.SLO_TICKET_SLOW)] + [
            f"ratio_rate{prom_duration(short)} / (1 - {g(s.QUALITY_SLI_OBJECTIVE)}) > {g(burn)}"
            for burn, _, short in (s.SLO_TICKET_FAST, s.SLO_TICKET_SLOW)] + [
            f"(increase(ml_genai_labels_total[{prom_duration(short)}])) >= {s.QUALITY_SLO_MIN_LABELS}"
            for _, _, short in (s.SLO_TICKET_FAST, s.SLO_TICKET_SLOW)],
        "MLLabBotLatencyBudgetBurn": [
            f"ratio_rate{prom_duration(w)} / {g(s.BOT_LATENCY_BUDGET)} > {g(burn)}"
            for burn, long, short in (s.SLO_PAGE_FAST, s.SLO_PAGE_SLOW) for w in (long, short)] + [
            f"unless on (job, instance) ml_genai_windows_total < {s.BOT_LATENCY_WARMUP_WINDOWS}"],
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
    for name in ("MLLabInputDrift", "MLLabAccuracyDegraded", "MLLabMiscalibrated", "MLLabBotHallucinations",
                 "MLLabBotInputDrift", "MLLabBotConfidenceDrift", "MLLabBotPromptGrowth", "MLLabBotRunawayGeneration",
                 "MLLabBotCostHigh"):
        assert duration_s(ALERTS[name]["for"]) == s.SUSTAINED_WINDOWS * LAB_INTERVAL_SECONDS, name


def prom_duration(seconds: int) -> str:
    """A window as the rules spell it: 15 -> 15s, 180 -> 3m."""
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


# The workbook's tiers for a 30-day SLO (burn factor, long window, short window, real seconds).
WORKBOOK_TIERS = {"SLO_PAGE_FAST": (14.4, 3600, 300), "SLO_PAGE_SLOW": (6, 6 * 3600, 1800),
                  "SLO_TICKET_FAST": (3, 86400, 2 * 3600), "SLO_TICKET_SLOW": (1, 3 * 86400, 6 * 3600)}


@pytest.mark.parametrize("tier", sorted(WORKBOOK_TIERS))
def test_slo_tiers_are_the_workbooks_compressed(tier):
    """Each tier's windows are the workbook's divided by SLO_COMPRESSION, short ones at least 3 samples."""
    burn, long, short = getattr(thresholds, tier)
    w_burn, w_long, w_short = WORKBOOK_TIERS[tier]
    assert burn == w_burn and long * thresholds.SLO_COMPRESSION == w_long
    assert short == max(thresholds.SLO_MIN_WINDOW_S, w_short // thresholds.SLO_COMPRESSION)
    assert thresholds.SLO_MIN_WINDOW_S >= 3 * LAB_INTERVAL_SECONDS  # 3 samples
    # the burn factor spends the tier's share of a 30-day budget within its long window
    assert burn * w_long / (30 * 86400) == pytest.approx({14.4: 0.02, 6: 0.05, 3: 0.1, 1: 0.1}[w_burn])


def test_slo_alerts_read_recorded_ratios_that_exist():
    recorded = {r["record"] for g in yaml.safe_load((RECORDING_DIR / "generative-slo.rules.yml").read_text())["groups"]
                for r in g["rules"]}
    for name in ("MLLabBotQualityBudgetBurn", "MLLabBotLatencyBudgetBurn"):
        used = set(re.findall(r"instance:[a-z_]+:ratio_rate\w+", ALERTS[name]["expr"]))
        assert used and used <= recorded, f"{name} reads {sorted(used - recorded)}, not recorded"
    # no page tier for quality: its budget cannot burn 14.4x, and 6x only with accuracy under 0.1
    budget = 1 - thresholds.QUALITY_SLI_OBJECTIVE
    assert thresholds.SLO_TICKET_FAST[0] < 1 / budget < thresholds.SLO_PAGE_FAST[0]
    assert 1 - thresholds.SLO_PAGE_SLOW[0] * budget <= 0.1 + 1e-9
    assert "ratio_rate36m" in ALERTS["MLLabBotQualityBudgetBurn"]["expr"] and "ratio_rate30s" not in ALERTS[
        "MLLabBotQualityBudgetBurn"]["expr"]


def test_bot_latency_objectives_are_bucket_boundaries():
    text = (RECORDING_DIR / "generative-slo.rules.yml").read_text()
    for ms, metric in ((thresholds.BOT_TTFT_OBJECTIVE_MS, "gen_ai_server_time_to_first_token_seconds_bucket"),
                       (thresholds.BOT_DURATION_OBJECTIVE_MS, "gen_ai_server_request_duration_seconds_bucket")):
        assert ms / 1000 in GENAI_DURATION_BUCKETS
        les = set(re.findall(rf'{metric}{{le="([^"]+)"}}', text))
        assert les == {f"{ms / 1000:g}"}, f"{metric}: {les}"


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
    ("generative", "ml_genai_windows_total < 12", ["ml_genai_windows_total < 13", "ml_genai_windows_total < 11"]),
    ("generative", "ml_genai_quality_hallucination_rate_ratio > 0.1", ["ml_genai_quality_hallucination_rate_ratio > 0.101",
                                                                       "ml_genai_quality_hallucination_rate_ratio > 0.099"]),
    ("generative", "ml_genai_drift_oov_rate_ratio > 0.01", ["ml_genai_drift_oov_rate_ratio > 0.0101",
                                                           "ml_genai_drift_oov_rate_ratio > 0.0099"]),
    ("generative", "ml_genai_drift_confidence_ks_p_value_ratio < 0.01", ["ml_genai_drift_confidence_ks_p_value_ratio < 0.0101",
                                                                        "ml_genai_drift_confidence_ks_p_value_ratio < 0.0099"]),
    ("generative", "ml_genai_drift_prompt_length_psi > 0.25", ["ml_genai_drift_prompt_length_psi > 0.2525",
                                                              "ml_genai_drift_prompt_length_psi > 0.2475"]),
    # the tests probe 5.5% and 5%, 25.1 and 25 USD
    ("generative", "          ) > 0.05", ["          ) > 0.056", "          ) > 0.049"]),
    ("generative", "          ) > 25", ["          ) > 25.2", "          ) > 24.9"]),
    ('generative', '{finish_reason="length"}', ['{finish_reason="stop"}']),
    ("generative", "for: 15s", ["for: 10s", "for: 20s"]),
    ("generative", 'finish_reason="length"}[15s]', ['finish_reason="length"}[10s]', 'finish_reason="length"}[20s]']),
    ("generative", "increase(ml_genai_cost_usd_total[15s])", ["increase(ml_genai_cost_usd_total[10s])",
                                                             "increase(ml_genai_cost_usd_total[20s])"]),
    ("generative", "increase(ml_genai_windows_total[15s]) > 0", ["increase(ml_genai_windows_total[10s]) > 0",
                                                                "increase(ml_genai_windows_total[20s]) > 0",
                                                                "increase(ml_genai_windows_total[10m]) > 0"]),
    # SLOs: the tests probe each window at its burn factor and 0.07-0.2% past it
    ("generative", "/ (1 - 0.85) > 3", ["/ (1 - 0.85) > 3.01", "/ (1 - 0.85) > 2.99"]),
    ("generative", "/ (1 - 0.85) > 1", ["/ (1 - 0.85) > 1.01", "/ (1 - 0.85) > 0.99"]),
    ("generative", "/ 0.05 > 14.4", ["/ 0.05 > 14.5", "/ 0.05 > 14.3"]),
    ("generative", "/ 0.05 > 6", ["/ 0.05 > 6.05", "/ 0.05 > 5.95"]),
    ("generative", ")) >= 200", [")) >= 201", ")) >= 199"]),
    ("generative", "ratio_rate12m", ["ratio_rate36m"]),
    ("generative", "ratio_rate1m", ["ratio_rate3m"]),
    ("generative", "ratio_rate30s", ["ratio_rate3m"]),
    ("generative", "ratio_rate15s", ["ratio_rate30s"]),
    ("generative", "increase(ml_genai_labels_total[1m])", ["increase(ml_genai_labels_total[3m])"]),
    ("generative", "increase(ml_genai_labels_total[3m])", ["increase(ml_genai_labels_total[1m])"]),
    # recording rules: windows and buckets (the ratios' tests tell each window from the others)
    ("rules/generative-slo", "[1m]))", ["[3m]))"]),
    ("rules/generative-slo", "[3m]))", ["[1m]))"]),
    ("rules/generative-slo", "[12m]))", ["[36m]))"]),
    ("rules/generative-slo", "[36m]))", ["[12m]))"]),
    ("rules/generative-slo", "[15s]))", ["[30s]))"]),
    ("rules/generative-slo", "[30s]))", ["[15s]))"]),
    ("rules/generative-slo", 'le="0.001"', ['le="0.0025"']),
    ("rules/generative-slo", 'le="0.0025"', ['le="0.001"']),
    ("rules/generative-slo", '{verdict!="correct"}', ['{verdict="wrong"}']),
]


def _rules_path(stem: str) -> Path:
    """A mutant's rules file: `<name>` in prometheus/alerts, `rules/<name>` in prometheus/rules."""
    return ROOT / "prometheus" / f"{stem}.rules.yml" if "/" in stem else ALERTS_DIR / f"{stem}.rules.yml"



def _mutants() -> dict[str, tuple[str, str]]:
    """id -> (stem, mutated rules text), one per occurrence of each original."""
    out = {}
    for stem, original, replacements in MUTANTS:
        text = _rules_path(stem).read_text()
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
        rules = _rules_path(stem)
        (d / rules.name).write_text(mutated)
        test = rules.with_name(rules.name.replace(".rules.yml", ".test.yml"))
        (d / test.name).write_text(test.read_text())
        proc = subprocess.run([str(promtool), "test", "rules", test.name], cwd=d,
                              capture_output=True, text=True, timeout=120)
        return key, proc.returncode

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(judge, _mutants().items()))


@pytest.mark.parametrize("mutant", MUTANT_IDS)
def test_unit_tests_reject_the_mutant(mutant_verdicts, mutant):
    assert mutant_verdicts[mutant] != 0, f"the unit tests accept the mutated rules: {mutant}"


def test_the_unmutated_rules_pass(promtool):
    # Control for the mutants: the same invocation passes on the real files.
    for test in sorted([*ALERTS_DIR.glob("*.test.yml"), *RECORDING_DIR.glob("generative-*.test.yml")]):
        proc = subprocess.run([str(promtool), "test", "rules", test.name], cwd=test.parent,
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
