import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from mining.core.aggregation import aggregate_locale, vote
from mining.core.calibration import (IDENTITY, PACKAGED_CALIBRATION, Calibration, _split_repeats, fit_calibration,
                                     fit_isotonic, load_calibration, save_calibration)
from mining.config import load_config

# calibrated confidence = 2 x raw score (capped at 1): makes the gates' arithmetic visible
DOUBLE = Calibration(version="test-double", maps={"pooled": (np.array([0.0, 0.5, 1.0]), np.array([0.0, 1.0, 1.0]))})


@pytest.fixture
def agg_cfg():
    # the vote's arithmetic alone; the logs check has its own tests (test_logs_check_*)
    return replace(load_config("logs", "out").aggregation, logs_check=False)


def _events(rows, target_text=None):
    """Accepted pairs; each target's words are ``target_text`` (default: a text said nowhere
    else in the night, so its defect rate is unknown and the event keeps its score)."""
    ev = pd.DataFrame(rows, columns=["text_norm", "target_intent", "score", "user_pseudonym", "target_slots"])
    return ev.assign(target_text_norm=target_text or "the rephrase " + ev["target_intent"],
                     target_turn_id=[f"t{i}" for i in range(len(ev))])


def _vote(rows, **kw):
    return vote(_events([(*r, []) for r in rows]), "text_norm", **kw).set_index("text_norm")


def test_vote_posterior_mean_of_the_top_intent():
    v = _vote([("a", "x", 0.9, "u1"), ("a", "x", 0.8, "u2"), ("a", "y", 0.5, "u3")], prior=1.0).loc["a"]
    # top share ~ Beta(α + W_x, α·K + W − W_x) = Beta(2.7, 2.5); mean 2.7 / 5.2
    assert v["top_intent"] == "x"
    assert v["p"] == pytest.approx(2.7 / 5.2)
    assert (v["k"], v["n_events"], v["n_users"]) == (2, 3, 3)


def test_vote_lower_credible_bound_hand_computed():
    # K = 1, W_top = w: Beta(1 + w, 1) has CDF x^(1+w), so the q-quantile is q^(1 / (1 + w))
    one = _vote([("a", "x", 1.0, "u1")], prior=1.0, quantile=0.05).loc["a"]
    assert one["lb"] == pytest.approx(math.sqrt(0.05))
    two = _vote([("a", "x", 1.0, "u1"), ("a", "x", 1.0, "u2")], prior=1.0, quantile=0.05).loc["a"]
    assert two["lb"] == pytest.approx(0.05 ** (1 / 3))
    # two intents: check the bound through the Beta CDF written out as a binomial sum
    mixed = _vote([("a", "x", 1.0, "u1"), ("a", "y", 1.0, "u2"), ("a", "x", 1.0, "u3")], prior=1.0).loc["a"]
    a, b = 3.0, 2.0 + 1.0  # α + W_x; α·K + W_y
    # Beta(3, 3) CDF at the bound must be 0.05: I_x(3,3) = Σ_{j=3}^{5} C(5,j) x^j (1-x)^(5-j)
    x = mixed["lb"]
    cdf = sum(math.comb(5, j) * x ** j * (1 - x) ** (5 - j) for j in range(3, 6))
    assert (a, b) == (3.0, 3.0) and cdf == pytest.approx(0.05, abs=1e-9)


def test_vote_counts_a_users_repeats_once():
    rep = _vote([("a", "x", 0.6, "u1"), ("a", "x", 1.0, "u1"), ("a", "x", 1.0, "u1")], prior=1.0).loc["a"]
    single = _vote([("a", "x", 1.0, "u1")], prior=1.0).loc["a"]
    assert rep["p"] == pytest.approx(single["p"]) and rep["lb"] == pytest.approx(single["lb"])
    assert (rep["n_events"], rep["n_users"]) == (3, 1)


def test_a_labels_support_counts_only_the_users_and_events_that_voted_for_its_intent(agg_cfg):
    # 6 users rephrase into play_music, 3 others into play_radio: the label wins, with the
    # support of its own 6 (training_set.v1: "distinct users whose events support the label")
    v = _vote([("a", "play_music", 1.0, f"u{i}") for i in range(6)]
              + [("a", "play_radio", 1.0, f"w{i}") for i in range(3)]
              + [("a", "play_music", 1.0, "u0")], prior=1.0).loc["a"]
    assert (v["n_events"], v["n_users"], v["n_top_events"], v["n_top_users"]) == (10, 9, 7, 6)
    texts = _texts([("en-US", "a", "a", 10, 10, 9, "c1", 1, 1.0)])
    events = _events([("a", "play_music", 1.0, f"u{i}", []) for i in range(6)]
                     + [("a", "play_radio", 1.0, f"w{i}", []) for i in range(3)])
    row = aggregate_locale(texts, events, replace(agg_cfg, min_top_share=0.5, min_confidence=0.0),
                           calibration=IDENTITY).iloc[0]
    assert (row["decision"], row["intent"]) == ("labeled", "play_music")
    assert (row["support_users"], row["support_events"]) == (6, 6)


def test_vote_ties_break_by_intent_name():
    v = _vote([("a", "y", 1.0, "u1"), ("a", "x", 1.0, "u2")], prior=1.0).loc["a"]
    assert v["top_intent"] == "x"


def _texts(rows):
    return pd.DataFrame(rows, columns=["locale", "text_norm", "utterance", "n_turns", "n_friction",
                                       "text_users", "cluster_id", "cluster_size", "sim_to_medoid"])


def test_aggregate_labels_abstains_with_named_reasons(agg_cfg):
    texts = _texts([
        ("en-US", "wake me at 7", "wake me at 7", 4, 4, 3, "c1", 2, 0.9),
        ("en-US", "play it", "play it", 10, 1, 5, "c2", 1, 1.0),           # usually succeeds
        ("en-US", "do the thing", "do the thing", 3, 3, 3, "c3", 1, 1.0),  # conflicting
        ("en-US", "once", "once", 3, 3, 3, "c5", 1, 1.0),                  # one weak vote
        ("en-US", "never failed", "never failed", 3, 0, 3, "c4", 1, 1.0),  # no friction: no row
    ])
    ev = _events([
        ("wake me at 7", "alarm_set", 0.95, "u1", [{"name": "time", "value": "7"}]),
        ("wake me at 7", "alarm_set", 0.9, "u2", []),
        ("play it", "music_play", 0.9, "u1", []),
        ("do the thing", "iot_on", 0.9, "u1", []), ("do the thing", "lists_add", 0.9, "u2", []),
        ("once", "weather_query", 0.5, "u1", []),
    ])
    out = aggregate_locale(texts, ev, agg_cfg, DOUBLE).set_index("text_norm")
    assert set(out.index) == {"wake me at 7", "play it", "do the thing", "once"}
    row = out.loc["wake me at 7"]
    assert (row["decision"], row["intent"], row["evidence"]) == ("labeled", "alarm_set", "rephrase")
    assert row["slots"] == [{"name": "time", "value": "7"}]
    assert (row["support_users"], row["support_events"]) == (2, 2)
    # Beta(1 + 1.85, 1): raw = 0.05^(1/2.85); DOUBLE maps it to 2·raw
    assert row["raw_score"] == pytest.approx(0.05 ** (1 / 2.85))
    assert row["confidence"] == pytest.approx(min(1.0, 2 * 0.05 ** (1 / 2.85)))
    assert out.loc["play it", "decision"] == "source_usually_succeeds"
    assert out.loc["do the thing", "decision"] == "conflicting_evidence"
    assert out.loc["do the thing", "intent"] is None
    # raw = 0.05^(1/1.5) = 0.136, confidence 0.27 < min_confidence 0.5: abstains, candidate kept
    once = out.loc["once"]
    assert once["decision"] == "low_confidence" and once["intent"] is None and np.isnan(once["confidence"])
    assert once["candidate_intent"] == "weather_query" and once["candidate_evidence"] == "rephrase"


def test_an_event_counts_less_when_its_target_words_usually_fail(agg_cfg):
    # the target "set an alarm" fails in 3 of its 4 turns: the night says its interpretation
    # is usually wrong (a silent failure), so the event votes with 0.8 · (1 − 3/4) = 0.2
    texts = _texts([("en-US", "wake me", "wake me", 2, 2, 2, "c1", 1, 1.0),
                    ("en-US", "set an alarm", "set an alarm", 4, 3, 4, "c2", 1, 1.0)])
    bad = aggregate_locale(texts, _events([("wake me", "alarm_set", 0.8, "u1", [])], "set an alarm"),
                           replace(agg_cfg, min_confidence=0.0), IDENTITY).set_index("text_norm")
    assert bad.loc["wake me", "raw_score"] == pytest.approx(0.05 ** (1 / 1.2))   # Beta(1 + 0.2, 1)
    assert "set an alarm" not in bad.index or bad.loc["set an alarm", "vote_events"] == 0
    # the same event into words that never failed keeps its score
    texts.loc[1, "n_friction"] = 0
    good = aggregate_locale(texts, _events([("wake me", "alarm_set", 0.8, "u1", [])], "set an alarm"),
                            replace(agg_cfg, min_confidence=0.0), IDENTITY).set_index("text_norm")
    assert good.loc["wake me", "raw_score"] == pytest.approx(0.05 ** (1 / 1.8))


def test_an_event_votes_with_one_minus_its_targets_posterior_failure_probability(agg_cfg):
    # the locale's fitted mixture (mining.core.target_failure): the target's 3 other turns, 1 failed
    from mining.core.target_failure import TargetFailureModel

    model = TargetFailureModel(share=0.3, rate_ok=0.05, rate_failed=0.6, targets=50, informative=40, fitted=True)
    phi = model.p_failed(np.array([1]), np.array([4]))[0]
    texts = _texts([("en-US", "wake me", "wake me", 2, 2, 2, "c1", 1, 1.0)])
    ev = _events([("wake me", "alarm_set", 0.8, "u1", [])], "set an alarm").assign(target_n_turns=4,
                                                                                 target_n_friction=1)
    out = aggregate_locale(texts, ev, replace(agg_cfg, min_confidence=0.0), IDENTITY,
                           target_failure=model).set_index("text_norm")
    w = 0.8 * (1 - phi)
    assert 0.2 < phi < 0.8 and out.loc["wake me", "raw_score"] == pytest.approx(0.05 ** (1 / (1 + w)))


def test_slots_of_equally_weighted_events_do_not_depend_on_row_order(agg_cfg):
    texts = _texts([("en-US", "wake me", "wake me", 2, 2, 2, "c1", 1, 1.0)])
    rows = [("wake me", "alarm_set", 0.9, "u1", [{"name": "time", "value": "7"}]),
            ("wake me", "alarm_set", 0.9, "u2", [{"name": "time", "value": "6"}])]
    ev = _events(rows, "set an alarm").assign(target_turn_id=["t2", "t1"])   # u2's turn id sorts first
    slots = [aggregate_locale(texts, e, agg_cfg, DOUBLE).iloc[0]["slots"] for e in (ev, ev.iloc[::-1])]
    assert slots[0] == slots[1] == [{"name": "time", "value": "6"}]


def test_per_locale_min_events_abstains_on_a_single_event():
    # min_confidence 0: one vote's bound (0.05^(1/2)) would abstain as low_confidence first
    cfg = load_config("logs", "out", overrides={"aggregation": {"min_events_by_locale": {"ru-RU": 2},
                                                                "min_confidence": 0.0,
                                                                "logs_check": False}}).aggregation
    texts = _texts([("ru-RU", "включи свет", "включи свет", 3, 3, 3, "c1", 1, 1.0)])
    ev = _events([("включи свет", "HassTurnOn", 1.0, "u1", [])])
    assert aggregate_locale(texts, ev, cfg.for_locale("en-US"), DOUBLE).iloc[0]["decision"] == "labeled"
    assert aggregate_locale(texts, ev, cfg.for_locale("ru-RU"), DOUBLE).iloc[0]["decision"] == "insufficient_events"
    two = _events([("включи свет", "HassTurnOn", 1.0, u, []) for u in ("u1", "u2")])
    assert aggregate_locale(texts, two, cfg.for_locale("ru-RU"), DOUBLE).iloc[0]["decision"] == "labeled"


def test_identity_calibration_exports_the_raw_bound(agg_cfg):
    texts = _texts([("en-US", "t", "t", 5, 5, 5, "c1", 1, 1.0)])
    ev = _events([("t", "x", 1.0, f"u{i}", []) for i in range(5)])
    row = aggregate_locale(texts, ev, agg_cfg, IDENTITY).iloc[0]
    assert row["confidence"] == pytest.approx(0.05 ** (1 / 6))   # Beta(6, 1)


def test_variant_inherits_its_clusters_pooled_label(agg_cfg):
    texts = _texts([
        ("en-US", "wake me at seven", "wake me at seven", 3, 3, 3, "c1", 3, 0.95),
        ("en-US", "wake me up at seven", "wake me up at seven", 2, 2, 2, "c1", 3, 0.9),
        ("en-US", "far away member", "far away member", 2, 2, 2, "c1", 3, 0.5),
    ])
    ev = _events([("wake me at seven", "alarm_set", 0.9, u, []) for u in ("u1", "u2", "u3")])
    out = aggregate_locale(texts, ev, agg_cfg, DOUBLE).set_index("text_norm")
    assert out.loc["wake me at seven", "evidence"] == "rephrase"
    assert out.loc["wake me up at seven", "evidence"] == "variant"
    assert out.loc["wake me up at seven", "intent"] == "alarm_set"
    assert out.loc["wake me up at seven", "slots"] == []
    assert out.loc["wake me up at seven", "support_users"] == 3
    assert out.loc["far away member", "decision"] == "insufficient_events"   # too far from the medoid


def test_calibration_interpolates_per_evidence_with_pooled_fallback():
    cal = Calibration(version="t", maps={"pooled": (np.array([0.0, 1.0]), np.array([0.0, 1.0])),
                                         "rephrase": (np.array([0.2, 0.6]), np.array([0.1, 0.9]))})
    out = cal.apply(np.array([0.0, 0.4, 0.9, 0.4, np.nan]),
                    np.array(["rephrase", "rephrase", "rephrase", "variant", None], dtype=object))
    assert out[:4] == pytest.approx([0.1, 0.5, 0.9, 0.4])   # clipped / interpolated / clipped / pooled
    assert np.isnan(out[4])


def test_calibration_round_trip_and_validation(tmp_path):
    raw = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6] * 50)
    correct = np.array([0, 0, 1, 0, 1, 1] * 50, bool)
    cal = fit_calibration(raw, correct, np.array(["rephrase"] * 300, dtype=object), version="t", min_per_kind=100)
    assert set(cal.maps) == {"pooled", "rephrase"}
    path = tmp_path / "cal.toml"
    save_calibration(cal, path)
    back = load_calibration(path)
    probe = np.linspace(0, 1, 11)
    kinds = np.array(["rephrase"] * 11, dtype=object)
    assert back.apply(probe, kinds) == pytest.approx(cal.apply(probe, kinds), abs=1e-6)
    path.write_text('version = "bad"\n[pooled]\nx = [0.0, 1.0]\ny = [0.9, 0.1]\n')
    with pytest.raises(ValueError, match="non-decreasing"):
        load_calibration(path)
    path.write_text('version = "bad"\n[pooled]\nx = [0.0, 0.5, 1.0]\ny = [0.1, nan, 0.9]\n')
    with pytest.raises(ValueError, match="finite"):      # NaN passes every comparison
        load_calibration(path)
    path.write_text('version = "bad"\n[rephrase]\nx = [0.0, 1.0]\ny = [0.1, 0.9]\n')
    with pytest.raises(ValueError, match="pooled"):
        load_calibration(path)
    assert load_calibration("none") is IDENTITY


def test_a_kind_with_one_distinct_score_falls_back_to_the_pooled_map():
    raw = np.concatenate([np.linspace(0.1, 0.9, 25), np.full(5, 0.4)])
    correct = np.arange(30) % 3 > 0
    kinds = np.array(["rephrase"] * 25 + ["variant"] * 5, dtype=object)
    cal = fit_calibration(raw, correct, kinds, version="t", min_per_kind=5)
    assert set(cal.maps) == {"pooled", "rephrase"}


def test_isotonic_fit_is_monotone_and_matches_bin_rates():
    raw = np.repeat([0.1, 0.5, 0.9], 100)
    correct = np.concatenate([np.arange(100) < 20, np.arange(100) < 60, np.arange(100) < 95])
    x, y = fit_isotonic(raw, correct)
    assert list(x) == [0.1, 0.5, 0.9] and y == pytest.approx([0.2, 0.6, 0.95])
    with pytest.raises(ValueError, match="distinct"):
        fit_isotonic(np.ones(5), np.ones(5, bool))


def test_packaged_calibration_is_fitted_and_monotone():
    cal = load_calibration(PACKAGED_CALIBRATION)
    assert cal.version.startswith("calibration-isotonic") and "command" in cal.fit
    for x, y in cal.maps.values():
        assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) >= 0)


def _logs_texts(n_per=30, dim=8, seed=0):
    """Friction-free texts of three intents, each around its own basis vector, with the
    columns the logs check reads."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, intent in enumerate(("alarm_set", "music_play", "weather_query")):
        for j in range(n_per):
            v = np.eye(dim)[i] + 0.15 * rng.standard_normal(dim)
            rows.append(("en-US", f"{intent} {j}", f"{intent} {j}", 3, 0, 3, f"k{i}-{j}", 1, 1.0, intent, None,
                         list(v / np.linalg.norm(v))))
    return rows


def _near(i, dim=8):
    v = np.full(dim, 0.02)
    v[i] = 1.0
    return list(v / np.linalg.norm(v))


def _texts_logs(rows):
    return pd.DataFrame(rows, columns=["locale", "text_norm", "utterance", "n_turns", "n_friction", "text_users",
                                       "cluster_id", "cluster_size", "sim_to_medoid", "accepted_intent",
                                       "rejected_intent", "embedding"])


@pytest.fixture
def logs_cfg():
    return replace(load_config("logs", "out").aggregation, logs_check_min_texts=20)


def test_logs_check_abstains_on_a_contradicted_label_and_confirms_an_agreeing_one(logs_cfg):
    texts = _texts_logs(_logs_texts() + [
        # sounds like an alarm request, but five users' rephrases say weather: planted contradiction
        ("en-US", "wake me", "wake me", 5, 5, 5, "c1", 1, 1.0, None, "music_play", _near(0)),
        ("en-US", "rain today", "rain today", 5, 5, 5, "c2", 1, 1.0, None, "music_play", _near(2)),
    ])
    ev = _events([(t, "weather_query", 1.0, f"u{i}", []) for t in ("wake me", "rain today") for i in range(5)])
    out = aggregate_locale(texts, ev, logs_cfg, DOUBLE).set_index("text_norm")
    bad, good = out.loc["wake me"], out.loc["rain today"]
    assert (bad["decision"], bad["intent"], bad["candidate_intent"]) == ("contradicted_by_logs", None, "weather_query")
    assert (bad["logs_check"], bad["logs_intent"]) == ("contradicted", "alarm_set")
    assert (good["decision"], good["intent"], good["logs_check"]) == ("labeled", "weather_query", "confirmed")
    off = aggregate_locale(texts, ev, replace(logs_cfg, logs_check=False), DOUBLE).set_index("text_norm")
    assert off.loc["wake me", "decision"] == "labeled" and off.loc["wake me", "logs_check"] == "off"


def test_logs_check_variant_needs_its_clusters_accepted_intent_to_agree(logs_cfg):
    member = ("en-US", "wake me at seven", "wake me at seven", 3, 3, 3, "c1", 3, 0.95, None, None, _near(0))
    variant = ("en-US", "wake me up at seven", "wake me up at seven", 2, 2, 2, "c1", 3, 0.9, None, None, _near(0))
    ev = _events([("wake me at seven", "alarm_set", 0.9, u, []) for u in ("u1", "u2", "u3")])
    for accepted, decision in (("alarm_set", "labeled"), ("music_play", "variant_cluster_disagrees")):
        ok = ("en-US", "set an alarm for 7", "set an alarm for 7", 9, 0, 9, "c1", 3, 0.85, accepted, None, _near(0))
        out = aggregate_locale(_texts_logs(_logs_texts() + [member, variant, ok]), ev, logs_cfg,
                               DOUBLE).set_index("text_norm")
        assert out.loc["wake me up at seven", "decision"] == decision
        assert out.loc["wake me up at seven", "candidate_evidence"] == "variant"


def test_logs_check_skips_a_locale_with_too_few_texts_by_name(logs_cfg):
    texts = _texts_logs(_logs_texts(n_per=3) + [
        ("en-US", "wake me", "wake me", 5, 5, 5, "c1", 1, 1.0, None, "music_play", _near(0))])
    ev = _events([("wake me", "weather_query", 1.0, f"u{i}", []) for i in range(5)])
    row = aggregate_locale(texts, ev, logs_cfg, DOUBLE).iloc[0]
    assert (row["decision"], row["logs_check"]) == ("labeled", "skipped_too_few_texts")


def test_logs_check_needs_its_columns(logs_cfg):
    texts = _texts([("en-US", "t", "t", 5, 5, 5, "c1", 1, 1.0)])
    ev = _events([("t", "x", 1.0, f"u{i}", []) for i in range(5)])
    with pytest.raises(ValueError, match="logs check needs columns"):
        aggregate_locale(texts, ev, logs_cfg, DOUBLE)


def test_an_event_of_weight_zero_is_no_evidence(agg_cfg):
    """Found in review: a target said once, its only turn with friction, has φ = 1 in a locale
    whose mixture is not fitted; its event (weight 0) still counted for min_events, K and the
    support, and labeled "wake me" ``weather`` from no evidence (raw 0.05, Beta(1, 1)),
    blocking the cluster's variant label."""
    texts = _texts([("en-US", "wake me", "wake me", 2, 2, 2, "c1", 2, 0.95),
                    ("en-US", "wake me up", "wake me up", 4, 4, 4, "c1", 2, 0.9),
                    ("en-US", "weather now", "weather now", 1, 1, 1, "c2", 1, 1.0)])
    ev = pd.concat([_events([("wake me", "weather_query", 0.9, "u9", [])], "weather now"),
                    _events([("wake me up", "alarm_set", 0.9, f"u{i}", []) for i in range(4)])], ignore_index=True)
    out = aggregate_locale(texts, ev, agg_cfg, DOUBLE).set_index("text_norm")
    row = out.loc["wake me"]
    assert (row["decision"], row["intent"], row["evidence"]) == ("labeled", "alarm_set", "variant")
    assert row["vote_events"] == 0 and row["vote_intent"] is None      # its own event counted nowhere
    # a zero-weight vote beside one clean vote no longer makes the text "conflicting"
    ev2 = pd.concat([_events([("wake me", "weather_query", 0.9, "u9", [])], "weather now"),
                     _events([("wake me", "alarm_set", 0.9, "u1", [])])], ignore_index=True)
    two = aggregate_locale(texts, ev2, replace(agg_cfg, min_confidence=0.0), IDENTITY).set_index("text_norm")
    two = two.loc["wake me"]
    assert (two["decision"], two["intent"], two["vote_events"]) == ("labeled", "alarm_set", 1)


def test_a_variant_label_needs_evidence_beyond_the_texts_own_and_never_overrules_it(agg_cfg):
    """Found in review (``min_events`` > 1): the pooled vote included the text's own events, so a
    text whose 2 users all said ``x`` got the cluster's ``y``, and one whose only cluster-mate
    never failed was labeled ``variant`` on the very 2 events min_events had just rejected."""
    cfg = replace(agg_cfg, min_events=3)
    texts = _texts([("en-US", "a", "a", 2, 2, 2, "c1", 2, 0.95), ("en-US", "b", "b", 5, 5, 5, "c1", 2, 0.9)])
    ev = _events([("a", "x", 0.9, f"u{i}", []) for i in range(2)] + [("b", "y", 0.9, f"v{i}", []) for i in range(5)])
    out = aggregate_locale(texts, ev, cfg, DOUBLE).set_index("text_norm")
    assert out.loc["a", "decision"] == "insufficient_events" and out.loc["a", "intent"] is None
    assert out.loc["b", "intent"] == "y"
    # the cluster agrees with the text's own vote: the variant label stands
    agree = _events([("a", "y", 0.9, f"u{i}", []) for i in range(2)] + [("b", "y", 0.9, f"v{i}", []) for i in range(5)])
    assert aggregate_locale(texts, agree, cfg, DOUBLE).set_index("text_norm").loc["a", "evidence"] == "variant"
    # its only cluster-mate never failed: the pool is the text's own 2 events, not enough
    alone = _texts([("en-US", "a", "a", 2, 2, 2, "c1", 2, 0.95), ("en-US", "c", "c", 5, 0, 5, "c1", 2, 0.9)])
    own = _events([("a", "x", 0.9, f"u{i}", []) for i in range(2)])
    assert aggregate_locale(alone, own, cfg, DOUBLE).iloc[0]["decision"] == "insufficient_events"


def test_a_calibration_keeps_its_breakpoints_apart_and_reads_rounded_ones_as_sklearn_would(tmp_path):
    """Found in review: breakpoints saved at 6 decimals collapsed sklearn's thresholds 0.05 and
    0.0500001 into x = [0.05, 0.05, ...], where numpy.interp gave raw 0.05 the upper step (0.722)
    instead of sklearn's 0.52."""
    raw = np.array([0.05] * 25 + [0.0500001] * 25 + [0.5] * 50)
    correct = np.array([1] * 13 + [0] * 12 + [1] * 20 + [0] * 5 + [1] * 50, bool)
    cal = fit_calibration(raw, correct, np.array(["rephrase"] * 100, dtype=object), version="t", min_per_kind=1000)
    save_calibration(cal, tmp_path / "cal.toml")
    back = load_calibration(tmp_path / "cal.toml")
    probe, kinds = np.array([0.05, 0.0500001, 0.3]), np.array(["rephrase"] * 3, dtype=object)
    assert back.apply(probe, kinds) == pytest.approx(cal.apply(probe, kinds)) and cal.apply(probe, kinds)[0] == 0.52
    (tmp_path / "old.toml").write_text('version = "rounded"\n[pooled]\nx = [0.05, 0.05, 0.05, 0.050015, 0.3]\n'
                                       'y = [0.52, 0.52, 0.722, 0.722, 0.9]\n')
    old = load_calibration(tmp_path / "old.toml")
    # a step: the lowest rounded threshold's value at 0.05, the highest's just above it
    assert old.apply(np.array([0.05, 0.05001, 0.050015]), kinds) == pytest.approx([0.52, 0.722, 0.722])
    # a run whose next breakpoint is already the float just above it gets no second step point
    a = 0.05
    x, y = _split_repeats(np.array([0.0, a, a, np.nextafter(a, 1.0), 0.3]), np.array([0.1, 0.5, 0.6, 0.7, 0.9]))
    assert np.all(np.diff(x) > 0) and list(y) == [0.1, 0.5, 0.7, 0.9]
