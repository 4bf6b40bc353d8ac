# Two commands do everything: `make local` and `make test`. Each bootstraps .venv.
SHELL := /bin/bash
# The Lambda runtime is python3.12; use it when pyenv has it, else the default python3.
PYTHON ?= $(or $(lastword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12)),$(shell command -v python3))
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# aws-sam-cli pins boto3 and click exactly, so it lives in a venv of its own.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed
export AWS_ACCESS_KEY_ID ?= testing
export AWS_SECRET_ACCESS_KEY ?= testing
export AWS_DEFAULT_REGION ?= us-east-1
export AWS_REGION ?= us-east-1
export SAM_CLI_TELEMETRY ?= 0

.PHONY: local local-reset test lint typecheck cfn build unit bench clean fuzz chaos

# `make local` installs only what the runtime needs (pip shows its progress);
# `make test` adds the test and lint tools on top.
LOCAL_STAMP := $(VENV)/.installed-local
$(LOCAL_STAMP): pyproject.toml
	@echo "mmsapi: installing the local runtime's packages into $(VENV) (first start only)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install --progress-bar on -e '.[local]'
	touch $@

$(STAMP): $(LOCAL_STAMP)
	@echo "mmsapi: installing the test and lint tools into $(VENV)"
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

$(SAM_STAMP):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q aws-sam-cli
	touch $@

local: $(LOCAL_STAMP)
	$(PY) -m local.runtime

# Forget what `make local` kept (tables, buckets) in .local-data/state/.
local-reset: $(LOCAL_STAMP)
	$(PY) -m local.runtime --reset

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy
	# Every function is an `app` module: check each directory on its own.
	for d in functions/*/; do $(VENV)/bin/mypy --strict --explicit-package-bases "$$d"app.py || exit 1; done

# The template as written. What CloudFormation sees (after the SAM transform: lint, cycles,
# roles) is checked by tests/deploy, which `make unit` runs: `pytest -q tests/deploy` alone.
cfn: $(STAMP) $(SAM_STAMP)
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --template template.yaml --region us-east-1

# sam build needs the runtime's python on PATH (python3.12 from pyenv when present).
build: $(SAM_STAMP)
	PATH="$(dir $(PYTHON)):$$PATH" $(SAM) build --template template.yaml --build-dir .aws-sam/build

unit: $(STAMP)
	$(VENV)/bin/pytest -q

test: lint typecheck cfn build unit

# Every benchmark in a fresh interpreter, then one table: each figure beside its goal.
bench: $(STAMP)
	$(PY) -m benchmarks.run

# 100,000 generated requests (every action, both dialects) at the in-process front door:
# fails on any E503 or any answer slower than its bound, and prints the figures.
# MMS_FUZZ_EXAMPLES and MMS_FUZZ_SEED choose another run; `make test` runs 300 of them.
MMS_FUZZ_EXAMPLES ?= 100000
fuzz: $(STAMP)
	MMS_FUZZ_EXAMPLES=$(MMS_FUZZ_EXAMPLES) $(VENV)/bin/pytest -q -s -p no:cacheprovider \
		tests/integration/test_fuzz.py::test_generated_requests

# 1,000 sends over 20 templates (images, audio, video) with 10% of the functions' AWS calls
# failing (throttles, 5xx, timeouts) and the simulated MMSC refusing, deferring and timing
# out some submissions; asserts every message ended with its final postback, no double
# SubmitReq, no orphan S3 object, no template stuck encoding, and prints the figures.
# `make test` runs 60 sends over 4 templates.
MMS_CHAOS_SENDS ?= 1000
MMS_CHAOS_TEMPLATES ?= 20
MMS_CHAOS_FAULTS ?= 0.1
chaos: $(STAMP)
	MMS_CHAOS_SENDS=$(MMS_CHAOS_SENDS) MMS_CHAOS_TEMPLATES=$(MMS_CHAOS_TEMPLATES) \
		MMS_CHAOS_FAULTS=$(MMS_CHAOS_FAULTS) $(VENV)/bin/pytest -q -s -p no:cacheprovider \
		tests/integration/test_chaos.py

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .mypy_cache .ruff_cache .pytest_cache
