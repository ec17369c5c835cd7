"""ML observability lab: real PyTorch runs driven into failure, streamed over OpenTelemetry.

Importing this package has no side effects: telemetry is only set up when a run starts
(lab.telemetry.otel.Telemetry, created by lab.telemetry.session.run_session).
The layers and what each may import: docs/architecture.md.
"""

__version__ = "0.1.0"
