"""Logging (mining.run_logging): the run id on every line, text and JSON formats."""
from __future__ import annotations

import io
import json
import logging
import re

import pytest

from mining import run_logging as logs

pytestmark = pytest.mark.usefixtures("clean_cli_state")


# ---- logs ----------------------------------------------------------------------------

def test_json_log_lines_parse_and_carry_the_run_id():
    stream = io.StringIO()
    run_id = logs.setup_logging(fmt="json", stream=stream)
    logging.getLogger("mining.test").info("stage %s: done", "embed_utterances")
    rec = json.loads(stream.getvalue().splitlines()[-1])
    assert rec["run_id"] == run_id == "testrun00001"
    assert (rec["level"], rec["logger"], rec["msg"]) == ("INFO", "mining.test", "stage embed_utterances: done")
    assert rec["ts"].endswith("Z")


def test_text_log_lines_carry_the_run_id_and_env_selects_the_format(monkeypatch):
    stream = io.StringIO()
    logs.setup_logging(stream=stream)
    logging.getLogger("mining.test").warning("hello")
    assert " WARNING run=testrun00001 mining.test: hello" in stream.getvalue()
    monkeypatch.setenv(logs.FORMAT_ENV, "json")
    logs.setup_logging(stream=stream)                          # replaces the previous handler
    logging.getLogger("mining.test").warning("again")
    assert json.loads(stream.getvalue().splitlines()[-1])["msg"] == "again"
    assert stream.getvalue().count("again") == 1


def test_run_id_is_new_per_invocation_and_exported_for_child_processes(monkeypatch):
    import os

    monkeypatch.delenv(logs.RUN_ID_ENV)
    run_id = logs.setup_logging(stream=io.StringIO())
    assert re.fullmatch(r"[0-9a-f]{12}", run_id), run_id
    assert os.environ[logs.RUN_ID_ENV] == run_id == logs.current_run_id()
    monkeypatch.delenv(logs.RUN_ID_ENV)
    assert logs.setup_logging(stream=io.StringIO(), run_id=logs.new_run_id()) != run_id
