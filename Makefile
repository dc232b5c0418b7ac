# Two commands a newcomer needs: `make run` (the main job) and `make test` (the test suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PERF_STAMP := $(VENV)/.perf_analyzer

.PHONY: install run test lint bench clean

install: $(STAMP) $(PERF_STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

# Triton's perf_analyzer in $(VENV)/perf_analyzer (never fails: see the script)
$(PERF_STAMP): $(STAMP) scripts/install_perf_analyzer.sh
	@bash scripts/install_perf_analyzer.sh $(VENV)/perf_analyzer $(PY)
	@touch $(PERF_STAMP)

# ACTS-simulated events with truth for the study's chain phase (our finder against ACTS' CKF):
# 100 HNL events of a seed the training never used, simulated once (about 10 s); another
# folder of TrackML events with truth can be given: `make run CHAIN_EVENTS=../events/hnl-eval`
CHAIN_EVENTS ?= chain-events

$(CHAIN_EVENTS)/.simulated: | $(STAMP)
	$(VENV)/bin/exatrkx simulate --source hnl --events 100 --seed 777 --out $(CHAIN_EVENTS) \
	  --no-progress
	@touch $@

run: install $(if $(wildcard $(CHAIN_EVENTS)/*-truth.csv),,$(CHAIN_EVENTS)/.simulated)
	$(VENV)/bin/exatrkx study --out study-out --chain-events $(CHAIN_EVENTS)

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

bench: install
	$(PY) benchmarks/bench_simulate.py
	$(PY) benchmarks/bench_pipeline.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
