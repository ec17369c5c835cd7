"""Scenario specifications: the schema of a file in scenarios/ and the one loader.

    base      the header every scenario kind shares (name, title, kind, variant, alerts,
              story) and the helpers the loader needs (errors, --set parsing, merging)
    training  kind = "training": data, model, optimizer, schedule and injected faults
    serving   kind = "inference": a served model, its request stream and its monitors
    loader    finds scenario files, applies `base =`, [fix] and --set, and validates
              against the schema of the file's kind (the only module that knows all kinds)
"""
