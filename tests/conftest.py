"""Shared fixtures: one local Spark session per test run (start-up costs ~5 s), demo-mode
pseudonymization key, and a small simulated HWU64 log built once per run."""
from __future__ import annotations

import logging
import os

import pytest

os.environ.setdefault("MINING_DEMO_MODE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
logging.getLogger("py4j").setLevel(logging.WARNING)

if os.environ.get("MINING_TEST_LANE") == "fast":
    # `make test-fast`: a test that starts Spark without the `spark`/`slow` marker fails
    # loudly here instead of making the fast lane slow.
    from pyspark.sql import SparkSession

    def _no_spark(self, *args, **kwargs):
        raise RuntimeError("Spark started in the fast lane: mark the test `spark` (or use the spark fixture)")

    SparkSession.Builder.getOrCreate = _no_spark


def pytest_collection_modifyitems(config, items):
    """Every test that uses the ``spark`` fixture, directly or through another fixture, is
    marked ``spark``: ``make test-fast`` (``-m "not spark and not slow and not airflow and
    not gpu"``) leaves it out without anyone having to remember the marker."""
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.spark)


@pytest.fixture(scope="session")
def spark():
    from mining.spark.session import get_spark

    session = get_spark("mining-tests", "local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def small_sim(tmp_path_factory):
    """A 4,000-turn HWU64 log over 2 days (seed 11) and its gold, built once."""
    import datetime as dt

    from mining.sim.simulation import SimulationConfig, simulate

    root = tmp_path_factory.mktemp("sim")
    cfg = SimulationConfig(corpus="hwu64", n_turns=4000, days=2, start_date=dt.date(2026, 11, 1), seed=11)
    summary = simulate(cfg, root / "logs", root / "gold")
    return {"logs": root / "logs", "gold": root / "gold", "summary": summary, "root": root}


@pytest.fixture
def clean_cli_state(monkeypatch):
    """No MINING__* / MINING_CONFIG from the developer's shell; a fixed run id; the log
    handler that main() installs removed afterwards (it holds capsys's stream). Used by the
    tests of the CLI, logging and the runner (``pytestmark = usefixtures(...)``)."""
    from mining import run_logging

    for name in list(os.environ):
        if name.upper().startswith("MINING__") or name in ("MINING_CONFIG", "MINING_LOG_FORMAT"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(run_logging.RUN_ID_ENV, "testrun00001")
    monkeypatch.setattr(run_logging, "_run_id", None)
    root = logging.getLogger()
    level = root.level
    yield
    for h in [h for h in root.handlers if getattr(h, "_mining", False)]:
        root.removeHandler(h)
    root.setLevel(level)
