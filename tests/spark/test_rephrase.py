"""Rephrase detection: every friction signal, every decision, every gold case, the fitted
model's file format and fit, determinism under shuffled input, and non-Latin scripts.

Spark tests build tiny sessions by hand and run the real ``prepare_turns`` /
``candidate_pairs`` / ``score_pairs``; embeddings are given as a small table (the real model
is exercised by tests/jobs/test_jobs.py and tests/stages/test_end_to_end.py)."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from mining.config import load_config
from mining.eval.evaluation import candidate_cases
from mining.core.friction import FAILURE_SIGNALS, SIGNALS
from mining.core.rephrase_model import (FEATURES, RephraseModel, best_candidates, choose_threshold, fit_model,
                                   load_model, model_features, pr_curve, save_model)

T0 = dt.datetime(2026, 11, 1, 8, 0, 0)


def turn(tid, sec, utt, *, intent="alarm_set", status="SUCCESS", conf=0.9, asr=0.95, barge=False,
         session="s1", user="u1", locale="en-US"):
    return {"turn_id": tid, "session_id": session, "user_id": user, "locale": locale,
            "ts": T0 + dt.timedelta(seconds=sec), "utterance": utt, "asr_confidence": asr,
            "nlu_intent": intent, "nlu_slots": [], "nlu_confidence": conf,
            "response_status": status, "barge_in": barge}


def frame(spark, rows):
    from mining.io import schemas
    return spark.createDataFrame(pd.DataFrame(rows), schema=schemas.spark_schema("interaction_turn"))


def cfg(**sets):
    overrides = {}
    for k, v in sets.items():
        section, key = k.split("__")
        overrides.setdefault(section, {})[key] = v
    return load_config("-", "-", overrides=overrides)


def prepared(spark, rows, c=None):
    from mining.spark.sessions import prepare_turns

    c = c or cfg()
    out = prepare_turns(frame(spark, rows), c.friction, c.rephrase, b"k" * 32).toPandas()
    return out.set_index("turn_id")


# --------------------------------------------------------------------------- signals

SIGNAL_SESSIONS = {
    "status_error": [turn("a", 0, "wake me up", status="ERROR")],
    "status_unhandled": [turn("a", 0, "wake me up", status="UNHANDLED", intent=None, conf=None)],
    "barge_in": [turn("a", 0, "wake me up", barge=True)],
    "low_nlu_confidence": [turn("a", 0, "wake me up", conf=0.1)],
    "low_asr_confidence": [turn("a", 0, "wake me up", asr=0.2)],
    "no_intent": [turn("a", 0, "wake me up", intent=None, conf=None)],
    "short_dwell": [turn("a", 0, "wake me up"), turn("b", 3, "set an alarm for seven")],
    "followed_by_repeat": [turn("a", 0, "wake me up"), turn("b", 20, "Wake me up!")],
    "correction_cue": [turn("a", 0, "wake me up"), turn("b", 20, "No, I said set an alarm")],
}


@pytest.mark.parametrize("signal", SIGNALS)
def test_each_friction_signal_fires_alone(spark, signal):
    t = prepared(spark, SIGNAL_SESSIONS[signal])
    fired = list(t.loc["a", "friction_signals"])
    expected = {"status_unhandled": ["status_unhandled", "no_intent"]}.get(signal, [signal])
    assert fired == expected
    assert t.loc["a", "is_friction"]
    # low confidence makes a turn suspect (a candidate source), not failed (a usable target)
    assert t.loc["a", "succeeded"] == (signal in ("low_nlu_confidence", "low_asr_confidence"))


def test_clean_session_has_no_friction(spark):
    t = prepared(spark, [turn("a", 0, "wake me up"), turn("b", 30, "whats the weather", intent="weather_query")])
    assert t["friction_signals"].map(len).sum() == 0 and t["succeeded"].all()


@pytest.mark.parametrize("setting, signal", [
    ({"friction__short_dwell_s": 0.0}, "short_dwell"),
    ({"friction__repetition": False}, "followed_by_repeat"),
    ({"friction__correction_cues": False}, "correction_cue"),
    ({"friction__barge_in": False}, "barge_in"),
    ({"friction__statuses": ["UNHANDLED"]}, "status_error"),
    ({"friction__low_nlu_confidence": 0.0}, "low_nlu_confidence"),
])
def test_each_signal_can_be_switched_off(spark, setting, signal):
    t = prepared(spark, SIGNAL_SESSIONS[signal], cfg(**setting))
    assert signal not in list(t.loc["a", "friction_signals"])


@pytest.mark.parametrize("locale, first, second", [
    ("de-DE", "Schalte das Licht ein", "Nein, ich meinte schalte die Lampe ein"),
    ("ja-JP", "電気をつけて", "いいえ、照明をオンにして"),
    ("th-TH", "เปิดไฟ", "ไม่ใช่ เปิดไฟในห้องนอน"),
    ("ar-SA", "شغل الضوء", "لا، قلت شغل المصباح"),
    ("zh-CN", "打开灯", "不是，我说的是打开卧室的灯"),
])
def test_correction_cue_in_every_script(spark, locale, first, second):
    t = prepared(spark, [turn("a", 0, first, locale=locale), turn("b", 20, second, locale=locale)])
    assert "correction_cue" in list(t.loc["a", "friction_signals"])


def test_cue_must_be_a_whole_word_and_of_the_locale(spark):
    t = prepared(spark, [turn("a", 0, "wake me up"), turn("b", 20, "nothing on tv tonight")])
    assert "correction_cue" not in list(t.loc["a", "friction_signals"])
    de = prepared(spark, [turn("a", 0, "licht an", locale="de-DE"), turn("b", 20, "no light", locale="de-DE")])
    assert "correction_cue" not in list(de.loc["a", "friction_signals"])


# --------------------------------------------------------------------------- decisions

@pytest.fixture(scope="module")
def toy_cfg(tmp_path_factory):
    """Config with a one-feature model (score = sigmoid(10·embedding_rel − 5), threshold
    0.5; without a background z is the cosine), so the decision tests do not depend on the
    fitted weights."""
    path = tmp_path_factory.mktemp("model") / "toy.toml"
    save_model(RephraseModel(version="toy", intercept=-5.0, weights={"embedding_rel": 10.0}, threshold=0.5),
               path)
    return cfg(rephrase__model=str(path))


def scored(spark, rows, c=None, embeddings=None, backgrounds=None):
    from mining.spark import rephrase
    from mining.spark.sessions import prepare_turns

    c = c or cfg()
    turns = prepare_turns(frame(spark, rows), c.friction, c.rephrase, b"k" * 32)
    texts = sorted(set(map(tuple, turns.select("locale", "text_norm").toPandas().to_numpy())))
    emb = embeddings or {t: [1.0, 0.0] for _, t in texts}
    emb_df = spark.createDataFrame([(loc, t, [float(x) for x in emb[t]]) for loc, t in texts],
                                   "locale string, text_norm string, embedding array<float>")
    centroids = rephrase.intent_centroids(turns, emb_df)
    pairs = rephrase.score_pairs(rephrase.candidate_pairs(turns, c.rephrase), emb_df, c.rephrase, centroids,
                                 backgrounds)
    return rephrase.to_contract(pairs).toPandas()


def test_every_decision_occurs(spark, toy_cfg):
    rows = [
        turn("a1", 0, "wake me at seven", status="ERROR"),            # source
        turn("a2", 4, "wake me at seven", status="ERROR"),            # verbatim repeat, failed
        turn("a3", 8, "please set an alarm for seven"),                # rephrase, succeeded
        turn("b1", 200, "turn it up", status="ERROR", session="s2"),
        turn("b2", 210, "louder", status="UNHANDLED", intent=None, conf=None, session="s2"),
        turn("c1", 400, "what is on", status="ERROR", session="s3"),
        turn("c2", 430, "play jazz", intent="play_music", session="s3"),
    ]
    emb = {"wake me at seven": [1, 0], "please set an alarm for seven": [0.9, 0.436],
           "turn it up": [0, 1], "louder": [0.3, 0.954], "what is on": [1, 0], "play jazz": [0, 1]}
    p = scored(spark, rows, toy_cfg, embeddings=emb).set_index(["source_turn_id", "target_turn_id"])
    assert p.loc[("a1", "a2"), "decision"] == "verbatim_repeat" and p.loc[("a1", "a2"), "is_repeat"]
    assert p.loc[("a1", "a3"), "decision"] == "accepted"
    assert p.loc[("a2", "a3"), "decision"] == "accepted"
    assert p.loc[("b1", "b2"), "decision"] == "target_failed"
    assert p.loc[("c1", "c2"), "decision"] == "below_threshold"
    assert p["score"].between(0, 1).all() and p["friction_signals"].map(len).gt(0).all()
    assert set(p["decision"]) <= {"accepted", "verbatim_repeat", "target_failed", "below_threshold",
                                  "not_best_candidate"}


def test_only_the_best_candidate_of_a_source_is_accepted(spark, toy_cfg):
    rows = [turn("a1", 0, "wake me at seven", status="ERROR"),
            turn("a2", 10, "alarm at seven please"),       # > short_dwell_s: both targets succeeded
            turn("a3", 20, "set an alarm for seven")]
    emb = {"wake me at seven": [1, 0], "alarm at seven please": [0.8, 0.6], "set an alarm for seven": [0.99, 0.14]}
    p = scored(spark, rows, toy_cfg, embeddings=emb).set_index("target_turn_id")
    assert p.loc["a3", "decision"] == "accepted" and p.loc["a2", "decision"] == "not_best_candidate"


def test_candidates_respect_gap_distance_and_session(spark):
    rows = [turn("a", 0, "wake me at seven", status="ERROR"), turn("b", 100, "set an alarm"),
            turn("x", 5, "set an alarm for seven", session="other"),
            turn("c", 200, "wake me", status="ERROR", session="s3"),
            *[turn(f"d{i}", 200 + 2 * i, f"alarm {i}", session="s3") for i in range(1, 6)]]
    p = scored(spark, rows)
    assert not ((p["source_turn_id"] == "a") & (p["target_turn_id"] == "b")).any()   # > max_gap_s
    assert not (p["target_turn_id"] == "x").any()                                     # other session
    assert sorted(p.loc[p["source_turn_id"] == "c", "turn_distance"]) == [1, 2, 3]  # max_turn_distance


def test_a_turn_in_another_locale_is_no_candidate(spark):
    # a bilingual user: the German turn between is not a reformulation of the English one
    rows = [turn("a", 0, "play the weekend", status="ERROR"),
            turn("b", 5, "spiele musik von the weeknd", intent="play_music", locale="de-DE"),
            turn("c", 30, "play music by the weeknd", intent="play_music")]
    p = scored(spark, rows)
    assert p.loc[p["source_turn_id"] == "a", "target_turn_id"].tolist() == ["c"]
    assert p.loc[p["source_turn_id"] == "a", "turn_distance"].tolist() == [2]
    assert set(p["locale"]) == {"en-US"}


def test_shuffled_and_same_timestamp_input_gives_identical_pairs(spark):
    rows = [turn("t1", 0, "wake me at seven", status="ERROR"), turn("t3", 5, "set an alarm for seven"),
            turn("t2", 5, "alarm seven", status="ERROR"), turn("t4", 9, "alarm for seven o clock")]
    cols = ["source_turn_id", "target_turn_id", "turn_distance", "decision", "score"]
    a = scored(spark, rows)[cols].sort_values(cols[:2]).reset_index(drop=True)
    b = scored(spark, rows[::-1])[cols].sort_values(cols[:2]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    # same timestamp: ordered by turn_id, so t2 comes before t3
    assert a.loc[(a["source_turn_id"] == "t2") & (a["target_turn_id"] == "t3"), "turn_distance"].item() == 1


def test_broadcast_and_shuffled_feature_joins_give_the_same_pairs(spark, toy_cfg, monkeypatch):
    """score_pairs broadcasts the text-pair features up to MAX_BROADCAST_TEXT_PAIRS and
    shuffles both sides past it: the plans differ, the pairs must not."""
    from mining.spark import rephrase

    rows = [turn("a1", 0, "wake me at seven", status="ERROR"), turn("a2", 10, "alarm at seven please"),
            turn("a3", 20, "set an alarm for seven"), turn("a4", 25, "wake me at seven", status="ERROR"),
            turn("b1", 0, "wake me at seven", status="ERROR", session="s2"),
            turn("b2", 6, "set an alarm for seven", session="s2")]
    emb = {"wake me at seven": [1, 0], "alarm at seven please": [0.8, 0.6], "set an alarm for seven": [0.99, 0.14]}
    key = ["source_turn_id", "target_turn_id"]
    broadcast = scored(spark, rows, toy_cfg, embeddings=emb).sort_values(key).reset_index(drop=True)
    monkeypatch.setattr(rephrase, "MAX_BROADCAST_TEXT_PAIRS", 0)
    shuffled = scored(spark, rows, toy_cfg, embeddings=emb).sort_values(key).reset_index(drop=True)
    assert list(broadcast["decision"]) == ["accepted", "target_failed", "verbatim_repeat", "target_failed",
                                           "accepted"]
    pd.testing.assert_frame_equal(broadcast, shuffled)


@pytest.mark.parametrize("locale, fail, rephrase, other", [
    ("ja-JP", "電気をつけて", "照明をオンにして", "今日の天気は"),
    ("th-TH", "เปิดไฟในห้องนอน", "เปิดไฟห้องนอนหน่อย", "อากาศวันนี้เป็นอย่างไร"),
    ("ar-SA", "شغل الضوء في المطبخ", "شغل ضوء المطبخ", "ما هو الطقس اليوم"),
    ("de-DE", "Schalte das Licht in der Küche ein", "Mach das Küchenlicht an", "Wie ist das Wetter heute"),
])
def test_lexical_features_separate_rephrase_from_switch_in_every_script(spark, locale, fail, rephrase, other):
    rows = [turn("a", 0, fail, status="ERROR", locale=locale), turn("b", 5, rephrase, locale=locale),
            turn("c", 300, fail, status="ERROR", locale=locale, session="s2"),
            turn("d", 310, other, locale=locale, session="s2", intent="weather_query")]
    p = scored(spark, rows).set_index("target_turn_id")
    assert p.loc["b", "char_sim"] > p.loc["d", "char_sim"]
    assert p.loc["b", "token_sim"] >= p.loc["d", "token_sim"]
    assert 0 < p.loc["b", "length_ratio"] <= 1


def test_text_pair_features_rank_the_target_intent():
    import pyarrow as pa

    from mining.spark.rephrase import PAIR_KEYS, TEXT_PAIR_FEATURES, text_pair_features

    centroids = {"en-US": (["alarm_set", "weather_query"], np.array([[1, 0], [0, 1]], dtype=np.float32))}
    vec = pa.list_(pa.float32())
    batch = pa.RecordBatch.from_pydict({
        "locale": ["en-US", "en-US", "en-US", "de-DE", "en-US"],
        "source_text_norm": ["wake me", "wake me", "", "weck mich", "wake me"],
        "target_text_norm": ["wake me up", "weather", "wake me up", "wecker", "wake me"],
        "target_nlu_intent": ["alarm_set", "weather_query", "alarm_set", "alarm_set", None],
        "_se": pa.array([[0.8, 0.6], [0.8, 0.6], None, [1.0, 0.0], [0.8, 0.6]], vec),
        "_te": pa.array([[0.6, 0.8], None, [1.0, 0.0], [0.6, 0.8], [0.8, 0.6]], vec)})
    out = text_pair_features(batch, 3, centroids)
    assert out.schema.names == [*PAIR_KEYS, *TEXT_PAIR_FEATURES]
    f = out.to_pandas()
    assert f.loc[0, "intent_fit"] == pytest.approx(0.8) and f.loc[0, "intent_fit_margin"] == pytest.approx(0.2)
    assert f.loc[0, "intent_fit_log_rank"] == 0.0
    assert f.loc[0, "embedding_cos"] == pytest.approx(0.96)
    assert f.loc[1, "intent_fit_margin"] == pytest.approx(-0.2) and f.loc[1, "intent_fit_log_rank"] == pytest.approx(np.log(2))
    assert f.loc[1, "embedding_cos"] == 0.0                                           # no target embedding
    assert f.loc[2, "intent_fit"] == 0.0 and f.loc[2, "intent_fit_margin"] == -1.0   # no source embedding
    assert f.loc[2, "char_sim"] == 0.0 and f.loc[2, "intent_fit_log_rank"] == pytest.approx(np.log(3))
    assert f.loc[3, "intent_fit"] == 0.0 and f.loc[3, "intent_fit_log_rank"] == 0.0  # locale without centroids
    assert f.loc[3, "embedding_cos"] == pytest.approx(0.6)
    assert f.loc[4, "intent_fit_margin"] == -1.0 and f.loc[4, "char_sim"] == pytest.approx(1.0)  # no intent


def test_text_pair_features_do_not_depend_on_the_batch():
    """A row's features are the same alone and among other rows (Spark's batches are not
    the same from run to run)."""
    import pyarrow as pa

    from mining.spark.rephrase import text_pair_features

    rng = np.random.default_rng(3)
    names = [f"intent_{i}" for i in range(40)]
    cents = rng.standard_normal((40, 384)).astype(np.float32)
    cents /= np.linalg.norm(cents, axis=1, keepdims=True)
    vecs = rng.standard_normal((300, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    batch = pa.RecordBatch.from_pydict({
        "locale": ["en-US"] * 150, "source_text_norm": [f"text {i}" for i in range(150)],
        "target_text_norm": [f"other text {i}" for i in range(150)],
        "target_nlu_intent": [names[i % 40] for i in range(150)],
        "_se": pa.array(list(vecs[:150]), pa.list_(pa.float32())),
        "_te": pa.array(list(vecs[150:]), pa.list_(pa.float32()))})
    whole = text_pair_features(batch, 3, {"en-US": (names, cents)}).to_pandas()
    parts = pd.concat([text_pair_features(batch.slice(i, n), 3, {"en-US": (names, cents)}).to_pandas()
                       for i, n in ((0, 1), (1, 7), (8, 142))], ignore_index=True)
    pd.testing.assert_frame_equal(whole, parts, check_exact=True)


def test_failure_signals_are_the_signals_but_the_confidence_ones():
    assert set(FAILURE_SIGNALS) == set(SIGNALS) - {"low_nlu_confidence", "low_asr_confidence"}


# --------------------------------------------------------------------------- gold cases

def test_candidate_cases_cover_every_case():
    gold = pd.DataFrame({
        "turn_id": ["s", "sw", "rp", "ff", "sf", "ok"],
        "goal_id": ["g1", "g2", "g1", "g1", "g1", "g1"],
        "utt_id": ["u1", "u9", "u1", "u2", "u3", "u4"],
        "friction": [True, False, True, True, False, False],
        "silent_failure": [False, False, False, False, True, False],
        "noticed": [False, False, False, False, False, False],
        "nlu_correct": [False, True, False, False, False, True],
    })
    pairs = pd.DataFrame({"source_turn_id": ["s"] * 5, "target_turn_id": ["sw", "rp", "ff", "sf", "ok"]})
    c = candidate_cases(pairs, gold).set_index("target_turn_id")
    assert list(c["case"]) == ["goal_switch", "verbatim_repeat", "failed_follow_up", "silent_failure",
                               "true_rephrase"]
    assert list(c["positive"]) == [False, False, False, True, True]      # a silent failure is a rephrase pair
    assert list(c["label_clean"]) == [False, False, False, False, True]  # ... with a wrong label


# --------------------------------------------------------------------------- model

def synthetic_candidates(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    pos = rng.random(n) < 0.4
    cs = np.clip(np.where(pos, rng.normal(0.6, 0.15, n), rng.normal(0.2, 0.15, n)), 0, 1)
    return pd.DataFrame({
        "source_turn_id": [f"s{i // 2}" for i in range(n)], "target_turn_id": [f"t{i}" for i in range(n)],
        "source_text_norm": "wake me up", "target_text_norm": "set an alarm",
        "char_sim": cs, "token_sim": cs / 2, "embedding_cos": np.where(pos, 0.7, 0.1) + rng.normal(0, 0.1, n),
        "gap_s": np.where(pos, 4.0, 20.0), "turn_distance": 1, "interpretation_changed": True,
        "target_succeeded": True, "is_repeat": False, "source_nlu_confidence": 0.2,
        "target_nlu_confidence": 0.9, "intent_fit": np.where(pos, 0.5, 0.1), "intent_fit_margin": 0.0,
        "intent_fit_log_rank": 0.0, "friction_signals": [["status_error"]] * n, "positive": pos,
        "background_mean": 0.1, "background_std": 0.2})


def test_fit_model_learns_the_direction_and_round_trips(tmp_path):
    cands = synthetic_candidates()
    m = fit_model(cands, target_precision=0.95, version="t", fit_info={"command": "test"})
    assert m.weights["embedding_rel"] > 0 and m.weights["char_sim"] > 0 and m.weights["log_gap_s"] < 0
    assert m.fit["fit_precision"] >= 0.95 and 0 < m.threshold < 1
    save_model(m, tmp_path / "m.toml")
    back = load_model(tmp_path / "m.toml")
    assert back == m
    feats = model_features(cands)
    assert list(feats.columns) == list(FEATURES)
    np.testing.assert_allclose(back.score(feats), m.score(feats))


def test_a_fit_version_names_its_content():
    """Found in review: the version was "rephrase-lr-<corpora>-s<seed>" whatever --turns, --c or
    --target-precision gave; now a content hash tells two fits apart (same fit: same version)."""
    from mining.fit.rephrase import with_content_version

    cands = synthetic_candidates()
    a = with_content_version(fit_model(cands, target_precision=0.95, version="rephrase-lr-x-s1"))
    b = with_content_version(fit_model(cands, c=0.01, target_precision=0.9, version="rephrase-lr-x-s1"))
    again = with_content_version(fit_model(cands, target_precision=0.95, version="rephrase-lr-x-s1"))
    assert a.version.startswith("rephrase-lr-x-s1-") and a.version != b.version and a.version == again.version


def test_fit_model_needs_both_classes():
    with pytest.raises(ValueError, match="positive and negative"):
        fit_model(synthetic_candidates().assign(positive=True))


def test_model_file_rejects_unknown_features_and_bad_threshold(tmp_path):
    with pytest.raises(ValueError, match="unknown features"):
        RephraseModel(version="x", intercept=0.0, weights={"nope": 1.0}, threshold=0.5)
    with pytest.raises(ValueError, match="threshold"):
        RephraseModel(version="x", intercept=0.0, weights={}, threshold=1.5)


def test_packaged_model_is_fitted_and_config_can_override_its_threshold():
    m = load_model()
    assert m.fit.get("command", "").startswith("mining fit-rephrase"), "refit with `mining fit-rephrase`"
    assert set(m.weights) <= set(FEATURES) and 0 < m.threshold < 1
    assert cfg().rephrase.threshold == m.threshold
    assert cfg(rephrase__threshold=0.42).rephrase.threshold == 0.42


def test_threshold_choice_and_pr_curve():
    best = pd.DataFrame({"score": [0.9, 0.8, 0.7, 0.6, 0.5], "positive": [True, True, True, False, True]})
    curve = pr_curve(best, 5, [0.55, 0.65])
    assert list(curve["accepted"]) == [4, 3] and list(curve["precision"]) == [0.75, 1.0]
    assert list(curve["recall"]) == [0.6, 0.6]
    assert choose_threshold(best, 5, 0.99) == 0.61


def test_best_candidate_prefers_score_then_nearer_turn():
    c = pd.DataFrame({"source_turn_id": ["s", "s", "s"], "target_turn_id": ["a", "b", "c"],
                      "score": [0.5, 0.9, 0.9], "turn_distance": [1, 3, 2], "is_repeat": False,
                      "target_succeeded": True})
    assert best_candidates(c)["target_turn_id"].tolist() == ["c"]
    # repeats and failed targets are never the best candidate, whatever their score
    c2 = c.assign(score=[0.99, 0.5, 0.4], is_repeat=[True, False, False], target_succeeded=[True, False, True])
    assert best_candidates(c2)["target_turn_id"].tolist() == ["c"]


def test_gold_intents_cover_logged_texts_that_are_not_corpus_texts():
    from mining.eval.evaluation import gold_intents_by_text, label_metrics

    splits = pd.DataFrame({"text_norm": ["wake me up"], "intent": ["alarm_set"]})
    logged = pd.DataFrame({"text_norm": ["no i said wake me up", "wake me up"],
                           "gold_intent": ["alarm_set", "alarm_set"]})
    gi = gold_intents_by_text(splits, logged)
    assert gi == {"wake me up": {"alarm_set"}, "no i said wake me up": {"alarm_set"}}
    train = pd.DataFrame({"utterance": ["No, I said wake me up", "wake me up"], "intent": ["alarm_set", "timer"],
                          "confidence": [0.9, 0.9], "evidence": ["variant", "rephrase"]})
    m = label_metrics(train, gi)
    assert m["label_precision"] == 0.5 and m["by_evidence"]["variant"]["precision"] == 1.0


def test_spark_score_equals_the_pandas_model_on_every_candidate(spark):
    """score_pairs computes features and score in the JVM; the fitted model's pandas path
    (model_features + RephraseModel.score, used to fit it) must give the same numbers."""
    from mining.core.rephrase_model import model_features

    rows = [turn("a1", 0, "wake me at seven", status="ERROR"),
            turn("a2", 3, "wake me at seven", status="UNHANDLED", intent=None, conf=None),
            turn("a3", 9, "please set an alarm for seven"),
            turn("b1", 100, "turn it up", status="ERROR", session="s2"),
            turn("b2", 104, "louder please", intent="volume_up", session="s2")]
    emb = {"wake me at seven": [1, 0], "please set an alarm for seven": [0.9, 0.436],
           "turn it up": [0, 1], "louder please": [0.3, 0.954]}
    from mining.core.background import Background

    c = cfg()
    bg = Background(locale="en-US", source="own", n_texts=4, n_pairs=10, mean=0.3, std=0.2, q50=0.3, q99=0.9)
    p = scored(spark, rows, c, embeddings=emb, backgrounds={"en-US": bg})
    assert len(p) >= 4
    p = p.assign(background_mean=0.3, background_std=0.2)
    expected = c.rephrase.fitted.score(model_features(p))
    assert p["score"].to_numpy() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert p["length_ratio"].to_numpy() == pytest.approx(model_features(p)["length_ratio"].to_numpy())


def test_direction_table_finds_flips_and_with_background_needs_every_locale():
    from mining.fit.rephrase import direction_table, format_direction_table, with_background

    a = synthetic_candidates(400, seed=1).assign(locale="de-DE")
    b = synthetic_candidates(400, seed=2).assign(locale="zh-CN")
    b["target_nlu_confidence"] = np.where(b["positive"], 0.2, 0.9)     # flipped in zh-CN only
    a["target_nlu_confidence"] = np.where(a["positive"], 0.9, 0.2)
    frame = pd.concat([a, b], ignore_index=True)
    frame["case"] = np.where(frame["positive"], "true_rephrase", "goal_switch")
    table, flips = direction_table(frame)
    assert flips == ["target_nlu_confidence"]
    emb = table[table["feature"] == "embedding_rel"].set_index("locale")
    assert (emb["direction"] == 1).all() and (emb["rephrase_mean"] > emb["switch_mean"]).all()
    assert "| embedding_rel |" in format_direction_table(table)
    # no locale with both cases: an empty table, reported, not a KeyError after the fit
    alone, none = direction_table(frame[frame["case"] == "true_rephrase"])
    assert alone.empty and none == [] and "no locale" in format_direction_table(alone)
    assert alone.groupby("locale").size().empty
    pairs = pd.DataFrame({"locale": ["de-DE", "xx-XX"]})
    with pytest.raises(ValueError, match="xx-XX"):
        with_background(pairs, {"de-DE": {"mean": 0.8, "std": 0.04}})
    got = with_background(pairs.iloc[:1], {"de-DE": {"mean": 0.8, "std": 0.04}})
    assert got["background_mean"].tolist() == [0.8]
