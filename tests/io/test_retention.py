"""Label retention across versions (mining.io.retention): sticky labels, retired only on
contrary evidence. Pure pandas, no Spark."""
import pandas as pd
import pytest

from mining.io import retention

GATES = (0.5, 1, 0.3)      # min_top_share, min_events, min_defect_rate


def _previous(rows):
    return pd.DataFrame([{"utterance": u, "locale": "en-US", "intent": i, "slots": [], "annot_utt": u,
                          "confidence": 0.9, "support_users": 3, "support_events": 4, "evidence": "rephrase",
                          "cluster_id": None, "dataset_version": "v20261101-aaaa", "evidence_version": ev}
                         for u, i, ev in rows])


def _votes(rows):
    return pd.DataFrame([{"locale": "en-US", "text_norm": t, "vote_intent": i, "vote_share": p,
                          "vote_events": n, "defect_rate": d} for t, i, p, n, d in rows],
                        columns=list(retention.VOTE_COLUMNS))


def test_quiet_labels_stay_fresh_ones_win_and_contrary_evidence_retires():
    previous = _previous([("Wake me at 7", "alarm_set", None),        # quiet tonight: stays
                          ("play jazz", "play_music", "v20261030-zzzz"),  # relabeled tonight: fresh wins
                          ("lights off", "iot_hue_lightoff", None),     # contradicted
                          ("whats on", "calendar_query", None),         # stray vote, text rarely fails
                          ("olly time", "datetime_query", None)])       # vote agrees
    fresh = pd.DataFrame({"locale": ["en-US"], "utterance": ["Play Jazz"]})
    votes = _votes([("lights off", "iot_hue_lightup", 0.8, 3, 0.7),
                    ("whats on", "play_radio", 0.7, 1, 0.05),
                    ("olly time", "datetime_query", 0.9, 2, 0.6)])
    kept, gone = retention.carry_forward(previous, fresh, votes, lambda loc: GATES, "v20261102-bbbb")
    assert list(kept["utterance"]) == ["Wake me at 7", "olly time", "whats on"]
    assert set(kept["dataset_version"]) == {"v20261102-bbbb"}
    # evidence_version: the version that last had evidence (the old dataset_version when unset)
    assert set(kept["evidence_version"]) == {"v20261101-aaaa"}
    assert list(kept.columns) == list(previous.columns)
    assert gone.to_dict("records") == [{"locale": "en-US", "utterance": "lights off", "reason": "contradicted",
                                        "vote_intent": "iot_hue_lightup"}]
    # under privacy.dp the exact votes retire nothing: only a fresh (DP-selected) label replaces one
    kept, gone = retention.carry_forward(previous, fresh, votes, lambda loc: GATES, "v20261102-bbbb", contradict=False)
    assert list(kept["utterance"]) == ["Wake me at 7", "lights off", "olly time", "whats on"] and gone.empty


@pytest.mark.parametrize("vote,expected", [
    (("other", 0.8, 3, 0.7), True),
    (("same", 0.8, 3, 0.7), False),          # users still mean the label's intent
    (("other", 0.4, 3, 0.7), False),         # no majority for another intent
    (("other", 0.8, 0, 0.7), False),         # fewer events than a label needs
    (("other", 0.8, 3, 0.1), False),         # the text usually succeeds now
    ((None, float("nan"), 0, 0.9), False),   # failing, but nobody rephrased it
])
def test_contradiction_needs_evidence_as_strong_as_a_label(vote, expected):
    intent, share, events, defect = vote
    assert retention.contradicts("same", intent, share, events, defect, *GATES) is expected


def test_old_versions_without_evidence_version_and_empty_inputs():
    previous = _previous([("a", "x", None)]).drop(columns=["evidence_version"])
    kept, gone = retention.carry_forward(previous, pd.DataFrame({"locale": [], "utterance": []}), _votes([]),
                                         lambda loc: GATES, "v2")
    assert kept["evidence_version"].tolist() == ["v20261101-aaaa"] and gone.empty


def test_locale_restricted_run_carries_forward_only_its_locales():
    """A ``--locale de-DE`` run keeps only the previous version's de-DE labels: en-US rows,
    never voted on by this run, are left out of the version (not retained, not contradicted)."""
    previous = pd.concat([_previous([("wake me at 7", "alarm_set", None)]),
                          _previous([("weck mich um 7", "alarm_set", None)]).assign(locale="de-DE")],
                         ignore_index=True)
    empty = pd.DataFrame({"locale": [], "utterance": []})
    kept, gone = retention.carry_forward(previous, empty, _votes([]), lambda loc: GATES, "v2", locales=("de-DE",))
    assert list(zip(kept["locale"], kept["utterance"])) == [("de-DE", "weck mich um 7")]
    assert gone.empty
    kept, _ = retention.carry_forward(previous, empty, _votes([]), lambda loc: GATES, "v2")   # all locales
    assert list(kept["locale"]) == ["de-DE", "en-US"]


def test_retained_rows_are_exported_as_this_code_exports_them():
    """A label carried forward from a version written before a privacy fix is published with
    it: PII scrubbed again (slots projected onto the scrubbed words), an internal cluster_id
    keyed; rows that now share a key collapse to one."""
    from mining.privacy.pii import derive_key

    prev = _previous([("call five five five 1234", "calling_call", None), ("call five five five 9876", "calling_call", None),
                      ("wake me at 7", "alarm_set", None)])
    prev["cluster_id"] = ["en-US:0123456789ab", None, "en-US:" + "f" * 16]
    prev["slots"] = [[{"name": "number", "value": "five five five 1234"}], [], [{"name": "time", "value": "7"}]]
    key = derive_key(b"k" * 32, "cluster_id")
    out, counts = retention.refresh_privacy(prev, key)
    assert counts == {"rescrubbed": 2, "rekeyed": 1, "collapsed": 1}
    assert out["utterance"].tolist() == ["call <number>", "wake me at 7"]
    assert out["cluster_id"].iloc[0].startswith("en-US:") and len(out["cluster_id"].iloc[0]) == 6 + 16
    assert out["cluster_id"].iloc[1] == "en-US:" + "f" * 16                     # already opaque
    assert out["annot_utt"].iloc[1] == "wake me at 7" and list(out["slots"].iloc[1]) == [{"name": "time", "value": "7"}]
    assert "five" not in out["annot_utt"].iloc[0]
    same, none = retention.refresh_privacy(prev.iloc[2:], None)
    assert none == {"rescrubbed": 0, "rekeyed": 0, "collapsed": 0} and same["cluster_id"].tolist() == ["en-US:" + "f" * 16]
    kept, counts = retention.refresh_privacy(prev.iloc[:1], None)          # no key: an internal id stays
    assert kept["cluster_id"].tolist() == ["en-US:0123456789ab"] and counts["rekeyed"] == 0


def test_a_locale_run_with_no_previous_label_in_its_locales_carries_nothing():
    """Found in review: a ``--locale fr-FR`` run (a new locale in a shared OUT) whose previous
    version held en-US rows only crashed the export (KeyError: 'locale': an empty list of
    booleans selected no columns)."""
    previous = _previous([("wake me at 7", "alarm_set", None)])
    fresh = pd.DataFrame({"locale": ["fr-FR"], "utterance": ["réveille moi"]})
    kept, gone = retention.carry_forward(previous, fresh, _votes([]), lambda loc: GATES, "v2", locales=("fr-FR",))
    assert kept.empty and gone.empty
    assert list(gone.columns) == ["locale", "utterance", "reason", "vote_intent"]
