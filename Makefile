# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

## demo: the DTU Risoe reference case, every strategy, report in out/demo/report.html
demo: $(STAMP)
	$(BIN)/evflex simulate examples/dtu_risoe.toml --strategy all --out out/demo

## lint: one style (ruff) and honest types (mypy), as configured in pyproject.toml
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

## test: lint, then the whole suite
test: lint
	$(BIN)/python -m pytest -q

## bench: performance figures (see README, Performance); ACN-Sim gets its own venv,
## bench/.venv-peer, on first use. BENCH_ARGS="--quick" for short windows,
## BENCH_ARGS="--only congested,cli" for some sections (bench/run.py --help)
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) out build src/*.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
