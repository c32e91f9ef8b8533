# Two commands from a fresh clone: `make demo` and `make test` (both set up .venv first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit mutants bench bench-smoke clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP) ## Run the demo Blueprint on a private Redis and a real worker process
	$(BIN)/conductor run examples/hello.yaml --input name=Newcomer

# Two pytest processes (each with its own Redis and worker: the tests mostly wait on them), then
# the tests marked serial alone; coverage adds up over both runs and is checked at the end.
test: $(STAMP) lint typecheck ## Lint, type-check and run every test, with line coverage
	$(BIN)/pytest -n 2 --dist loadfile -m "not serial" --cov --cov-report= --cov-fail-under=0
	$(BIN)/pytest -m serial --cov --cov-append --cov-report=term

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) ## Only the tests that need no Redis or worker
	$(BIN)/pytest tests/unit

mutants: $(STAMP) ## Break each documented guarantee in a scratch copy; its tests must fail
	$(BIN)/python -m tests.mutants

bench: $(STAMP) ## Conductor vs bare Celery on the same Redis and worker
	$(BIN)/python -m benchmarks.canvas_overhead

bench-smoke: $(STAMP) ## Each benchmark with --quick: they run and print their ratios
	$(BIN)/python -m benchmarks.smoke

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage .coverage.*
