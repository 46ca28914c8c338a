import pytest

from mining.config import load_config, parse_set


def test_defaults_load_from_one_file():
    """With no file, variable or override, every value is mining/defaults.toml's, none has
    another origin, and every key of the file reaches the built sections."""
    import tomllib
    from dataclasses import asdict

    from mining.config import DEFAULTS_PATH, resolve_sections

    file_values = tomllib.loads(DEFAULTS_PATH.read_text())
    sections, origins = resolve_sections(None, None, environ={})
    assert sections == file_values and origins == {}
    cfg = load_config("logs", "out", environ={})
    assert cfg.sections == file_values
    for name, values in file_values.items():
        built = asdict(getattr(cfg, name))
        for key, value in values.items():
            if key in built and not isinstance(value, dict):
                assert built[key] == (tuple(value) if isinstance(value, list) else value), f"{name}.{key}"
    assert cfg.cache_dir == "out/embedding_cache"


def test_cli_repeats_no_default_of_the_config_file():
    """Flags that mirror a config key default to None; the value then comes from the config."""
    from mining.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    assert sub["merge"].get_default("dev_share") is None and sub["merge"].get_default("split_seed") is None
    assert sub["fit-calibration"].get_default("min_users") is None
    for verb in ("run", "detect-rephrases", "config"):
        assert sub[verb].get_default("min_users") is None


def test_file_then_overrides_win(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[rephrase]\nthreshold = 0.7\n[privacy]\nmin_users = 5\n")
    cfg = load_config("l", "o", config_file=str(f), overrides=parse_set(["privacy.min_users=3"]))
    assert cfg.rephrase.threshold == 0.7 and cfg.privacy.min_users == 3


@pytest.mark.parametrize("override, match", [
    ({"rephrase": {"threshold": 1.5}}, "rephrase.threshold"),
    ({"privacy": {"min_users": 0}}, "privacy.min_users"),
    ({"rephrase": {"no_such_key": 1}}, "unknown config key rephrase.no_such_key"),
    ({"aggregation": {"min_events": 0}}, "aggregation.min_events"),
    ({"aggregation": {"variant_min_events": 0}}, "aggregation.variant_min_events"),
    # found in review: accepted, then silently wrong at run time
    ({"validation": {"max_future_skew_s": -100}}, "validation.max_future_skew_s"),   # rejects valid rows
    ({"validation": {"max_future_skew_s": float("nan")}}, "validation.max_future_skew_s"),  # turns the check off
    ({"aggregation": {"variant_min_sim_rel": float("nan")}}, "aggregation.variant_min_sim_rel"),
    ({"aggregation": {"variant_min_sim": 7.5}}, "aggregation.variant_min_sim"),
    ({"aggregation": {"prior": float("inf")}}, "aggregation.prior"),
    ({"sessions": {"inactivity_gap_s": float("inf")}}, "sessions.inactivity_gap_s"),
    ({"cluster": {"seed": -1}}, "cluster.seed"),                       # numpy's default_rng: a plain ValueError
    ({"cluster": {"k": 2048}}, "cluster.k"),                           # more than a GPU index returns
    ({"aggregation": {"logs_check_seed": -5}}, "aggregation.logs_check_seed"),
    ({"aggregation": {"min_events_by_locale": 3}}, "aggregation.min_events_by_locale"),   # was AttributeError
    ({"privacy": {"dp": 1}}, "privacy.dp"),
    ({"privacy": {"dp": {"seed": "x"}}}, "privacy.dp.seed"),
    ({"friction": {"cues": {"pl": "nie"}}}, "friction.cues"),         # was split into 'n', 'i', 'e'
])
def test_bad_values_raise_naming_the_key(override, match):
    with pytest.raises(ValueError, match=match):
        load_config("l", "o", overrides=override)


def test_a_missing_config_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ValueError, match="No such file"):
        load_config("l", "o", config_file=str(tmp_path / "prod.toml"))
    with pytest.raises(ValueError, match="MINING_CONFIG"):
        load_config("l", "o", environ={"MINING_CONFIG": str(tmp_path / "prod.toml")})


def test_parse_set_reads_toml_scalars():
    assert parse_set(["rephrase.threshold=0.6", "embedding.device=cpu"]) == {
        "rephrase": {"threshold": 0.6}, "embedding": {"device": "cpu"}}


def test_commit_replaces_a_previous_output(tmp_path):
    from mining.io import storage
    final = tmp_path / "versions" / "v1"
    for content in ("old", "new"):
        staging = storage.staging_path(tmp_path, "v1")
        staging.mkdir(parents=True)
        (staging / "f.txt").write_text(content)
        storage.commit(staging, final)
    assert (final / "f.txt").read_text() == "new"
    # the old output is deleted: nothing is left under either staging folder
    leftovers = [p for d in (tmp_path / ".staging", final.parent / ".staging") if d.is_dir() for p in d.iterdir()]
    assert leftovers == []


def test_cue_lists_are_open_per_language_and_normalized():
    cfg = load_config("l", "o", overrides={"friction": {"cues": {"pl": ["Nie", "Powiedziałem"], "en": ["No way"]}}})
    assert cfg.friction.cues["pl"] == ("nie", "powiedziałem")
    assert cfg.friction.cues["en"] == ("no way",) and "de" in cfg.friction.cues


def test_rephrase_model_file_and_threshold_override(tmp_path):
    from mining.core.rephrase_model import RephraseModel, save_model

    save_model(RephraseModel(version="t", intercept=0.0, weights={"char_sim": 1.0}, threshold=0.4),
               tmp_path / "m.toml")
    cfg = load_config("l", "o", overrides={"rephrase": {"model": str(tmp_path / "m.toml")}})
    assert cfg.rephrase.fitted.version == "t" and cfg.rephrase.threshold == 0.4
    assert '"version": "t"' in cfg.to_json()   # the model is part of the version hash input
    from mining.errors import ConfigError

    for wrong in (tmp_path / "missing.toml", tmp_path):              # missing, or a folder: exit 2, not 3 or 1
        with pytest.raises(ConfigError, match="no such readable rephrase model file"):
            load_config("l", "o", overrides={"rephrase": {"model": str(wrong)}})


def test_flags_without_a_value_take_the_config_value(monkeypatch):
    """``mining merge`` / ``fit-calibration`` defaults come from the configuration layers."""
    from mining import cli

    monkeypatch.setenv("MINING__EXPORT__DEV_SHARE", "0.25")
    assert cli._or_config(None, "export", "dev_share") == 0.25
    assert cli._or_config(0.5, "export", "dev_share") == 0.5        # the flag wins
    monkeypatch.delenv("MINING__EXPORT__DEV_SHARE")
    assert cli._or_config(None, "privacy", "min_users") == load_config("l", "o", environ={}).privacy.min_users


def test_environment_cannot_set_a_locale_key():
    """Variable names are lower-cased, so ``…__MIN_SIM_BY_LOCALE__DE-DE`` would set ``de-de``,
    which no locale matches: refused instead of accepted and ignored. Cue languages are
    lower-case anyway."""
    from mining.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot be set from the environment"):
        load_config("l", "o", environ={"MINING__CLUSTER__MIN_SIM_BY_LOCALE__DE-DE": "0.7"})
    assert load_config("l", "o", environ={"MINING__FRICTION__CUES__PL": '["nie"]'}).friction.cues["pl"] == ("nie",)
    bare = load_config("l", "o", environ={"MINING__REPHRASE__THRESHOLD_BY_LOCALE__EN": "0.7"})   # a bare language
    assert bare.rephrase.threshold_for("en") == 0.7
    assert load_config("l", "o", overrides={"export": {"split_seed": -1}}).export.split_seed == -1  # a hash input


def test_flag_defaults_from_the_configuration_are_range_checked(monkeypatch):
    """``merge`` without ``--dev-share`` takes ``export.dev_share`` through the same checks as a run."""
    from mining import cli
    from mining.errors import ConfigError

    monkeypatch.setenv("MINING__EXPORT__DEV_SHARE", "1.5")
    with pytest.raises(ConfigError, match="export.dev_share"):
        cli._or_config(None, "export", "dev_share")


def test_locales_are_a_set_so_their_order_names_no_other_version():
    """Found in review: ``--locale en-US --locale de-DE`` and the reverse named different
    dataset versions (and lineages) for the same rows."""
    a = load_config("l", "o", locales=("en-US", "de-DE", "en-US"), environ={})
    assert a.locales == ("de-DE", "en-US") == load_config("l", "o", locales=("de-DE", "en-US"), environ={}).locales
