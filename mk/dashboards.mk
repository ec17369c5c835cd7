# Grafana dashboards (included by the Makefile). Sources: lab/dashboards/*.py; output:
# grafana/dashboards/<folder>/*.json (what Grafana provisions). docs/dashboards.md explains them.

.PHONY: dashboards lint-dashboards test-dashboards

dashboards: $(VENV_STAMP) ## regenerate grafana/dashboards/**.json from lab/dashboards
	@$(PY) -m lab.dashboards

# The rules of grafana/dashboard-linter, as our own tests (the linter's build pulls AGPL code);
# pytest fails when any dashboard breaks any rule, and names each problem.
lint-dashboards: $(VENV_STAMP) ## dashboard-linter's rules + Grafana's JSON schemas on every dashboard
	@$(PY) -m pytest -q tests/dashboards/test_dashboard_rules.py tests/dashboards/test_grafana_schemas.py $(PYTEST_ARGS)

test-dashboards: $(VENV_STAMP) ## dashboard tests: generated == checked in, conventions, linter rules, schemas, panel contract
	@$(PY) -m pytest tests/dashboards $(PYTEST_ARGS)

.PHONY: dashboard-pictures
dashboard-pictures: $(VENV_STAMP) ## redraw docs/img/dashboards/*.png from real paced runs on a private native stack (~3 min; ARGS="--only NAME")
	@scripts/dashboard-pictures.sh $(ARGS)
