"""Export: privacy gates, slot projection, versioned training set, atomic publish.

Layout under OUT::

    versions/<dataset_version>/training_set/locale=<L>/part-00000.parquet
    versions/<dataset_version>/manifest.json
    latest -> versions/<dataset_version>        (swapped atomically with os.replace)
    training_set -> latest/training_set          manifest.json -> latest/manifest.json

Readers always see one complete version: the new one is fully written before ``latest``
flips, and a failed export leaves ``latest`` on the previous version.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.parquet as pq

from mining import privacy, schemas
from mining.slots import project_slots


def finalize_labels(labels: pd.DataFrame, min_users: int, dataset_version: str) -> pd.DataFrame:
    """Apply the k-anonymity gate, slot projection and PII scrubbing to labeled rows.

    Returns the rows with training_set columns plus ``drop_reason`` (null = exported;
    ``below_min_users``) and counters ``slots_dropped`` and ``pii_<kind>`` (int)."""
    rows = []
    for rec in labels.to_dict("records"):
        slots, annot, n_dropped = project_slots(rec["utterance"], rec["slots"])
        utt, pii = privacy.scrub_pii(rec["utterance"])
        annot, _ = privacy.scrub_pii(annot)
        slots = [{"name": s["name"], "value": privacy.scrub_pii(s["value"])[0]} for s in slots]
        rows.append({
            "utterance": utt, "locale": rec["locale"], "intent": rec["intent"], "slots": slots,
            "annot_utt": annot, "confidence": float(rec["confidence"]),
            "support_users": int(rec["support_users"]), "support_events": int(rec["support_events"]),
            "evidence": rec["evidence"], "cluster_id": rec["cluster_id"],
            "dataset_version": dataset_version,
            "drop_reason": None if rec["text_users"] >= min_users else "below_min_users",
            "slots_dropped": n_dropped, **{f"pii_{k}": pii.get(k, 0) for k in privacy.PII_KINDS},
        })
    return pd.DataFrame(rows, columns=FINAL_COLUMNS)


def final_schema():
    """Spark schema of :func:`finalize_labels` output: training_set + bookkeeping columns."""
    from pyspark.sql import types as T

    from mining import schemas

    extra = [T.StructField("drop_reason", T.StringType()), T.StructField("slots_dropped", T.LongType())]
    extra += [T.StructField(f"pii_{k}", T.LongType()) for k in privacy.PII_KINDS]
    return T.StructType(list(schemas.spark_schema("training_set", all_nullable=True).fields) + extra)


FINAL_COLUMNS = ["utterance", "locale", "intent", "slots", "annot_utt", "confidence", "support_users",
                 "support_events", "evidence", "cluster_id", "dataset_version", "drop_reason",
                 "slots_dropped", *[f"pii_{k}" for k in privacy.PII_KINDS]]


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
    schema = pa.schema([f for f in schemas.arrow_schema("training_set") if f.name != "locale"])
    locales = table.column("locale").to_pylist()
    for locale in sorted(set(locales)):
        rows = table.filter(pa.compute.equal(table.column("locale"), locale)).drop_columns(["locale"])
        target = folder / f"locale={locale}"
        target.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows.cast(schema), target / "part-00000.parquet", compression="zstd")
    folder.mkdir(parents=True, exist_ok=True)


def checksums(folder: Path) -> dict[str, str]:
    """sha256 hex of every data file under ``folder``, keyed by relative path, sorted."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.parquet"))}


def _swap_symlink(link: Path, target: str) -> None:
    tmp = link.with_name(f".{link.name}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def publish(out: Path, version_dir: Path) -> None:
    """Point ``OUT/latest`` at ``version_dir`` atomically; create the stable links."""
    _swap_symlink(out / "latest", os.path.relpath(version_dir, out))
    for name in ("training_set", "manifest.json"):
        link = out / name
        if not link.is_symlink():
            if link.exists():
                raise FileExistsError(f"{link} exists and is not a link to latest/{name}")
            os.symlink(f"latest/{name}", link)
