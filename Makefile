# Two commands on a fresh machine: `make demo` and `make test` (both create ./.venv first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test protos bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --retries 10 --upgrade pip
	$(PY) -m pip install --quiet --retries 10 -e '.[test,dev]'
	touch $(STAMP)

# Azurite (the Azure Storage emulator the tests start) is pinned in package.json/package-lock.json
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

demo: venv
	scripts/demo

test: venv node_modules/.installed
	$(VENV)/bin/ruff check .
	scripts/typecheck
	$(PY) -m pytest -q

protos: venv
	$(PY) scripts/gen_protos

bench: venv
	$(PY) -m bench

clean:
	rm -rf .envd build dist *.egg-info
