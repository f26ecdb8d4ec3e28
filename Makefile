# Two commands on a fresh machine: `make demo` and `make test` (both create ./.venv first).
# `make demo` installs the runtime only; `make test` (and `make venv`) add the test extras.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.installed-runtime
TESTING := $(VENV)/.installed-test
# setuptools says which editable mode it picked (a finder, since envd.daemon|agents|client map
# to other folders); that note is expected, not a problem, so it is not shown.
PIP_INSTALL := PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install --quiet --quiet \
	--retries 10 --disable-pip-version-check

.PHONY: venv demo test protos bench clean mutation

venv: $(TESTING)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(RUNTIME): pyproject.toml | $(PY)
	$(PIP_INSTALL) -e .
	touch $(RUNTIME)

# the test install includes the runtime: `make demo` after it installs nothing more
$(TESTING): pyproject.toml | $(PY)
	$(PIP_INSTALL) -e '.[test,dev]'
	touch $(TESTING) $(RUNTIME)

# Azurite (the Azure Storage emulator the tests start) is pinned in package.json/package-lock.json
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

demo: $(RUNTIME)
	scripts/demo

test: $(TESTING) node_modules/.installed
	scripts/test_servers
	$(VENV)/bin/ruff check .
	scripts/typecheck
	$(PY) -m pytest -q

protos: $(TESTING)
	$(PY) scripts/gen_protos

bench: $(TESTING)
	$(PY) -m bench

clean:
	rm -rf .envd build dist *.egg-info

# Mutation testing of the core against its fast tests (long; see docs/testing.md)
mutation: venv
	$(PIP_INSTALL) 'cosmic-ray>=8.4'
	$(PY) scripts/mutation
