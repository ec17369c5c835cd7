"""Training health: is this run learning, and if not, which failure is it?

Read top to bottom: loss (is it learning / generalising?), gradients and learning rate
(is the optimisation stable?), activations (are units dying?), accuracy and step time,
then the alerts firing for the run. docs/dashboards.md shows each failure's shape.
"""

from __future__ import annotations

from lab import thresholds
from lab.dashboards.model import (
    ORANGE,
    RED,
    RUN,
    RUN_LEGEND,
    TRAINING,
    YELLOW,
    Dashboard,
    Panel,
    Row,
    Target,
    Threshold,
    prometheus_annotation,
    run_variables,
)

# The OTel Python SDK cannot export NaN/inf, so lab/training/export.py skips a non-finite interval peak
# (no point for that interval). A --fast diverged run's 70 steps take a fraction of a second:
# unless a periodic export happens to fall before step ~50, every gradient-norm peak it
# exports is inf and the peak and ratio gauges get no sample at all (it varies with machine
# load). A paced diverged run shows the finite peaks before the divergence.
NONFINITE_PEAK_GAP = {"diverged": "a --fast diverged run usually exports only after diverging, when the gradient-norm "
                                  "peaks are inf, which the lab does not export (lab/training/export.py)"}


def _m(name: str, extra: str = "") -> str:
    """A lab series restricted to the selected runs."""
    return f"{name}{{{RUN}{',' + extra if extra else ''}}}"


def panels() -> list[Panel | Row]:
    return [
        Row("Loss: is it learning, and does it generalise?"),
        Panel(
            "Training and validation loss",
            "Loss at each evaluation: split=train is the mean minibatch loss since the previous evaluation, "
            "split=validation the loss on the fixed validation set; dotted, the highest minibatch loss in each "
            "export interval, which moves between evaluations. Log scale. Healthy: both fall together. "
            "Overfitting: validation turns up while training keeps falling. Stalled: both flat near the start "
            "value. Diverged: the minibatch peak climbs by orders of magnitude within seconds, then every line "
            "stays at its last finite value (NaN is not exported; the non-finite step counter carries it).",
            "none",
            [Target(f"max by (lab_scenario, lab_variant, split) ({_m('ml_training_loss')})", f"{RUN_LEGEND} {{{{split}}}}"),
             Target(f"max by (lab_scenario, lab_variant) ({_m('ml_training_batch_loss')})", f"{RUN_LEGEND} minibatch (peak)")],
            needs=(TRAINING,), width=12, log_scale=True,
            gaps={"diverged": "a --fast diverged run usually exports only after diverging, when the minibatch-loss "
                              "peak is inf, which the lab does not export (lab/training/export.py)"},
            overrides=[{"matcher": {"id": "byRegexp", "options": ".*minibatch \\(peak\\)"},
                        "properties": [{"id": "custom.lineStyle", "value": {"fill": "dot", "dash": [0, 10]}}]}],
        ),
        Panel(
            "Validation / training loss ratio",
            f"Generalisation gap: validation loss divided by training loss. Above {thresholds.OVERFIT_RATIO_THRESHOLD} "
            "the model generalises worse than it fits; overfitting when it also stops setting new validation "
            "minima (next panel). A healthy run on memorisable data can sit above the line early on. Log scale: "
            "a memorising model's ratio climbs into the hundreds.",
            "none",
            [Target(f"max by (lab_scenario, lab_variant) ({_m('ml_training_loss_ratio')})", RUN_LEGEND)],
            needs=(TRAINING,), width=6, log_scale=True,
            thresholds=[Threshold(thresholds.OVERFIT_RATIO_THRESHOLD, RED, alert="MLLabOverfitting")],
            runbooks=["MLLabOverfitting"],
        ),
        Panel(
            "Evaluations since best validation loss",
            f"What early stopping counts: evaluations since validation loss last reached a new minimum. At "
            f"{thresholds.OVERFIT_STALL_EVALS} or more, with the ratio above {thresholds.OVERFIT_RATIO_THRESHOLD}, "
            "the run is overfitting.",
            "none",
            [Target(f"max by (lab_scenario, lab_variant) ({_m('ml_training_validation_evals_since_best')})", RUN_LEGEND)],
            needs=(TRAINING,), width=6, min=0, decimals=0,
            thresholds=[Threshold(thresholds.OVERFIT_STALL_EVALS, RED, alert="MLLabOverfitting")],
            runbooks=["MLLabOverfitting"],
        ),
        Panel(
            "Minibatch loss spike (peak / rolling mean)",
            "Highest minibatch loss in each export interval divided by the mean of the previous 50 minibatch "
            f"losses. A loss spike is a jump past {thresholds.LOSS_SPIKE_THRESHOLD}x; noisy healthy runs peak near 2x.",
            "none",
            [Target(f"max by (lab_scenario, lab_variant) ({_m('ml_training_batch_loss_ratio')})", RUN_LEGEND)],
            needs=(TRAINING,), width=12, log_scale=True,
            thresholds=[Threshold(thresholds.LOSS_SPIKE_THRESHOLD, RED, alert="MLLabLossSpike")],
            runbooks=["MLLabLossSpike"],
        ),
        Panel(
            "Training progress",
            "Completed steps / planned steps. A line that stops short of 100% is a run that ended early "
            "(early stopping, or divergence: 20 non-finite steps stop the run).",
            "percentunit",
            [Target(f"max by (lab_scenario, lab_variant) ({_m('ml_training_progress_ratio')})", RUN_LEGEND)],
            needs=(TRAINING,), width=6, min=0, max=1,
        ),
        Panel(
            "Non-finite steps",
            "Steps whose loss or gradient norm was NaN or infinite since the run started (each run is a new "
            "process, so the counter starts at 0). Any at all means the run diverged; 20 in a row stop it.",
            "none",
            [Target(f"max by (lab_scenario, lab_variant) ({_m('ml_training_nonfinite_steps_total')})", RUN_LEGEND)],
            needs=(TRAINING,), width=6, min=0, decimals=0,
            thresholds=[Threshold(1, RED)],
            runbooks=["MLLabTrainingDiverged"],
        ),
        Row("Optimisation: gradients and learning rate"),
        Panel(
            "Gradient norm against its baseline",
            "Highest global L2 gradient norm (before clipping) per export interval, and the mean of the previous "
            "50 steps (dashed). A spike leaves the baseline far below; a divergence runs off the scale.",
            "none",
            [
                Target(f"max by (lab_scenario, lab_variant) ({_m('ml_training_gradient_norm')})", f"{RUN_LEGEND} norm (peak)"),
                Target(f"max by (lab_scenario, lab_variant) ({_m('ml_training_gradient_norm_baseline')})", f"{RUN_LEGEND} baseline"),
            ],
            needs=(TRAINING,), width=8, log_scale=True, gaps=NONFINITE_PEAK_GAP,
            overrides=[{"matcher": {"id": "byRegexp", "options": ".*baseline"},
                        "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]}],
        ),
        Panel(
            "Gradient norm / baseline",
            f"A step's gradient norm divided by the mean of the previous 50 steps (peak per interval). "
            f"{thresholds.GRAD_SPIKE_WARNING}x is instability, {thresholds.GRAD_SPIKE_CRITICAL}x an explosion.",
            "none",
            [Target(f"max by (lab_scenario, lab_variant) ({_m('ml_training_gradient_norm_ratio')})", RUN_LEGEND)],
            needs=(TRAINING,), width=8, log_scale=True, gaps=NONFINITE_PEAK_GAP,
            thresholds=[Threshold(thresholds.GRAD_SPIKE_WARNING, ORANGE, alert="MLLabGradientNormSpike"),
                        Threshold(thresholds.GRAD_SPIKE_CRITICAL, RED, alert="MLLabGradientNormSpikeCritical")],
            runbooks=["MLLabGradientNormSpike", "MLLabGradientNormSpikeCritical"],
        ),
        Panel(
            "Learning rate",
            "Highest learning rate applied per export interval (a burst of a few steps is not missed). A jump "
            "here just before a gradient or loss spike points at the schedule, not the data.",
            "sci",
            [Target(f"max by (lab_scenario, lab_variant) ({_m('ml_training_learning_rate')})", RUN_LEGEND)],
            needs=(TRAINING,), width=8, log_scale=True,
        ),
        Row("Activations: are units dying?"),
        Panel(
            "Activation mean per layer",
            "Mean output of each hidden layer's activation over the fixed probe batch (the validation inputs). "
            "Collapsing towards 0 with a rising dead ratio is the dying-ReLU shape; NaN means non-finite values.",
            "none",
            [Target(f"max by (lab_scenario, lab_variant, layer) ({_m('ml_training_activation_mean')})", f"{RUN_LEGEND} {{{{layer}}}}")],
            needs=(TRAINING,), width=12,
        ),
        Panel(
            "Dead-neuron ratio per layer",
            "Share of a layer's units whose pre-activation is <= 0 for every probe sample. Above "
            f"{thresholds.DEAD_RATIO_THRESHOLD:.0%} for {thresholds.DEAD_SUSTAINED_EVALS} evaluations in a row is a dead layer.",
            "percentunit",
            [Target(f"max by (lab_scenario, lab_variant, layer) ({_m('ml_training_activation_dead_ratio')})", f"{RUN_LEGEND} {{{{layer}}}}")],
            needs=(TRAINING,), width=12, min=0, max=1,
            thresholds=[Threshold(thresholds.DEAD_RATIO_THRESHOLD, RED, alert="MLLabDeadNeurons")],
            runbooks=["MLLabDeadNeurons"],
        ),
        Row("Outcome and cost"),
        Panel(
            "Accuracy",
            "Accuracy at each evaluation: split=train over the minibatches since the previous evaluation, "
            "split=validation on the whole validation set. A widening gap is overfitting; both near chance "
            "(10% on digits) is a run that does not learn.",
            "percentunit",
            [Target(f"max by (lab_scenario, lab_variant, split) ({_m('ml_training_accuracy_ratio')})", f"{RUN_LEGEND} {{{{split}}}}")],
            needs=(TRAINING,), width=12, min=0, max=1,
        ),
        Panel(
            "Step duration over the run (p50, p95)",
            "Wall time of one optimiser step (forward, backward, update) from the step-duration histogram, over "
            "the run so far (each run is a new process whose histogram starts empty; a rate() window would show "
            "nothing for runs shorter than two export intervals). Exemplars link to traces where the datasource "
            "has them.",
            "s",
            [
                Target("histogram_quantile(0.5, sum by (le, lab_scenario, lab_variant) "
                       f"({_m('ml_training_step_duration_seconds_bucket')}))", f"{RUN_LEGEND} p50"),
                Target("histogram_quantile(0.95, sum by (le, lab_scenario, lab_variant) "
                       f"({_m('ml_training_step_duration_seconds_bucket')}))", f"{RUN_LEGEND} p95",
                       exemplar=True),
            ],
            needs=(TRAINING,), width=12, min=0,
        ),
        Row("Alerts"),
        Panel(
            "Alerts firing for the run",
            "Lab alerts (MLLab*) pending or firing for the selected runs, from Prometheus's ALERTS series. "
            "Each alert's runbook is linked from the panel menu.",
            "none",
            [Target(f'max by (alertname, alertstate, severity, lab_scenario, lab_variant) (ALERTS{{alertname=~"MLLab.+",{RUN}}})',
                    "{{alertname}} {{alertstate}} " + RUN_LEGEND)],
            needs=(), width=24, min=0, decimals=0,
            runbooks=["MLLabOverfitting", "MLLabTrainingStalled", "MLLabTrainingDiverged"],
        ),
    ]


def dashboard(runbooks_base: str) -> Dashboard:
    return Dashboard(
        uid="ml-lab-training-health",
        title="ML Lab / Training health",
        folder="ml-lab",
        filename="training-health.json",
        description="Is the run learning, and if not, which failure is it? Loss, generalisation gap, gradients, "
        "learning rate, activations, accuracy and the alerts for the selected runs.",
        tags=["ml-lab", "training"],
        items=panels(),
        variables=run_variables("ml_training_steps_total", runbooks_base),
        annotations=[
            prometheus_annotation(
                "Learning-rate changes (gives the answer away)",
                # the peak LR per interval jumping by more than 20% (the lr_change event's rule)
                f"max by (lab_scenario, lab_variant) ({_m('ml_training_learning_rate')}) "
                f"> 1.2 * max by (lab_scenario, lab_variant) ({_m('ml_training_learning_rate')} offset 10s)",
                "learning rate up", "{{lab_scenario}}/{{lab_variant}}: learning rate jumped", YELLOW,
            ),
            prometheus_annotation(
                "Non-finite steps (gives the answer away)",
                f"sum by (lab_scenario, lab_variant) (increase({_m('ml_training_nonfinite_steps_total')}[10s])) > 0",
                "non-finite steps", "{{lab_scenario}}/{{lab_variant}}: NaN/inf loss or gradient", RED,
            ),
        ],
    )
