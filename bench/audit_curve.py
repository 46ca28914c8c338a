"""How many reviewed labels bring a new domain's calibration to ECE <= 0.03 (issue 19, deliverable 4).

    python bench/audit_curve.py                       # the three HINT3 corpora, it-IT: 8 runs of 40k turns
    python bench/audit_curve.py --corpus hint3-sofmattress --sampling-seeds 5 --json /tmp/audit_curve.json

The packaged calibration (``mining/models/calibration.toml``) is fitted on HWU64 seed 211
only, the rephrase model on HWU64, SLURP and four development locales
(``mining/models/rephrase_lr.toml``), so a corpus outside those (:data:`DEVELOPMENT`, read
from the two files) is a domain no packaged model saw, and only such domains are accepted:
by default the three HINT3 corpora (real users' queries to a mattress shop's, a
fantasy-sports app's and a health shop's bots, fine-grained) and Italian from
home-assistant-intents (a language no fit used).
Per such domain, two runs are simulated and mined to ``aggregate_labels`` with calibration
off (:func:`mining.fit.calibration.candidate_labels`): the *audit* run (seed 13) and the
*evaluation* run (seed 17). For N in {25, 50, 100, 200, 400} (capped at the audit run's
candidates) and several sampling seeds, the real tools run end to end: N candidate labels of
the audit run are drawn as ``mining audit sample`` draws them
(:func:`mining.fit.audit.stratified_sample`), written as the same CSV with ``correct`` filled
from the simulator's gold (standing in for the reviewer), refitted with
``mining fit-calibration --audit`` (:func:`mining.fit.audit.fit_from_audit`) and read back with
:func:`mining.core.calibration.load_calibration`. The refit is scored on the evaluation run
only, never on the reviewed rows.

Figures on the evaluation run's k-anonymous candidate labels (decision labeled or
low_confidence, said by >= privacy.min_users users; a fixed population whatever the
calibration): ECE (10 bins, :func:`mining.eval.evaluation.ece`); on the labels each
calibration would export (confidence >= aggregation.min_confidence): their count, ECE and
precision at confidence >= 0.9. ``ECE floor`` is the mean ECE a perfectly calibrated
confidence would show on this many labels (correctness drawn from the confidence itself,
200 draws): the sampling noise of the measure. Writes the tables to bench/AUDIT.md; what follows
:data:`NOTES_MARK` there is written by hand and kept.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mining.core.calibration import PACKAGED_CALIBRATION  # noqa: E402
from mining.core.rephrase_model import PACKAGED_MODEL  # noqa: E402
from mining.fit.calibration import FIT_SEED  # noqa: E402
from mining.fit.rephrase import FIT_SEED as REPHRASE_FIT_SEED  # noqa: E402
from mining.io.storage import read_toml  # noqa: E402

AUDIT_SEED, EVAL_SEED = 13, 17
SIZES = (25, 50, 100, 200, 400)
DEFAULT_DOMAINS = ("hint3-sofmattress", "hint3-powerplay11", "hint3-curekart", "hassil-it-IT")
#: Everything from this line on in the --md file is written by hand and kept when the tables are rewritten.
NOTES_MARK = "<!-- notes: written by hand, kept by audit_curve.py -->"
TARGET_ECE = 0.03
#: Corpora some packaged model or calibration was fitted on (their files' ``[fit] corpora``:
#: HWU64 for both, SLURP for the rephrase model too), or development locales: never reported.
DEVELOPMENT = tuple(sorted({c for path in (PACKAGED_CALIBRATION, PACKAGED_MODEL)
                            for c in read_toml(path, "packaged model")["fit"]["corpora"]}))
assert not {FIT_SEED, REPHRASE_FIT_SEED, 7} & {AUDIT_SEED, EVAL_SEED}


def domain_candidates(spark_fn, corpus: str, turns: int, seed: int, work: Path, min_users: int,
                      fresh: bool) -> pd.DataFrame:
    """k-anonymous candidate labels of one uncalibrated run, sorted as the audit samples them,
    with ``correct`` (bool, simulator gold). The run under ``work`` is reused when its
    ``labels/`` was written uncalibrated and ``fresh`` is false."""
    from mining.eval.evaluation import _read, gold_intents_for_run, label_correct
    from mining.fit.audit import candidate_population
    from mining.fit.calibration import candidate_labels
    from mining.io.storage import read_stats

    base = work / f"{corpus}-{turns}-s{seed}"
    reusable = (base / "run" / "labels" / "_SUCCESS").exists() and read_stats(base / "run", "labels").get(
        "calibration") == "none"
    if fresh or not reusable:
        candidate_labels(spark_fn(), corpus, turns, seed, work)
    pop = candidate_population(_read(base / "run" / "labels"), min_users)
    gold = gold_intents_for_run(base / "gold", base / "run")
    return pop.assign(correct=label_correct(pop, gold, "text_norm", "candidate_intent"))


def reviewed_csv(sample: pd.DataFrame, path: Path, version: str) -> Path:
    """The audit CSV of ``sample`` exactly as ``mining audit sample`` writes it, with the
    ``correct`` column filled from gold (1/0), as a reviewer would."""
    from mining.fit.audit import audit_frame

    frame = audit_frame(sample, dataset_version="", labels_digest=version, calibration_version="none")
    frame["correct"] = np.where(sample["correct"].to_numpy(), "1", "0")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")
    return path


def measure(cal, ev: pd.DataFrame, min_confidence: float) -> dict:
    """ECE of ``cal`` on every evaluation candidate, and count/ECE/precision@0.9 of those it exports."""
    from mining.eval.evaluation import ece

    conf = cal.apply(ev["raw_score"].to_numpy(), ev["candidate_evidence"].to_numpy())
    y = ev["correct"].to_numpy(float)
    exp = conf >= min_confidence
    hi = conf >= 0.9
    return {"ece": ece(conf, y), "exported": int(exp.sum()), "ece_exported": ece(conf[exp], y[exp]),
            "precision_exported": float(y[exp].mean()) if exp.any() else float("nan"),
            "precision_conf90": float(y[hi].mean()) if hi.any() else float("nan"), "labels_conf90": int(hi.sum())}


def noise_floor(conf: np.ndarray, reps: int = 200, seed: int = 0) -> float:
    """Mean ECE of ``conf`` against outcomes drawn Bernoulli(conf): what a perfect calibration scores."""
    from mining.eval.evaluation import ece

    rng = np.random.default_rng(seed)
    return float(np.mean([ece(conf, (rng.random(len(conf)) < conf).astype(float)) for _ in range(reps)]))


def curve(corpus: str, audit: pd.DataFrame, ev: pd.DataFrame, sizes: tuple[int, ...], seeds: int, work: Path,
          min_per_kind: int, min_confidence: float) -> list[dict]:
    """One record per (N, sampling seed): the refit's figures on the evaluation run. A refit
    ``fit_from_audit`` refuses (a sample whose verdicts are all right: a flat map) keeps the
    packaged map, as a user's would: its figures, ``refused`` true."""
    from mining.core.calibration import load_calibration
    from mining.fit.audit import AuditError, fit_from_audit, stratified_sample

    records = []
    for n in sorted({min(n, len(audit)) for n in sizes}):
        for s in range(seeds):
            sample = stratified_sample(audit, n, s)
            csv = reviewed_csv(sample, work / "audits" / f"{corpus}-n{n}-s{s}.csv", f"{corpus}-s{AUDIT_SEED}")
            try:
                _, toml = fit_from_audit(csv, csv.with_suffix(".toml"), min_per_kind=min_per_kind,
                                         argv=["fit-calibration", "--audit", str(csv)])
                cal, refused = load_calibration(toml), False
            except AuditError:
                cal, refused = load_calibration(None), True
            records.append({"corpus": corpus, "n": n, "seed": s, "refused": refused,
                            "own_maps": sorted(set(cal.maps) - {"pooled"}),
                            "precision_reviewed": float(sample["correct"].mean()),
                            **measure(cal, ev, min_confidence)})
    return records


def summarize(records: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(records)
    g = df.groupby(["corpus", "n"])
    return pd.DataFrame({"ece_mean": g["ece"].mean(), "ece_min": g["ece"].min(), "ece_max": g["ece"].max(),
                         "share_le_target": g["ece"].apply(lambda e: float((e <= TARGET_ECE).mean())),
                         "ece_exported_mean": g["ece_exported"].mean(), "exported_mean": g["exported"].mean(),
                         "precision_conf90_mean": g["precision_conf90"].mean(),
                         "refused": g["refused"].sum()}).reset_index()


def smallest_n(summary: pd.DataFrame, corpus: str, column: str, threshold: float) -> str:
    rows = summary[(summary["corpus"] == corpus) & (summary[column] >= threshold if column == "share_le_target"
                                                     else summary[column] <= threshold)]
    return str(int(rows["n"].min())) if len(rows) else "not reached"


def report(domains: list[dict], summary: pd.DataFrame, seeds: int, command: str) -> str:
    f3 = "{:.3f}".format
    lines = [f"Command: `{command}`", "",
             f"Baselines on the evaluation run (seed {EVAL_SEED}) of each domain:", "",
             ("| domain | audit run candidates (precision) | eval run candidates (precision) | calibration | "
              "ECE | exported | ECE exported | precision @conf>=0.9 (labels) |"),
             "|---|---|---|---|---|---|---|---|"]
    for d in domains:
        head = (f"| {d['corpus']} | {d['audit_labels']} ({f3(d['audit_precision'])}) | "
                f"{d['eval_labels']} ({f3(d['eval_precision'])}) | ")
        for name, key in (("none (raw score)", "raw"), (f"packaged (HWU64 s{FIT_SEED})", "packaged"),
                          ("audit, all candidates", "audit_all")):
            m = d[key]
            lines.append(head + f"{name} | {f3(m['ece'])} | {m['exported']} | {f3(m['ece_exported'])} | "
                         f"{f3(m['precision_conf90'])} ({m['labels_conf90']}) |")
            head = "| | | | "
        lines.append(f"| | | | ECE floor (noise of the measure) | {f3(d['floor'])} | | | |")
    lines += ["", f"Audit refit, {seeds} sampling seeds per N (ECE on the evaluation run, never on the reviewed rows):",
              "", ("| domain | N reviewed | ECE mean | ECE min-max | share of seeds <= 0.03 | exported (mean) | "
                   "ECE exported (mean) | precision @conf>=0.9 (mean) |"), "|---|---|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        lines.append(f"| {r.corpus} | {r.n} | {f3(r.ece_mean)} | {f3(r.ece_min)}-{f3(r.ece_max)} | "
                     f"{r.share_le_target:.0%} | {r.exported_mean:.0f} | {f3(r.ece_exported_mean)} | "
                     f"{f3(r.precision_conf90_mean)} |")
    refused = summary[summary["refused"] > 0]
    lines += ["", "Refits `fit-calibration --audit` refused (e.g. every sampled verdict right; the packaged "
              "map is kept, and its figures are in the rows above): "
              + (", ".join(f"{r.corpus} N={r.n}: {int(r.refused)} of {seeds}" for r in refused.itertuples())
                 or "none") + "."]
    lines.append("")
    for d in domains:
        c = d["corpus"]
        lines.append(f"{c}: smallest N with mean ECE <= {TARGET_ECE}: {smallest_n(summary, c, 'ece_mean', TARGET_ECE)}; "
                     f"with every sampling seed <= {TARGET_ECE}: {smallest_n(summary, c, 'share_le_target', 1.0)}.")
    return "\n".join(lines) + "\n"


def write_md(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, followed by the hand-written notes the file already holds
    from :data:`NOTES_MARK` on (marker included); nothing more when it holds none."""
    _, mark, notes = path.read_text(encoding="utf-8").partition(NOTES_MARK) if path.exists() else ("", "", "")
    path.write_text(text + (f"\n{mark}{notes}" if mark else ""), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", action="append",
                    help=f"domain never fitted on (repeatable; default: {', '.join(DEFAULT_DOMAINS)})")
    ap.add_argument("--turns", type=int, default=40_000, help="simulated turns of the audit run")
    ap.add_argument("--eval-turns", type=int, default=40_000, help="simulated turns of the evaluation run")
    ap.add_argument("--sampling-seeds", type=int, default=10, help="audit samples per N (seeds 0..K-1)")
    ap.add_argument("--min-per-kind", type=int, default=200, help="as mining fit-calibration --min-per-kind")
    ap.add_argument("--work", default=str(ROOT / "bench" / ".work" / "audit"))
    ap.add_argument("--fresh", action="store_true", help="rerun the pipeline even when the runs are there")
    ap.add_argument("--md", default=str(ROOT / "bench" / "AUDIT.md"), help="tables written here")
    ap.add_argument("--json", help="also write every record as JSON here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from mining.config import resolve_sections
    from mining.core.calibration import IDENTITY, fit_calibration, load_calibration
    from mining.sim.corpora import HASSIL_PREFIX, corpus_names
    from mining.sim.locales import DEFAULT_LOCALES

    corpora = args.corpus or list(DEFAULT_DOMAINS)
    dev = {*DEVELOPMENT, *(HASSIL_PREFIX + loc for loc in DEFAULT_LOCALES)}
    bad = [c for c in corpora if c in dev or c not in corpus_names()]
    if bad:
        ap.error(f"{bad}: not a corpus, or one the packaged models were fitted on or developed with")
    sections = resolve_sections()[0]
    min_users, min_conf = sections["privacy"]["min_users"], sections["aggregation"]["min_confidence"]
    spark_holder: dict = {}

    def spark():
        from mining.spark.session import get_spark
        return spark_holder.setdefault("s", get_spark("bench-audit-curve"))

    work = Path(args.work)
    command = "python bench/audit_curve.py " + shlex.join(sys.argv[1:])
    t0 = time.perf_counter()
    domains, records = [], []
    for corpus in corpora:
        audit = domain_candidates(spark, corpus, args.turns, AUDIT_SEED, work, min_users, args.fresh)
        ev = domain_candidates(spark, corpus, args.eval_turns, EVAL_SEED, work, min_users, args.fresh)
        full = fit_calibration(audit["raw_score"], audit["correct"], audit["candidate_evidence"], version="all")
        packaged = load_calibration(None)
        domains.append({
            "corpus": corpus, "audit_labels": len(audit), "audit_precision": float(audit["correct"].mean()),
            "eval_labels": len(ev), "eval_precision": float(ev["correct"].mean()),
            "packaged_version": packaged.version,
            "raw": measure(IDENTITY, ev, min_conf), "packaged": measure(packaged, ev, min_conf),
            "audit_all": measure(full, ev, min_conf),
            "floor": noise_floor(packaged.apply(ev["raw_score"].to_numpy(), ev["candidate_evidence"].to_numpy()))})
        records += curve(corpus, audit, ev, SIZES, args.sampling_seeds, work, args.min_per_kind, min_conf)
    summary = summarize(records)
    text = report(domains, summary, args.sampling_seeds, command)
    print(text)
    write_md(Path(args.md),
             "# How many reviewed labels a new domain's calibration needs\n\nGenerated by "
             "[`audit_curve.py`](audit_curve.py) (method in its docstring; "
             f"{time.perf_counter() - t0:.0f} s). Packaged calibration: `{domains[0]['packaged_version']}`.\n\n"
             + text)
    if args.json:
        Path(args.json).write_text(json.dumps({"domains": domains, "records": records}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
