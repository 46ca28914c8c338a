"""The command line as a user meets it: help, exit codes, config layering with environment
variables, `mining inspect`, `mining config show`, log lines with the run id. No Spark."""
from __future__ import annotations

import io
import json
import re
import logging
import tomllib

import pyarrow as pa
import pytest

from mining import cli

from mining import run_logging as logs
from mining.config import load_config, resolve_sections


@pytest.fixture(autouse=True)
def clean_cli_state(monkeypatch):
    """No MINING__* / MINING_CONFIG from the developer's shell; a fixed run id; the log
    handler that main() installs removed afterwards (it holds capsys's stream)."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("MINING__") or name in ("MINING_CONFIG", "MINING_LOG_FORMAT"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(logs.RUN_ID_ENV, "testrun00001")
    monkeypatch.setattr(logs, "_run_id", None)
    root = logging.getLogger()
    level = root.level
    yield
    for h in [h for h in root.handlers if getattr(h, "_mining", False)]:
        root.removeHandler(h)
    root.setLevel(level)


def _commands() -> list[list[str]]:
    """Every (sub)command of the parser, e.g. ["run"], ["config", "show"]."""
    def walk(parser, prefix):
        subs = [a for a in parser._actions if isinstance(a, cli.argparse._SubParsersAction)]
        if not subs:
            return [prefix]
        return [c for name, p in subs[0].choices.items() for c in walk(p, [*prefix, name])]
    return walk(cli.build_parser(), [])


# ---- help and exit codes -------------------------------------------------------------

@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_help_of_every_command_exits_0_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([*command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "examples:" in out and f"mining {' '.join(command)}" in out


def test_top_help_lists_every_command_and_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in _commands():
        assert f"    {' '.join(command)} " in out            # one line per command
    for code in (0, 1, 2, 3, 4, 130):
        assert f"\n  {code:<4}" in out
    assert "MINING__<SECTION>__<KEY>" in out and "MINING_LOG_FORMAT" in out


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["inspect"])                                  # PATH missing
    assert exit_.value.code == cli.EXIT_CONFIG == 2


def test_unexpected_exception_exits_1_with_one_line_and_no_traceback(monkeypatch, capsys):
    from mining.tools import inspect_dataset
    def boom(*a, **k):
        raise RuntimeError("disk on fire\nJava stack line 1\nJava stack line 2")
    monkeypatch.setattr(inspect_dataset, "summarize", boom)
    assert cli.main(["inspect", "anywhere"]) == cli.EXIT_ERROR == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("mining: unexpected error: RuntimeError: disk on fire (run testrun00001;")


def test_unexpected_exception_with_verbose_logs_the_traceback(monkeypatch, capsys):
    from mining.tools import inspect_dataset
    monkeypatch.setattr(inspect_dataset, "summarize", lambda *a, **k: 1 / 0)
    assert cli.main(["inspect", "anywhere", "-v"]) == 1      # -v after the command works too
    assert "Traceback" in capsys.readouterr().err


def test_ctrl_c_exits_130(monkeypatch, capsys):
    from mining.tools import inspect_dataset
    def interrupt(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(inspect_dataset, "summarize", interrupt)
    assert cli.main(["inspect", "anywhere"]) == cli.EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == "mining: interrupted\n"


# ---- config layering -----------------------------------------------------------------

def test_precedence_defaults_file_env_set(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[cluster]\nk = 10\nmin_sim = 0.8\n[privacy]\nmin_users = 5\n")
    env = {"MINING__CLUSTER__MIN_SIM": "0.85", "MINING__PRIVACY__MIN_USERS": "7"}
    cfg = load_config("l", "o", config_file=str(f), environ=env,
                      overrides=[("--set", {"privacy": {"min_users": 9}})])
    assert cfg.cluster.ivf_nprobe == 16          # default
    assert cfg.cluster.k == 10                   # file over default
    assert cfg.cluster.min_sim == 0.85           # env over file
    assert cfg.privacy.min_users == 9            # --set over env


def test_env_values_parse_as_toml_and_reach_nested_tables():
    env = {"MINING__EMBEDDING__DEVICE": "cpu", "MINING__EMBEDDING__LANGUAGES": '["en", "DE"]',
           "MINING__FRICTION__BARGE_IN": "false", "MINING__FRICTION__CUES__PL": '["Nie"]'}
    cfg = load_config("l", "o", environ=env)
    assert cfg.embedding.device == "cpu" and cfg.embedding.languages == ("en", "de")
    assert cfg.friction.barge_in is False and cfg.friction.cues["pl"] == ("nie",)


@pytest.mark.parametrize("env, match", [
    ({"MINING__PRIVACY__MIN_USER": "3"},
     r"unknown config key privacy\.min_user \(from env MINING__PRIVACY__MIN_USER\)"),
    ({"MINING__NOSECTION__X": "1"}, r"unknown config key nosection"),
    ({"MINING__PRIVACY": "3"}, r"MINING__PRIVACY: expected MINING__<SECTION>__<KEY>"),
    ({"MINING__PRIVACY__MIN_USERS": "three"}, r"privacy\.min_users='three': must be an integer \(from env"),
])
def test_bad_env_override_fails_naming_the_variable(env, match):
    with pytest.raises(ValueError, match=match):
        load_config("l", "o", environ=env)


def test_mining_config_names_the_default_config_file(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[privacy]\nmin_users = 6\n")
    assert load_config("l", "o", environ={"MINING_CONFIG": str(f)}).privacy.min_users == 6
    other = tmp_path / "d.toml"
    other.write_text("[privacy]\nmin_users = 4\n")       # --config wins over $MINING_CONFIG
    assert load_config("l", "o", config_file=str(other), environ={"MINING_CONFIG": str(f)}).privacy.min_users == 4


def test_config_show_prints_the_effective_toml_with_origins(monkeypatch, capsys):
    monkeypatch.setenv("MINING__PRIVACY__MIN_USERS", "3")
    assert cli.main(["config", "show", "--set", "rephrase.threshold=0.6", "--cache-dir", "/c"]) == 0
    out = capsys.readouterr().out
    shown = tomllib.loads(out)
    sections, _ = resolve_sections(overrides=[("--set", {"rephrase": {"threshold": 0.6}})],
                                   environ={"MINING__PRIVACY__MIN_USERS": "3"})
    assert shown == {**sections, "embedding": {**sections["embedding"], "cache_dir": "/c"}}
    assert "min_users = 3  # env MINING__PRIVACY__MIN_USERS\n" in out
    assert "threshold = 0.6  # --set\n" in out and 'cache_dir = "/c"  # --cache-dir\n' in out
    assert "k = 64\n" in out                                  # defaults carry no comment


def test_config_show_with_an_unknown_env_key_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("MINING__CLUSTER__KAY", "3")
    assert cli.main(["config", "show"]) == 2
    assert "cluster.kay" in capsys.readouterr().err


# ---- mining inspect ------------------------------------------------------------------

def _version(root, rows=None, manifest=None, name="v20261103-abc"):
    """A published version under OUT=root, written like export_dataset does: training_set/
    by the project's writer, a manifest, and the latest link."""
    import os

    from mining.io import export

    from mining.io import schemas
    rows = rows if rows is not None else [
        # utterance, locale, intent, confidence, support_users, evidence
        ("wake me at six", "en-US", "alarm_set", 0.95, 4, "rephrase"),
        ("set alarm six", "en-US", "alarm_set", 0.70, 2, "variant"),
        ("lights off", "en-US", "iot_hue_lightoff", 0.99, 9, "rephrase"),
        ("licht aus", "de-DE", "iot_hue_lightoff", 0.80, 3, "rephrase"),
    ]
    table = pa.Table.from_pylist([
        {"utterance": u, "locale": loc, "intent": i, "slots": [], "annot_utt": u, "confidence": c,
         "support_users": n, "support_events": n + 1, "evidence": e, "cluster_id": None,
         "dataset_version": name} for u, loc, i, c, n, e in rows], schema=schemas.arrow_schema("training_set"))
    version = root / "versions" / name
    export.write_training_set(table, version / "training_set")
    manifest = manifest if manifest is not None else {
        "dataset_version": name, "code_version": "0.1.0+test", "input_partitions": ["2026-11-03"],
        "rows": len(rows), "drops": {"below_min_users": 5, "insufficient_events": 11},
        "slots_dropped": {"slot_not_aligned": 2, "slot_overlaps": 0}, "pii_scrubbed": {"email": 1, "iban": 0},
        "massive_jsonl": {"de-DE": {"train": 1, "dev": 0}, "en-US": {"train": 2, "dev": 1}},
        "config": {"privacy": {"min_users": 2}}, "checksums": export.checksums(version)}
    (version / "manifest.json").write_text(json.dumps(manifest))
    os.symlink(f"versions/{name}", root / "latest")
    return version


def test_inspect_prints_the_counts_and_samples(tmp_path, capsys):
    _version(tmp_path)
    assert cli.main(["inspect", str(tmp_path), "--samples", "2"]) == 0
    out = capsys.readouterr().out
    assert "v20261103-abc" in out
    assert "rows              4" in out
    assert "  en-US      3      2    1" in out and "  de-DE      1      1    0" in out
    assert "  alarm_set         2" in out and "  rephrase  3" in out
    assert "insufficient_events  11" in out and "slot_not_aligned  2" in out and "email  1" in out
    samples = out[out.index("samples (2 of 4"):]
    assert samples.index("lights off") < samples.index("wake me at six")   # most users first
    assert "licht aus" not in samples


def test_inspect_json_parses_and_filters(tmp_path, capsys):
    version = _version(tmp_path)
    assert cli.main(["inspect", str(version), "--json", "--locale", "en-US", "--samples", "10"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["rows"], s["manifest_rows"]) == (3, 4)
    assert s["by_locale"] == {"en-US": 3} and s["by_intent"] == {"alarm_set": 2, "iot_hue_lightoff": 1}
    assert s["by_evidence"] == {"rephrase": 2, "variant": 1}
    assert s["confidence"]["min"] == 0.7 and s["confidence"]["max"] == 0.99
    assert s["partitions"] == {"en-US": {"train": 2, "dev": 1}}
    assert [r["utterance"] for r in s["samples"]] == ["lights off", "wake me at six", "set alarm six"]


def test_inspect_reads_the_latest_link_and_a_version_folder_alike(tmp_path, capsys):
    version = _version(tmp_path)
    outs = []
    for path in (tmp_path, tmp_path / "latest", version):
        assert cli.main(["inspect", str(path), "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0] == outs[1] == outs[2]


def test_inspect_an_empty_version_prints_zero_rows(tmp_path, capsys):
    _version(tmp_path, rows=[])
    assert cli.main(["inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "rows              0" in out and "by intent: no rows" in out


@pytest.mark.parametrize("layout, message", [
    ("missing", "does not exist"),
    ("run_without_export", "did export_dataset run?"),
    ("no_manifest", "manifest.json missing"),
    ("file_of_manifest_missing", "incomplete"),
    ("versions_folder", "holds dataset versions, pass one: v20261103-abc"),
])
def test_inspect_without_a_complete_version_exits_3(tmp_path, capsys, layout, message):
    path = tmp_path / "out"
    if layout == "run_without_export":
        (path / "turns").mkdir(parents=True)
    elif layout == "no_manifest":
        (_version(path) / "manifest.json").unlink()
    elif layout == "file_of_manifest_missing":
        next((_version(path) / "training_set").rglob("*.parquet")).unlink()
    elif layout == "versions_folder":
        _version(path)
        path = path / "versions"
    assert cli.main(["inspect", str(path)]) == cli.EXIT_INPUT == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


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
