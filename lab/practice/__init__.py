"""Practice: hidden cases to diagnose from live signals, and interpretation drills.

    triage     practice mode's cases, answers, hints, scores (any family, through lab.families)
    cli        the `lab triage ...` commands
    exercises  the interpretation drills in docs/exercises, drawn from real runs
"""
