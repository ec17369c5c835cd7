"""The training family: a model trained for real into (or away from) a failure.

    data, models, probes   the dataset, the network and its activation probes
    signals                per-step bookkeeping (rolling baselines, interval peaks, the gap)
    loop                   the Trainer: reports steps and evaluations through the observer protocol
    export                 the OTel observer (metrics, spans, logs)
    console                the terminal view
    signatures             when a run showed each failure the lab teaches
    run                    the family record the run session uses (TRAINING)
"""
