# Set-up and entry points. `make demo` and `make test` do everything on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU-only machines take the torch build on disk; GPU users: `make install CONSTRAINTS=` keeps yours.
CONSTRAINTS ?= constraints/cpu.txt
PIP_C := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)

.PHONY: install demo test test-fast bench clean

$(BIN)/alignkit: pyproject.toml $(CONSTRAINTS)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q $(PIP_C) -e '.[dev]'
	touch $(BIN)/alignkit

install: $(BIN)/alignkit

demo: install
	$(BIN)/alignkit quickstart --output runs/quickstart

test: install
	$(BIN)/python -m pytest -q -n 2 --durations=15

test-fast: install
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

bench: install
	$(BIN)/pip install -q $(PIP_C) -e '.[bench]'
	$(BIN)/python benchmarks/bench_dpo.py

clean:
	rm -rf $(VENV) runs .pytest_cache
