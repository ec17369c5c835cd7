"""What every scenario family shares to be observed: OpenTelemetry, the catalogue, the run session.

    otel       providers and exporters for one run, its identity (resource attributes)
    catalogue  every instrument the lab emits, and the one factory that creates them
    observer   the one protocol a family's loop reports through
    session    the run skeleton: stream opening, observers, export errors, outcome, summary
    record     reads a run's instruments on its paced clock as Prometheus would store them
    outage     a real pipeline fault (practice mode's confounder)
"""
