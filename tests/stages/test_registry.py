"""One table each: the stage registry (mining.stages) and the exit codes (mining.errors) are
the only lists; the runner, the CLI, the jobs and the DAGs agree with them."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from mining import errors
from mining.stages import STAGE_NAMES, STAGES, get, stage_fn

REPO = Path(__file__).resolve().parents[2]


def test_stage_names_are_unique_snake_case_and_in_run_order():
    assert len(set(STAGE_NAMES)) == len(STAGE_NAMES) == 5
    assert STAGE_NAMES[0] == "detect_rephrases" and STAGE_NAMES[-1] == "export_dataset"
    assert all(name.isidentifier() and name.islower() for name in STAGE_NAMES)


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_every_stage_has_a_module_with_run(name):
    module = importlib.import_module(f"mining.stages.{name}")
    assert stage_fn(name) is module.run
    assert module.__doc__.startswith(f"Stage {STAGE_NAMES.index(name) + 1}, ``{name}``")
    assert module.run.__code__.co_varnames[:2] == ("spark", "cfg")
    assert ":return:" in module.run.__doc__ and ":raises" in module.run.__doc__


def test_unknown_stage_names_the_known_ones():
    with pytest.raises(ValueError, match="detect_rephrases"):
        get("no_such_stage")


def test_jobs_folder_holds_one_job_per_stage_calling_the_runner():
    jobs = sorted(p.stem for p in (REPO / "jobs").glob("*.py"))
    assert jobs == sorted(STAGE_NAMES)
    for name in STAGE_NAMES:
        tree = ast.parse((REPO / "jobs" / f"{name}.py").read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "job_main"]
        assert len(calls) == 1 and calls[0].args[0].value == name
        imports = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert imports == ["mining.stages.runner"], imports   # the runner, never the CLI


def test_cli_has_one_verb_per_stage_and_run_chains_them_all():
    from mining.cli import build_parser

    verbs = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert {s.verb for s in STAGES} <= set(verbs)
    assert " -> ".join(STAGE_NAMES) in verbs["run"].description.replace("\n", " ")


def test_runner_runs_the_registry_in_order(monkeypatch):
    from mining.stages import runner

    seen = []
    monkeypatch.setattr(runner, "stage_fn", lambda name: lambda spark, cfg: seen.append(name) or {})
    runner.run_all(None, None, progress=False)
    assert seen == list(STAGE_NAMES)


def test_cli_help_lists_every_exit_code_of_the_table():
    from mining.cli_help import top_help

    _, epilog = top_help()
    for code, meaning in errors.EXIT_CODES.items():
        assert f"  {code:<4}{meaning}" in epilog


@pytest.mark.parametrize("error, code", [
    (errors.ConfigError("bad key"), errors.EXIT_CONFIG),
    (errors.NoInputPartitions("none"), errors.EXIT_INPUT),
    (errors.RejectShareExceeded("5%"), errors.EXIT_INPUT),
    (errors.QualityGateFailed("rows"), errors.EXIT_INPUT),
    (errors.DatasetNotFound("x"), errors.EXIT_INPUT),
    (errors.StageOutputMismatch("labels/ of another run"), errors.EXIT_INPUT),
    (FileNotFoundError("turns/"), errors.EXIT_INPUT),
    (errors.PrivacyError("no key"), errors.EXIT_PRIVACY),
])
def test_known_failures_map_to_their_exit_code(error, code):
    assert errors.classify(error)[0] == code


def _data_errors():
    """ValueErrors a run meets on bad data or from a bug (numpy, pandas), not bad configuration."""
    import json

    import pyarrow as pa
    from pyspark.errors import PySparkValueError

    try:
        json.loads('{"dataset_version": "v2026')          # a truncated manifest.json
    except json.JSONDecodeError as e:
        truncated = e
    return [truncated, UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
            pa.lib.ArrowInvalid("Parquet magic bytes not found"),
            PySparkValueError(errorClass="CANNOT_BE_NONE", messageParameters={"arg_name": "x"}),
            ValueError("Input contains NaN"),              # what numpy, pandas or scikit-learn raise
            _numpy_value_error()]


def _numpy_value_error() -> ValueError:
    import numpy as np

    try:
        np.zeros(3).reshape(2, 2)
    except ValueError as e:
        return e
    raise AssertionError("reshape did not fail")


@pytest.mark.parametrize("error", _data_errors(), ids=lambda e: type(e).__name__)
def test_data_value_errors_are_runtime_errors_not_configuration(error, capsys):
    """A ValueError subclass from data or I/O takes the unexpected-error path: exit 1
    (retried by the DAGs), not 2 (configuration, not retried)."""
    from mining.entrypoint import guarded, top_level

    assert isinstance(error, ValueError) and errors.classify(error) is None

    def fail():
        raise error

    assert top_level(guarded, fail) == errors.EXIT_ERROR
    assert "configuration error" not in capsys.readouterr().err


def test_configuration_value_errors_stay_exit_2(tmp_path, capsys):
    """What the configuration raises (unknown key, bad value, unparsable or badly encoded
    file) keeps exit 2."""
    from mining.config import load_config
    from mining.entrypoint import guarded, top_level

    bad_file = tmp_path / "bad.toml"
    bad_file.write_bytes(b"[privacy]\nmin_users = \xff\n")
    (tmp_path / "syntax.toml").write_text("version = \n")
    for kwargs in ({"overrides": {"privacy": {"no_such_key": 1}}}, {"overrides": {"privacy": {"min_users": -1}}},
                   {"config_file": str(bad_file)},
                   # a file a key names that is no TOML: the calibration, the rephrase model
                   {"overrides": {"aggregation": {"calibration": str(bad_file)}}},
                   {"overrides": {"rephrase": {"model": str(tmp_path / "syntax.toml")}}},
                   {"overrides": {"aggregation": {"calibration": str(tmp_path / "missing.toml")}}}):
        assert top_level(guarded, lambda: load_config("logs", "out", environ={}, **kwargs)) == errors.EXIT_CONFIG
        assert "configuration error" in capsys.readouterr().err


def test_unknown_failures_are_not_classified():
    assert errors.classify(RuntimeError("boom")) is None


def test_non_retryable_codes_are_documented_codes():
    assert set(errors.NON_RETRYABLE_EXIT_CODES) <= set(errors.EXIT_CODES) - {errors.EXIT_OK, errors.EXIT_ERROR}


def test_modules_raise_the_registry_exceptions():
    """The exception classes the CLI maps are the ones the library raises (no second copy)."""
    from mining.core import quality
    from mining.privacy import pii
    from mining.tools import inspect_dataset

    ingest = importlib.import_module("mining.spark.ingest")
    assert ingest.NoInputPartitions is errors.NoInputPartitions
    assert quality.QualityGateFailed is errors.QualityGateFailed
    assert pii.PrivacyError is errors.PrivacyError
    assert inspect_dataset.DatasetNotFound is errors.DatasetNotFound
