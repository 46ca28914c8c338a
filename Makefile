# Two commands matter: `make demo` and `make test` (see README.md); `make test-fast` is the
# inner loop: every test that needs no Spark, no Airflow run and no GPU (under 3 minutes).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(abspath $(VENV)/bin)
DEMO ?= demo
DEMO_TURNS ?= 20000
DEMO_DATE ?= 2026-11-03
# The demo's Airflow is its own (SQLite under $(DEMO)/airflow): every AIRFLOW* variable of the
# caller's shell is unset first, e.g. the stack's database and secrets after
# `source stack/run/env.sh`, which would otherwise win over $(DEMO)/airflow/airflow.cfg.
# Deliberate overrides go in $(DEMO)/airflow/airflow.cfg instead.
AIRFLOW_ENV = env $(foreach v,$(filter AIRFLOW%,$(.VARIABLES)),-u $(v)) \
	AIRFLOW_HOME=$(abspath $(DEMO)/airflow) \
	AIRFLOW__CORE__DAGS_FOLDER=$(abspath dags) \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type": "spark", "host": "local[2]"}' \
	MINING_LOGS=$(abspath $(DEMO)/logs) MINING_OUT=$(abspath $(DEMO)/mining) \
	MINING_DEMO_MODE=1 MINING_SENSOR_POKE_S=10 MINING_SENSOR_TIMEOUT_S=120 \
	SPARK_LOCAL_IP=127.0.0.1 PATH=$(BIN):$$PATH

.PHONY: install demo test test-fast docs clean crash-trials bench

install: $(VENV)/.installed

# torch first, pinned: here pip finds the CPU wheel in /opt/wheels (pip.conf); elsewhere
# it comes from the normal index. Then the project with the CPU FAISS and dev extras, every
# other dependency at the version of constraints.txt: a new release of an unpinned
# dependency once changed the demo's figures and a pinned test's bytes between two installs.
# A venv without pip is one whose creation failed (no python3.11-venv): it is made again.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/pip || { if test -f $(VENV)/pyvenv.cfg; then rm -rf $(VENV); fi; $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[cpu,dev]'
	touch $@

# Rewrite constraints.txt from this venv (after a deliberate upgrade; torch stays out).
.PHONY: constraints
constraints: install
	{ sed -n '/^#/p' constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -iv '^torch=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

demo: install
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(BIN)/mining simulate --corpus hwu64 --turns $(DEMO_TURNS) --days 3 --start-date 2026-11-01 \
		--seed 7 --logs $(DEMO)/logs --gold $(DEMO)/gold > $(DEMO)/simulation.json
	$(AIRFLOW_ENV) $(BIN)/airflow db migrate > $(DEMO)/airflow-migrate.log 2>&1
	$(AIRFLOW_ENV) $(BIN)/airflow dags test mining_nightly $(DEMO_DATE) > $(DEMO)/airflow-dags-test.log 2>&1 \
		|| { tail -50 $(DEMO)/airflow-dags-test.log; exit 1; }
	@grep -E "Marking run|state=|DagRunState" $(DEMO)/airflow-dags-test.log | tail -3 || true
	$(BIN)/mining evaluate --gold $(DEMO)/gold --out $(DEMO)/mining/runs/$(DEMO_DATE) --json $(DEMO)/evaluation.json
	@echo "run report: $(DEMO)/mining/runs/$(DEMO_DATE)/report.html (with gold: $(DEMO)/mining/runs/$(DEMO_DATE)/evaluation/report.html)"

test: install
	$(BIN)/python -m pytest

FAST_MARKERS = not spark and not slow and not airflow and not gpu
test-fast: install
	MINING_TEST_LANE=fast $(BIN)/python -m pytest -m "$(FAST_MARKERS)"

# docs/cli.md from `mining --help` (tests/test_docs.py fails when it is stale)
docs: install
	$(BIN)/python docs/gen_cli.py

# kill `mining run` with SIGKILL in every stage and in export, check readers and reruns
# (bench/crash_trials.py; the CI test runs 3 of these trials)
crash-trials: install
	$(BIN)/python bench/crash_trials.py --trials 20

# scale curve 1e4..1e7 turns on local[2] with same-run floors → bench/RESULTS.md
# (bench/scale.py; BENCH_SIZES="10000 100000" for a quick look)
BENCH_SIZES ?= 10000 100000 1000000 10000000
bench: install
	$(BIN)/python bench/scale.py --sizes $(BENCH_SIZES)

# the headline ratios in one short run (≤ 10 min on 2 cores): encode backend vs torch fp32,
# detect_rephrases vs its scan floor, embedding vs raw encode, clustering vs community_detection
# → bench/quick.json (bench/quick.py)
.PHONY: bench-quick
bench-quick: install
	$(BIN)/python bench/quick.py

# The local production-shaped stack (stack/stack.py; docs/operations.md, "The local stack"):
# PostgreSQL, Airflow 3 (LocalExecutor) and a Spark standalone master with two workers, all on
# 127.0.0.1 on free ports, logs in $(STACK_DIR)/logs; `source $(STACK_DIR)/env.sh` points the
# airflow CLI at it. The caller's MINING_* variables (logs, outputs, key) reach every service.
STACK_DIR ?= $(or $(MINING_STACK_DIR),stack/run)
.PHONY: stack-up stack-down test-e2e
stack-up: install
	$(BIN)/python stack/stack.py --dir "$(STACK_DIR)" up

stack-down:
	$(BIN)/python stack/stack.py --dir "$(STACK_DIR)" down

# the end-to-end tests on a stack of their own (tests/e2e, marker e2e): two nights through the
# scheduler and the cluster, the ad hoc DAG, worker/scheduler/PostgreSQL faults, late logs
test-e2e: install
	$(BIN)/python -m pytest -m e2e -x tests/e2e

clean:
	rm -rf $(DEMO) .pytest_cache
