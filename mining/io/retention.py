"""Label retention across dataset versions: which labels of the previous version stay.

A self-learning loop removes its own evidence: once a mined label retrains the NLU, users
stop failing on its words, and a pipeline that exports only what tonight's window supports
(``source_usually_succeeds``, the lookback window) drops the label that caused the fix; the
next NLU forgets it and the failures come back. Ponnusamy et al. (AAAI 2020, "Feedback-based
self-learning in large-scale conversational AI agents") and its follow-up (Ponnusamy et al.,
"Self-aware feedback-based self-learning in large-scale conversational AI", arXiv 2205.00029,
2022: successive feedback is contingent on the rewrite itself) name this feedback loop. The
remedy here is the one continual learning calls *rehearsal* of earlier labels, with
retirement driven by evidence:

``export.label_retention``:

* ``"until_contradicted"`` (default; "sticky labels"): a label of the previous version stays
  in the training set while tonight's logs do not contradict it, even when its text no
  longer fails. Tonight's labels win where they exist (an ``intent_changed`` label replaces
  the old one). A label with no fresh label tonight is retired, reason ``contradicted``,
  only on contrary evidence (:func:`contradicts`): its text fails again (defect rate ≥
  ``aggregation.min_defect_rate``) and users rephrase it into *another* intent with a
  majority of tonight's own vote (posterior share ≥ ``aggregation.min_top_share``) from at
  least ``aggregation.min_events`` (per locale) accepted events. A wrong label leaves this
  way: the NLU trained on it misreads the text, users fail and rephrase it into what they
  meant. A retained row keeps its confidence, support and ``evidence_version`` (the version
  whose run last had evidence for it); its ``dataset_version`` is the new one.
* ``"window"``: no retention; a version holds exactly what its lookback window supports.

Keys are (``locale``, normalized utterance, :func:`mining.core.text.normalize`), the key
``labels/`` uses. Retained rows passed the privacy gates when they were first exported; they
are not re-counted (the releasing of an already released row costs no privacy budget).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Collection

import pandas as pd

from mining.config import RETENTION_POLICIES as POLICIES  # noqa: F401  (the one list of policies)
from mining.core.text import normalize, repeated_keys
#: Columns of the new run's ``labels/`` that :func:`carry_forward` reads.
VOTE_COLUMNS = ("locale", "text_norm", "vote_intent", "vote_share", "vote_events", "defect_rate")


def contradicts(label_intent: str, vote_intent, vote_share: float, vote_events: int, defect_rate: float,
                min_top_share: float, min_events: int, min_defect_rate: float) -> bool:
    """True when tonight's evidence for a text contradicts its retained label ``label_intent``.

    ``vote_*``: the text's own vote in tonight's ``labels/`` (top intent or None, its
    posterior mean share in 0..1, accepted rephrase events ≥ 0); ``defect_rate``: friction
    turns / turns of the text tonight, 0..1. The thresholds are the aggregation gates of a
    label (``aggregation.min_top_share``, ``min_events``, ``min_defect_rate``): contrary
    evidence must be as strong as the evidence that would make a label, except for the
    calibrated-confidence gate."""
    if vote_intent is None or pd.isna(vote_intent) or vote_intent == label_intent:
        return False
    return (float(defect_rate) >= min_defect_rate and float(vote_share) >= min_top_share
            and int(vote_events) >= min_events)


def carry_forward(previous: pd.DataFrame, fresh: pd.DataFrame, votes: pd.DataFrame,
                  gates: Callable[[str], tuple[float, int, float]],
                  dataset_version: str, locales: Collection[str] = (),
                  contradict: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The previous version's labels that stay (policy ``until_contradicted``).

    ``previous``: rows of the previous version's training set (the ``training_set`` contract
    columns; ``evidence_version`` may be null or absent: then its ``dataset_version``).
    ``fresh``: the new run's exported rows (at least ``locale``, ``utterance``). ``votes``:
    the new run's ``labels/`` rows with :data:`VOTE_COLUMNS`. ``gates(locale)`` →
    ``(min_top_share, min_events, min_defect_rate)`` of that locale.

    Returns ``(retained, contradicted)``: ``retained`` has ``previous``'s columns, the rows
    whose key has no fresh row and no contrary evidence, with ``dataset_version`` set to
    ``dataset_version``; ``contradicted``: (``locale``, ``utterance``, ``reason`` =
    ``"contradicted"``, ``vote_intent``), the retired ones. Both sorted by (locale,
    utterance). Pure; the same inputs give the same frames.

    ``locales``: the run's locales (``RunConfig.locales``; empty = all). A locale-restricted
    run exports only those locales, so only ``previous``'s rows of those locales are carried
    forward; rows of other locales are left out of the new version (neither retained nor
    contradicted: the run has no evidence about them).

    ``contradict`` False (``privacy.dp``): ``votes`` retire nothing. The votes are exact
    counts, so one user's single event could decide whether a text stays in the release,
    beyond what the DP release covers (:mod:`mining.privacy.dp`); a retained label then
    leaves only when a fresh (DP-selected) label of its text replaces it."""
    prev = previous[previous["locale"].isin(list(locales))] if locales else previous
    prev = prev.copy()
    if "evidence_version" not in prev.columns:
        prev["evidence_version"] = None
    prev["evidence_version"] = prev["evidence_version"].where(prev["evidence_version"].notna(),
                                                              prev["dataset_version"])
    prev["text_norm"] = prev["utterance"].map(normalize)
    fresh_keys = set(zip(fresh["locale"], fresh["utterance"].map(normalize)))
    # a mask with the index: an empty list would select no *columns* (no previous row in the
    # run's locales, a new locale in a shared OUT: KeyError below)
    prev = prev[pd.Series([k not in fresh_keys for k in zip(prev["locale"], prev["text_norm"])],
                          index=prev.index, dtype=bool)]
    v = votes[list(VOTE_COLUMNS)].drop_duplicates(["locale", "text_norm"])
    m = prev.merge(v, on=["locale", "text_norm"], how="left")
    against = [contradicts(r.intent, r.vote_intent, r.vote_share, r.vote_events, r.defect_rate, *gates(r.locale))
               for r in m.itertuples(index=False)]
    against = pd.Series(against, index=m.index, dtype=bool) & contradict
    retained = m.loc[~against, list(dict.fromkeys([*previous.columns, "evidence_version"]))].copy()
    retained["dataset_version"] = dataset_version
    contradicted = m.loc[against, ["locale", "utterance", "vote_intent"]].assign(reason="contradicted")
    order = ["locale", "utterance"]
    return (retained.sort_values(order, kind="mergesort").reset_index(drop=True),
            contradicted[["locale", "utterance", "reason", "vote_intent"]]
            .sort_values(order, kind="mergesort").reset_index(drop=True))


#: The internal cluster_id (``<locale>:<12 hex>``, an unkeyed hash of the medoid's text) that
#: versions exported before the exported id was keyed carry.
_INTERNAL_CLUSTER_ID = re.compile(r"[^:]+:[0-9a-f]{12}")


def refresh_privacy(previous: pd.DataFrame, cluster_key: bytes | None) -> tuple[pd.DataFrame, dict]:
    """The previous version's rows as this code would export them, before they are carried
    forward: the utterance scrubbed again with :func:`mining.privacy.pii.scrub_pii` (a text a
    newer rule catches is published scrubbed, its slots projected again onto the scrubbed
    words as the export does), an internal ``cluster_id`` made opaque
    (:func:`mining.privacy.pii.opaque_cluster_id`; ``cluster_key`` None leaves ids alone),
    and of rows that now share a (locale, normalized text) key the first kept (sorted by
    locale, utterance, intent). Returns (rows, counts ``rescrubbed``, ``rekeyed``,
    ``collapsed``). Pure; the same inputs give the same frame."""
    from mining.io.export import exported_text
    from mining.privacy import pii

    out = previous.copy()
    counts = {"rescrubbed": 0, "rekeyed": 0, "collapsed": 0}
    if out.empty:
        return out, counts
    utts, slots, annots = [], [], []
    for utt, sl, annot, loc in zip(out["utterance"], out["slots"], out["annot_utt"], out["locale"]):
        scrubbed, _ = pii.scrub_pii(utt, loc)
        if scrubbed != utt:                 # the export's own rule for the text and its slots
            counts["rescrubbed"] += 1
            scrubbed, sl, annot, _ = exported_text(utt, sl, loc)
        utts.append(scrubbed)
        slots.append(sl)
        annots.append(annot)
    out["utterance"], out["slots"], out["annot_utt"] = utts, slots, annots
    if cluster_key is not None and "cluster_id" in out.columns:
        internal = out["cluster_id"].map(lambda c: isinstance(c, str) and bool(_INTERNAL_CLUSTER_ID.fullmatch(c)))
        counts["rekeyed"] = int(internal.sum())
        out.loc[internal, "cluster_id"] = [pii.opaque_cluster_id(c, cluster_key) for c in out.loc[internal, "cluster_id"]]
    out = out.sort_values(["locale", "utterance", "intent"], kind="mergesort")
    dup = repeated_keys(out["locale"].tolist(), out["utterance"].tolist())
    counts["collapsed"] = sum(dup)
    return out[[not d for d in dup]].reset_index(drop=True), counts
