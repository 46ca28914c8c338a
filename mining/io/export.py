"""Export: privacy gates, slot projection, versioned training set, atomic publish.

Layout under OUT::

    versions/<dataset_version>/training_set/locale=<L>/part-00000.parquet
    versions/<dataset_version>/massive/<L>.jsonl
    versions/<dataset_version>/rewrites/locale=<L>/part-00000.parquet   (mining.io.rewrites)
    versions/<dataset_version>/changelog.jsonl  (labels added/changed/retired: mining.io.changelog)
    versions/<dataset_version>/manifest.json    (checksums of every data file above)
    versions/<dataset_version>/report.html      (mining.report.run_report: funnel, locales, plots, samples)
    latest -> versions/<dataset_version>        (swapped atomically with os.replace)
    training_set -> latest/training_set          massive -> latest/massive
    rewrites -> latest/rewrites
    manifest.json -> latest/manifest.json        report.html -> latest/report.html

Readers always see one complete version: the new one is fully written before ``latest``
flips, and a failed export leaves ``latest`` on the previous version.

:func:`write_massive_jsonl` writes the same rows as JSON Lines in the shape of Amazon's
MASSIVE dataset (FitzGerald et al., 2022: ``id``, ``locale``, ``partition``, ``utt``,
``annot_utt``, ``intent``), one ``<locale>.jsonl`` per locale, loadable with Hugging Face
``datasets.load_dataset("json", ...)``; :mod:`mining.tools.merge` merges such files into an
existing (human-annotated) training set.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from mining.privacy import pii as privacy

from mining.io import schemas
from mining.core.slots import DROP_REASONS, project_slots
from mining.errors import ConfigError

log = logging.getLogger(__name__)


def drop_reason(text_users: int, min_users: int, dp: bool = False, dp_selected: bool = True) -> str | None:
    """The export gate of one labeled text: ``below_min_users`` (k-anonymity: fewer than
    ``min_users`` distinct users said it), else None (exported). With ``dp``
    (``privacy.dp`` on) ``text_users`` is the text's DP noisy count (``dp_users``) and a text
    the DP release did not select is ``dp_not_selected``: the gate then only post-processes
    the DP output, where the exact count would add a data-dependent release (a text with
    exactly ``min_users`` users is released or not on one user's data, beyond δ). The one
    copy of the rule: :func:`finalize_labels` applies it, the changelog explains a retired
    label with it."""
    if dp and not dp_selected:
        return "dp_not_selected"
    if text_users < min_users:
        return "below_min_users"
    return None


def exported_text(utterance: str, slots, locale: str) -> tuple[str, list[dict[str, str]], str, dict[str, int]]:
    """A label's text as the export writes it: (``utterance`` scrubbed with
    :func:`mining.privacy.pii.scrub_pii`, ``slots`` projected onto the scrubbed words, its
    ``annot_utt``, dropped slots by reason: :func:`mining.core.slots.project_slots`). The
    slots follow the scrubbed words, so annot_utt and every slot value are spans of the
    exported utterance: scrubbing them apart could split "[date : 7 12]" into an unparsable
    "[date : <phone>" or leave in annot_utt digits the utterance lost."""
    utt, _ = privacy.scrub_pii(utterance, locale)
    out_slots, annot, dropped = project_slots(utt, slots, locale)
    return utt, out_slots, annot, dropped


def finalize_labels(labels: pd.DataFrame, min_users: int, dataset_version: str, dp: bool = False,
                    cluster_key: bytes | None = None) -> pd.DataFrame:
    """Apply the k-anonymity gate, slot projection and PII scrubbing to labeled rows.

    ``cluster_key``: :func:`mining.privacy.pii.derive_key` ``(key, "cluster_id")``; the exported
    ``cluster_id`` is then :func:`mining.privacy.pii.opaque_cluster_id` (None: as in ``labels``).

    ``dp`` (``privacy.dp.enabled``): ``labels`` also has ``dp_users``, the DP noisy user count
    of the text where :func:`mining.privacy.dp.select_texts` selected it, else null. Rows with a null
    ``dp_users`` get ``drop_reason`` ``dp_not_selected``; the others face the k-anonymity gate on
    ``dp_users`` (:func:`drop_reason`) and export it as both ``support_users`` and ``support_events``.

    Returns the rows with training_set columns plus ``text_norm`` (the label's key, from
    ``labels``, null when absent: it joins the rewrite table, :mod:`mining.io.rewrites`),
    ``drop_reason`` (null = exported; ``below_min_users``), per-reason counts of dropped slots ``dropped_<reason>`` for the
    reasons of :data:`mining.core.slots.DROP_REASONS`, and PII counters ``pii_<kind>`` (int)."""
    rows = []
    for rec in labels.to_dict("records"):
        # scrubbed at ingest already (mining.spark.sessions); again here as a second line of
        # defence. pii_<kind> counts the placeholders the exported text carries
        utt, slots, annot, dropped = exported_text(rec["utterance"], rec["slots"], rec["locale"])
        pii = privacy.placeholder_counts(utt)
        rows.append({
            "utterance": utt, "locale": rec["locale"], "intent": rec["intent"], "slots": slots,
            "annot_utt": annot, "confidence": float(rec["confidence"]),
            **_support(rec, dp),
            "evidence": rec["evidence"],
            "cluster_id": (privacy.opaque_cluster_id(rec["cluster_id"], cluster_key) if cluster_key
                           else rec["cluster_id"]),
            "dataset_version": dataset_version, "evidence_version": dataset_version,
            "text_norm": rec.get("text_norm"),
            "drop_reason": drop_reason(rec["dp_users"] if dp else rec["text_users"], min_users, dp,
                                       dp_selected=not dp or not pd.isna(rec["dp_users"])),
            **{f"dropped_{r}": dropped.get(r, 0) for r in DROP_REASONS},
            **{f"pii_{k}": pii.get(k, 0) for k in privacy.PII_KINDS},
        })
    return pd.DataFrame(rows, columns=FINAL_COLUMNS)


def _support(rec: dict, dp: bool) -> dict:
    """``support_users``/``support_events`` of a row: exact, or with ``dp`` the noisy
    ``dp_users`` for both (one contribution per (user, text); :mod:`mining.privacy.dp`)."""
    if dp and not pd.isna(rec["dp_users"]):
        return {"support_users": int(rec["dp_users"]), "support_events": int(rec["dp_users"])}
    return {"support_users": int(rec["support_users"]), "support_events": int(rec["support_events"])}


def final_schema():
    """Spark schema of :func:`finalize_labels` output: training_set + bookkeeping columns."""
    from pyspark.sql import types as T

    from mining.io import schemas
    extra = [T.StructField("text_norm", T.StringType()), T.StructField("drop_reason", T.StringType())]
    extra += [T.StructField(f"dropped_{r}", T.LongType()) for r in DROP_REASONS]
    extra += [T.StructField(f"pii_{k}", T.LongType()) for k in privacy.PII_KINDS]
    return T.StructType(list(schemas.spark_schema("training_set", all_nullable=True).fields) + extra)


FINAL_COLUMNS = ["utterance", "locale", "intent", "slots", "annot_utt", "confidence", "support_users",
                 "support_events", "evidence", "cluster_id", "dataset_version", "evidence_version", "text_norm",
                 "drop_reason",
                 *[f"dropped_{r}" for r in DROP_REASONS], *[f"pii_{k}" for k in privacy.PII_KINDS]]


def dataset_version(end_date: str, fingerprint: str) -> str:
    """``v<YYYYMMDD>-<10 hex>``: last input date + sha256 of the run fingerprint (config,
    input partitions, code version). Same inputs and config → same version."""
    digest = hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:10]
    return f"v{end_date.replace('-', '')}-{digest}"


def write_training_set(table: pa.Table, folder: Path) -> None:
    """Write ``locale=<L>/part-00000.parquet`` per locale with pyarrow, rows in table order.

    Not Spark's writer: measured here, parquet-mr writes each column chunk's encoding list
    in varying order, so identical rows gave different bytes run to run. The training set
    holds one row per exported text (thousands to low millions), so it is collected to the
    driver and written byte-stably."""
    write_by_locale(table, folder, "training_set")


def write_by_locale(table: pa.Table, folder: Path, contract: str) -> None:
    """Write ``table`` as ``folder/locale=<L>/part-00000.parquet`` (zstd) per locale, rows in
    table order, cast to contract ``contract`` (:mod:`mining.io.schemas`) less ``locale``,
    which the folder name carries. Creates ``folder`` even for an empty table."""
    schema = pa.schema([f for f in schemas.arrow_schema(contract) if f.name != "locale"])
    locales = table.column("locale").to_pylist()
    for locale in sorted(set(locales)):
        rows = table.filter(pa.compute.equal(table.column("locale"), locale)).drop_columns(["locale"])
        target = folder / f"locale={locale}"
        target.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows.cast(schema), target / "part-00000.parquet", compression="zstd")
    folder.mkdir(parents=True, exist_ok=True)


def read_training_set(version_dir: Path, locale: str | None = None, intent: str | None = None,
                      columns=None) -> pa.Table:
    """``columns`` (default: all of the contract) of a published version's ``training_set/``
    (hive ``locale=`` folders, as :func:`write_training_set` writes it), optionally one
    locale and/or intent. An export with no rows (no files) gives an empty table. Read by
    ``mining inspect``, ``mining diff``, the changelog and label retention. Read against the
    current contract: a column added since the version was written (``evidence_version``)
    reads as null."""
    contract = schemas.arrow_schema("training_set")
    columns = columns or [f.name for f in contract]
    part = ds.partitioning(pa.schema([("locale", pa.string())]), flavor="hive")
    dataset = ds.dataset(Path(version_dir) / "training_set", format="parquet", partitioning=part,
                         schema=pa.schema([f.with_nullable(True) for f in contract]))
    if not dataset.files:
        return schemas.arrow_schema("training_set").empty_table().select(list(columns))
    expr = None
    for col, value in (("locale", locale), ("intent", intent)):
        if value is not None:
            cond = ds.field(col) == value
            expr = cond if expr is None else expr & cond
    return dataset.to_table(columns=list(columns), filter=expr)


def checksums(folder: Path) -> dict[str, str]:
    """sha256 hex of every data file (``*.parquet``, ``*.jsonl``) under ``folder``, keyed by
    relative path, sorted by path."""
    files = [p for pattern in ("*.parquet", "*.jsonl") for p in folder.rglob(pattern) if p.is_file()]
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(files, key=lambda p: str(p.relative_to(folder)))}


#: Fields of a MASSIVE record that this export fills, in the order written (MASSIVE also
#: has ``scenario``, ``worker_id``, ``slot_method`` and ``judgments``, which mined labels
#: do not have).
MASSIVE_FIELDS = ("id", "locale", "partition", "utt", "annot_utt", "intent")
#: Extra fields written after :data:`MASSIVE_FIELDS`: provenance of the weak label.
MINED_EXTRA_FIELDS = ("label_source", "confidence", "support_users", "support_events", "evidence",
                      "dataset_version")
_EXPORT_INPUT = ("utterance", "locale", "intent", "annot_utt", "confidence", "support_users",
                 "support_events", "evidence", "dataset_version")


def massive_id(locale: str, utt: str) -> str:
    """Stable record id: first 16 hex digits of sha256(``locale + "\\t" + utt``) (UTF-8).

    Unique as long as (locale, utterance) is."""
    return hashlib.sha256(f"{locale}\t{utt}".encode("utf-8")).hexdigest()[:16]


def split_partition(locale: str, utt: str, dev_share: float, seed: int) -> str:
    """``"dev"`` when int(sha256(``f"{seed}:{locale}:{utt}"``)[:8], 16) / 2**32 < ``dev_share``,
    else ``"train"``: a deterministic hash split, so a text stays in its partition across
    dataset versions (no train/dev leakage between versions with the same seed). Known gap:
    the hash is of the exported spelling, which can change for one label key between
    versions ("Play jazz" → "play jazz"), and then so can its partition; hashing the key
    instead would move labels already published once, at the upgrade."""
    digest = hashlib.sha256(f"{seed}:{locale}:{utt}".encode("utf-8")).hexdigest()
    return "dev" if int(digest[:8], 16) / 2**32 < dev_share else "train"


def _json_value(value):
    """A JSON-ready copy of ``value``: numpy scalars/arrays → Python, NaN/NA → None."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if hasattr(value, "tolist"):                 # numpy scalar or array
        return _json_value(value.tolist())
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def write_jsonl(path: Path, records: Iterable[dict]) -> int:
    """Write ``records`` to ``path`` as JSON Lines: UTF-8, non-ASCII unescaped
    (``ensure_ascii=False``), keys in each dict's order, one object per line, ``\\n`` after
    every line. NaN and missing values are written as ``null``. Returns the line count.

    Same records → same bytes. Raises ``ValueError`` for an infinite float and ``TypeError``
    for a value JSON cannot hold."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for rec in records:
            fh.write(json.dumps({k: _json_value(v) for k, v in rec.items()},
                                ensure_ascii=False, allow_nan=False) + "\n")
            n += 1
    return n


def locale_names_a_file(locale) -> bool:
    """Whether ``locale`` can name ``<locale>.jsonl``: a non-empty string, not hidden (no
    leading ``.``) and without a path separator."""
    return isinstance(locale, str) and bool(locale) and not locale.startswith(".") \
        and "/" not in locale and os.sep not in locale


def write_locale_jsonl(records: Iterable[dict], folder: Path) -> dict[str, int]:
    """Write ``records`` (dicts with a ``locale`` key) as ``folder/<locale>.jsonl``, one file
    per locale, rows in input order (:func:`write_jsonl`). Returns {locale: rows}, sorted.

    Raises ``ValueError`` for an empty locale or one that is not a plain file name."""
    by_locale: dict[str, list[dict]] = {}
    for rec in records:
        by_locale.setdefault(rec["locale"], []).append(rec)
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for locale in sorted(by_locale):
        if not locale_names_a_file(locale):
            raise ValueError(f"locale {locale!r} cannot name a file")
        counts[locale] = write_jsonl(folder / f"{locale}.jsonl", by_locale[locale])
    return counts


def massive_records(table: pa.Table | pd.DataFrame, dev_share: float, seed: int) -> list[dict]:
    """Training-set rows (the ``training_set`` contract columns) as MASSIVE-shaped dicts in
    input order: :data:`MASSIVE_FIELDS` then :data:`MINED_EXTRA_FIELDS` (``label_source`` is
    ``"mined"``). ``id`` from :func:`massive_id`, ``partition`` from :func:`split_partition`.

    Raises ``ValueError`` when ``dev_share`` is outside [0, 1] or a column is missing."""
    if not 0.0 <= dev_share <= 1.0:
        raise ConfigError(f"dev_share must be in [0, 1], got {dev_share}")
    columns = table.column_names if isinstance(table, pa.Table) else list(table.columns)
    missing = [c for c in _EXPORT_INPUT if c not in columns]
    if missing:
        raise ValueError(f"training set rows lack columns {missing}")
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table[list(_EXPORT_INPUT)], preserve_index=False)
    out = []
    for row in table.select(list(_EXPORT_INPUT)).to_pylist():
        locale, utt = row["locale"], row["utterance"]
        out.append({
            "id": massive_id(locale, utt), "locale": locale,
            "partition": split_partition(locale, utt, dev_share, seed), "utt": utt,
            "annot_utt": row["annot_utt"], "intent": row["intent"], "label_source": "mined",
            **{k: row[k] for k in MINED_EXTRA_FIELDS if k != "label_source"},
        })
    return out


def write_massive_jsonl(table: pa.Table | pd.DataFrame, folder: Path, dev_share: float,
                        seed: int) -> dict:
    """Write the training set as MASSIVE-style JSON Lines ``folder/<locale>.jsonl``.

    One JSON object per line (:func:`massive_records`: ``id``, ``locale``, ``partition``,
    ``utt``, ``annot_utt``, ``intent``, then ``label_source``, ``confidence``,
    ``support_users``, ``support_events``, ``evidence``, ``dataset_version``), rows in input
    order, UTF-8 with non-ASCII unescaped. ``dev_share`` in [0, 1]: expected share of rows
    with ``partition == "dev"`` (deterministic hash split, :func:`split_partition`).
    Same input → same bytes. Writes in place: stage the folder to publish atomically.

    Returns ``{locale: {"train": rows, "dev": rows}}``, locales sorted."""
    records = massive_records(table, dev_share, seed)
    write_locale_jsonl(records, Path(folder))
    counts: dict[str, dict[str, int]] = {}
    for rec in records:
        per = counts.setdefault(rec["locale"], {"train": 0, "dev": 0})
        per[rec["partition"]] += 1
    return {locale: counts[locale] for locale in sorted(counts)}


def publish(out: Path, version_dir: Path) -> bool:
    """Point ``OUT/latest`` at ``version_dir`` atomically (:func:`mining.io.storage.replace_symlink`),
    after creating the stable links (which resolve once ``latest`` exists). ``version_dir``
    must be committed (complete and fsynced) before: readers only follow links to it.

    Returns False, leaving ``latest`` as it is, when ``latest`` points at a version whose
    input ends after ``version_dir``'s (a backfill of an earlier night into the same ``OUT``),
    or when ``version_dir`` is restricted to some locales (its manifest's ``locales``) and
    ``latest`` holds labels of another locale (an ad hoc ``--locale`` run into a shared
    ``OUT``: readers of ``latest`` would lose those locales, and the next full run, which
    follows ``latest``, would carry none of their labels forward). Either version stays
    readable under ``versions/``. True when ``latest`` now points at ``version_dir``."""
    from mining.io import changelog, storage

    def manifest(folder: Path) -> dict:
        path = folder / "manifest.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    current = out / "latest"
    if current.exists():
        now, new = manifest(current), manifest(version_dir)
        if changelog.manifest_end_date(now) > changelog.manifest_end_date(new):
            log.warning("%s ends on %s, after %s (%s): latest stays where it is", current.resolve().name,
                        changelog.manifest_end_date(now), version_dir.name, changelog.manifest_end_date(new))
            return False
        held = {key.split("/", 1)[0] for key in now.get("rows_by_locale_intent", {})}
        lost = sorted(held - set(new.get("locales") or held))
        if lost:
            log.warning("%s holds only locales %s; latest (%s) also holds %s: latest stays where it is",
                        version_dir.name, new["locales"], current.resolve().name, lost)
            return False
    for name in ("training_set", "massive", "rewrites", "manifest.json", "report.html"):
        link = out / name
        if not link.is_symlink():
            if link.exists():   # a retry cannot fix it: exit 2, not 1
                raise ConfigError(f"{link} exists and is not a link to latest/{name}: move it away "
                                  f"(OUT holds what publish owns)")
            os.symlink(f"latest/{name}", link)
    storage.replace_symlink(out / "latest", os.path.relpath(version_dir, out))
    return True
