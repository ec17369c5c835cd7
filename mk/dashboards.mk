# Grafana dashboards (included by the Makefile). Sources: lab/dashboards/*.py; output:
# grafana/dashboards/<folder>/*.json (what Grafana provisions). docs/dashboards.md explains them.

.PHONY: dashboards lint-dashboards test-dashboards

dashboards: $(VENV_STAMP) ## regenerate grafana/dashboards/**.json from lab/dashboards
	@$(PY) -m lab.dashboards

lint-dashboards: $(VENV_STAMP) ## grafana/dashboard-linter --strict on every dashboard (builds it once)
	@linter="$$(scripts/native/build.sh --print-paths dashboard-linter | sed -n 's/^dashboard-linter=//p')"; \
	for f in grafana/dashboards/*/*.json; do "$$linter" lint --strict "$$f" >/dev/null && echo "ok  $$f"; done

test-dashboards: $(VENV_STAMP) ## dashboard tests: generated == checked in, conventions, linter, panel contract on the native stack
	@$(PY) -m pytest tests/dashboards $(PYTEST_ARGS)

.PHONY: dashboard-pictures
dashboard-pictures: $(VENV_STAMP) ## redraw docs/img/dashboards/*.png from real paced runs on a private native stack (~3 min)
	@scripts/dashboard-pictures.sh
