"""Changelog of a dataset version against the previous one (pandas/pyarrow, no Spark).

Rows are keyed by (``locale``, normalized ``utterance``: :func:`mining.core.text.normalize`,
the key of :mod:`mining.io.retention` and of ``labels/``'s ``text_norm``), so a label whose
displayed spelling changed ("Play jazz" → "play jazz") is the same label. :func:`diff_training_sets` lists every label
that was ``added``, ``changed`` or ``retired`` between two training sets, each with a
reason; :func:`summarize` counts them; :func:`write_changelog` writes them as
``changelog.jsonl`` (one JSON object per change). ``export_dataset`` writes that file into
every version and the counts into the manifest's ``changelog`` entry, against the version
:func:`previous_version` finds; ``mining diff A B`` (:mod:`mining.tools.diff`) computes the
same between any two published versions.

Reasons (:data:`REASONS`):

- ``added``: ``new_evidence`` (the text has a label now and had none in the old version);
- ``changed``: ``intent_changed``, else ``slots_changed`` (the slots or the ``annot_utt``
  annotation differ, compared normalized; confidence, support and spelling changes are not
  label changes);
- ``retired``: why the new run did not export the text, when its ``labels/`` decided it
  (:func:`retire_reasons`): an abstain reason such as ``conflicting_evidence``, or an
  export drop (``below_min_users``, ``dp_not_selected``, else ``not_exported``); else
  ``no_evidence_in_window`` (the text no longer occurs with friction in the new run's input
  partitions: under ``export.label_retention = "window"``, or when retention is skipped
  because the previous version was made under weaker privacy gates), or ``contradicted``
  (tonight's users rephrase it into another intent: :mod:`mining.io.retention`, which keeps
  every other label). Under
  ``privacy.dp`` every retired text is ``dp_not_selected`` (:func:`release_diff`, the policy
  ``export_dataset`` and ``mining diff`` share): the exact reason would tell whether anyone said it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa

from mining.core.text import normalize
from mining.io import export

#: Columns of :func:`diff_training_sets`, in order.
COLUMNS = ("locale", "utterance", "change", "reason", "old_intent", "new_intent", "old_annot_utt",
           "new_annot_utt")
CHANGES = ("added", "changed", "retired")
#: Reasons besides the ``labels/`` decisions a retired text may carry.
REASONS = {"added": ("new_evidence",), "changed": ("intent_changed", "slots_changed"),
           "retired": ("no_evidence_in_window", "below_min_users", "dp_not_selected", "not_exported",
                       "contradicted")}
#: Training-set columns the diff reads.
READ_COLUMNS = ("locale", "utterance", "intent", "slots", "annot_utt")


def _frame(table) -> pd.DataFrame:
    """``table`` (pyarrow Table, pandas DataFrame or None) → a pandas frame of
    :data:`READ_COLUMNS` (missing ``slots``/``annot_utt`` become null) plus ``key`` (the
    normalized utterance), one row per (locale, key): the first after sorting by intent and
    utterance."""
    if table is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in (*READ_COLUMNS, "key")})
    df = table.to_pandas() if isinstance(table, pa.Table) else table.copy()
    for col in READ_COLUMNS:
        if col not in df.columns:
            df[col] = None
    df = df[list(READ_COLUMNS)].astype({"locale": object, "utterance": object, "intent": object})
    df["key"] = df["utterance"].map(normalize).astype(object)
    return df.sort_values(["locale", "key", "intent", "utterance"], kind="mergesort") \
        .drop_duplicates(["locale", "key"]).reset_index(drop=True)


def _slots_key(slots) -> tuple:
    """Slots as a hashable, order-free value (a list of {name, value} dicts or None), values
    normalized like the key."""
    if slots is None or (not hasattr(slots, "__len__") and pd.isna(slots)):
        return ()
    return tuple(sorted((str(s["name"]), normalize(str(s["value"]))) for s in slots))


def _annot_key(annot_utt):
    """``annot_utt`` normalized like the key (None stays None): a spelling change is no
    annotation change, a moved or renamed ``[slot : value]`` still is."""
    return None if _none(annot_utt) is None else normalize(annot_utt)


def _none(v):
    return None if v is None or (isinstance(v, float) and pd.isna(v)) else v


def diff_training_sets(old, new, decisions: pd.DataFrame | None = None) -> pd.DataFrame:
    """The labels ``added``, ``changed`` and ``retired`` from training set ``old`` to ``new``.

    ``old``, ``new``: pyarrow Tables or pandas DataFrames with at least ``locale``,
    ``utterance``, ``intent`` (``slots``, ``annot_utt`` compared when present); ``old`` may
    be None (no previous version: every row ``added``). ``decisions``: optional frame
    (``locale``, ``utterance``, ``reason``), the new run's reason for texts it did not export
    (:func:`retire_reasons`); a retired text without one gets ``no_evidence_in_window``.

    Returns a DataFrame with columns :data:`COLUMNS`, all dtype ``object`` (str or None):
    ``locale``, ``utterance`` (the new version's spelling; the old one's for a retired
    label), ``change`` (``added`` | ``changed`` | ``retired``),
    ``reason`` (:data:`REASONS`, or a ``labels/`` decision), ``old_intent``/``new_intent``
    and ``old_annot_utt``/``new_annot_utt`` (None on the side where the text has no label).
    Labels are matched on (locale, normalized utterance), ``decisions`` too; a label whose
    spelling alone changed is unchanged. Unchanged labels are not listed. Sorted by (locale, change, utterance): the same inputs
    give the same frame."""
    o, n = _frame(old), _frame(new)
    m = o.merge(n, on=["locale", "key"], how="outer", suffixes=("_old", "_new"), indicator=True)
    rows = []
    reasons = {}
    if decisions is not None and len(decisions):
        for r in decisions.itertuples():       # the first reason of a key wins
            if _none(r.reason):
                reasons.setdefault((r.locale, normalize(r.utterance)), r.reason)
    for r in m.itertuples(index=False):
        side = r[-1]                                # the merge indicator
        if side == "right_only":
            change, reason = "added", "new_evidence"
        elif side == "left_only":
            change, reason = "retired", reasons.get((r.locale, r.key), "no_evidence_in_window")
        elif r.intent_old != r.intent_new:
            change, reason = "changed", "intent_changed"
        elif _slots_key(r.slots_old) != _slots_key(r.slots_new) or \
                _annot_key(r.annot_utt_old) != _annot_key(r.annot_utt_new):
            change, reason = "changed", "slots_changed"
        else:
            continue
        rows.append((r.locale, r.utterance_old if side == "left_only" else r.utterance_new, change, reason,
                     _none(r.intent_old) if change != "added" else None,
                     _none(r.intent_new) if change != "retired" else None,
                     _none(r.annot_utt_old) if change != "added" else None,
                     _none(r.annot_utt_new) if change != "retired" else None))
    df = pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)
    return df.sort_values(["locale", "change", "utterance"], kind="mergesort").reset_index(drop=True)


def summarize(diff: pd.DataFrame) -> dict:
    """Counts of a :func:`diff_training_sets` frame: ``{"added": n, "changed": n,
    "retired": n, "by_reason": {reason: n}}`` (reasons sorted by name; ints)."""
    counts = diff["change"].value_counts() if len(diff) else {}
    by_reason = diff["reason"].value_counts() if len(diff) else {}
    return {**{c: int(counts.get(c, 0)) for c in CHANGES},
            "by_reason": {k: int(by_reason[k]) for k in sorted(by_reason.keys())}}


def release_diff(old, new, *, locales=(), dp: bool = False, reasons_for=None) -> pd.DataFrame:
    """:func:`diff_training_sets` of a released version ``new`` against ``old`` as its own
    run sees it, the one policy of ``export_dataset``'s changelog and ``mining diff``:

    - ``locales`` (the new run's ``--locale`` list; empty = every locale): only those rows
      of ``old`` are compared, since the run read no other locale's logs and retired none of
      their labels;
    - ``dp`` (the new version was exported under ``privacy.dp``): every retired text gets
      ``dp_not_selected``, since the exact reason (an abstain decision, or no ``labels/`` row
      at all) would tell, unnoised, whether anyone said it;
    - else ``reasons_for(retired)`` (``retired``: frame of ``locale``, ``utterance``) gives
      the reasons (:func:`retire_reasons`' frame), or None for ``no_evidence_in_window``.

    ``old``/``new`` as :func:`diff_training_sets` takes them (``old`` may be None)."""
    if old is not None and locales:
        old = _frame(old)
        old = old[old["locale"].isin(list(locales))]
    diff = diff_training_sets(old, new)
    retired = diff.loc[diff["change"] == "retired", ["locale", "utterance"]]
    if not len(retired):
        return diff
    reasons = retired.assign(reason="dp_not_selected") if dp else reasons_for(retired) if reasons_for else None
    return diff if reasons is None or not len(reasons) else diff_training_sets(old, new, reasons)


def retire_reasons(labels: pd.DataFrame, min_users: int, dp: bool = False) -> pd.DataFrame:
    """Why the run that wrote ``labels`` did not export each of its texts.

    ``labels``: rows of ``labels/`` (``locale``, ``utterance``, ``decision``,
    ``text_users``). The reason is the ``decision`` when it is an abstain reason; for a
    ``labeled`` text the export drop: with ``dp`` always ``dp_not_selected`` (its exact
    ``text_users`` against ``min_users`` is what the DP release hides), else
    ``below_min_users`` (``text_users < min_users``), else ``not_exported``. Returns a frame
    (``locale``, ``utterance``, ``reason``; dtype object), one row per (locale, utterance),
    sorted."""
    rows = []
    for r in labels.itertuples(index=False):
        if r.decision != "labeled":
            reason = r.decision
        else:   # labeled but not in the new training set: the export gate's reason
            users = min_users if r.text_users is None or pd.isna(r.text_users) else int(r.text_users)
            reason = export.drop_reason(users, min_users, dp, dp_selected=False) or "not_exported"
        rows.append((r.locale, r.utterance, reason))
    df = pd.DataFrame(rows, columns=["locale", "utterance", "reason"], dtype=object)
    return df.sort_values(["locale", "utterance", "reason"], kind="mergesort") \
        .drop_duplicates(["locale", "utterance"]).reset_index(drop=True)


def manifest_end_date(manifest: dict) -> str:
    """Last input partition of a version: max of ``input_partitions``, else the date in its
    name (``v<YYYYMMDD>-…`` → ``YYYY-MM-DD``), else ``""`` (unknown: sorts first)."""
    parts = manifest.get("input_partitions") or []
    if parts:
        return max(str(p) for p in parts)
    name = str(manifest.get("dataset_version") or "")
    digits = name[1:9]
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}" if name.startswith("v") and digits.isdigit() else ""


def previous_version(out: str | Path, baseline: str, end_date: str) -> tuple[str | None, Path | None]:
    """The version a new export whose last input partition is ``end_date`` (``YYYY-MM-DD``)
    follows: (dataset version, its folder), or (None, None). Label retention
    (:mod:`mining.io.retention`) carries labels from it and the changelog compares with it.

    1. The version ``OUT/latest`` points at (before this export publishes), when it ends
       before ``end_date``. When it ends on ``end_date`` (a rerun of the same night, with
       any config), the version its manifest's changelog recorded as previous, when
       ``OUT/versions/<it>`` still exists: a rerun writes the same bytes. When it ends after
       ``end_date`` (a backfill of an earlier night), the chain of recorded previous versions
       is followed back from it by the same rule, so the backfill follows what that night
       followed when it was published.
    2. Else the version of the ``baseline`` manifest (``quality.baseline``: a previous
       night's ``manifest.json``; its ``training_set/`` sits beside it through the links),
       when it ends before ``end_date``.
    A candidate without ``manifest.json`` and ``training_set/`` is skipped. Needs no
    version name of the new export, so the name can depend on the result."""
    out = Path(out)
    folder, seen = out / "latest", set()
    while (folder / "manifest.json").is_file() and (folder / "training_set").is_dir():
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        name, ends = manifest.get("dataset_version"), manifest_end_date(manifest)
        if ends < end_date:
            return name, folder.resolve()
        prev = (manifest.get("changelog") or {}).get("previous")
        if not prev or prev in seen:
            break
        seen.add(prev)
        folder = out / "versions" / str(prev)
        if ends == end_date:      # a rerun: what this night followed, or nothing
            if (folder / "manifest.json").is_file() and (folder / "training_set").is_dir():
                return prev, folder.resolve()
            break
    if baseline:
        path = Path(baseline)
        for folder in (path.resolve().parent, path.parent):
            try:
                manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            name = manifest.get("dataset_version") if isinstance(manifest, dict) else None
            if name and manifest_end_date(manifest) < end_date and (folder / "training_set").is_dir():
                return name, folder.resolve()
    return None, None


def manifest_entry(previous: str | None, diff: pd.DataFrame) -> dict:
    """The manifest's ``changelog`` entry: ``{"previous": version or None, "added",
    "changed", "retired", "by_reason"}``."""
    return {"previous": previous, **summarize(diff)}


def write_changelog(path: str | Path, diff: pd.DataFrame) -> int:
    """Write ``diff`` as JSON Lines (:func:`mining.io.export.write_jsonl`: one object per
    change, keys in :data:`COLUMNS` order, same rows → same bytes). Returns the lines."""
    from mining.io.export import write_jsonl
    return write_jsonl(Path(path), diff[list(COLUMNS)].to_dict("records"))


def read_changelog(path: str | Path) -> pd.DataFrame:
    """A ``changelog.jsonl`` back as a :func:`diff_training_sets` frame (empty when the
    file is missing or empty)."""
    path = Path(path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line] \
        if path.is_file() else []
    return pd.DataFrame([[r.get(c) for c in COLUMNS] for r in rows], columns=list(COLUMNS), dtype=object)
