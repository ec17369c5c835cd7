"""ML observability lab: real PyTorch runs driven into failure, streamed over OpenTelemetry.

Importing this package has no side effects: telemetry is only set up by
``lab.telemetry.setup_telemetry`` when a run starts.
"""

__version__ = "0.1.0"
