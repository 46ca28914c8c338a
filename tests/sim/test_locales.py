"""Many locales: generated corpora (hassil), the mixed multilingual simulation, per-locale
thresholds, clusters that never mix locales, and per-locale evaluation parity."""
import json

import pandas as pd
import pytest

from mining.config import load_config
from mining.sim.corpora import COLUMNS, load_corpus
from mining.eval.evaluation import format_locale_table, locale_parity
from mining.sim.hassil_corpus import LOCALES, load_hassil_corpus
from mining.sim.locales import DEFAULT_LOCALES, corpus_of, simulate_locales
from mining.core.text import normalize

SCRIPTS = {"de-DE": "LATIN", "fr-FR": "LATIN", "es-ES": "LATIN", "ru-RU": "CYRILLIC", "zh-CN": "CJK",
           "th-TH": "THAI", "ar-SA": "ARABIC", "el-GR": "GREEK"}


@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_generated_corpus_is_real_text_in_its_script(locale):
    import unicodedata

    c = load_hassil_corpus(locale)
    assert list(c.columns) == COLUMNS and (c["locale"] == locale).all()
    assert len(c) >= 1000 and c["intent"].nunique() >= 20 and c["utt_id"].is_unique
    assert c.groupby("intent").size().min() >= 12
    assert not c["text"].str.contains(r"[{}<>\[\]]").any()          # every template part expanded
    letters = [ch for t in c["text"].head(200) for ch in t if ch.isalpha()]
    share = sum(SCRIPTS[locale] in unicodedata.name(ch, "") for ch in letters) / len(letters)
    assert share > 0.9, f"{locale}: only {share:.0%} of letters in {SCRIPTS[locale]}"
    assert all(normalize(t) for t in c["text"])


def test_generated_corpus_is_deterministic_and_a_copy():
    a = load_corpus("hassil-de-DE")
    a.loc[0, "text"] = "changed"
    b = load_corpus("hassil-de-DE")
    assert b.loc[0, "text"] != "changed"
    assert b.equals(load_hassil_corpus("de-DE"))
    with pytest.raises(ValueError, match="no hassil corpus"):
        load_hassil_corpus("xx-XX")
    with pytest.raises(ValueError, match="no corpus for locale"):
        corpus_of("xx-XX")


def test_simulate_locales_mixes_one_log_with_per_locale_gold(tmp_path):
    locales = ("en-US", "zh-CN", "ar-SA")
    r = simulate_locales(locales, 3000, tmp_path / "logs", tmp_path / "gold", days=2, seed=3)
    assert set(r["locales"]) == set(locales) and r["turns"] >= 3000
    logs = pd.read_parquet(tmp_path / "logs")
    assert set(logs["locale"]) == set(locales)
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["_SUCCESS", "dt=2026-11-01", "dt=2026-11-02"]
    for part in (tmp_path / "logs").glob("dt=*"):      # every partition mixes the locales
        assert {f.name.split("-00")[0] for f in part.glob("part-*")} == {f"part-{loc}" for loc in locales}
    users = logs.groupby("user_id")["locale"].nunique()
    assert (users == 1).all()                         # a user speaks one locale
    splits = pd.read_parquet(tmp_path / "gold" / "splits.parquet")
    assert set(splits["locale"]) == set(locales)
    for loc in locales:                              # each locale its own seed split
        assert (splits[splits["locale"] == loc]["split"] == "seed").sum() > 0
    doc = json.loads((tmp_path / "gold" / "simulation.json").read_text())
    assert [doc["locales"][loc]["config"]["seed"] for loc in locales] == [300, 301, 302]
    again = simulate_locales(locales, 3000, tmp_path / "logs2", tmp_path / "gold2", days=2, seed=3)
    assert again["locales"] == r["locales"]
    for f in sorted((tmp_path / "logs").rglob("*.parquet")):
        assert f.read_bytes() == (tmp_path / "logs2" / f.relative_to(tmp_path / "logs")).read_bytes()


def test_per_locale_thresholds_validate_and_resolve():
    c = load_config("-", "-", overrides={"rephrase": {"threshold_by_locale": {"de-DE": 0.7}},
                                         "cluster": {"min_sim_by_locale": {"zh-CN": 0.9}},
                                         "aggregation": {"variant_min_sim_by_locale": {"it-IT": 0.85},
                                                         "min_events_by_locale": {"pt-BR": 2}}})
    assert c.rephrase.threshold_for("de-DE") == 0.7 and c.rephrase.threshold_for("en-US") == c.rephrase.threshold
    assert c.cluster.for_locale("zh-CN").min_sim == 0.9 and c.cluster.for_locale("en-US").min_sim == c.cluster.min_sim
    # it-IT and pt-BR have no packaged entries: each gets its override and the global rest
    assert c.aggregation.for_locale("it-IT").variant_min_sim == 0.85
    assert c.aggregation.for_locale("it-IT").min_events == c.aggregation.min_events
    pt = c.aggregation.for_locale("pt-BR")
    assert pt.min_events == 2 and pt.variant_min_sim == c.aggregation.variant_min_sim
    assert c.aggregation.for_locale("en-US") is c.aggregation
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match=r"min_events_by_locale.ru-RU"):
            load_config("-", "-", overrides={"aggregation": {"min_events_by_locale": {"ru-RU": bad}}})
    # no packaged per-locale table: a locale's cosines come from its background in the run
    d = load_config("-", "-")
    assert all(d.cluster.for_locale(loc).min_sim == d.cluster.min_sim for loc in DEFAULT_LOCALES)
    e5_scale = {"cluster_min_sim": 0.97, "variant_min_sim": 0.977}     # derived on e5's compressed scale
    assert d.cluster.for_locale("de-DE", e5_scale).min_sim == 0.97
    assert d.aggregation.for_locale("de-DE", e5_scale).variant_min_sim == 0.977
    with pytest.raises(ValueError, match=r"threshold_by_locale.de-DE"):
        load_config("-", "-", overrides={"rephrase": {"threshold_by_locale": {"de-DE": 1.5}}})


def test_locale_parity_reports_best_worst_and_gap():
    by_locale = {"en-US": {"pair_precision": 0.95, "label_precision": 0.94, "coverage": 0.3, "lift_recovered": 0.5,
                           "turns": 10, "accepted_pairs": 4, "labels": 9},
                 "th-TH": {"pair_precision": 0.90, "label_precision": 0.88, "coverage": 0.2, "lift_recovered": 0.6,
                           "turns": 10, "accepted_pairs": 3, "labels": 5}}
    p = locale_parity(by_locale)
    assert p["label_precision"]["worst_locale"] == "th-TH"
    assert p["label_precision"]["gap_points"] == pytest.approx(6.0)
    assert p["lift_recovered"]["best_locale"] == "th-TH"
    table = format_locale_table({"by_locale": by_locale, "locale_parity": p})
    assert "| th-TH | 10 | 3 | 0.900 | 5 | 0.880 |" in table and "gap 6.0 points" in table


@pytest.mark.slow
def test_multilingual_run_keeps_locales_apart_and_evaluates_each(spark, tmp_path):
    """Mixed en-US / de-DE / zh-CN logs, plus en-US turns copied into de-DE with the same
    words (so without locale isolation they would be one text): every cluster, pair and
    label stays in its locale, and evaluate() reports each locale."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mining.eval import evaluation

    from mining.stages import runner
    locales = ("en-US", "de-DE", "zh-CN")
    simulate_locales(locales, 9000, tmp_path / "logs", tmp_path / "gold", days=2, seed=5)
    en = pd.read_parquet(tmp_path / "logs" / "dt=2026-11-01", filters=[("locale", "=", "en-US")])
    planted = en.head(400).assign(locale="de-DE", turn_id="x" + en["turn_id"].head(400),
                                  session_id="x" + en["session_id"].head(400), user_id="x" + en["user_id"].head(400))
    pq.write_table(pa.Table.from_pandas(planted, preserve_index=False),
                   tmp_path / "logs" / "dt=2026-11-01" / "part-planted.parquet")
    out = tmp_path / "out"
    cfg = load_config(str(tmp_path / "logs"), str(out),
                      overrides={"rephrase": {"threshold_by_locale": {"zh-CN": 0.9}}})
    runner.run_all(spark, cfg, progress=False)

    clusters = pd.read_parquet(out / "clusters")
    assert (clusters.groupby("cluster_id")["locale"].nunique() == 1).all()
    assert all(cid.startswith(loc + ":") for cid, loc in zip(clusters["cluster_id"], clusters["locale"]))
    shared = set(clusters.loc[clusters["locale"] == "en-US", "text_norm"]) & \
        set(clusters.loc[clusters["locale"] == "de-DE", "text_norm"])
    assert len(shared) > 20                           # the planted words, clustered in both locales apart
    turns = pd.read_parquet(out / "turns", columns=["turn_id", "locale"]).set_index("turn_id")["locale"]
    pairs = pd.read_parquet(out / "rephrase_pairs")
    assert (turns.reindex(pairs["source_turn_id"]).to_numpy() == pairs["locale"].to_numpy()).all()
    assert (turns.reindex(pairs["target_turn_id"]).to_numpy() == pairs["locale"].to_numpy()).all()
    zh = pairs[pairs["locale"] == "zh-CN"]
    assert not (zh["accepted"] & (zh["score"] < 0.9)).any()      # the per-locale threshold holds
    train = pd.read_parquet(out / "training_set")
    assert set(train["locale"]) <= set(locales)

    report = evaluation.evaluate(str(tmp_path / "gold"), str(out))
    assert set(report["by_locale"]) == set(locales)
    assert report["by_locale"]["zh-CN"]["turns"] > 2000
    assert set(report["locale_parity"]) == set(evaluation.PARITY_METRICS)
    from mining.eval.report import write_evaluation_report

    html = tmp_path / "report.html"
    write_evaluation_report(str(out), html, str(tmp_path / "gold"), evaluation=report)
    page = html.read_text()
    assert 'id="locale-gold-table"' in page and 'id="parity-table"' in page
    assert all(f'data-locale="{loc}"' in page for loc in locales)
