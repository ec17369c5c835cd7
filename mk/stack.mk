# Observability stack targets, included by the top-level Makefile (`-include mk/*.mk`).
# Compose when a Docker engine answers, else native; force native with LAB_NATIVE=1
# (e.g. `make up LAB_NATIVE=1`). See docs/stack.md.

.PHONY: up down status native-build check-stack-config test-stack docker-engine docker-engine-stop standins test-compose

up: ## start the observability stack (compose if Docker answers, else native; LAB_PROFILE=shared on a shared host)
	@scripts/stack.sh up

down: ## stop the observability stack
	@scripts/stack.sh down

status: ## show what runs in the stack and its URLs
	@scripts/stack.sh status

native-build: ## build the native stack binaries from Go modules (cached in ~/.cache/ml-obs-lab)
	@scripts/native/build.sh

# A private Docker engine (no systemd needed; no bridge, no iptables rules), made for the
# tests' host-network override (tests/stack/compose.test.yml): published ports of the plain
# compose file are not reachable through it. Use it with
# `export DOCKER_HOST=$$(scripts/docker/engine.sh env | cut -d= -f2-)`.
docker-engine: ## start a private Docker engine (installs docker.io where missing); prints DOCKER_HOST
	@scripts/docker/engine.sh start

docker-engine-stop: ## stop the private Docker engine started by `make docker-engine`
	@scripts/docker/engine.sh stop

standins: ## build the compose stand-in images from the native binaries (DOCKER_HOST: the engine to use)
	@scripts/docker/standins.sh

test-compose: $(VENV_STAMP) ## the compose stack on a private engine with stand-in images, end to end (~2 min warm)
	@$(PY) -m pytest tests/stack/test_compose_stack.py $(PYTEST_ARGS)

check-stack-config: $(VENV_STAMP) ## validate collector/Prometheus/Alertmanager configs with the pinned binaries
	@$(PY) -m pytest tests/stack/test_config_validation.py tests/stack/test_static_agreement.py $(PYTEST_ARGS)

test-stack: $(VENV_STAMP) ## run the stack tests (configs, agreement, live native and compose stacks)
	@$(PY) -m pytest tests/stack $(PYTEST_ARGS)
