# Alert rules: unit tests, replays of recorded runs, lint, and the end-to-end alert matrix.
# Included by the top-level Makefile (`-include mk/*.mk`). See docs/alerts.md.

.PHONY: test-alerts

test-alerts: $(VENV_STAMP) ## alert rules in seconds: promtool unit tests + mutants, recorded-run replays, pint offline
	@$(PY) -m pytest tests/alerts $(PYTEST_ARGS)

.PHONY: record-alerts
record-alerts: $(VENV_STAMP) ## re-record every scenario (seed 0) into tests/alerts/recordings/ for the replay tests
	@$(PY) -m lab.dev.record --out tests/alerts/recordings

.PHONY: alert-matrix
alert-matrix: $(VENV_STAMP) ## every scenario on a private native stack: which alerts fire (5 training seeds --fast, 2 paced inference seeds), detection latency; results/alert-matrix.md, README (~28 min)
	@$(PY) -m lab.dev.alert_matrix --out results --readme README.md $(ARGS)

.PHONY: runbook-links
runbook-links: $(VENV_STAMP) ## point every runbook link (rules, their tests, .pint.hcl, dashboards) at LAB_RUNBOOK_BASE in .env
	@$(PY) -m lab.dev.runbook_links
