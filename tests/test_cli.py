"""The command line as a user meets it: help, exit codes, config layering with environment
variables, `mining inspect`, `mining config show`, log lines with the run id. No Spark."""
from __future__ import annotations

import tomllib

import pytest

from mining import cli

from mining.config import load_config, resolve_sections


pytestmark = pytest.mark.usefixtures("clean_cli_state")


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


def test_a_java_errors_one_line_is_its_cause_not_the_call(monkeypatch, capsys):
    # str(Py4JJavaError) starts "An error occurred while calling o123.parquet."; the cause
    # (the line operators read) is the next one
    from mining.tools import inspect_dataset
    def boom(*a, **k):
        raise RuntimeError("An error occurred while calling o123.parquet.\n: org.apache.spark.SparkException: "
                           "No space left on device\n\tat org.apache.spark.Foo(Foo.scala:1)")
    monkeypatch.setattr(inspect_dataset, "summarize", boom)
    assert cli.main(["inspect", "anywhere"]) == 1
    assert capsys.readouterr().err.startswith(
        "mining: unexpected error: RuntimeError: org.apache.spark.SparkException: No space left on device (run ")


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


def test_simulate_refuses_to_grow_mixed_locales(tmp_path, capsys):
    code = cli.main(["simulate", "--locales", "all", "--traffic-utterances", "50000",
                     "--logs", str(tmp_path / "logs"), "--gold", str(tmp_path / "gold")])
    assert code == cli.EXIT_CONFIG
    assert "--traffic-utterances grows one corpus" in capsys.readouterr().err
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("flag, value", [("--c", "-1"), ("--c", "0"), ("--c", "nan"),
                                         ("--target-precision", "95"), ("--target-precision", "0"),
                                         ("--target-precision", "nan")])
def test_fit_rephrase_refuses_bad_numbers_before_any_work(flag, value, capsys):
    """Found in review: ``--target-precision 95`` matched no threshold (0.99 was written into the
    packaged model after minutes of simulation); a negative ``--c`` failed in sklearn at the end."""
    from mining.cli import build_parser

    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["fit-rephrase", "--work", "w", flag, value])
    assert exit_.value.code == 2 and f"{flag}: expected a number in (0" in capsys.readouterr().err
    args = build_parser().parse_args(["fit-rephrase", "--work", "w", "--c", "0.5", "--target-precision", "1"])
    assert (args.c, args.target_precision) == (0.5, 1.0)



@pytest.mark.parametrize("argv", [["simulate", "--logs", "l", "--turns", "-5"],
                                  ["fit-calibration", "--work", "w", "--turns", "0"],
                                  ["fit-calibration", "--work", "w", "--min-users", "-3"],
                                  ["audit", "sample", "--run", "r", "--n", "10", "--out", "o.csv", "--min-users", "0"]])
def test_counts_that_must_be_positive_are_refused_by_the_parser(argv, capsys):
    """Found in review: ``fit-calibration --turns 0`` simulated 80,000 turns, ``--min-users -3``
    refitted the packaged calibration without a k-anonymity gate."""
    from mining.cli import build_parser

    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2 and "expected an integer >= 1" in capsys.readouterr().err
