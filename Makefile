# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config/watchtower.yaml

.PHONY: run test lint eval bench bench-poll demo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	mkdir -p var
	$(BIN)/watchtower run --config $(CONFIG)

# Two test processes per machine of two cores or more (pytest-xdist); every test runs,
# the slow ones (marked `slow`) too. One process: `.venv/bin/python -m pytest -q -n 0`.
test: $(STAMP)
	$(BIN)/python -m pytest -q --numprocesses=auto --maxprocesses=4

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

eval: $(STAMP)
	$(BIN)/python scripts/eval.py --config $(CONFIG) --feedback-cv

bench: $(STAMP)
	$(BIN)/python benchmarks/score_speed.py
	$(BIN)/python benchmarks/fetch_parse.py --runs 5

bench-poll: $(STAMP)
	$(BIN)/python benchmarks/poll_cycle.py --feeds 300 --runs 3
	$(BIN)/python benchmarks/scale_304.py

demo: $(STAMP)
	$(BIN)/watchtower demo

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
