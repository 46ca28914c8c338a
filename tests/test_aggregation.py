import pandas as pd
import pytest

from mining.aggregation import aggregate_locale, vote
from mining.config import load_config


@pytest.fixture
def agg_cfg():
    return load_config("logs", "out").aggregation


def _events(rows):
    return pd.DataFrame(rows, columns=["text_norm", "target_intent", "score", "user_pseudonym", "target_slots"])


def test_vote_posterior_mean_of_the_top_intent():
    ev = _events([("a", "x", 0.9, "u1", []), ("a", "x", 0.8, "u2", []), ("a", "y", 0.5, "u3", [])])
    v = vote(ev, "text_norm", prior=1.0).set_index("text_norm").loc["a"]
    # (W_x + α) / (W + α (K + 1)) = (1.7 + 1) / (2.2 + 3)
    assert v["top_intent"] == "x"
    assert v["p"] == pytest.approx(2.7 / 5.2)
    assert (v["k"], v["n_events"], v["n_users"]) == (2, 3, 3)


def _texts(rows):
    return pd.DataFrame(rows, columns=["locale", "text_norm", "utterance", "n_turns", "n_friction",
                                       "text_users", "cluster_id", "cluster_size", "sim_to_medoid"])


def test_aggregate_labels_abstains_with_named_reasons(agg_cfg):
    texts = _texts([
        ("en-US", "wake me at 7", "wake me at 7", 4, 4, 3, "c1", 2, 0.9),
        ("en-US", "play it", "play it", 10, 1, 5, "c2", 1, 1.0),           # usually succeeds
        ("en-US", "do the thing", "do the thing", 3, 3, 3, "c3", 1, 1.0),  # conflicting
        ("en-US", "never failed", "never failed", 3, 0, 3, "c4", 1, 1.0),  # no friction: no row
    ])
    ev = _events([
        ("wake me at 7", "alarm_set", 0.95, "u1", [{"name": "time", "value": "7"}]),
        ("wake me at 7", "alarm_set", 0.9, "u2", []),
        ("play it", "music_play", 0.9, "u1", []),
        ("do the thing", "iot_on", 0.9, "u1", []), ("do the thing", "lists_add", 0.9, "u2", []),
    ])
    out = aggregate_locale(texts, ev, agg_cfg).set_index("text_norm")
    assert set(out.index) == {"wake me at 7", "play it", "do the thing"}
    assert out.loc["wake me at 7", "decision"] == "labeled"
    assert out.loc["wake me at 7", "intent"] == "alarm_set"
    assert out.loc["wake me at 7", "slots"] == [{"name": "time", "value": "7"}]
    assert (out.loc["wake me at 7", "support_users"], out.loc["wake me at 7", "support_events"]) == (2, 2)
    assert out.loc["play it", "decision"] == "source_usually_succeeds"
    assert out.loc["do the thing", "decision"] == "conflicting_evidence"
    assert out.loc["do the thing", "intent"] is None


def test_variant_inherits_its_clusters_pooled_label(agg_cfg):
    texts = _texts([
        ("en-US", "wake me at seven", "wake me at seven", 3, 3, 3, "c1", 3, 0.95),
        ("en-US", "wake me up at seven", "wake me up at seven", 2, 2, 2, "c1", 3, 0.9),
        ("en-US", "far away member", "far away member", 2, 2, 2, "c1", 3, 0.5),
    ])
    ev = _events([("wake me at seven", "alarm_set", 0.9, u, []) for u in ("u1", "u2", "u3")])
    out = aggregate_locale(texts, ev, agg_cfg).set_index("text_norm")
    assert out.loc["wake me at seven", "evidence"] == "rephrase"
    assert out.loc["wake me up at seven", "evidence"] == "variant"
    assert out.loc["wake me up at seven", "intent"] == "alarm_set"
    assert out.loc["wake me up at seven", "slots"] == []
    assert out.loc["far away member", "decision"] == "insufficient_events"   # too far from the medoid
