"""Data-quality gate of the export: checks a new dataset version before it is published.

``export_dataset`` collects the training set, runs :func:`check_export` and only then
writes and publishes the version; a failed check raises :class:`QualityGateFailed` with one
line naming every failed check, the staging folder is removed and ``OUT/latest`` stays on
the previous version. The checks (all recorded in the manifest's ``quality``):

- ``schema``: the columns are the ``training_set`` contract's, in order, and the table
  casts to its Arrow schema (:mod:`mining.io.schemas`);
- ``required_values``: no null ``utterance``/``locale``/``intent``/``evidence``, none
  empty or blank; ``evidence`` one of the contract's symbols; ``confidence`` in [0, 1];
  ``support_users`` and ``support_events`` ≥ 1; no two rows with one key (locale,
  :func:`mining.core.text.normalize` of the utterance), the key ``labels/``, retention and
  ``mining merge`` use;
- ``reject_share``: share of input rows rejected at validation ≤
  ``validation.max_reject_share`` (ingest already fails past it; recorded here too);
- ``min_rows``: at least ``quality.min_rows`` exported rows;
- ``row_change``: against the baseline version (``quality.baseline``: a manifest path, or
  "" for the version this export follows, :func:`baseline_manifest`), the relative change of
  the row count ``|new − old| / old`` ≤ ``quality.max_row_change``. Skipped (recorded as
  such) without a baseline or when it has fewer than ``quality.min_baseline_rows`` rows.
  A sudden drop or surge of mined labels between nightly versions usually means an
  upstream change (a logging bug, a new NLU build, a config change), which someone should
  look at before training picks the new version up;
- ``fresh_row_change``: the same test on this run's own labels (``fresh_rows``: the rows
  before label retention carried the previous version's forward) against the baseline's
  own (its manifest's ``retention.fresh``, else its ``rows``). Under retention a night whose
  mining collapsed still exports the previous labels, so ``row_change`` alone would not see
  the collapse. Skipped like ``row_change``, and when nothing was retained (then it is
  ``row_change``).
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from mining.errors import QualityGateFailed
from mining.core.text import repeated_keys
from mining.io import schemas


def _check(name: str, ok: bool, value, limit, detail: str = "") -> dict:
    return {"name": name, "ok": bool(ok), "value": value, "limit": limit, "detail": detail}


def baseline_manifest(baseline: str, previous_dir: str | Path | None = None,
                      locales: tuple[str, ...] = ()) -> dict | None:
    """The manifest to compare against: ``baseline`` (a manifest path) or, when "", the one
    of ``previous_dir``, the version this export follows
    (:func:`mining.io.changelog.previous_version`: a rerun of a night compares with what that
    night followed, never with itself, so it writes the same bytes; a backfill with what it
    followed, not a later night); None when there is none. ``locales`` (a ``--locale``
    run): ``rows`` counts those locales' rows only (``rows_by_locale_intent``), and
    ``only_locales`` names them (the baseline's ``retention.fresh`` is not kept per locale).
    ``FileNotFoundError`` when an explicit ``baseline`` is missing."""
    if baseline:
        path = Path(baseline)
        if not path.exists():
            raise FileNotFoundError(f"quality.baseline {baseline} does not exist")
    elif previous_dir is None or not (Path(previous_dir) / "manifest.json").exists():
        return None
    else:
        path = Path(previous_dir) / "manifest.json"
    manifest = json.loads(path.read_text())
    if locales:
        by = manifest.get("rows_by_locale_intent") or {}
        rows = sum(int(n) for k, n in by.items() if k.split("/", 1)[0] in locales)
        manifest = {**manifest, "rows": rows, "only_locales": list(locales)}
    return manifest



def _change_check(name: str, rows: int, old: int | None, baseline: dict | None, qcfg, what: str) -> dict:
    if old is None or old < qcfg.min_baseline_rows:
        return _check(name, True, None, qcfg.max_row_change,
                      "skipped: no baseline version" if old is None else
                      f"skipped: baseline has {old} {what} < quality.min_baseline_rows")
    change = abs(rows - old) / old
    return _check(name, change <= qcfg.max_row_change, round(change, 6), qcfg.max_row_change,
                  f"{old} {what} in baseline {baseline.get('dataset_version')}, {rows} now")


#: what a failed cast raises (ArrowTypeError, a renamed struct field, is a TypeError)
_CAST_ERRORS = (pa.ArrowException, ValueError, TypeError)


def check_export(table: pa.Table, rejects: dict, baseline: dict | None, qcfg, max_reject_share: float,
                 fresh_rows: int | None = None) -> list[dict]:
    """Run every check on the collected training set ``table`` (contract columns).

    ``rejects``: the ``rejects`` stage stats (``input``, ``rejected``); ``baseline``: a
    previous version's manifest or None; ``qcfg``: :class:`mining.config.QualityConfig`;
    ``fresh_rows``: rows of ``table`` from this run's own labels (None: all of them, no
    label retention).
    The ``schema`` check: the contract's column names, in order, and a table that casts to
    its types (the export then writes ``table`` cast so); the value checks read the cast values.
    Returns the checks ``[{"name", "ok", "value", "limit", "detail"}]``; raises
    :class:`QualityGateFailed` (one line: the failed checks) when any fails."""
    contract = schemas.arrow_schema("training_set")
    checks = []
    names_ok = table.column_names == contract.names
    # the value checks read the contract's types (a string "0.9" is no number); nulls in a
    # required column fail the strict cast but are counted by the value checks, so those then
    # run on the types with every column nullable
    typed, why = None, ""
    if names_ok:
        try:
            typed = table.cast(contract)
        except _CAST_ERRORS as e:
            why = (str(e).splitlines() or [type(e).__name__])[0]
            try:
                typed = table.cast(pa.schema([f.with_nullable(True) for f in contract]))
            except _CAST_ERRORS:
                pass
    cast_ok = names_ok and not why
    table = table if typed is None else typed
    checks.append(_check("schema", cast_ok, table.column_names if not names_ok else "training_set.v1",
                         "training_set.v1", why))
    bad = {}
    if typed is not None:
        for col in ("utterance", "locale", "intent", "evidence"):
            bad[f"null_{col}"] = int(table.column(col).null_count)
            blank = pc.equal(pc.utf8_trim_whitespace(table.column(col)), "")
            bad[f"empty_{col}"] = int(pc.sum(blank).as_py() or 0)
        symbols = pa.array(schemas.enum_symbols("training_set", "evidence"))
        bad["unknown_evidence"] = int(pc.sum(pc.invert(pc.is_in(table.column("evidence"), value_set=symbols))
                                             ).as_py() or 0) - int(table.column("evidence").null_count)
        bad["support_events_below_1"] = int(pc.sum(pc.less(table.column("support_events"), 1)).as_py() or 0)
        bad["duplicate_keys"] = sum(repeated_keys(table.column("locale").to_pylist(),
                                                  table.column("utterance").to_pylist()))
        conf = table.column("confidence")
        outside = pc.or_(pc.or_(pc.less(conf, 0.0), pc.greater(conf, 1.0)), pc.is_nan(conf))  # NaN: neither
        bad["confidence_outside_0_1"] = int(pc.sum(outside).as_py() or 0) + int(conf.null_count)
        bad["support_users_below_1"] = int(pc.sum(pc.less(table.column("support_users"), 1)).as_py() or 0)
    checks.append(_check("required_values", typed is not None and not any(bad.values()),
                         {k: v for k, v in bad.items() if v} if typed is not None else "not evaluated: schema", 0))
    n_in = int(rejects.get("input", 0) or 0)
    share = int(rejects.get("rejected", 0) or 0) / n_in if n_in else 0.0
    checks.append(_check("reject_share", share <= max_reject_share, round(share, 6), max_reject_share))
    rows = table.num_rows
    checks.append(_check("min_rows", rows >= qcfg.min_rows, rows, qcfg.min_rows))
    old = int(baseline.get("rows", 0)) if baseline else None
    checks.append(_change_check("row_change", rows, old, baseline, qcfg, "rows"))
    if fresh_rows is None or fresh_rows == rows:
        checks.append(_check("fresh_row_change", True, None, qcfg.max_row_change,
                             "skipped: no retained rows (the same as row_change)"))
    elif baseline is not None and baseline.get("only_locales"):
        checks.append(_check("fresh_row_change", True, None, qcfg.max_row_change,
                             "skipped: a --locale run (the baseline's fresh rows are not kept per locale)"))
    else:
        old_fresh = int((baseline.get("retention") or {}).get("fresh", baseline.get("rows", 0))) if baseline else None
        checks.append(_change_check("fresh_row_change", fresh_rows, old_fresh, baseline, qcfg, "fresh rows"))
    failed = [c for c in checks if not c["ok"]]
    if failed:
        raise QualityGateFailed("data-quality gate failed, nothing published: " + "; ".join(
            f"{c['name']} = {json.dumps(c['value'], default=str)} (limit {c['limit']}"
            + (f"; {c['detail']}" if c["detail"] else "") + ")" for c in failed))
    return checks
