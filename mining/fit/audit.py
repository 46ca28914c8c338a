"""A new domain's own calibration: sample a run's labels for human review, refit from the review.

``mining audit sample`` draws N candidate labels of a run (``OUT/labels/`` rows with a
``candidate_intent``: decision ``labeled`` or ``low_confidence``, said by at least
``privacy.min_users`` users, the population :mod:`mining.fit.calibration` fits on) and writes
them as a CSV for a reviewer, who fills the empty ``correct`` column with 1/0 (yes/no,
true/false, y/n also read). ``mining fit-calibration --audit reviewed.csv`` refits the isotonic
maps of :func:`mining.core.calibration.fit_calibration` from the reviewed rows' ``raw_score``,
``evidence`` and ``correct``; config ``aggregation.calibration = PATH`` applies the result.

Sampling is stratified (Cochran, *Sampling Techniques*, 3rd ed., 1977, ch. 5): the population
sorted by raw score (ties by locale, text, intent, so input order does not matter) is cut into
``strata`` equal-count strata, and each stratum gives an equal share of the N rows, drawn
without replacement with ``numpy.random.default_rng(seed)``. Every raw-score range is then
covered in proportion to its labels, with less sampling variance than a simple random draw;
the isotonic map is monotone per evidence kind, so raw-score strata are confidence strata.
Same run, N, seed and strata → the same bytes.

Privacy (refused under ``privacy.dp``, see :func:`sample_run`): the ``text`` column is the utterance as the export writes it (scrubbed at ingest,
and again here with :func:`mining.privacy.pii.scrub_pii`, as :func:`mining.io.export.finalize_labels`
does), only texts that pass the export's k-anonymity gate are sampled, and no pseudonym,
``text_norm`` or slot value is written. A text that a spreadsheet would read as a formula
(leading ``=``, ``+``, ``-``, ``@``, tab or CR) gets a leading ``'`` (OWASP, "CSV Injection").
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mining.core.calibration import EVIDENCE_KINDS
from mining.errors import AuditError, ConfigError, PrivacyError

log = logging.getLogger(__name__)

#: Columns of the audit CSV, in order. ``correct`` is left empty for the reviewer.
AUDIT_COLUMNS = ["audit_id", "locale", "text", "candidate_intent", "evidence", "raw_score", "confidence",
                 "decision", "support_users", "text_users", "stratum", "dataset_version", "labels_digest",
                 "calibration_version", "correct"]
#: Columns ``mining fit-calibration --audit`` needs.
REVIEW_COLUMNS = ("raw_score", "evidence", "correct")
#: Spreadsheets save booleans in their own language (here German, French, Italian, Spanish) and
#: numbers with a decimal comma where ``;`` separates the cells.
TRUE_VALUES = frozenset({"1", "1.0", "1,0", "yes", "y", "true", "t", "wahr", "vrai", "vero", "verdadero"})
FALSE_VALUES = frozenset({"0", "0.0", "0,0", "no", "n", "false", "f", "falsch", "faux", "falso"})
#: Why a reviewed row was not used; every row of the file is counted under ``used`` or one of these.
SKIP_REASONS = ("not_reviewed", "unreadable_correct", "bad_raw_score", "unknown_evidence", "duplicate_audit_id",
                "duplicate_label")
#: What names one reviewed label across files: the same label of the same run reviewed twice
#: (two overlapping audits) is used once (``duplicate_label``).
LABEL_KEY = ("labels_digest", "locale", "text", "candidate_intent")
DEFAULT_STRATA = 10
#: Decisions of the candidates that reach the confidence gate: the population calibrated.
GATED_DECISIONS = ("labeled", "low_confidence")
#: Fewest usable reviewed rows a refit accepts: an isotonic map on fewer is mostly noise
#: (bench/AUDIT.md measures the curve from 25 rows up).
MIN_REVIEWED = 20
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def candidate_population(labels: pd.DataFrame, min_users: int, locales: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows of ``labels`` (``OUT/labels/``: :data:`mining.core.aggregation.LABEL_COLUMNS`) with a
    ``candidate_intent`` that reached the confidence gate (decision in :data:`GATED_DECISIONS`;
    a candidate the logs' check abstained on is not calibrated, so not audited), a finite
    ``raw_score`` in [0, 1], ``text_users >= min_users`` and, when ``locales`` is given, one
    of those locales; sorted by (raw_score, locale, text_norm, candidate_intent) with a
    fresh index.

    ``AuditError`` on missing columns or a raw score outside [0, 1] (a run of another code
    version, or a corrupt one: exit 3); ``ConfigError`` for ``min_users < 1``."""
    need = {"locale", "text_norm", "utterance", "candidate_intent", "candidate_evidence", "raw_score",
            "confidence", "decision", "support_users", "text_users"}
    missing = sorted(need - set(labels.columns))
    if missing:
        raise AuditError(f"labels lack columns {missing}: a run of another code version? rerun aggregate_labels")
    if min_users < 1:
        raise ConfigError(f"min_users must be >= 1, got {min_users}")
    pop = labels[labels["candidate_intent"].notna() & labels["decision"].isin(GATED_DECISIONS)
                 & (labels["text_users"] >= min_users)]
    if locales:
        pop = pop[pop["locale"].isin(locales)]
    raw = pop["raw_score"].astype(float)
    bad = ~np.isfinite(raw) | (raw < 0) | (raw > 1)
    if bad.any():   # aggregation sets raw_score for every candidate: a bad one is a corrupt run
        raise AuditError(f"{int(bad.sum())} candidate labels have no raw_score in [0, 1]: a corrupt labels/")
    return pop.sort_values(["raw_score", "locale", "text_norm", "candidate_intent"], kind="stable").reset_index(drop=True)


def stratified_sample(pop: pd.DataFrame, n: int, seed: int, strata: int = DEFAULT_STRATA) -> pd.DataFrame:
    """``min(n, len(pop))`` rows of ``pop`` (sorted as :func:`candidate_population` returns it),
    stratified: rank i of m goes to stratum ``floor(i * k / m)`` with ``k = min(strata, n, m)``
    (equal-count strata over the raw-score order); each stratum gets ``n // k`` rows and
    ``n % k`` strata chosen at random one more, drawn without replacement with
    ``numpy.random.default_rng(seed)``. Returns the rows with a ``stratum`` column (int, 1..k),
    in a seeded random order (the reviewer does not see them sorted by score).

    ``ValueError`` when ``n < 1`` or ``strata < 1``."""
    if n < 1 or strata < 1:
        raise ConfigError(f"n and strata must be >= 1, got n={n}, strata={strata}")
    m = len(pop)
    rng = np.random.default_rng(seed)
    k = max(1, min(strata, n, m))
    stratum = (np.arange(m) * k) // max(m, 1)
    if n >= m:
        picked = np.arange(m)
    else:
        sizes = np.bincount(stratum, minlength=k)
        quota = np.full(k, n // k)
        spare = np.flatnonzero(sizes > quota)          # always >= n % k strata (sizes differ by <= 1)
        quota[rng.choice(spare, size=n % k, replace=False)] += 1
        picked = np.concatenate([rng.choice(np.flatnonzero(stratum == s), size=quota[s], replace=False)
                                 for s in range(k)])
    out = pop.iloc[np.sort(picked)].assign(stratum=stratum[np.sort(picked)] + 1)
    return out.iloc[rng.permutation(len(out))].reset_index(drop=True)


def labels_digest(out: str | Path) -> str:
    """``labels-<12 hex>``: sha256 over the names and bytes of ``OUT/labels/*.parquet`` (sorted)."""
    h = hashlib.sha256()
    for part in sorted((Path(out) / "labels").glob("*.parquet")):
        h.update(part.name.encode() + b"\0" + part.read_bytes())
    return f"labels-{h.hexdigest()[:12]}"


def _manifest(out: str | Path) -> dict:
    path = Path(out) / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def dataset_version(out: str | Path) -> str:
    """The run's published dataset version (``OUT/manifest.json``) when it was exported from
    the ``labels/`` there now (the manifest's ``stages.labels`` equals ``labels/_stats.json``);
    "" when the run has none, or its labels are newer (export not run yet, or a failed gate)."""
    from mining.io import storage

    manifest = _manifest(out)
    if manifest.get("stages", {}).get("labels") != storage.read_stats(out, "labels"):
        return ""
    return manifest.get("dataset_version", "")


def run_privacy(out: str | Path) -> tuple[int, bool]:
    """(min_users, dp) a run's labels were aggregated or exported under: the largest
    ``privacy.min_users`` and whether any ``privacy.dp.enabled`` of ``labels/_stats.json``
    (``privacy``, written by aggregate_labels) and ``OUT/manifest.json`` (the last export's
    ``config`` and ``dp``); (1, False) where neither records them."""
    from mining.io import storage

    manifest = _manifest(out)
    recorded = storage.read_stats(out, "labels").get("privacy", {})
    exported = manifest.get("config", {}).get("privacy", {})
    min_users = max(int(recorded.get("min_users", 1)), int(exported.get("min_users", 1)))
    dp = bool(recorded.get("dp") or exported.get("dp", {}).get("enabled") or manifest.get("dp", {}).get("enabled"))
    return min_users, dp


def _safe_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def audit_frame(sample: pd.DataFrame, *, dataset_version: str, labels_digest: str,
                calibration_version: str) -> pd.DataFrame:
    """The CSV rows (:data:`AUDIT_COLUMNS`, strings) of a :func:`stratified_sample`: scrubbed
    text, scores to 6 decimals, ``confidence`` empty where the run kept none (``low_confidence``),
    ``correct`` empty."""
    from mining.privacy.pii import scrub_pii

    def num(x) -> str:
        return "" if pd.isna(x) else f"{float(x):.6f}"

    return pd.DataFrame({
        "audit_id": [str(i) for i in range(1, len(sample) + 1)],
        "locale": sample["locale"].astype(str),
        "text": [_safe_cell(scrub_pii(t, loc)[0]) for t, loc in zip(sample["utterance"], sample["locale"])],
        "candidate_intent": sample["candidate_intent"].astype(str),
        "evidence": sample["candidate_evidence"].astype(str),
        "raw_score": [num(x) for x in sample["raw_score"]],
        "confidence": [num(x) for x in sample["confidence"]],
        "decision": sample["decision"].astype(str),
        "support_users": sample["support_users"].astype(int).astype(str),
        "text_users": sample["text_users"].astype(int).astype(str),
        "stratum": sample["stratum"].astype(str),
        "dataset_version": dataset_version, "labels_digest": labels_digest,
        "calibration_version": calibration_version, "correct": "",
    }, columns=AUDIT_COLUMNS)


def sample_run(run: str | Path, n: int, out: str | Path, *, seed: int = 0, strata: int = DEFAULT_STRATA,
               min_users: int, locales: tuple[str, ...] = (), force: bool = False, dp: bool = False) -> dict:
    """Write the audit CSV of ``n`` candidate labels of the run ``run`` to ``out`` (UTF-8,
    atomic; :func:`candidate_population` → :func:`stratified_sample` → :func:`audit_frame`).

    ``min_users``: the k-anonymity gate of the configuration (or ``--min-users``); a run
    mined or exported under a larger one (:func:`run_privacy`) uses the larger, so an audit
    never shows a text that run's export would not publish.

    ``dp``: ``privacy.dp.enabled`` of the configuration; with it, or when the run was
    aggregated or exported under DP (:func:`run_privacy`), the audit is refused: the DP
    release publishes only the texts it selects, and an audit of k-anonymous texts would
    show others.

    Returns counts (population, written, per evidence, per stratum).
    :raises PrivacyError: ``dp`` or the run's export under DP (exit 4).
    :raises FileNotFoundError: ``run`` has no committed ``labels/`` (exit 3).
    :raises ConfigError: ``out`` exists and ``force`` is false (a filled review is never
        overwritten by accident; exit 2).
    :raises AuditError: no candidate label, or fewer than ``n``: then all of them are written
        first (exit 3)."""
    from mining.eval.evaluation import _read
    from mining.io import storage

    out = Path(out)
    run_min_users, run_dp = run_privacy(run)
    if run_min_users > min_users:
        log.warning("audit sample: min_users %d raised to %d, the run's own privacy.min_users", min_users, run_min_users)
        min_users = run_min_users
    if dp or run_dp:
        raise PrivacyError("privacy.dp is on: the export publishes only the texts its DP release selects, "
                           "so an audit sample would show others; audit a run mined without privacy.dp")
    if out.exists() and not force:
        raise ConfigError(f"{out} exists (a filled review?): choose another --out or pass --force")
    labels = _read(Path(storage.require_stage(run, "labels", "aggregate_labels")))
    pop = candidate_population(labels, min_users, locales)
    where = f"{run}/labels" + (f" (locales {', '.join(locales)})" if locales else "")
    if pop.empty:
        raise AuditError(f"{where} holds no candidate label said by >= {min_users} users: nothing to audit")
    sample = stratified_sample(pop, n, seed, strata)
    frame = audit_frame(sample, dataset_version=dataset_version(run), labels_digest=labels_digest(run),
                        calibration_version=str(storage.read_stats(run, "labels").get("calibration", "")))
    buf = io.StringIO()
    frame.to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    storage.write_text(out, buf.getvalue())
    summary = {"out": str(out), "population": len(pop), "written": len(frame), "seed": seed,
               "strata": int(sample["stratum"].max()), "min_users": min_users,
               "by_evidence": {k: int(v) for k, v in sorted(frame["evidence"].value_counts().items())},
               "raw_score_range": [float(pop["raw_score"].min()), float(pop["raw_score"].max())]}
    log.info("audit sample: %d of %d candidate labels -> %s", len(frame), len(pop), out)
    if len(pop) < n:
        raise AuditError(f"{where} holds {len(pop)} candidate labels said by >= {min_users} users, "
                         f"fewer than --n {n}: wrote all {len(pop)} to {out}")
    return summary


def parse_correct(value) -> bool | None:
    """A reviewer's ``correct`` cell → True/False; None when empty; ``ValueError`` when unreadable
    (accepted, case-insensitive: 1/0, 1.0/0.0, yes/no, y/n, true/false, t/f)."""
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip().lower()
    if text == "":
        return None
    if text in TRUE_VALUES:
        return True
    if text in FALSE_VALUES:
        return False
    raise ValueError(f"unreadable correct value {value!r}")


def read_review(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read a reviewed audit CSV (UTF-8, a BOM allowed; ``,`` or ``;`` separated, as
    spreadsheets save it). Returns (usable rows: ``raw_score`` float64, ``evidence`` str,
    ``correct`` bool, ``label_key`` str (:data:`LABEL_KEY` joined; None without those columns);
    counts: ``rows``, ``used`` and every :data:`SKIP_REASONS` key, which add up to ``rows``).
    Nothing is dropped uncounted.

    :raises FileNotFoundError: no such file (exit 3).
    :raises AuditError: not UTF-8 CSV, a column of :data:`REVIEW_COLUMNS` is missing, or the file
        has no row (exit 3)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
        header = text.split("\n", 1)[0]
        sep = ";" if header.count(";") > header.count(",") else ","
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise AuditError(f"{path}: not a readable UTF-8 CSV: {audit_one_line(e)}") from e
    missing = [c for c in REVIEW_COLUMNS if c not in df.columns]
    if missing:
        raise AuditError(f"{path}: missing column(s) {missing}; an audit CSV from `mining audit sample` has them")
    if df.empty:
        raise AuditError(f"{path}: no rows")
    reason = pd.Series("", index=df.index, dtype=object)
    if "audit_id" in df.columns:
        ids = df["audit_id"].str.strip()
        reason[(ids != "") & ids.duplicated(keep="first")] = "duplicate_audit_id"
    # "0,923456": the decimal comma of a spreadsheet saved in a German or French setting
    raw = pd.to_numeric(df["raw_score"].str.strip().str.replace(r"^(\d+),(\d+)$", r"\1.\2", regex=True),
                        errors="coerce")
    reason[(reason == "") & ~(raw.between(0, 1))] = "bad_raw_score"
    evidence = df["evidence"].str.strip()
    reason[(reason == "") & ~evidence.isin(EVIDENCE_KINDS)] = "unknown_evidence"
    correct = []
    for i, v in df["correct"].items():
        try:
            c = parse_correct(v)
        except ValueError:
            c = None
            if reason[i] == "":
                reason[i] = "unreadable_correct"
        if c is None and reason[i] == "":
            reason[i] = "not_reviewed"
        correct.append(c)
    used = reason == ""
    counts = {"rows": len(df), "used": int(used.sum()),
              **{r: int((reason == r).sum()) for r in SKIP_REASONS}}
    key = (df[list(LABEL_KEY)].apply(lambda c: c.str.strip()).agg("\x1f".join, axis=1)
           if all(c in df.columns for c in LABEL_KEY) else pd.Series([None] * len(df), index=df.index, dtype=object))
    rows = pd.DataFrame({"raw_score": raw[used].astype(float).to_numpy(),
                         "evidence": evidence[used].to_numpy(dtype=object),
                         "correct": np.array([c for c, u in zip(correct, used) if u], dtype=bool),
                         "label_key": key[used].to_numpy(dtype=object)})
    extra = {"dataset_versions": sorted(set(df["dataset_version"]) - {""}) if "dataset_version" in df else [],
             "labels_digests": sorted(set(df["labels_digest"]) - {""}) if "labels_digest" in df else []}
    return rows, {**counts, **extra}


def audit_one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200]


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_reviews(paths: list[str | Path]) -> tuple[pd.DataFrame, dict]:
    """:func:`read_review` of each file (several nights' audits), rows concatenated; counts
    summed, run versions united. ``audit_id`` repeats are checked within a file; a label
    reviewed in an earlier file (same :data:`LABEL_KEY`) is not used again, but counted
    (``duplicate_label``), so two overlapping audits never weigh a label twice.

    :raises ConfigError: one file given twice (the same bytes), which would double every row (exit 2).
    :raises AuditError: several files, one without the :data:`LABEL_KEY` columns: a label
        reviewed in two of them could not be counted once (exit 3)."""
    frames, total, seen = [], {}, {}
    for path in paths:
        digest = file_sha256(path)
        if digest in seen:
            raise ConfigError(f"{path} has the same bytes as {seen[digest]}: each review counts once")
        seen[digest] = path
        rows, counts = read_review(path)
        frames.append(rows)
        for k, v in counts.items():
            total[k] = sorted(set(total.get(k, [])) | set(v)) if isinstance(v, list) else total.get(k, 0) + v
    unkeyed = [str(p) for p, f in zip(paths, frames) if f["label_key"].isna().any()]
    if len(paths) > 1 and unkeyed:
        raise AuditError(f"{', '.join(unkeyed)}: no {', '.join(LABEL_KEY)} columns, so a label reviewed in two "
                         f"of the {len(paths)} audits would count twice; keep those columns of `mining audit "
                         "sample`'s CSV, or refit from one file")
    rows = pd.concat(frames, ignore_index=True)
    repeat = rows["label_key"].notna() & rows["label_key"].duplicated(keep="first")
    total["used"] -= int(repeat.sum())
    total["duplicate_label"] += int(repeat.sum())
    return rows[~repeat].reset_index(drop=True), total


def fit_from_audit(audit: str | Path | list[str | Path], out: str | Path | None, *, min_per_kind: int,
                   argv: list[str], min_reviewed: int = MIN_REVIEWED):
    """Refit the calibration from one or more reviewed audit CSVs (:func:`read_reviews`) with
    :func:`mining.core.calibration.fit_calibration` and write it to ``out`` (None:
    ``<first audit stem>.calibration.toml`` beside it; never the packaged file by default).

    ``[fit]`` records the command, each CSV's name and sha256, the row counts by reason, the
    runs they were sampled from, the labels per evidence kind and which kinds use the pooled
    map (fewer than ``min_per_kind`` reviewed rows), and the in-sample ECE (a fit figure only:
    ``bench/audit_curve.py`` measures on another run). Returns
    (:class:`mining.core.calibration.Calibration`, the path written).

    :raises AuditError: fewer than ``min_reviewed`` usable rows, fewer than 2 distinct raw
        scores among them, or verdicts all right or all wrong (exit 3); the message gives the
        counts by reason."""
    import shlex
    import sys

    from mining.core.calibration import fit_calibration, save_calibration
    from mining.eval.evaluation import ece
    from mining.fit.calibration import with_content_version

    paths = [Path(a) for a in (audit if isinstance(audit, list | tuple) else [audit])]
    rows, counts = read_reviews(paths)
    name = ", ".join(map(str, paths))
    reasons = ", ".join(f"{r} {counts[r]}" for r in SKIP_REASONS if counts[r])
    if len(rows) < min_reviewed or rows["raw_score"].nunique() < 2:
        raise AuditError(f"{name}: {len(rows)} usable reviewed rows of {counts['rows']} "
                         f"({reasons or 'none skipped'}); a refit needs >= {min_reviewed} with >= 2 distinct "
                         "raw scores")
    if rows["correct"].nunique() < 2:    # the isotonic map would be flat: every label 1.0, or 0.0
        verdict = "right" if rows["correct"].iloc[0] else "wrong"
        raise AuditError(f"{name}: all {len(rows)} usable verdicts are {verdict}; a calibration needs both: "
                         "review more labels (the low-confidence strata first)")
    if reasons:
        log.warning("%s: %d of %d rows used; skipped: %s", name, len(rows), counts["rows"], reasons)
    info = {"command": "mining " + shlex.join(argv), "source": "audit", "audit_files": [p.name for p in paths],
            "audit_sha256": [file_sha256(p) for p in paths], "audit_rows": counts,
            "precision_reviewed": round(float(rows["correct"].mean()), 4), "python": sys.version.split()[0]}
    cal = fit_calibration(rows["raw_score"].to_numpy(), rows["correct"].to_numpy(), rows["evidence"].to_numpy(),
                          version="calibration-isotonic-audit", min_per_kind=min_per_kind, fit_info=info)
    distinct = rows.groupby("evidence")["raw_score"].nunique()
    cal.fit["pooled_for"] = {k: (f"{n} reviewed rows < min_per_kind {min_per_kind}" if n < min_per_kind else
                                 f"{n} reviewed rows with {int(distinct.get(k, 0))} distinct raw score(s) < 2")
                             + ": uses the pooled map"
                             for k, n in cal.fit["labels_by_evidence"].items() if k not in cal.maps}
    cal = with_content_version(cal)
    conf = cal.apply(rows["raw_score"].to_numpy(), rows["evidence"].to_numpy())
    cal.fit["ece_fit_in_sample"] = round(ece(conf, rows["correct"].to_numpy(float)), 4)
    out = Path(out) if out else paths[0].with_name(paths[0].stem + ".calibration.toml")
    save_calibration(cal, out)
    log.info("calibration %s from %d reviewed labels -> %s (aggregation.calibration = \"%s\" applies it)",
             cal.version, len(rows), out, out)
    return cal, out
