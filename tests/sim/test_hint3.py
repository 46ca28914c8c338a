"""HINT3 corpora (real chatbot queries, fine-grained intents) and the held-out hassil locales
of the leave-out benchmark: loading, licence, attribution, simulation, the weak NLU on them."""
import json

import pytest

from mining.sim.corpora import (COLUMNS, DATA_DIR, HINT3_CORPORA, HINT3_OUT_OF_SCOPE, attribution,
                                corpus_names, load_corpus)
from mining.sim.hassil_locales import HELD_OUT_CUES, HELD_OUT_HOME_VALUES, HELD_OUT_LOCALES, SCRIPTS
from mining.sim.locales import DEFAULT_LOCALES
from mining.sim.simulation import SimulationConfig, simulate

# (rows after dropping out-of-scope rows and exact duplicates, intents); files: train + test
SIZES = {"hint3-curekart": (1049, 28), "hint3-powerplay11": (773, 57), "hint3-sofmattress": (577, 21)}


@pytest.mark.parametrize("name", HINT3_CORPORA)
def test_hint3_corpus_rows_intents_and_columns(name):
    c = load_corpus(name)
    assert list(c.columns) == COLUMNS
    assert (len(c), c["intent"].nunique()) == SIZES[name]
    assert c["utt_id"].is_unique and c["utt_id"].str.fullmatch(rf"{name}:(train|test):\d+").all()
    assert HINT3_OUT_OF_SCOPE not in set(c["intent"])
    assert (c["locale"] == "en-IN").all() and (c["annot_utt"] == c["text"]).all()
    assert all(s == [] for s in c["slots"]) and (c["text"].str.strip() != "").all()
    assert not c.duplicated(["text", "intent"]).any()


def test_hint3_out_of_scope_rows_are_only_in_the_test_files_and_left_out():
    import pandas as pd

    for name in HINT3_CORPORA:
        bot = name.split("-", 1)[1]
        train = pd.read_csv(DATA_DIR / "hint3" / f"{bot}_train.csv", dtype=str, keep_default_na=False)
        test = pd.read_csv(DATA_DIR / "hint3" / f"{bot}_test.csv", dtype=str, keep_default_na=False)
        assert (train["label"] == HINT3_OUT_OF_SCOPE).sum() == 0
        in_scope = (test["label"] != HINT3_OUT_OF_SCOPE).sum()
        assert (load_corpus(name)["utt_id"].str.contains(":test:")).sum() <= in_scope


def test_hint3_licence_notice_and_attribution_ship_with_the_data():
    assert "Open Database License" in (DATA_DIR / "hint3" / "LICENSE.md").read_text()
    notice = (DATA_DIR / "NOTICE.md").read_text()
    assert "HINT3" in notice and "hint3/LICENSE.md" in notice
    for name in HINT3_CORPORA:
        assert name in corpus_names() and "HINT3" in attribution(name) and "Open Database" in attribution(name)


def test_hint3_simulation_runs_with_its_own_seed_size_and_a_weak_but_useful_nlu(tmp_path):
    cfg = SimulationConfig(corpus="hint3-powerplay11", n_turns=1500, seed=13)
    assert cfg.seed_per_intent == 3 and SimulationConfig().seed_per_intent == 8
    r = simulate(cfg, tmp_path / "logs", tmp_path / "gold")
    doc = json.loads((tmp_path / "gold" / "simulation.json").read_text())
    assert doc["config"]["corpus"] == "hint3-powerplay11" and "HINT3" in doc["attribution"]
    # dozens of near-synonymous intents, 3 seed utterances each: it errs often, yet far above chance
    assert 0.3 < r["nlu"]["traffic_accuracy"] < 0.8 and r["nlu"]["traffic_rejected_share"] < 0.4
    assert r["friction_turns"] > 0.1 * r["turns"] and r["silent_failures"] > 0


def test_held_out_locales_are_not_development_locales_and_have_values_and_cues():
    assert not set(HELD_OUT_LOCALES) & set(DEFAULT_LOCALES)
    assert set(SCRIPTS) == set(HELD_OUT_LOCALES)
    for language in HELD_OUT_LOCALES.values():
        assert set(HELD_OUT_HOME_VALUES[language]) == {"name", "area", "floor"}
        assert HELD_OUT_CUES[language]


def test_leaveout_benchmark_default_locales_span_twenty_languages_and_five_scripts():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "leaveout.py"
    spec = importlib.util.spec_from_file_location("leaveout", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert len(mod.LOCALES) >= 20 and set(mod.LOCALES) <= set(HELD_OUT_LOCALES)
    assert len({SCRIPTS[loc] for loc in mod.LOCALES}) >= 5
    with pytest.raises(SystemExit, match="not held out"):
        mod.main(["--locales", "de-DE"])
    with pytest.raises(SystemExit, match="not held out"):
        mod.main(["--seed", "7"])


@pytest.mark.parametrize("locale", ["uk-UA", "he-IL", "ko-KR"])
def test_held_out_locale_corpus_generates_enough_intents(locale):
    c = load_corpus("hassil-" + locale)
    assert (c["locale"] == locale).all() and c["intent"].nunique() >= 10
    assert not c["text"].str.contains(r"[{}<>\[\]]").any()


@pytest.mark.slow
def test_every_leaveout_locale_generates_ten_intents_or_more():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "leaveout", Path(__file__).resolve().parents[2] / "bench" / "leaveout.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for locale in mod.LOCALES:
        assert load_corpus("hassil-" + locale)["intent"].nunique() >= 10, locale


def test_cli_simulate_choices_match_the_simulator():
    from mining import cli
    from mining.sim.corpora import KNOWN_CORPORA
    from mining.sim.simulation_config import BEHAVIOUR_MODELS

    assert cli.SIMULATE_CORPORA == KNOWN_CORPORA + HINT3_CORPORA
    assert cli.SIMULATE_BEHAVIOUR_MODELS == BEHAVIOUR_MODELS


def test_leaveout_tables_render_every_metric_per_locale_and_corpus():
    import argparse
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "leaveout", Path(__file__).resolve().parents[2] / "bench" / "leaveout.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    one = {"turns": 1000, "accepted_pairs": 50, "labels": 40, "labels_conf90": 30, "pair_precision": 0.9,
           "label_precision": 0.8, "label_precision_conf90": 0.85, "ece": 0.05, "coverage": 0.3,
           "lift_recovered": -0.12, "accuracy_delta": -0.01}
    # he-IL: the oracle gained nothing (lift reads 0) but the mined labels lowered accuracy
    loc = {**one, "by_locale": {"pl-PL": one, "he-IL": {**one, "label_precision": 0.6, "lift_recovered": 0.0}}}
    results = {("locales", "hard", "1"): loc, ("hint3-curekart", "hard", "1"): one}
    args = argparse.Namespace(seed=13, locale_turns=100, hint3_turns=200, set=[])
    text = mod.render(args, ["--seed", "13"], ["pl-PL", "he-IL"], results, ["x"], 60.0, "abc1234")
    assert "| pl-PL | 1,000 | 50 | 40 | 30 | 0.900 | 0.800 | 0.65–0.90 | 0.850 | 0.050 | 0.300 | -12.0% | -1.0 |" in text
    assert "| hint3-curekart |" in text and "gap 20.0 points" in text
    assert "mined lowered accuracy in 2 of 2 (he-IL, pl-PL)" in text
    # a report written before accuracy_delta: the two accuracies; none without a test split
    assert mod.accuracy_delta({"acc_seed": 0.7, "acc_seed_mined": 0.65}) == pytest.approx(-0.05)
    assert mod.lowered_summary({"a": {"accuracy_delta": float("nan")}, "b": {"accuracy_delta": 0.1}}) == \
        "retraining on seed + mined lowered accuracy in 0 of 1 (1 without a test split)"
    assert "95% Wilson intervals of label precision: wholly below 0.93 in 2 of 2 (he-IL, pl-PL)" in text
    assert "## Behaviour model `hard`, --min-users 1" in text and "2 scripts (Hebrew, Latin)" in text
