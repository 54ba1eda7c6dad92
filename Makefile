# Evergreen: run it locally, test it, build and deploy the SAM bundle.
#
#   make run           the local stack (moto, HTTP API on :3000, Klaviyo sandbox on :3100, poller, sweep)
#   make test          lint, types, tests, template checks and `sam build` (what CI runs)
#   make deploy        sam build + sam deploy (shows the change set, asks y/N) + publish the console test events
#   make deploy-guided the same, with SAM's guided questions
#   make delete        sam delete (the profiles table and the exports bucket are retained)
#   make bench         benchmarks into bench/results.json
#   make requirements  re-export layers/evergreen/requirements.txt from uv.lock
#
# Python 3.13 comes from pyenv where it has one, else from uv (which may download it).
# SAM CLI runs through uvx at a pinned version; it is never part of the project environment.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

SAM_CLI_VERSION ?= 1.170.0
PYTHON_VERSION := 3.13
BUILD_DIR := .aws-sam/build
VALIDATE_REGION ?= us-east-1
SAM := uvx --from aws-sam-cli==$(SAM_CLI_VERSION) sam
LAYER_REQUIREMENTS := layers/evergreen/requirements.txt
TRACING_REQUIREMENTS := layers/evergreen/tracing-requirements.txt
UV_EXPORT := uv export --frozen --no-dev --no-hashes --no-emit-project --no-header --no-annotate
# The python3.13 runtime provides boto3 and botocore; the X-Ray SDK ships only in the tracing layer.
# tests/unit/test_layer_requirements.py applies the same rules.
LAYER_PRUNE := --prune boto3 --prune aws-xray-sdk
RUNTIME_PRUNE := --prune boto3 --prune botocore

export SAM_CLI_TELEMETRY := 0
USER_PATH := $(PATH)
export PATH := $(HOME)/.local/bin:$(PATH)

NEEDS_TOOLCHAIN := $(filter-out help clean,$(or $(MAKECMDGOALS),help))

ifneq ($(NEEDS_TOOLCHAIN),)
  ifeq ($(shell export PATH="$(PATH)"; command -v uv),)
    $(info uv not found: installing it with pip (python3 -m pip install --user uv))
    $(shell python3 -m pip install --user --quiet uv >&2 || python3 -m pip install --user --quiet --break-system-packages uv >&2)
    ifeq ($(shell export PATH="$(PATH)"; command -v uv),)
      $(error could not install uv; see https://docs.astral.sh/uv/getting-started/installation/)
    endif
    ifeq ($(shell export PATH="$(USER_PATH)"; command -v uv),)
      $(info uv is in $(HOME)/.local/bin, which your shell's PATH lacks: use ./evergreen for the CLI (it finds uv),)
      $(info or add it for every terminal: echo 'export PATH="$$HOME/.local/bin:$$PATH"' >> ~/.bashrc)
    endif
  endif
  ifeq ($(origin EVERGREEN_PYTHON),undefined)
    EVERGREEN_PYTHON := $(shell export PATH="$(PATH)"; scripts/find-python.sh $(PYTHON_VERSION))
  endif
  ifeq ($(EVERGREEN_PYTHON),)
    $(error no Python $(PYTHON_VERSION): install it with pyenv or let uv download it (uv python install $(PYTHON_VERSION)))
  endif
  export EVERGREEN_PYTHON
  # uv (and uvx) use this interpreter; sam build finds python3.13 on PATH beside it.
  export UV_PYTHON := $(EVERGREEN_PYTHON)
  export PATH := $(patsubst %/,%,$(dir $(EVERGREEN_PYTHON))):$(PATH)
endif

.PHONY: check-aws help run test check sync lint fmt typecheck pytest contracts validate cfn-lint build bench deploy deploy-guided delete events requirements clean

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

# `make run SHOPIFY_PORT=3201` (likewise HOST, PORT, MOTO_PORT, KLAVIYO_PORT) passes --shopify-port 3201;
# ARGS="--no-sweep" passes any other flag. Only what is given on make's command line counts.
run_flag = $(if $(filter command line,$(origin $(1))), --$(2) $($(1)))
RUN_FLAGS = $(call run_flag,HOST,host)$(call run_flag,PORT,port)$(call run_flag,MOTO_PORT,moto-port)$\
  $(call run_flag,KLAVIYO_PORT,klaviyo-port)$(call run_flag,SHOPIFY_PORT,shopify-port)$(if $(ARGS), $(ARGS))

run: contracts  ## start the local stack (Ctrl-C stops it; SHOPIFY_PORT=3201 etc. move its ports, ARGS= other flags)
	uv sync
	EVERGREEN_MAKE_TARGET=run uv run evergreen run$(RUN_FLAGS)

test:  ## everything CI checks, with its duration
	@started=$$(date +%s); status=0; \
	$(MAKE) check || status=$$?; \
	echo "make test: $$(( $$(date +%s) - started )) s$$( [ $$status -eq 0 ] || echo ", FAILED (exit $$status)" )"; \
	exit $$status

# The checks before the tests overlap each other (mypy and cfn-lint compute while SAM reads and writes), each
# one's output kept together; then the tests, in parallel workers (PYTEST_WORKERS).
CHECK_JOBS ?= 3

check: sync
	$(MAKE) --jobs=$(CHECK_JOBS) --output-sync=target lint typecheck validate cfn-lint build
	$(MAKE) pytest

sync:
	uv sync --frozen

lint:  ## ruff check + ruff format --check + import contracts (pyproject's [tool.importlinter])
	uv run ruff check .
	uv run ruff format --check .
	uv run lint-imports

fmt:  ## format and auto-fix
	uv run ruff format .
	uv run ruff check --fix .

typecheck:  ## mypy --strict on the package, the local tooling and the handlers; the tests with a relaxed override
	uv run mypy layers/evergreen/evergreen cli/evergreen_cli functions tests

# Workers for the tests (pytest-xdist): much of the suite waits on local servers, and
# each test file stays on one worker (its module's stack is started once, its moto server is the worker's own).
# Two per core: about half of a test's time is spent waiting on a local server (moto, a sandbox, the HTTP API), so
# two workers per core keep both busy (on this 2-core machine: 211 s with 4 workers, 281 s with 2).
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))

pytest: contracts  ## all tests (PYTEST_WORKERS: two per core by default; PYTEST_WORKERS=0 runs them in this process)
	uv run pytest -n $(PYTEST_WORKERS) --dist loadfile

contracts:  ## Shopify's published webhook examples and Admin GraphQL schema, pinned npm packages, into .contracts/
	uv run python -m evergreen_cli.sandboxes.shopify_contracts

validate:  ## sam validate --lint
	$(SAM) validate --lint --region $(VALIDATE_REGION)

cfn-lint:
	uv run cfn-lint template.yaml

build:  ## sam build (arm64 wheels, no Docker)
	@started=$$(date +%s); \
	$(SAM) build --build-dir $(BUILD_DIR); \
	echo "sam build: $$(( $$(date +%s) - started )) s"

bench:  ## run bench/bench_*.py into bench/results.json
	uv sync --frozen
	uv run python bench/run.py

STACK ?= evergreen
AWS_TARGET = --stack $(STACK)$(if $(REGION), --region $(REGION))

check-aws:  ## the AWS region and credentials deploy needs (REGION=), checked before the build
	EVERGREEN_MAKE_TARGET=$(or $(firstword $(filter deploy deploy-guided delete,$(MAKECMDGOALS))),check-aws) \
	  uv run evergreen check-aws$(if $(REGION), --region $(REGION))

deploy: check-aws build  ## sam deploy (STACK=evergreen, REGION=your AWS CLI's, PARAMS="AlarmEmail=you@example.com"), then console events
	$(SAM) deploy --stack-name $(STACK)$(if $(REGION), --region $(REGION))$(if $(PARAMS), --parameter-overrides $(PARAMS))
	uv run evergreen console-events --aws $(AWS_TARGET)
	@echo "deployed: set the secrets (README, Deploying), then run ./evergreen doctor --aws $(AWS_TARGET)"

deploy-guided: check-aws build  ## the same, answering SAM's questions one by one (saved to samconfig.toml)
	@echo "SAM asks twice '<Shopify|Klaviyo>WebhookFunction has no authentication. Is this okay? [y/N]'."
	@echo "Answer y (Enter means no and stops the deploy): Shopify and Klaviyo cannot send AWS credentials;"
	@echo "every webhook is authenticated by its HMAC signature, and a bad or missing one gets 401."
	$(SAM) deploy --guided --stack-name $(STACK)
	uv run evergreen console-events --aws $(AWS_TARGET)

delete: check-aws  ## sam delete the stack (keeps the profiles table and the exports bucket: README, Uninstall)
	$(SAM) delete --stack-name $(STACK)$(if $(REGION), --region $(REGION))

events:  ## regenerate events/api and events/sqs (signed with the local default secret)
	uv run python -m evergreen_cli.commands.sample_events

requirements:  ## layers/evergreen/requirements.txt (and the tracing layer's) from uv.lock
	$(UV_EXPORT) $(LAYER_PRUNE) > $(LAYER_REQUIREMENTS)
	$(UV_EXPORT) $(RUNTIME_PRUNE) | grep -vxF -f $(LAYER_REQUIREMENTS) > $(TRACING_REQUIREMENTS)

clean:  ## remove build output and caches
	rm -rf .aws-sam .mypy_cache .ruff_cache .pytest_cache .hypothesis .local-stack .contracts
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
