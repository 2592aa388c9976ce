# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Everything else (Kafka jars, the influxd build, pip's wheels) is cached outside the repo
# under ~/.cache (anomstream, pip, go-build, cargo) and reused by later runs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-unit test-integration lint bench down clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ needed"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -e ".[dev]"
	touch $(STAMP)

## The main job: local Kafka + InfluxDB, a worker, the simulator, live alerts, summary.
demo: setup
	$(BIN)/anomstream demo $(DEMO_ARGS)

## Unit, property and integration tests (integration: real local Kafka and InfluxDB).
test: setup
	$(BIN)/anomstream install
	$(BIN)/pytest -p no:cacheprovider --junitxml=$(VENV)/junit.xml $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/pytest -p no:cacheprovider -m "not integration" $(PYTEST_ARGS)

test-integration: setup
	$(BIN)/anomstream install
	$(BIN)/pytest -p no:cacheprovider -m integration $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .

down: setup
	$(BIN)/anomstream down

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
