# Alert rules: unit tests, replays of recorded runs, lint, and the end-to-end alert matrix.
# Included by the top-level Makefile (`-include mk/*.mk`). See docs/alerts.md.

.PHONY: test-alerts

test-alerts: $(VENV_STAMP) ## alert rules in seconds: promtool unit tests + mutants, recorded-run replays, pint offline
	@$(PY) -m pytest tests/alerts $(PYTEST_ARGS)

.PHONY: record-alerts
record-alerts: $(VENV_STAMP) ## re-record every scenario (seed 0) into tests/alerts/recordings/ for the replay tests
	@$(PY) -m lab.record --out tests/alerts/recordings
