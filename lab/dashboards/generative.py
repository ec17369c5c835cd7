"""The support bot's three dashboards (lab/generative; docs/generative.md): Operational, Quality, Drift.

The material asks for "three dashboards for an LLM support bot - Operational (latency incl.
time to first token, error rate, token cost, uptime), Quality (hallucination rate, confidence
distribution, accuracy on labelled samples) and Drift (input distribution shift, confidence
drift, user-complaint trend) - with a threshold and an action for each metric". Every panel's
description therefore says what the metric means, its threshold and what to do when it is
crossed; the numbers come from lab/thresholds.py (support-bot section) and are drawn as Grafana
thresholds. Where lab/thresholds.py has no number for a metric (latency, tokens per request,
the token Jensen-Shannon distance), the description says so and what to compare it with.

Series: the OpenTelemetry GenAI conventions' gen_ai_* histograms and the lab's ml_genai_*
metrics of the bot's run (job ml-lab/ml-lab-generative; docs/metrics.md). Nothing here reads
the SLO recording rules of prometheus/alerts: burn rates are computed from the raw counters.
"""

from __future__ import annotations

from lab import thresholds
from lab.dashboards.model import (
    GENERATIVE,
    ORANGE,
    RED,
    RUN,
    RUN_LEGEND,
    Dashboard,
    Panel,
    Row,
    Target,
    Threshold,
    run_variables,
)
from lab.dashboards.overview import LATE_S, STALE_S
from lab.specs.generative import BotStreamSpec
from lab.stats import ks_pvalue

BY_RUN = "lab_scenario, lab_variant"
# The variable every bot dashboard narrows by: a series only the bot exports.
VARIABLE_METRIC = "ml_genai_requests_total"
# Every --fast bot run exports after every window (lab/generative/export.py, flush_every_window),
# so its rate() panels have samples inside a $__rate_interval; the contract test also holds
# every bot panel to data on a paced run (tests/dev/test_panel_contract.py, PACED_RUNS).

# The complaint share of a bot exactly at the quality objective: its wrong answers rated down,
# its right ones rated down by the share of ratings that say the opposite (stream.feedback_noise,
# 5% by default). A healthy bot (accuracy 0.885-0.97) measures about 0.08-0.15 per window; above
# this line users meet more wrong answers than the objective allows.
FEEDBACK_NOISE = BotStreamSpec.model_fields["feedback_noise"].default
COMPLAINT_SHARE_AT_OBJECTIVE = round((1 - thresholds.QUALITY_SLI_OBJECTIVE) * (1 - FEEDBACK_NOISE)
                                     + thresholds.QUALITY_SLI_OBJECTIVE * FEEDBACK_NOISE, 4)


def ks_critical_statistic(alpha: float = thresholds.KS_ALPHA, n: int | None = None) -> float:
    """The KS statistic at which the monitor's p-value (lab.stats.ks_pvalue, two windows of `n`
    answers: the window and the reference window, both stream.window_size) falls to `alpha`."""
    n = n or BotStreamSpec.model_fields["window_size"].default
    lo, hi = 0.0, 1.0
    for _ in range(60):  # ks_pvalue falls monotonically with the statistic
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ks_pvalue(mid, n, n) > alpha else (lo, mid)
    return round(hi, 3)


KS_CRITICAL = ks_critical_statistic()
# The latency objectives in seconds (the histograms' unit; both are bucket boundaries).
TTFT_OBJECTIVE_S = thresholds.BOT_TTFT_OBJECTIVE_MS / 1000
DURATION_OBJECTIVE_S = thresholds.BOT_DURATION_OBJECTIVE_MS / 1000
WINDOW_SIZE = BotStreamSpec.model_fields["window_size"].default


def _m(name: str, extra: str = "") -> str:
    """A bot series restricted to the selected runs."""
    return f"{name}{{{RUN}{',' + extra if extra else ''}}}"


def _gauge(name: str) -> str:
    return f"max by ({BY_RUN}) ({_m(name)})"


def _rate(name: str, extra: str = "", by: str = BY_RUN) -> str:
    return f"sum by ({by}) (rate({_m(name, extra)}[$__rate_interval]))"


def _quantiles(histogram: str, qs: tuple[float, ...] = (0.5, 0.95), label: str = "") -> list[Target]:
    return [Target(f"histogram_quantile({q}, {_rate(histogram + '_bucket', by='le, ' + BY_RUN)})",
                   f"{RUN_LEGEND} {label}p{int(q * 100)}", exemplar=(q == qs[-1])) for q in qs]


def _latency_burn(histogram: str, objective_s: float) -> str:
    """Burn rate of a latency objective from a histogram: the share of requests above the bucket
    boundary `objective_s`, over $__rate_interval, divided by the budget."""
    fast = _rate(f"{histogram}_bucket", f'le="{objective_s:g}"')
    return f"(1 - {fast} / {_rate(histogram + '_count')}) / {thresholds.BOT_LATENCY_BUDGET:g}"


def _no_threshold(what: str) -> str:
    return f"Threshold: none in lab/thresholds.py; {what}"


# --- Operational -------------------------------------------------------------------------------


def operational_panels() -> list[Panel | Row]:
    requests = _rate("ml_genai_requests_total")
    cut = _rate("ml_genai_requests_total", 'finish_reason="length"')
    cost_rate = _rate("ml_genai_cost_usd_total")
    return [
        Row("Traffic and errors: is the bot answering?"),
        Panel(
            "Requests by finish reason",
            "What: answers served per second, by finish reason: stop (the model emitted its end token) or length "
            "(cut at max_tokens). A paced bot serves 40 a second. "
            f"{_no_threshold('traffic is the denominator of every other panel.')} "
            "Action: a fall to 0 while the bot is running (Uptime) means clients cannot reach it; a length line "
            "that rises to the total means every answer is being cut (next panel).",
            "reqps",
            [Target(_rate("ml_genai_requests_total", by=f"{BY_RUN}, finish_reason"), f"{RUN_LEGEND} {{{{finish_reason}}}}")],
            needs=(GENERATIVE,), width=8, min=0,
        ),
        Panel(
            "Error rate: answers cut at max_tokens",
            "What: the share of answers that finished with finish_reason=length. The bot has no error path "
            "today (no request fails, times out or is refused: there is no error counter to show), so the "
            "failed answer it can give is one cut at max_tokens instead of ending at its end token; a healthy "
            f"bot cuts none. Threshold: {thresholds.LENGTH_FINISH_SHARE:.0%} of answers "
            "(MLLabBotRunawayGeneration). Action: look for a release or a decoding change at the moment it "
            "rose (the run's release event, the deploy log); restore the stop condition and a max_tokens that "
            "fits the longest real answer, or roll back.",
            "percentunit",
            [Target(f"{cut} / {requests}", RUN_LEGEND)],
            needs=(GENERATIVE,), width=8, min=0, max=1,
            thresholds=[Threshold(thresholds.LENGTH_FINISH_SHARE, RED, alert="MLLabBotRunawayGeneration")],
            runbooks=["MLLabBotRunawayGeneration"],
        ),
        Panel(
            "Uptime: bot running",
            "What: 1 while the bot's run is serving, 0 once it ended (its final export). Threshold: anything but "
            "1 while you expect it to serve is downtime (red). Action: 0 = the run stopped cleanly: check why "
            "it was stopped; a 1 that stops being refreshed (next panel) = the process died or its telemetry "
            "cannot reach the collector.",
            "none",
            [Target(_gauge("ml_genai_running"), RUN_LEGEND)],
            kind="stat", needs=(GENERATIVE,), width=4, min=0, max=1, decimals=0,
            thresholds=[Threshold(1, RED)], bad_below=True,
        ),
        Panel(
            "Uptime: data freshness",
            "What: seconds since the bot's last export reached Prometheus (it exports every 5 s while it runs). "
            f"Threshold: above {LATE_S} s late, above {STALE_S} s stopped. Action: late = check the collector "
            "(Overview, Telemetry pipeline); stopped while Uptime still says 1 = the bot process died: restart "
            "it and read its last log records.",
            "s",
            [Target(f"time() - max by ({BY_RUN}) (timestamp({_m('ml_genai_running')}))", RUN_LEGEND)],
            needs=(GENERATIVE,), width=4, min=0,
            thresholds=[Threshold(LATE_S, ORANGE), Threshold(STALE_S, RED)],
        ),
        Row("Latency: time to first token and to the last"),
        Panel(
            "Time to first token p50 / p95",
            "What: prompt arrival to the first output token (gen_ai.server.time_to_first_token): the prompt's "
            "prefill pass and one decoding step; it grows with the prompt's length. A healthy bot on a quiet "
            "machine stays near 0.3 ms. "
            f"Threshold: the latency objective, {1 - thresholds.BOT_LATENCY_BUDGET:.0%} of first tokens within "
            f"{thresholds.BOT_TTFT_OBJECTIVE_MS:g} ms: a p95 above the line spends the error budget faster than "
            "allowed (burn rate: the SLO panel; MLLabBotLatencyBudgetBurn, sli=ttft). "
            "Action: a p95 that grows with input tokens per request (Tokens panel) = longer prompts (Drift: "
            "prompt-length PSI): trim what the clients send; a p95 that grows alone = a slower or contended host.",
            "s",
            _quantiles("gen_ai_server_time_to_first_token_seconds"),
            needs=(GENERATIVE,), width=6, min=0,
            thresholds=[Threshold(TTFT_OBJECTIVE_S, RED)],
            runbooks=["MLLabBotLatencyBudgetBurn"],
        ),
        Panel(
            "Request duration p50 / p95",
            "What: prompt arrival to the last output token, as the model server measures it "
            "(gen_ai.server.request.duration) and, dotted, as its caller sees it (gen_ai.client.operation.duration; "
            "the lab's client is in the same process, so the two agree). It grows with the output tokens. "
            f"Threshold: the latency objective, {1 - thresholds.BOT_LATENCY_BUDGET:.0%} of answers within "
            f"{thresholds.BOT_DURATION_OBJECTIVE_MS:g} ms: a p95 above the line spends the error budget faster "
            "than allowed (MLLabBotLatencyBudgetBurn, sli=duration). "
            "Action: duration up with output tokens per request = longer answers (Error rate: are they cut at "
            "max_tokens?); up with time per output token = slower decoding (host, model size).",
            "s",
            _quantiles("gen_ai_server_request_duration_seconds", label="server ")
            + _quantiles("gen_ai_client_operation_duration_seconds", qs=(0.95,), label="client "),
            needs=(GENERATIVE,), width=6, min=0,
            thresholds=[Threshold(DURATION_OBJECTIVE_S, RED)],
            overrides=[{"matcher": {"id": "byRegexp", "options": ".*client p95"},
                        "properties": [{"id": "custom.lineStyle", "value": {"fill": "dot", "dash": [0, 10]}}]}],
            runbooks=["MLLabBotLatencyBudgetBurn"],
        ),
        Panel(
            "Time per output token p50 / p95",
            "What: decoding time per output token after the first ((duration - time to first token) / (output "
            "tokens - 1)): the speed of the model on this host, independent of how long prompts and answers are. "
            f"{_no_threshold('compare with the healthy run; it should not move when prompts or answers change length.')} "
            "Action: up = the decoding itself got slower (CPU contention, a bigger model, a slower host): check "
            "the host before the prompts.",
            "s",
            _quantiles("gen_ai_server_time_per_output_token_seconds"),
            needs=(GENERATIVE,), width=6, min=0,
        ),
        Panel(
            "Latency SLO: error-budget burn rate",
            "What: how fast the bot spends its latency error budget, per objective (sli): the share of requests "
            f"in the interval whose first token took longer than {thresholds.BOT_TTFT_OBJECTIVE_MS:g} ms (ttft) or "
            f"whose answer took longer than {thresholds.BOT_DURATION_OBJECTIVE_MS:g} ms (duration), divided by "
            f"the {thresholds.BOT_LATENCY_BUDGET:.0%} budget; computed from the histograms' buckets over "
            f"$__rate_interval (at most {1 / thresholds.BOT_LATENCY_BUDGET:g}: every request slow). Threshold: the "
            f"page burn factors, {thresholds.SLO_PAGE_SLOW[0]:g} and {thresholds.SLO_PAGE_FAST[0]:g} "
            "(MLLabBotLatencyBudgetBurn pages when both its long and short windows exceed one). Action: ttft burning "
            "= prompts grew or prefill got slower (Tokens, Drift: prompt-length PSI); duration burning alone = "
            "answers grew (finish reasons) or decoding got slower (time per output token).",
            "none",
            [Target(_latency_burn("gen_ai_server_time_to_first_token_seconds", TTFT_OBJECTIVE_S), f"{RUN_LEGEND} ttft"),
             Target(_latency_burn("gen_ai_server_request_duration_seconds", DURATION_OBJECTIVE_S),
                    f"{RUN_LEGEND} duration")],
            needs=(GENERATIVE,), width=6, min=0,
            thresholds=[Threshold(thresholds.SLO_PAGE_SLOW[0], ORANGE), Threshold(thresholds.SLO_PAGE_FAST[0], RED)],
            runbooks=["MLLabBotLatencyBudgetBurn"],
        ),
        Row("Tokens and cost"),
        Panel(
            "Tokens per request (input / output)",
            "What: mean tokens of a request by the bot's tokenizer (gen_ai.client.token.usage): the prompt "
            "(input, about 7 on a healthy bot) and the answer (output, about 6). "
            f"{_no_threshold('their cost is held to a threshold (next panel) and the prompt lengths to the prompt-length PSI (Drift).')} "
            "Action: input up = clients send more (conversation history, pasted documents): trim at the gateway; "
            "output up = answers run on (finish reason length?) or a decoding change: check the last release.",
            "none",
            [Target(f"{_rate('gen_ai_client_token_usage_sum', by=f'{BY_RUN}, gen_ai_token_type')} / "
                    f"{_rate('gen_ai_client_token_usage_count', by=f'{BY_RUN}, gen_ai_token_type')}",
                    f"{RUN_LEGEND} {{{{gen_ai_token_type}}}}")],
            needs=(GENERATIVE,), width=8, min=0,
        ),
        Panel(
            "Cost per 1,000 requests",
            "What: what 1,000 answers cost at the scenario's price per 1,000 input and output tokens (USD). "
            f"Threshold: {thresholds.COST_PER_1K_REQUESTS_USD:g} USD, twice the healthy bot's ~12 "
            "(MLLabBotCostHigh). Action: see which token type grew (previous panel): input = prompts grew "
            "(trim the history the clients send), output = answers grew (runaway generation: restore the stop "
            "condition); then budget the change or roll it back.",
            "currencyUSD",
            [Target(f"1000 * {cost_rate} / {requests}", RUN_LEGEND)],
            needs=(GENERATIVE,), width=8, min=0,
            thresholds=[Threshold(thresholds.COST_PER_1K_REQUESTS_USD, RED, alert="MLLabBotCostHigh")],
            runbooks=["MLLabBotCostHigh"],
        ),
        Panel(
            "Cost rate (USD per hour)",
            "What: spend per hour at the current traffic, and dashed the spend per hour the cost threshold "
            f"allows at the same traffic ({thresholds.COST_PER_1K_REQUESTS_USD:g} USD per 1,000 requests). "
            "Threshold: the dashed line. Action: above it with flat traffic = each request costs more "
            "(previous panels); above it because traffic grew = cost per request is fine, the budget is not: "
            "rate-limit or budget for the traffic.",
            "currencyUSD",
            [Target(f"3600 * {cost_rate}", RUN_LEGEND),
             Target(f"3600 * {thresholds.COST_PER_1K_REQUESTS_USD:g} / 1000 * {requests}", f"{RUN_LEGEND} threshold")],
            needs=(GENERATIVE,), width=8, min=0,
            overrides=[{"matcher": {"id": "byRegexp", "options": ".*threshold"},
                        "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                                       {"id": "color", "value": {"mode": "fixed", "fixedColor": RED}}]}],
            runbooks=["MLLabBotCostHigh"],
        ),
    ]


# --- Quality ----------------------------------------------------------------------------------


def quality_panels() -> list[Panel | Row]:
    labels = _rate("ml_genai_labels_total")
    wrong = _rate("ml_genai_labels_total", 'verdict!="correct"')
    ratings = _rate("ml_genai_feedback_total")
    downs = _rate("ml_genai_feedback_total", 'rating="down"')
    objective = thresholds.QUALITY_SLI_OBJECTIVE
    return [
        Row("Is the bot right? Answers judged against the catalogue (labels arrive late)"),
        Panel(
            "Accuracy on labelled answers (quality SLI)",
            "What: the share of the latest labelled answers (1 answer in 5 is judged, its label arrives 2 "
            "windows later; 200 labels) that state the fact asked for: the quality SLI. "
            f"Threshold: the objective, {objective:g} (below it, red; the SLO's burn-rate alert is "
            "MLLabBotQualityBudgetBurn). A healthy bot measures 0.885-0.97. Action: read the failing labels' "
            "questions: unknown words in them (Drift: out-of-vocabulary rate) = a topic the bot was not trained "
            "on, retrain with it; no unknown words = a model or prompt change: compare with the last release.",
            "percentunit",
            [Target(_gauge("ml_genai_quality_accuracy_ratio"), RUN_LEGEND)],
            needs=(GENERATIVE,), width=12, max=1,
            thresholds=[Threshold(objective, RED)], bad_below=True,
            runbooks=["MLLabBotQualityBudgetBurn"],
        ),
        Panel(
            "Quality SLO: error-budget burn rate",
            "What: how fast the bot spends its quality error budget: the share of labels that arrived in the "
            f"interval whose answer was not correct, divided by the {1 - objective:.0%} the objective allows "
            f"({objective:g}). Computed from the label counters, over $__rate_interval. Threshold: the ticket "
            f"burn factors, {thresholds.SLO_TICKET_SLOW[0]:g} (spending exactly the budget) and "
            f"{thresholds.SLO_TICKET_FAST[0]:g} (MLLabBotQualityBudgetBurn tickets when both its long and short "
            "windows, which hold many more labels, exceed one; no page: the budget cannot burn faster than "
            f"{1 / (1 - objective):.1f}x). Action: as for accuracy; a burn that stays above the lines is an "
            "incident, a one-interval spike is the noise of a few labels.",
            "none",
            [Target(f"({wrong} / {labels}) / (1 - {objective:g})", RUN_LEGEND)],
            needs=(GENERATIVE,), width=12, min=0,
            thresholds=[Threshold(thresholds.SLO_TICKET_SLOW[0], ORANGE), Threshold(thresholds.SLO_TICKET_FAST[0], RED)],
            runbooks=["MLLabBotQualityBudgetBurn"],
        ),
        Panel(
            "Hallucination rate",
            "What: the share of the same labelled answers that assert something false in the catalogue (a "
            "price, warranty, feature or category the product does not have; every claim about a product the "
            "catalogue lacks). Threshold: "
            f"{thresholds.HALLUCINATION_RATE_THRESHOLD:.0%} (MLLabBotHallucinations); a healthy bot stays "
            "under 6%. Action: find what the hallucinated answers were asked about (a new product, a new "
            "policy): retrain or ground the bot in the current catalogue; until then route those questions to a "
            "person.",
            "percentunit",
            [Target(_gauge("ml_genai_quality_hallucination_rate_ratio"), RUN_LEGEND)],
            needs=(GENERATIVE,), width=12, min=0, max=1,
            thresholds=[Threshold(thresholds.HALLUCINATION_RATE_THRESHOLD, RED, alert="MLLabBotHallucinations")],
            runbooks=["MLLabBotHallucinations"],
        ),
        Panel(
            "Labelled answers by verdict",
            "What: labels arriving per second by verdict: correct, wrong (a true claim that does not answer), "
            "hallucination (a false claim), unanswered (no claim). The quality SLI is the correct share. "
            f"{_no_threshold('the shares are held to the objective and the hallucination threshold (panels above).')} "
            "Action: no labels at all = the labelling pipeline stopped and the quality panels are blind: fix "
            "it first; a verdict that grows names the failure (hallucination: unknown topics; wrong: the bot "
            "misreads the question; unanswered: broken generation).",
            "none",
            [Target(_rate("ml_genai_labels_total", by=f"{BY_RUN}, verdict"), f"{RUN_LEGEND} {{{{verdict}}}}")],
            needs=(GENERATIVE,), width=12, min=0,
        ),
        Row("Confidence: how sure the bot is of its answers"),
        Panel(
            "Answer confidence distribution (heatmap)",
            "What: answers per confidence bucket over time (confidence = exp(mean token log-probability) of "
            "the answer, the geometric mean probability the bot gave its own tokens). A healthy bot puts "
            "nearly every answer in the top bucket. "
            f"{_no_threshold('its shift is tested against the reference answers by the confidence KS p-value (Drift).')} "
            "Action: mass moving down = the bot is less sure: unfamiliar questions (a new topic) or forced "
            "tokens (answers run past their end); check the Drift dashboard and the finish reasons.",
            "none",
            [Target(f"sum by (le) (increase({_m('ml_genai_confidence_bucket')}[$__rate_interval]))", "{{le}}", fmt="heatmap")],
            kind="heatmap", needs=(GENERATIVE,), width=12,
            options={"calculate": False, "yAxis": {"unit": "percentunit", "min": 0, "max": 1},
                     "rowsFrame": {"layout": "le"}},
        ),
        Panel(
            "Answer confidence percentiles",
            "What: the 10th and 50th percentile of answer confidence (from the confidence histogram). The "
            "median sits near 0.99 on a healthy bot; the 10th percentile shows the unsure tail first. "
            f"{_no_threshold('the confidence KS statistic and p-value (Drift) test the distribution against the reference answers.')} "
            "Action: a falling 10th percentile with flat accuracy is an early warning (labels arrive late): "
            "look at the Drift dashboard now, not when the labels confirm it.",
            "percentunit",
            [Target(f"histogram_quantile({q}, {_rate('ml_genai_confidence_bucket', by='le, ' + BY_RUN)})",
                    f"{RUN_LEGEND} p{int(q * 100)}") for q in (0.1, 0.5)],
            needs=(GENERATIVE,), width=12, min=0, max=1,
        ),
        Row("What users say"),
        Panel(
            "Complaint rate (thumbs down share of ratings)",
            "What: the share of user ratings that are thumbs down (3 users in 10 rate an answer; "
            f"{FEEDBACK_NOISE:.0%} of ratings say the opposite of the truth). Threshold: "
            f"{COMPLAINT_SHARE_AT_OBJECTIVE:.1%}, the complaint share of a bot exactly at the quality objective "
            f"({objective:g}) with that noise: above it users meet more wrong answers than the objective "
            "permits; a healthy bot sits near 12%. Not an alert (ratings are few and noisy). Action: complaints "
            "arrive before labels: read the complained-about answers, then the Drift dashboard.",
            "percentunit",
            [Target(f"{downs} / {ratings}", RUN_LEGEND)],
            needs=(GENERATIVE,), width=12, min=0, max=1,
            thresholds=[Threshold(COMPLAINT_SHARE_AT_OBJECTIVE, ORANGE)],
        ),
        Panel(
            "Ratings received",
            "What: user ratings arriving per second, thumbs up and thumbs down. "
            f"{_no_threshold('it is the denominator of the complaint rate: with few ratings that rate is noise.')} "
            "Action: ratings stop = the feedback widget or its pipeline broke: the complaint panels are blind "
            "until it is fixed.",
            "none",
            [Target(_rate("ml_genai_feedback_total", by=f"{BY_RUN}, rating"), f"{RUN_LEGEND} {{{{rating}}}}")],
            needs=(GENERATIVE,), width=12, min=0,
        ),
    ]


# --- Drift ------------------------------------------------------------------------------------


def drift_panels() -> list[Panel | Row]:
    downs = _rate("ml_genai_feedback_total", 'rating="down"')
    ratings = _rate("ml_genai_feedback_total")
    return [
        Row("Inputs: are today's questions the ones the bot was trained on?"),
        Panel(
            "Out-of-vocabulary rate",
            "What: the share of the window's prompt tokens outside the bot's vocabulary. A healthy stream uses "
            "only words the bot learned (0); a new product's name is one token in about seven. Threshold: "
            f"{thresholds.OOV_RATE_THRESHOLD:.0%} of prompt tokens (MLLabBotInputDrift). Action: collect "
            "the unknown words and the questions they come from: a launch or a new topic = retrain on the current "
            "catalogue and make its questions the new reference; garbage or another language = a broken or "
            "abusive client: filter it at the gateway.",
            "percentunit",
            [Target(_gauge("ml_genai_drift_oov_rate_ratio"), RUN_LEGEND)],
            needs=(GENERATIVE,), width=8, min=0,
            thresholds=[Threshold(thresholds.OOV_RATE_THRESHOLD, RED, alert="MLLabBotInputDrift")],
            runbooks=["MLLabBotInputDrift"],
        ),
        Panel(
            "Prompt tokens: Jensen-Shannon distance",
            "What: Jensen-Shannon distance (base 2, 0 to 1) between the window's prompt-token distribution and "
            "the training prompts'. It is never 0 (a window of 200 questions samples the words): a healthy stream "
            "measured 0.12-0.18 a window, questions about new products 0.204-0.246 (seed 1, 30 windows each), so "
            f"read its movement against the healthy level. {_no_threshold('the input-drift alert uses the out-of-vocabulary rate, which has one (0 on a healthy stream).')} "
            "Action: a step up with OOV at 0 = the same words in new proportions (another mix of questions, "
            "a client that phrases them differently): check whether accuracy follows before retraining.",
            "none",
            [Target(_gauge("ml_genai_drift_token_js_distance"), RUN_LEGEND)],
            needs=(GENERATIVE,), width=8, min=0, max=1,
        ),
        Panel(
            "Prompt length PSI",
            "What: population stability index of the window's prompt lengths (tokens) against the training "
            f"prompts' decile bins. Threshold: {thresholds.PSI_MODERATE:g} moderate, "
            f"{thresholds.PSI_MAJOR:g} a major shift (MLLabBotPromptGrowth). Action: longer prompts = a client "
            "sends more (the whole conversation, pasted text): find which client changed and trim or summarise "
            "at the gateway to what the model needs; it costs tokens, time to first token and money "
            "(Operational).",
            "none",
            [Target(_gauge("ml_genai_drift_prompt_length_psi"), RUN_LEGEND)],
            needs=(GENERATIVE,), width=8, min=0,
            thresholds=[Threshold(thresholds.PSI_MODERATE, ORANGE),
                        Threshold(thresholds.PSI_MAJOR, RED, alert="MLLabBotPromptGrowth")],
            runbooks=["MLLabBotPromptGrowth"],
        ),
        Row("Outputs and users: is the bot as sure of itself, and are users as happy, as before?"),
        Panel(
            "Confidence drift: KS statistic",
            "What: the Kolmogorov-Smirnov statistic between the window's answer confidences and those of a "
            "reference window answered at start: the largest gap between the two distributions (0 to 1). "
            f"Threshold: {KS_CRITICAL:g}, where the KS p-value reaches {thresholds.KS_ALPHA:g} for two "
            f"windows of {WINDOW_SIZE} answers (the default window; lab.stats.ks_pvalue). Action: as for the "
            "p-value (next panel).",
            "none",
            [Target(_gauge("ml_genai_drift_confidence_ks"), RUN_LEGEND)],
            needs=(GENERATIVE,), width=8, min=0, max=1,
            thresholds=[Threshold(KS_CRITICAL, RED)],
        ),
        Panel(
            "Confidence drift: KS p-value",
            "What: the two-sided asymptotic p-value of the same comparison: how likely a gap this large is "
            f"between two samples of one distribution. Threshold: below {thresholds.KS_ALPHA:g} the confidences "
            "have drifted (red; MLLabBotConfidenceDrift, which also asks for 3 windows in a row). Action: look "
            "for the cause on both sides: inputs (Out-of-vocabulary rate: a new topic) or outputs (finish "
            "reason length, a release that changed decoding); labels confirm the impact later.",
            "none",
            [Target(_gauge("ml_genai_drift_confidence_ks_p_value_ratio"), RUN_LEGEND)],
            needs=(GENERATIVE,), width=8, min=0, max=1,
            thresholds=[Threshold(thresholds.KS_ALPHA, RED, alert="MLLabBotConfidenceDrift")], bad_below=True,
            runbooks=["MLLabBotConfidenceDrift"],
        ),
        Panel(
            "Complaint trend",
            "What: thumbs-down ratings per minute and, dashed, the complaints per minute a bot exactly at the "
            f"quality objective ({thresholds.QUALITY_SLI_OBJECTIVE:g}) would get from the same number of ratings "
            f"({COMPLAINT_SHARE_AT_OBJECTIVE:.1%} of them, Quality: complaint rate). Threshold: the dashed line. Action: complaints that climb "
            "above it while traffic is flat follow a drift above: read the complaints against the unknown words "
            "and the confidence shift; climbing with traffic alone is more users, not worse answers.",
            "none",
            [Target(f"60 * {downs}", f"{RUN_LEGEND} complaints"),
             Target(f"60 * {COMPLAINT_SHARE_AT_OBJECTIVE:g} * {ratings}", f"{RUN_LEGEND} allowed")],
            needs=(GENERATIVE,), width=8, min=0,
            overrides=[{"matcher": {"id": "byRegexp", "options": ".*allowed"},
                        "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                                       {"id": "color", "value": {"mode": "fixed", "fixedColor": ORANGE}}]}],
        ),
    ]


# --- the dashboards ---------------------------------------------------------------------------

TAGS = ["ml-lab", "generative", "support-bot"]
LINKS = [{"title": "Support bot dashboards", "type": "dashboards", "tags": ["support-bot"], "asDropdown": True,
          "includeVars": True, "keepTime": True, "icon": "external link", "targetBlank": False, "tooltip": "",
          "url": ""}]


def _dashboard(uid: str, title: str, filename: str, description: str, items: list[Panel | Row],
               runbooks_base: str) -> Dashboard:
    return Dashboard(uid=uid, title=title, folder="ml-lab", filename=filename, description=description, tags=TAGS,
                     items=items, variables=run_variables(VARIABLE_METRIC, runbooks_base), links=LINKS)


def operational_dashboard(runbooks_base: str) -> Dashboard:
    return _dashboard(
        "ml-lab-bot-operational", "ML Lab / Support bot: Operational", "bot-operational.json",
        "The support bot as an SRE sees it: requests and finish reasons (its error rate), time to first token, "
        "request duration and time per output token, tokens and cost per request, uptime. Each panel says its "
        "threshold and the action when it is crossed.",
        operational_panels(), runbooks_base)


def quality_dashboard(runbooks_base: str) -> Dashboard:
    return _dashboard(
        "ml-lab-bot-quality", "ML Lab / Support bot: Quality", "bot-quality.json",
        "Is the support bot right? Accuracy on labelled answers against the quality objective and its burn rate, "
        "hallucination rate, verdicts, the confidence distribution and the users' complaints. Each panel says "
        "its threshold and the action when it is crossed.",
        quality_panels(), runbooks_base)


def drift_dashboard(runbooks_base: str) -> Dashboard:
    return _dashboard(
        "ml-lab-bot-drift", "ML Lab / Support bot: Drift", "bot-drift.json",
        "Have the support bot's questions or answers moved away from what it was trained on? Out-of-vocabulary "
        "rate, token Jensen-Shannon distance and prompt-length PSI (inputs), confidence KS statistic and p-value "
        "(outputs), and the complaint trend. Each panel says its threshold and the action when it is crossed.",
        drift_panels(), runbooks_base)


def dashboards(runbooks_base: str) -> list[Dashboard]:
    return [operational_dashboard(runbooks_base), quality_dashboard(runbooks_base), drift_dashboard(runbooks_base)]
