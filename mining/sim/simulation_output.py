"""Log simulator output: writing logs and gold files, staging and committing folders.

Parquet with fixed options and JSON Lines gzip with fixed headers (same table → same bytes),
the logs of a chunk split into ``dt=YYYY-MM-DD`` partitions, the gold ``splits.parquet`` and
``simulation.json``, and the safe-replace protocol of the output folders: check that logs and
gold do not contain each other, write into a hidden staging folder beside the target, then
mark it ``_SUCCESS`` and move it into place. Also used by :mod:`mining.sim.locales`.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mining.sim.corpora import attribution
from mining.sim.simulation_config import SimulationConfig
from mining.sim.simulation_tables import epoch_us
from mining.errors import ConfigError

SPLITS_SCHEMA = pa.schema([pa.field(name, pa.string(), nullable=False)
                           for name in ("utt_id", "text", "intent", "annot_utt", "split")])
_PARQUET_OPTIONS = dict(compression="zstd", compression_level=3, use_dictionary=True,
                        write_statistics=True, version="2.6", data_page_version="1.0")


def write_parquet(table: pa.Table, path: Path) -> None:
    """Parquet with fixed options; no timestamps in the metadata, so same table → same bytes."""
    pq.write_table(table, path, **_PARQUET_OPTIONS)


def _write_jsonl_gz(table: pa.Table, path: Path, batch_rows: int = 10_000) -> None:
    """JSON Lines, gzip level 6 with mtime 0 and no file name (reproducible bytes); ``ts`` as an
    ISO-8601 UTC string with microseconds, ``2026-11-01T08:30:00.250000Z``."""
    ts = pc.strftime(table["ts"], format="%Y-%m-%dT%H:%M:%SZ")
    table = table.set_column(table.schema.get_field_index("ts"), "ts", ts)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                 compresslevel=6, mtime=0) as out:
        for batch in table.to_batches(max_chunksize=batch_rows):
            lines = (json.dumps(r, ensure_ascii=False, separators=(",", ":"))
                     for r in batch.to_pylist())
            out.write(("\n".join(lines) + "\n").encode("utf-8"))


def write_logs(logs: pa.Table, cfg: SimulationConfig, logs_dir: Path,
               chunk_index: int) -> Counter:
    """Write a ts-sorted chunk as one file per day, ``dt=YYYY-MM-DD/part-<chunk:05d>.*``.
    Returns turns per dt string."""
    day = (pc.cast(logs["ts"], pa.int64()).to_numpy() - epoch_us(cfg.start_date)) \
        // 86_400_000_000
    per_dt = Counter()
    for k in np.unique(day):
        lo, hi = np.searchsorted(day, [k, k + 1])
        dt_str = (cfg.start_date + dt.timedelta(days=int(k))).isoformat()
        folder = logs_dir / f"dt={dt_str}"
        folder.mkdir(exist_ok=True)
        part = logs.slice(lo, hi - lo)
        if cfg.out_format == "parquet":
            write_parquet(part, folder / f"part-{chunk_index:05d}.parquet")
        else:
            _write_jsonl_gz(part, folder / f"part-{chunk_index:05d}.jsonl.gz")
        per_dt[dt_str] += int(hi - lo)
    return per_dt


def check_output_dirs(logs_dir: Path, gold_dir: Path, overwrite: bool) -> None:
    """``ConfigError`` when one folder is inside the other (the miner must never see the
    gold); ``FileExistsError`` when one is a non-empty folder or a file and not
    ``overwrite``."""
    if logs_dir == gold_dir or logs_dir in gold_dir.parents or gold_dir in logs_dir.parents:
        raise ConfigError(f"logs_dir {logs_dir} and gold_dir {gold_dir} must not contain "
                         "each other: the miner must never read the gold")
    for path in (logs_dir, gold_dir):
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{path} exists and is not a folder")
        if path.exists() and any(path.iterdir()) and not overwrite:
            raise FileExistsError(f"{path} is not empty; pass overwrite=True to replace it")


def staging_dir(path: Path) -> Path:
    """An empty hidden staging folder beside ``path``; a leftover of a failed run is removed."""
    staging = path.with_name(f".{path.name}.staging")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def commit_staging(staging: Path, path: Path) -> None:
    """Mark ``staging`` complete (``_SUCCESS``) and move it to ``path``, replacing it."""
    (staging / "_SUCCESS").write_bytes(b"")
    if path.exists():
        shutil.rmtree(path)
    staging.rename(path)


def write_gold_files(cfg: SimulationConfig, corpus: pd.DataFrame, summary: dict[str, Any],
                     gold_dir: Path) -> None:
    """``splits.parquet`` (corpus order) and ``simulation.json`` (sorted keys)."""
    splits = pa.Table.from_pandas(corpus[list(SPLITS_SCHEMA.names)], schema=SPLITS_SCHEMA,
                                  preserve_index=False)
    write_parquet(splits.replace_schema_metadata(None), gold_dir / "splits.parquet")
    document = {"config": cfg.to_dict(), "counts": summary,
                "logs_schema": "interaction_turn.v1",
                "attribution": attribution(cfg.corpus)}
    (gold_dir / "simulation.json").write_text(json.dumps(document, indent=2, sort_keys=True)
                                              + "\n", encoding="utf-8")
