"""The serving family: a model in production, its request stream and its monitors.

    model       the world (reference, held-out and stream data) and the classifier
    drift       drift statistics, one per function, and the per-feature monitor
    loop        the Server: reports requests and drift windows through the observer protocol
    export      the OTel observer (metrics, spans, logs)
    console     the terminal view
    signatures  when a stream showed each drift failure the lab teaches
    run         the family record the run session uses (SERVING)
"""
