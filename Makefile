# GenHub developer commands. `make help` lists them.
# Every target installs what it needs first, so a fresh clone only needs `make run` or `make test`.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
BUF := .cache/bin/buf
UV := .cache/bootstrap/bin/uv

.PHONY: help install tools gen lint breaking lock infra-up infra-down test test-unit run bench images soak

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: ## Python venv with every pinned package (requirements.lock) and our packages editable
	@scripts/install.sh

tools: ## Pinned tools: buf (npm), FerretDB and Helm (Go modules), RabbitMQ, Redis, promtool (Debian)
	@scripts/tools.sh

gen: install tools ## Regenerate the Python stubs from protos/
	@scripts/gen.sh

lint: install tools ## buf lint + format check, stub drift, ruff, mypy --strict
	@scripts/protodeps.sh
	$(BUF) lint
	$(BUF) format -d --exit-code protos
	@scripts/gen.sh --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

breaking: install tools ## buf breaking-change check of protos/ against git REF (default: HEAD)
	@scripts/breaking.sh $(REF)

lock: ## Re-resolve requirements.in into requirements.lock (and the images' build backend lock)
	@scripts/install.sh
	$(UV) pip compile requirements.in -o requirements.lock --python-version 3.11 --generate-hashes -q
	$(UV) pip compile deploy/docker/build-requirements.in -o deploy/docker/build-requirements.lock --python-version 3.11 --generate-hashes -q

infra-up: ## Start RabbitMQ, Redis and FerretDB on loopback (installs them if missing)
	@scripts/infra.sh up

infra-down: ## Stop what infra-up started
	@scripts/infra.sh down

test: install lint infra-up ## Everything CI runs: lint, then every test against real infrastructure
	$(PY) -m pytest

test-unit: install ## Only the in-process unit tests (no infrastructure)
	$(PY) -m pytest tests/unit

run: install infra-up ## The whole stack on this machine (GENHUB_FAKE_PROVIDERS=1: real adapters against local fakes)
	@scripts/run.sh

bench: install infra-up ## Throughput and latency figures with the demo provider
	$(PY) scripts/bench.py

images: ## Container images of every service and provider worker (needs Docker or Podman)
	@scripts/images.sh

soak: install infra-up ## 30 minutes of mixed load; every service's RSS each minute (not in test)
	$(PY) scripts/soak.py
