# Two commands on a fresh machine: `make demo` and `make test` (both create ./.venv first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint protos bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --retries 10 --upgrade pip
	$(PY) -m pip install --quiet --retries 10 -e '.[test,dev]'
	touch $(STAMP)

demo: venv
	rm -rf .envd
	$(VENV)/bin/envd-client resolve -f examples/python39/environment.yml --arch linux-64 --arch osx-arm64 --no-archives
	$(VENV)/bin/envd-client resolve -f examples/python39/environment.yml --arch linux-64 --arch osx-arm64 --no-archives

test: venv
	$(VENV)/bin/ruff check .
	scripts/typecheck
	$(PY) -m pytest -q

protos: venv
	$(PY) scripts/gen_protos

bench: venv
	$(PY) -m bench

clean:
	rm -rf .envd build dist *.egg-info
