"""The stage runner (mining.stages.runner): stages in registry order, timing and run id."""
from __future__ import annotations

import logging

import pytest


pytestmark = pytest.mark.usefixtures("clean_cli_state")


@pytest.mark.parametrize("progress", [False, True])
def test_run_all_records_the_run_id_and_seconds_per_stage(monkeypatch, capsys, caplog, progress):
    """run_all with stand-in stages: one log line per start/end, with or without a bar."""
    from mining.stages import STAGE_NAMES, runner
    monkeypatch.setattr(runner, "stage_fn", lambda name: lambda spark, cfg: {"rows": 1})
    caplog.set_level(logging.INFO, logger="mining.stages.runner")
    results = runner.run_all(None, None, progress=progress)
    assert list(results) == list(STAGE_NAMES)
    assert all(r["run_id"] == "testrun00001" and r["seconds"] >= 0 for r in results.values())
    assert sum("stage export_dataset: done" in m for m in caplog.messages) == 1
    if progress:
        assert "5/5 stages" in capsys.readouterr().err
