"""Merge mined weak labels into an existing training set (MASSIVE JSON Lines shape).

Why: human labels are gold (an annotator read the request and chose its intent); mined
labels are weak (inferred from user behaviour: rephrases and cross-user variants, with a
calibrated confidence below 1). So a merge only ever adds or refreshes *mined* rows and
never changes, replaces or drops a human label in favour of a mined one.

Rows are MASSIVE-shaped (``id``, ``locale``, ``partition``, ``utt``, ``annot_utt``,
``intent``; :func:`mining.io.export.write_massive_jsonl`) plus ``label_source``: ``"human"``
(the default when the column or a value is absent, e.g. a human-annotated corpus) or
``"mined"``. Other columns pass through (null where a row lacks them). A mined row
lacking ``label_source`` is ``"mined"``. :func:`read_training_set` never fills it: the role
does (:func:`merge_training_sets`), so a Parquet base is human like a JSON Lines one.

Input that is not a MASSIVE-shaped training set (a line that is no JSON object, a missing
column, a row without ``locale``, ``utt`` or ``intent``, a ``label_source`` outside
:data:`LABEL_SOURCES`) raises
:class:`mining.errors.DatasetNotFound` (exit 3, an input problem, as an unreadable version
manifest does for ``mining inspect``), never a plain ``ValueError`` (exit 2, configuration).

Key: (``locale``, :func:`mining.core.text.normalize` of ``utt``): NFKC, case folding,
punctuation dropped, so "Wake me up!" and "wake me up" are one text; the same text in
en-US and en-GB are two keys (two rows).

Rules, applied in this order:

1. Duplicates inside ``mined`` collapse to one row per key: the newest export wins (the
   date of ``dataset_version``, ``vYYYYMMDD-…``; none ranks oldest), then the highest
   ``confidence`` (missing ranks last), ties broken by (``utt``, ``intent``,
   ``annot_utt``) ascending: ``duplicate_in_mined``; the winner takes the ``partition`` of
   the key's oldest export. So several nights' exports merged at once give what merging
   them night by night in date order gives.
2. Duplicates inside ``base`` (human corpora have some) collapse to one row per key: a
   human row before a mined one, then the first in base order: ``duplicate_in_base``.
3. Per remaining mined row, by what ``base`` holds at its key:

   - a human row with the same intent → dropped, ``duplicate_of_human``;
   - a human row with another intent → dropped, ``conflicts_with_human``; listed by
     :func:`human_conflicts` for review (a stale human label or a miner error);
   - a mined row (an earlier merge) of the same or an older export date → the new row
     replaces it (newer evidence), ``replaced_mined``; it keeps the base row's
     ``partition``, so a text never moves between train and dev across merges;
   - a mined row of a newer export date → the base row stays, ``older_than_base`` (an
     older export merged late never brings back a label a newer night replaced);
   - nothing → ``added``, with its own ``partition`` (its key's oldest export's, rule 1).

Base rows keep their partition. Accounting (checked on every merge)::

    mined_rows  = added + replaced_mined + duplicate_of_human + conflicts_with_human
                  + duplicate_in_mined + older_than_base
    output_rows = base_rows - duplicate_in_base + added

The output has one row per key (verified), sorted by (locale, label_source, intent, utt).
:func:`write_merged` publishes it as ``<locale>.jsonl`` files plus ``merge_manifest.json``
atomically; :func:`read_training_set` reads MASSIVE JSONL or our Parquet training set.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mining.core.text import normalize, repeated_keys
from mining.errors import ConfigError, DatasetNotFound
from mining.io import changelog, export, storage

REQUIRED_COLUMNS = ("locale", "utt", "annot_utt", "intent", "partition")
LABEL_SOURCES = ("human", "mined")
SORT_COLUMNS = ["locale", "label_source", "intent", "utt"]
MANIFEST_NAME = "merge_manifest.json"
_KEY = ["locale", "_merge_norm"]
_BASE_VIEW = {"label_source": "_merge_base_source", "intent": "_merge_base_intent",
              "partition": "_merge_base_partition", "id": "_merge_base_id", "utt": "_merge_base_utt",
              "annot_utt": "_merge_base_annot_utt", "_merge_day": "_merge_base_day"}


def _prepare(df: pd.DataFrame, name: str, default_source: str) -> pd.DataFrame:
    """Copy of ``df`` with filled ``label_source`` and ``id``, nullable integer columns and
    the helper columns ``_merge_norm`` (normalized utt) and ``_merge_order`` (input row)."""
    out = df.reset_index(drop=True).copy()
    missing = [c for c in REQUIRED_COLUMNS if c not in out.columns]
    if missing and len(out) == 0:
        out = out.assign(**{c: pd.Series(dtype=object) for c in missing})
    elif missing:
        raise DatasetNotFound(f"{name} lacks columns {missing}; rows must be MASSIVE-shaped "
                              f"({', '.join(REQUIRED_COLUMNS)}); for a Parquet training set pass "
                              "dev_share to read_training_set to assign partitions")
    _check_values(out, name)
    for col in out.columns:      # int64 → Int64, so null-filled columns stay integers
        if pd.api.types.is_integer_dtype(out[col]) and not pd.api.types.is_extension_array_dtype(out[col]):
            out[col] = out[col].astype("Int64")
    source = out["label_source"] if "label_source" in out.columns else pd.Series(index=out.index, dtype=object)
    out["label_source"] = source.astype(object).where(source.notna(), default_source)
    unknown = sorted(set(out["label_source"]) - set(LABEL_SOURCES))
    if unknown:
        raise DatasetNotFound(f"{name}: unknown label_source {unknown}; allowed: {list(LABEL_SOURCES)}")
    ids = out["id"] if "id" in out.columns else pd.Series(index=out.index, dtype=object)
    out["id"] = [export.massive_id(loc, utt) if pd.isna(i) else i
                 for i, loc, utt in zip(ids, out["locale"], out["utt"])]
    out["_merge_norm"] = [normalize(u) for u in out["utt"]]
    out["_merge_order"] = np.arange(len(out))
    versions = out["dataset_version"] if "dataset_version" in out.columns else pd.Series([None] * len(out))
    # the export's last input day from its name (changelog.manifest_end_date), "" = none: ranks oldest
    out["_merge_day"] = [changelog.manifest_end_date({"dataset_version": v if isinstance(v, str) else None})
                         for v in versions]
    return out


def _check_values(df: pd.DataFrame, name: str) -> None:
    """Raise :class:`mining.errors.DatasetNotFound` naming the first rows (1-based) where
    ``locale``, ``utt`` or ``intent`` is null or not a non-blank string, or ``locale`` cannot
    name a file (:func:`mining.io.export.locale_names_a_file`): a label without an intent is no
    label, and a null ``utt`` would share the key of an empty one."""
    for col in ("locale", "utt", "intent"):
        bad = [i + 1 for i, v in enumerate(df[col]) if not isinstance(v, str) or not v.strip()
               or (col == "locale" and not export.locale_names_a_file(v))]
        if bad:
            raise DatasetNotFound(f"{name}: {len(bad)} row(s) with a null, blank or unusable {col} "
                                  f"(rows {bad[:5]}); every row needs locale, utt and intent")


def _collapse_mined(mined: pd.DataFrame) -> pd.DataFrame:
    conf = pd.to_numeric(mined["confidence"], errors="coerce") if "confidence" in mined.columns \
        else pd.Series(np.nan, index=mined.index)
    ranked = mined.assign(_merge_conf=conf).sort_values(
        ["_merge_day", "_merge_conf", "utt", "intent", "annot_utt", "_merge_order"],
        ascending=[False, False, True, True, True, True], na_position="last", kind="mergesort")
    # the winner keeps the oldest export's partition of its key, as a replaced row keeps the
    # base row's: a text never moves between train and dev whatever the merge order
    oldest = ranked.sort_values(["_merge_day", "_merge_order"], kind="mergesort").drop_duplicates(_KEY)
    first = ranked.drop_duplicates(_KEY, keep="first")
    first = first.assign(partition=first[_KEY].merge(oldest[[*_KEY, "partition"]], on=_KEY, how="left")
                         ["partition"].to_numpy())
    return first.sort_values("_merge_order").drop(columns="_merge_conf")


def _collapse_base(base: pd.DataFrame) -> pd.DataFrame:
    ranked = base.assign(_merge_rank=(base["label_source"] != "human").astype(int))
    ranked = ranked.sort_values(["_merge_rank", "_merge_order"], kind="mergesort")
    return ranked.drop_duplicates(_KEY, keep="first").sort_values("_merge_order").drop(columns="_merge_rank")


def _plan(base: pd.DataFrame, mined: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(unique base rows, unique mined rows with ``_merge_status`` and the base row's
    fields at their key, counts of the collapse steps)."""
    b = _prepare(base, "base", "human")
    m = _prepare(mined, "mined", "mined")
    if (m["label_source"] != "mined").any():
        raise ConfigError("mined rows must have label_source 'mined'; pass human labels as base")
    b_unique, m_unique = _collapse_base(b), _collapse_mined(m)
    view = b_unique[_KEY + list(_BASE_VIEW)].rename(columns=_BASE_VIEW)
    joined = m_unique.merge(view, on=_KEY, how="left", validate="one_to_one")
    human = joined["_merge_base_source"].eq("human")
    base_mined = joined["_merge_base_source"].eq("mined")
    joined["_merge_status"] = np.select(
        [human & joined["intent"].eq(joined["_merge_base_intent"]), human,
         base_mined & (joined["_merge_day"] >= joined["_merge_base_day"]), base_mined],
        ["duplicate_of_human", "conflicts_with_human", "replaced_mined", "older_than_base"], default="added")
    counts = {"base_rows": len(b), "mined_rows": len(m), "duplicate_in_base": len(b) - len(b_unique),
              "duplicate_in_mined": len(m) - len(m_unique)}
    return b_unique, joined, counts


def _column_order(columns) -> list[str]:
    first = [c for c in (*export.MASSIVE_FIELDS, *export.MINED_EXTRA_FIELDS) if c in columns]
    return first + [c for c in columns if c not in first and not str(c).startswith("_merge_")]


def _concat_aligned(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Row-wise concat; a column takes the dtype the frames holding values in it agree on (so
    a column one frame lacks, or holds only nulls in, keeps e.g. ``Int64``), else ``object``
    (human ``id`` integers beside mined hex ids: each value kept as it is)."""
    columns = list(dict.fromkeys(c for f in frames for c in f.columns))
    dtypes = {}
    for c in columns:
        valued = {f[c].dtype for f in frames if c in f.columns and f[c].notna().any()}
        dtypes[c] = valued.pop() if len(valued) == 1 else object if valued \
            else next(f[c].dtype for f in frames if c in f.columns)
    out = pd.concat([f.reindex(columns=columns).astype(dtypes) for f in frames], ignore_index=True)
    for col in columns:          # object columns: missing is None, not NaN
        if out[col].dtype == object:
            out[col] = out[col].where(out[col].notna(), None)
    return out


def check_unique_keys(df: pd.DataFrame) -> None:
    """Raise ``ValueError`` naming up to 5 keys when two rows of ``df`` share a key
    (locale, normalized utt)."""
    repeated = repeated_keys(df["locale"].tolist(), df["utt"].tolist())
    dup = [(loc, normalize(u)) for loc, u, r in zip(df["locale"], df["utt"], repeated) if r]
    if dup:
        raise ValueError(f"{len(dup)} duplicate (locale, normalized utt) keys, e.g. {dup[:5]}")


def merge_training_sets(base: pd.DataFrame, mined: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Merge ``mined`` weak labels into ``base`` by the module's rules.

    ``base``: MASSIVE-shaped rows (``locale``, ``utt``, ``annot_utt``, ``intent``,
    ``partition``; optional ``id`` and ``label_source``, ``"human"`` when absent), may be
    empty. ``mined``: MASSIVE-shaped rows of a new export (``label_source`` absent or
    ``"mined"``; ``confidence`` used to collapse duplicates).

    Returns (rows, stats): one row per (locale, normalized utt), columns MASSIVE fields,
    ``label_source``, the mined extras, then other columns; sorted by (locale,
    label_source, intent, utt), fresh index. stats: ``base_rows``, ``mined_rows``,
    ``added``, ``replaced_mined``, ``duplicate_of_human``, ``conflicts_with_human``,
    ``older_than_base``, ``duplicate_in_mined``, ``duplicate_in_base``, ``output_rows`` (ints).
    Raises :class:`mining.errors.DatasetNotFound` for a missing column or an unknown
    ``label_source`` (bad input), :class:`mining.errors.ConfigError` (exit 2: the arguments
    are swapped) when ``mined`` holds human rows."""
    b_unique, joined, counts = _plan(base, mined)
    status = joined["_merge_status"]
    new = joined[status.isin(["added", "replaced_mined"])].copy()
    replaced = new["_merge_status"] == "replaced_mined"
    new.loc[replaced, "partition"] = new.loc[replaced, "_merge_base_partition"]
    gone = set(zip(new.loc[replaced, "locale"], new.loc[replaced, "_merge_norm"]))
    kept = b_unique[[k not in gone for k in zip(b_unique["locale"], b_unique["_merge_norm"])]]
    out = _concat_aligned([kept[_column_order(kept.columns)], new[_column_order(new.columns)]])
    out = out.sort_values(SORT_COLUMNS, kind="mergesort").reset_index(drop=True)
    out = out[_column_order(out.columns)]
    check_unique_keys(out)
    stats = {**counts, **{s: int((status == s).sum()) for s in
                          ("added", "replaced_mined", "duplicate_of_human", "conflicts_with_human",
                           "older_than_base")},
             "output_rows": len(out)}
    stats = {k: int(stats[k]) for k in sorted(stats)}
    dropped = ("added", "replaced_mined", "duplicate_of_human", "conflicts_with_human", "duplicate_in_mined",
               "older_than_base")
    if stats["mined_rows"] != sum(stats[k] for k in dropped) or \
            stats["output_rows"] != stats["base_rows"] - stats["duplicate_in_base"] + stats["added"]:
        raise RuntimeError(f"merge accounting does not add up: {stats}")
    return out, stats


def human_conflicts(base: pd.DataFrame, mined: pd.DataFrame) -> pd.DataFrame:
    """The mined rows (after collapsing mined duplicates) whose key holds a human label
    with another intent: ``locale``, ``utt``, ``annot_utt``, ``intent``, ``confidence``
    (when mined has it) and the human row's ``human_id``, ``human_utt``,
    ``human_annot_utt``, ``human_intent``; sorted by (locale, utt), fresh index."""
    _, joined, _ = _plan(base, mined)
    rows = joined[joined["_merge_status"] == "conflicts_with_human"]
    cols = ["locale", "utt", "annot_utt", "intent"] + (["confidence"] if "confidence" in rows else [])
    human = {f"_merge_base_{c}": f"human_{c}" for c in ("id", "utt", "annot_utt", "intent")}
    out = rows[cols + list(human)].rename(columns=human)
    return out.sort_values(["locale", "utt"], kind="mergesort").reset_index(drop=True)


def _frame_from_records(records: list[dict]) -> pd.DataFrame:
    """Records → frame; columns in first-seen order. A column whose non-null values are
    all ints becomes ``Int64``, all bools ``boolean``, all numbers ``float64``; else object."""
    columns = list(dict.fromkeys(k for rec in records for k in rec))
    data = {}
    for col in columns:
        values = [rec.get(col) for rec in records]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, bool) for v in present):
            data[col] = pd.array(values, dtype="boolean")
        elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            data[col] = pd.array(values, dtype="Int64")
        elif present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            data[col] = np.array([np.nan if v is None else float(v) for v in values])
        else:
            data[col] = pd.Series(values, dtype=object)
    return pd.DataFrame(data, columns=columns)


def _read_jsonl(files: list[Path]) -> pd.DataFrame:
    records = []
    for path in files:
        n = 0
        try:
            with open(path, encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DatasetNotFound(f"{path}:{n}: not a JSON object: {exc}") from exc
                    if not isinstance(record, dict):
                        raise DatasetNotFound(f"{path}:{n}: not a JSON object: {type(record).__name__}")
                    records.append(record)
        except UnicodeDecodeError as exc:
            raise DatasetNotFound(f"{path}:{n + 1}: not UTF-8: {exc}") from exc
    return _frame_from_records(records)


def _read_parquet(path: Path, dev_share: float | None, seed: int) -> pd.DataFrame:
    df = pq.read_table(path).to_pandas()
    for col in df.columns:       # hive partition columns come back as categoricals
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = df[col].astype(object)
    df = df.rename(columns={"utterance": "utt"})
    missing = [c for c in ("locale", "utt") if c not in df.columns]
    if missing:
        raise DatasetNotFound(f"{path}: no training set, columns {missing} missing")
    if "id" not in df.columns:
        df["id"] = [export.massive_id(loc, utt) for loc, utt in zip(df["locale"], df["utt"])]
    if "partition" not in df.columns and dev_share is not None:
        df["partition"] = [export.split_partition(loc, utt, dev_share, seed)
                           for loc, utt in zip(df["locale"], df["utt"])]
    return df[_column_order(df.columns)]


#: Folders of a run's OUT root other than its published data (mining.io.storage stage outputs
#: and the version store): a folder holding one is a run root, never read as a Parquet dataset.
RUN_ROOT_MARKERS = ("versions", "labels", "turns", "rephrase_pairs", "clusters", "embeddings")


def _is_run_root(path: Path) -> bool:
    return any((path / name).is_dir() for name in RUN_ROOT_MARKERS)


def resolve_mined_path(path: str | Path) -> Path:
    """What ``mining merge --mined PATH`` reads: a run's OUT root (or ``versions/<v>``,
    ``latest``) → its published ``massive/`` JSON Lines, else its ``training_set/``; any
    other path unchanged. Raises :class:`mining.errors.DatasetNotFound` for a run root
    without either (no version published: run export_dataset), so the stage outputs under
    it (turns/, labels/, ...) are never read as a training set."""
    path = Path(path)
    if path.is_dir() and path.name in ("massive", "training_set") and not _is_run_root(path):
        return path.resolve()              # OUT/massive itself: a link through OUT/latest
    for name in ("massive", "training_set"):
        if (path / name).is_dir():
            # OUT/massive is a link through OUT/latest: resolved once, so the files listed and
            # read are one version's even if the next night publishes meanwhile
            return (path / name).resolve()
    if path.is_dir() and _is_run_root(path):
        raise DatasetNotFound(f"{path} is a run's output root without a published dataset version "
                              "(no massive/ or training_set/): run export_dataset (`mining export-dataset` "
                              "or `mining run`) first, or pass a MASSIVE JSONL file or folder")
    return path


def read_training_set(path: str | Path, *, dev_share: float | None = None, seed: int = 0) -> pd.DataFrame:
    """A training set as a MASSIVE-shaped frame, rows in file order.

    ``path``: a MASSIVE JSON Lines file (``.jsonl``/``.json``), a folder of ``*.jsonl``
    (top level only, files in name order; e.g. :func:`write_merged` or
    :func:`mining.io.export.write_massive_jsonl` output), or a Parquet file or dataset (our
    ``training_set``, hive-partitioned by locale): ``utterance`` is renamed ``utt``, ``id``
    is :func:`mining.io.export.massive_id`, and when ``dev_share`` is given ``partition`` is
    :func:`mining.io.export.split_partition` with ``seed`` (else no ``partition`` column).
    ``label_source`` is left as the data has it (absent in our Parquet):
    :func:`merge_training_sets` fills it by role, ``"human"`` for base rows and ``"mined"``
    for mined ones. JSON integers come back as ``Int64``.
    The ``massive/`` or ``training_set/`` folder of a published version without rows gives an
    empty frame. Raises ``FileNotFoundError`` when ``path`` holds no such data,
    :class:`mining.errors.DatasetNotFound` when it is a run's output root (see
    :func:`resolve_mined_path`) or a line is no JSON object."""
    path = Path(path)
    if path.is_file() and path.suffix in (".jsonl", ".json"):
        return _read_jsonl([path])
    if path.is_file() and path.suffix == ".parquet":
        return _read_parquet(path, dev_share, seed)
    if path.is_dir():
        jsonl = sorted(p for p in path.glob("*.jsonl") if p.is_file())
        if jsonl:
            return _read_jsonl(jsonl)
        if _is_run_root(path):       # its stage outputs are Parquet too: never glob them
            raise DatasetNotFound(f"{path} is a run's output root, not a training set: pass its "
                                  "massive/ or training_set/ (published by export_dataset)")
        if any(path.rglob("*.parquet")):
            return _read_parquet(path, dev_share, seed)
        if path.name in ("massive", "training_set") and (path.parent / "manifest.json").is_file():
            return _frame_from_records([])   # a published version with no rows (quality.min_rows = 0)
    raise FileNotFoundError(f"{path}: no MASSIVE JSONL file(s) or Parquet training set")


def write_merged(df: pd.DataFrame, out_folder: str | Path, stats: dict | None = None) -> dict:
    """Publish merged rows as ``out_folder/<locale>.jsonl`` plus ``merge_manifest.json``.

    Files as :func:`mining.io.export.write_locale_jsonl` (rows in ``df`` order, columns as
    :func:`merge_training_sets` orders them). The manifest holds ``rows``,
    ``rows_by_locale``, ``rows_by_locale_source`` (``"<locale>/<label_source>"``),
    ``stats`` (the merge stats, {} when None) and ``checksums`` (sha256 per file).
    Atomic: written into a staging folder beside ``out_folder``
    (:func:`mining.io.storage.staging_path`) and renamed into place
    (:func:`mining.io.storage.commit`); on any failure the staging folder is removed and
    ``out_folder`` is absent or still the previous complete output. Same rows → same
    bytes. ``out_folder`` a link: the folder it points at is written. Raises
    :class:`mining.errors.ConfigError` (exit 2) when ``out_folder`` is neither absent, empty
    nor an earlier merge output (``merge_manifest.json``; it is replaced as a whole), ``ValueError`` for
    duplicate keys or a missing column. Returns the manifest."""
    out_folder = Path(out_folder)
    if out_folder.is_symlink():      # the merge output it points at is replaced, not the link
        out_folder = out_folder.resolve()
    fresh = not out_folder.exists() or (out_folder.is_dir() and not any(out_folder.iterdir()))
    if not fresh and not (out_folder / MANIFEST_NAME).is_file():
        raise ConfigError(f"--out {out_folder} is not empty and is no earlier merge output (no {MANIFEST_NAME}): "
                          "the merge replaces --out as a whole, so it never takes another folder "
                          "(a run's OUT root, a corpus); name a new folder")
    missing = [c for c in ("label_source", *REQUIRED_COLUMNS) if c not in df.columns]
    if missing:
        raise ValueError(f"merged rows lack columns {missing}")
    check_unique_keys(df)
    staging = storage.staging_path(out_folder.parent, out_folder.name)
    try:
        rows = export.write_locale_jsonl(df[_column_order(df.columns)].to_dict("records"), staging)
        by_source = df.groupby(["locale", "label_source"]).size()
        manifest = {"format": "massive-jsonl", "rows": len(df), "rows_by_locale": rows,
                    "rows_by_locale_source": {f"{loc}/{src}": int(n) for (loc, src), n in by_source.items()},
                    "stats": stats or {}, "checksums": export.checksums(staging)}
        storage.write_json(staging / MANIFEST_NAME, manifest)
        storage.commit(staging, out_folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        try:
            os.rmdir(staging.parent)         # .staging/, when nothing else is in it
        except OSError:
            pass
        raise
    return manifest
