# Observability stack targets, included by the top-level Makefile (`-include mk/*.mk`).
# Compose when a Docker engine answers, else native; force native with LAB_NATIVE=1
# (e.g. `make up LAB_NATIVE=1`). See docs/stack.md.

.PHONY: up down status native-build check-stack-config test-stack

up: ## start the observability stack (compose if Docker answers, else native)
	@scripts/stack.sh up

down: ## stop the observability stack
	@scripts/stack.sh down

status: ## show what runs in the stack and its URLs
	@scripts/stack.sh status

native-build: ## build the native stack binaries from Go modules (cached in ~/.cache/ml-obs-lab)
	@scripts/native/build.sh

check-stack-config: $(VENV_STAMP) ## validate collector/Prometheus/Alertmanager configs with the pinned binaries
	@$(PY) -m pytest tests/stack/test_config_validation.py tests/stack/test_static_agreement.py $(PYTEST_ARGS)

test-stack: $(VENV_STAMP) ## run the stack tests (configs, agreement, live native stack)
	@$(PY) -m pytest tests/stack $(PYTEST_ARGS)
