"""The rewrite table: failed text → its most supported successful reformulation, per locale.

Runtime query rewriting from rephrase pairs (Ponnusamy et al., AAAI 2020, "Feedback-based
self-learning in large-scale conversational AI agents"): when users who hit friction on a
text keep succeeding with the same reformulation, the assistant can rewrite the failing
text to it before interpretation. Written beside the training set of every version::

    versions/<dataset_version>/rewrites/locale=<L>/part-00000.parquet   (OUT/rewrites → latest)

Columns (``schemas/rewrites.v1.avsc``), one row per (``locale``, ``failed_text``):

=================  =======  =================================================================
column             dtype    meaning
=================  =======  =================================================================
``locale``         string   partition folder ``locale=<L>``
``failed_text``    string   the failing utterance as users said it, PII-scrubbed: the
                            training set's ``utterance`` of the same text
``rewrite_text``   string   the reformulation's most frequent raw form (ties: lowest),
                            PII-scrubbed with :func:`mining.privacy.pii.scrub_pii`
``intent``         string   the reformulation's interpretation (``target_intent``, most
                            frequent); equals the failed text's exported label
``support_users``  long     distinct pseudonymized users with an accepted pair
                            failed text → this reformulation (same normalized texts)
``support_events`` long     accepted pairs failed text → this reformulation
``confidence``     double   0..1, the calibrated confidence of the failed text's label
``dataset_version`` string  the version it was exported with
=================  =======  =================================================================

Gates, each candidate (locale, failed ``text_norm``, rewrite ``text_norm``) of the accepted
``rephrase_pairs/`` counted once under the first it fails (:data:`DROP_REASONS`):

1. ``failed_text_not_exported``: the failed text is not among this run's own exported labels
   (a label only retained from the previous version, ``export.label_retention``, gets no
   rewrite: tonight's pairs did not pass the export gates with it). So the training set's
   gates hold for every failed text: k-anonymity (``privacy.min_users``), PII scrub, DP
   selection when ``privacy.dp`` is on.
2. ``rewrite_below_min_users``: fewer than ``privacy.min_users`` distinct users made this
   exact rephrase (the k-anonymity gate on the pair, hence on the rewrite text too).
3. ``rewrite_intent_disagrees``: the reformulation's intent is not the exported label; a
   rewrite must agree with the training set.
4. ``rewrite_target_fails``: the reformulation is itself among this run's own exported
   labels (as in 1; a label only retained from the previous version is not looked at), so a
   text that failed at least ``aggregation.min_defect_rate`` of the time tonight (the
   labels' own gate): never a target. Two failing texts rephrased into each other would
   give a cycle (a → b, b → a).
5. ``rewrite_adds_entities``: a slot value of the reformulation (``target_slots``,
   normalized with :func:`mining.core.text.normalize`) does not match the failed text: its
   best-aligned substring (``rapidfuzz.fuzz.partial_ratio``) is less than
   :data:`ENTITY_MATCH_MIN` similar. A rewrite may fix how a request was heard or said,
   never change what it asks for: "play the weekend" → "play music by the weeknd" keeps the
   (misrecognized) artist, 0.90; "add rice on the list" → "i need oranges added to my
   grocery list" is the same intent but another request, 0.43 for "oranges". Character
   alignment, not a model: a paraphrased entity ("nyc" for "new york", 0.46) is dropped too.
6. ``rewrite_equals_failed_text``: scrubbed, the rewrite is the failed text (nothing to rewrite).
7. ``rewrite_not_most_supported``: another candidate of the same (locale, failed_text) wins:
   more ``support_users``, then more ``support_events``, then higher ``confidence``, then
   ``rewrite_text`` ascending (then the rewrite's ``text_norm``), so the choice is deterministic.

Under ``privacy.dp`` the stage releases no rewrite (an empty table): the pair gate and the
support counts here are exact, and an exact threshold would void the DP guarantee.

Pure pandas; the Spark glue (one cogroup per locale) is in
:mod:`mining.stages.export_dataset`.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from mining.io import export, schemas
from mining.core.text import normalize
from mining.privacy import pii as privacy

#: Columns of ``rephrase_pairs/`` (accepted rows) that :func:`build_rewrites` reads.
PAIR_COLUMNS = ("locale", "user_pseudonym", "source_text_norm", "target_text_norm",
                "target_utterance", "target_intent", "target_slots")
#: Columns of the exported labels that :func:`build_rewrites` reads: the training set's
#: ``locale``, ``utterance``, ``intent``, ``confidence`` with the label key ``text_norm``.
EXPORTED_COLUMNS = ("locale", "text_norm", "utterance", "intent", "confidence")
#: Why a candidate is not in the table, in gate order.
DROP_REASONS = ("failed_text_not_exported", "rewrite_below_min_users", "rewrite_intent_disagrees",
                "rewrite_target_fails", "rewrite_adds_entities", "rewrite_equals_failed_text",
                "rewrite_not_most_supported")
#: Columns of the rewrite contract, in schema order.
COLUMNS = tuple(f.name for f in schemas.arrow_schema("rewrites"))
#: :func:`build_rewrites` output: the contract columns + ``drop_reason`` (null = kept).
FINAL_COLUMNS = (*COLUMNS, "drop_reason")
_PAIR_KEY = ["locale", "source_text_norm", "target_text_norm"]


def _mode(pairs: pd.DataFrame, column: str, name: str) -> pd.DataFrame:
    """Most frequent non-null ``column`` per candidate key (ties: lowest value) as ``name``."""
    counts = (pairs.dropna(subset=[column]).groupby(_PAIR_KEY + [column]).size()
              .reset_index(name="n"))
    counts = counts.sort_values(_PAIR_KEY + ["n", column], ascending=[True] * len(_PAIR_KEY) + [False, True])
    return counts.drop_duplicates(_PAIR_KEY).drop(columns="n").rename(columns={column: name})


#: Least character similarity (0..1) between a rewrite's slot value and its best-aligned
#: substring of the failed text. A design constant, not fitted on labelled data: an ASR
#: misrecognition keeps most characters of the entity (weekend/weeknd 0.90, jaz/jazz 0.86),
#: another entity shares few (examples above).
ENTITY_MATCH_MIN = 0.8


def _slot_values(slots) -> list[str]:
    """Normalized values of a ``list<struct<name, value>>`` cell (dicts or Rows; null: none)."""
    if slots is None or (not hasattr(slots, "__len__") and pd.isna(slots)):
        return []
    values = [s["value"] if isinstance(s, dict) else getattr(s, "value", None) for s in slots]
    return [normalize(v) for v in values if v]


def _adds_entities(slot_values, failed_text_norm: str) -> bool:
    """Whether a slot value has no match of at least :data:`ENTITY_MATCH_MIN` in the failed text."""
    from rapidfuzz import fuzz

    return any(fuzz.partial_ratio(v, failed_text_norm) / 100 < ENTITY_MATCH_MIN for v in slot_values if v)


def candidates(pairs: pd.DataFrame) -> pd.DataFrame:
    """Accepted pairs (:data:`PAIR_COLUMNS`) → one row per (``locale``, ``source_text_norm``,
    ``target_text_norm``): ``support_users`` (distinct ``user_pseudonym``), ``support_events``
    (pairs), ``rewrite_utterance`` and ``intent`` (most frequent ``target_utterance`` /
    ``target_intent``, ties: lowest; ``intent`` null when every pair had none) and
    ``slot_values`` (sorted normalized slot values over all its pairs). Sorted by key."""
    out_cols = [*_PAIR_KEY, "support_users", "support_events", "rewrite_utterance", "intent", "slot_values"]
    p = pairs.loc[:, list(PAIR_COLUMNS)]
    if p.empty:
        return pd.DataFrame(columns=out_cols)
    support = (p.groupby(_PAIR_KEY).agg(support_users=("user_pseudonym", "nunique"),
                                        support_events=("user_pseudonym", "size")).reset_index())
    slots = (p.assign(slot_values=[_slot_values(x) for x in p["target_slots"]])
             .groupby(_PAIR_KEY)["slot_values"].agg(lambda lists: sorted({v for vs in lists for v in vs}))
             .reset_index())
    out = (support.merge(_mode(p, "target_utterance", "rewrite_utterance"), on=_PAIR_KEY, how="left")
           .merge(_mode(p, "target_intent", "intent"), on=_PAIR_KEY, how="left")
           .merge(slots, on=_PAIR_KEY, how="left"))
    return out.loc[:, out_cols].sort_values(_PAIR_KEY, ignore_index=True)


def build_rewrites(pairs: pd.DataFrame, exported: pd.DataFrame, min_users: int,
                   dataset_version: str) -> pd.DataFrame:
    """Accepted rephrase pairs + the exported labels → rewrite rows with ``drop_reason``.

    ``pairs``: accepted ``rephrase_pairs/`` rows (:data:`PAIR_COLUMNS`); ``exported``: this
    version's training-set rows with their label key (:data:`EXPORTED_COLUMNS`).
    Returns :data:`FINAL_COLUMNS`: one row per candidate (:func:`candidates`); kept rows
    (``drop_reason`` null) carry every contract column, at most one per (``locale``,
    ``failed_text``), sorted by (``locale``, ``failed_text``); dropped rows carry only
    ``locale`` and ``drop_reason`` (one of :data:`DROP_REASONS`), so no text of a dropped
    candidate leaves this function. Integer columns are pandas ``Int64``."""
    cand = candidates(pairs)
    labels = (exported.loc[:, list(EXPORTED_COLUMNS)].drop_duplicates(["locale", "text_norm"])
              .rename(columns={"text_norm": "source_text_norm", "utterance": "failed_text",
                               "intent": "label_intent"}))
    df = cand.merge(labels, on=["locale", "source_text_norm"], how="left", validate="many_to_one")
    reason = pd.Series(None, index=df.index, dtype=object)
    reason[df["failed_text"].isna()] = "failed_text_not_exported"
    reason[reason.isna() & (df["support_users"] < min_users)] = "rewrite_below_min_users"
    reason[reason.isna() & (df["intent"].isna() | (df["intent"] != df["label_intent"]))] = \
        "rewrite_intent_disagrees"
    failing = set(zip(exported["locale"], exported["text_norm"]))
    into_failing = [k in failing for k in zip(df["locale"], df["target_text_norm"])]
    reason[reason.isna() & pd.Series(into_failing, index=df.index, dtype=bool)] = "rewrite_target_fails"
    adds = [pd.isna(reason[i]) and _adds_entities(v, src) for i, v, src
            in zip(df.index, df["slot_values"], df["source_text_norm"])]
    reason[pd.Series(adds, index=df.index, dtype=bool)] = "rewrite_adds_entities"
    live = reason.isna()
    df["rewrite_text"] = None
    df.loc[live, "rewrite_text"] = [privacy.scrub_pii(t, loc)[0] for t, loc
                                    in zip(df.loc[live, "rewrite_utterance"], df.loc[live, "locale"])]
    reason[live & (df["rewrite_text"] == df["failed_text"])] = "rewrite_equals_failed_text"
    live = reason.isna()
    ranked = df[live].sort_values(
        ["locale", "failed_text", "support_users", "support_events", "confidence", "rewrite_text",
         "target_text_norm"], ascending=[True, True, False, False, False, True, True])
    losers = ranked.index[ranked.duplicated(["locale", "failed_text"], keep="first")]
    reason[losers] = "rewrite_not_most_supported"
    df["dataset_version"] = dataset_version
    df["drop_reason"] = reason
    kept = df[reason.isna()].sort_values(["locale", "failed_text"])
    dropped = df.loc[reason.notna(), ["locale", "drop_reason"]]
    out = pd.concat([kept.loc[:, list(FINAL_COLUMNS)], dropped], ignore_index=True)
    out = out.reindex(columns=list(FINAL_COLUMNS))
    for col in ("support_users", "support_events"):
        out[col] = out[col].astype("Int64")
    out["confidence"] = out["confidence"].astype(float)
    return out


def drop_counts(rows: pd.DataFrame) -> dict[str, int]:
    """``{drop_reason: candidates}`` of :func:`build_rewrites` output, ordered by reason."""
    counts = rows["drop_reason"].dropna().value_counts()
    return {str(k): int(counts[k]) for k in sorted(counts.index)}


def final_schema():
    """Spark schema of :func:`build_rewrites` output: the contract, all nullable, + ``drop_reason``."""
    from pyspark.sql import types as T

    return T.StructType(list(schemas.spark_schema("rewrites", all_nullable=True).fields)
                        + [T.StructField("drop_reason", T.StringType())])


def write_rewrites(table: pa.Table, folder: Path) -> None:
    """Write the kept rows (contract columns) as ``folder/locale=<L>/part-00000.parquet``, rows
    in table order, byte-stable like the training set (:func:`mining.io.export.write_by_locale`)."""
    export.write_by_locale(table, Path(folder), "rewrites")
