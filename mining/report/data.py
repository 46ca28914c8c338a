"""The run report's numbers, read from the run's files: the manifest and the Parquet stage
outputs (``turns/``, ``rephrase_pairs/``, ``labels/``, ``clusters/``, the version's
``training_set/``).

**Memory**: stage outputs are streamed in Arrow record batches of ``batch_rows`` rows,
reading only the columns a figure needs, and reduced to counts as they stream:
O(batch_rows + groups), independent of the run's size.

**Determinism**: every result is sorted (locales, evidence kinds, intents, ties by name),
so the report built from it is a function of the run's files only.
"""
from __future__ import annotations

import heapq
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

#: (key, label) of the funnel steps, in order.
FUNNEL = (("turns", "Turns (validated input)"), ("friction_turns", "Friction turns"),
          ("candidate_pairs", "Candidate pairs"), ("accepted_pairs", "Accepted pairs"),
          ("labeled_texts", "Labeled texts"), ("exported_rows", "Exported rows from this run's evidence"))
LOCALE_COLUMNS = (("turns", "Turns"), ("friction_turns", "Friction turns"),
                  ("accepted_pairs", "Accepted pairs"), ("labeled_texts", "Labeled texts"),
                  ("exported_rows", "Exported rows"))
CONFIDENCE_BINS = 40        # histogram of exported confidence: bins of 0.025 on [0, 1]
BATCH_ROWS = 65_536
EXPORT_COLUMNS = ["locale", "intent", "utterance", "confidence", "support_users", "support_events",
                  "evidence"]


# ---------------------------------------------------------------------------- reading

def iter_batches(path: str | Path, columns: list[str], filter=None, batch_rows: int = BATCH_ROWS):
    """Record batches of a Parquet stage folder (hive partitions, ``_*`` files skipped),
    only ``columns``, rows matching the pyarrow ``filter``; nothing when the folder is
    missing or holds no data file. Memory O(batch_rows · len(columns))."""
    if not Path(path).is_dir():
        return
    dataset = ds.dataset(str(path), format="parquet", partitioning="hive")
    if not dataset.files:   # an empty folder (a run whose gates kept no row) has no columns to select
        return
    for batch in dataset.to_batches(columns=columns, filter=filter, batch_size=batch_rows):
        if batch.num_rows:
            yield batch


def count_by(path: str | Path, keys: list[str], filter=None, batch_rows: int = BATCH_ROWS) -> Counter:
    """Rows per distinct tuple of ``keys`` in a Parquet stage folder, streamed.

    Returns ``Counter({(k1, k2, …): rows})`` (empty when the folder is missing); memory
    O(batch_rows + distinct tuples)."""
    counts: Counter = Counter()
    for batch in iter_batches(path, keys, filter, batch_rows):
        grouped = pa.Table.from_batches([batch]).group_by(keys).aggregate([([], "count_all")])
        for row in grouped.to_pylist():
            counts[tuple(row[k] for k in keys)] += row["count_all"]
    return counts


def resolve_version_dir(out: str | Path, version_dir: str | Path | None = None) -> Path:
    """The dataset version to report: ``version_dir`` when given, else the version
    ``OUT/latest`` points at (resolved once: a report read while the next night publishes
    never mixes two versions' files) when it has a manifest, else ``OUT`` itself."""
    out = Path(out)
    if version_dir is not None:
        return Path(version_dir)
    return (out / "latest").resolve() if (out / "latest" / "manifest.json").exists() else out


def read_manifest(version_dir: str | Path) -> dict:
    """The version's ``manifest.json``; ``FileNotFoundError`` without one."""
    return json.loads((Path(version_dir) / "manifest.json").read_text(encoding="utf-8"))


def stage_stats(out: str | Path, manifest: dict, name: str) -> dict:
    """A stage's counts: the manifest's frozen copy, else ``OUT/<name>/_stats.json``."""
    stats = manifest.get("stages", {}).get(name)
    if stats is None:
        path = Path(out) / name / "_stats.json"
        stats = json.loads(path.read_text()) if path.exists() else {}
    return stats


#: Stage folders a report reads beside the version (per-locale counts, clusters, gold joins).
LIVE_OUTPUTS = ("turns", "rephrase_pairs", "clusters", "labels")


def check_live_outputs(out: str | Path, manifest: dict) -> None:
    """Refuse to report a version beside stage outputs of another run.

    The stage folders under ``out`` are the latest run's; a version under ``versions/`` may
    be an older one (a backfill or a ``--locale`` run into the same OUT leaves ``latest``
    where it was). Each folder of :data:`LIVE_OUTPUTS` whose ``_stats.json`` lineage and the
    manifest's ``stages.<name>.lineage`` are both present and differ raises
    :class:`mining.errors.StageOutputMismatch` (exit 3) naming it; unstamped ones pass."""
    from mining.errors import StageOutputMismatch
    from mining.io import storage

    for name in LIVE_OUTPUTS:
        live = storage.read_stats(out, name).get("lineage")
        want = ((manifest.get("stages") or {}).get(name) or {}).get("lineage")
        if live and want and live != want:
            raise StageOutputMismatch(
                f"{Path(out) / name}/ comes from another detect_rephrases run (lineage {live}) than version "
                f"{manifest.get('dataset_version')} ({want}): its report would mix two runs; report a version "
                f"with the run root its own run wrote")


# ---------------------------------------------------------------------------- figures

def funnel_counts(out: str | Path, manifest: dict) -> dict[str, int]:
    """The six funnel counts (keys of :data:`FUNNEL`) from the manifest's stage stats, plus
    ``retained_rows``. ``exported_rows`` counts the rows of this run's own labels (the
    manifest's ``retention.fresh``); ``retained_rows`` the previous version's labels carried
    forward (``retention.retained``, 0 without retention), which the funnel's steps never
    saw: the version holds ``exported_rows + retained_rows`` = ``manifest["rows"]`` rows."""
    out = Path(out)
    turns = stage_stats(out, manifest, "turns")
    pairs = stage_stats(out, manifest, "rephrase_pairs")
    labels = stage_stats(out, manifest, "labels")
    retention = manifest.get("retention") or {}
    return {"turns": int(turns.get("turns", 0)), "friction_turns": int(turns.get("friction_turns", 0)),
            "candidate_pairs": int(pairs.get("candidates", 0)),
            "accepted_pairs": int(pairs.get("accepted_pairs", 0)),
            "labeled_texts": int(labels.get("by_decision", {}).get("labeled", 0)),
            "exported_rows": int(retention.get("fresh", manifest.get("rows", 0))),
            "retained_rows": int(retention.get("retained", 0))}


def locale_counts(out: str | Path, manifest: dict, batch_rows: int = BATCH_ROWS) -> pd.DataFrame:
    """Per locale (index, sorted): the columns of :data:`LOCALE_COLUMNS`, int64.

    Streams ``turns/`` (locale, is_friction), ``rephrase_pairs/`` (locale where accepted)
    and ``labels/`` (locale where decision = 'labeled'); exported rows come from the
    manifest's ``rows_by_locale_intent`` (the version's rows: retained labels included). A
    locale missing from a stage counts 0."""
    out = Path(out)
    turns = count_by(out / "turns", ["locale", "is_friction"], batch_rows=batch_rows)
    pairs = count_by(out / "rephrase_pairs", ["locale"], pc.field("accepted"), batch_rows)
    labels = count_by(out / "labels", ["locale"], pc.field("decision") == "labeled", batch_rows)
    exported: Counter = Counter()
    for key, n in manifest.get("rows_by_locale_intent", {}).items():
        exported[key.split("/", 1)[0]] += int(n)
    table: dict[str, Counter] = {}
    for (loc, friction), n in turns.items():
        table.setdefault(str(loc), Counter())["turns"] += n
        table[str(loc)]["friction_turns"] += n if friction else 0
    for name, counts in (("accepted_pairs", pairs), ("labeled_texts", labels)):
        for (loc,), n in counts.items():
            table.setdefault(str(loc), Counter())[name] += n
    for loc, n in exported.items():
        table.setdefault(loc, Counter())["exported_rows"] += n
    cols = [c for c, _ in LOCALE_COLUMNS]
    df = pd.DataFrame([[table[loc][c] for c in cols] for loc in sorted(table)],
                      index=pd.Index(sorted(table), name="locale"), columns=cols)
    return df.astype("int64")


def confidence_histogram(version_dir: str | Path, batch_rows: int = BATCH_ROWS) -> dict[str, np.ndarray]:
    """Exported rows per confidence bin, per evidence kind (sorted): int64
    (:data:`CONFIDENCE_BINS`,), bins of equal width on [0, 1], the last one closed."""
    hist: dict[str, np.ndarray] = {}
    for batch in iter_batches(Path(version_dir) / "training_set", ["confidence", "evidence"], None, batch_rows):
        df = batch.to_pandas()
        idx = np.clip((df["confidence"].to_numpy() * CONFIDENCE_BINS).astype(int), 0, CONFIDENCE_BINS - 1)
        for ev, sel in df.groupby("evidence").indices.items():
            hist.setdefault(str(ev), np.zeros(CONFIDENCE_BINS, np.int64))
            hist[str(ev)] += np.bincount(idx[sel], minlength=CONFIDENCE_BINS)
    return dict(sorted(hist.items()))


def cluster_sizes(out: str | Path, batch_rows: int = BATCH_ROWS) -> Counter:
    """``Counter({texts in a cluster: clusters})`` from ``clusters/`` (one medoid row per
    cluster carries its ``cluster_size``)."""
    counts = count_by(Path(out) / "clusters", ["cluster_size"], pc.field("is_medoid"), batch_rows)
    return Counter({int(k[0]): n for k, n in counts.items()})


def top_variants(version_dir: str | Path, manifest: dict, n_intents: int = 10, k: int = 5,
                 batch_rows: int = BATCH_ROWS) -> list[tuple[str, int, pd.DataFrame]]:
    """For the ``n_intents`` (locale, intent) with the most exported rows (ties by name),
    their ``k`` exported rows with the most ``support_users``, then confidence, then
    ``support_events`` (ties by utterance). Returns ``[("locale/intent", rows, frame)]``,
    frame columns :data:`EXPORT_COLUMNS`. Streams the training set keeping O(n·k) rows."""
    counts = manifest.get("rows_by_locale_intent", {})
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n_intents]
    wanted = {key for key, _ in top}
    heaps: dict[str, list] = {key: [] for key in wanted}
    intents = sorted({key.split("/", 1)[1] for key in wanted})
    flt = pc.field("intent").isin(intents) if intents else None
    seq = 0   # last tie-break (file order), so rows never get compared
    for batch in iter_batches(Path(version_dir) / "training_set", EXPORT_COLUMNS, flt, batch_rows):
        for row in batch.to_pylist():
            key = f"{row['locale']}/{row['intent']}"
            if key in wanted:
                seq -= 1
                rank = (row["support_users"], row["confidence"], row["support_events"], _Desc(row["utterance"]), seq)
                item = (rank, row)
                (heapq.heappush if len(heaps[key]) < k else heapq.heappushpop)(heaps[key], item)
    result = []
    for key, n in top:
        rows = [r for _, r in sorted(heaps[key], key=lambda it: it[0], reverse=True)]
        result.append((key, int(n), pd.DataFrame(rows, columns=EXPORT_COLUMNS)))
    return result


class _Desc(str):
    """A string that sorts in reverse, so ties rank by utterance ascending in a max-order."""

    def __lt__(self, other):
        return str.__gt__(self, other)

    def __gt__(self, other):
        return str.__lt__(self, other)
