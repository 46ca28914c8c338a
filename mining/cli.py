"""mining: mine weak NLU training labels from voice-assistant interaction logs.

Commands: the pipeline (``run`` or one stage), ``inspect`` a published dataset version,
``diff`` two versions,
``evaluate`` against simulator gold, ``config show``, ``merge`` into a training set,
refit the packaged models, ``simulate`` logs, ``corrupt-logs`` for ingest tests. ``mining --help`` lists them;
``mining COMMAND --help`` gives each one's options and examples.

Exit codes (:data:`EXIT_CODES`): 0 success; 1 unexpected error (one line on stderr, the
traceback with ``-v``); 2 bad arguments or configuration; 3 input problem (no partitions,
reject share over the limit, missing upstream stage, no complete dataset version, a failed
data-quality gate);
4 privacy precondition (no pseudonymization key); 130 interrupted (Ctrl-C).

Logging (:mod:`mining.run_logging`): every line carries the run id (``$MINING_RUN_ID``, exported to
child processes); ``MINING_LOG_FORMAT=json`` writes one JSON object per line.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from pathlib import Path

from mining.cli_help import SUMMARY, add_command, stage_epilog, top_help
from mining.entrypoint import (add_config_args, add_run_args, config_from_args, count_arg, guarded, int_at_least,
                               iso_date, override_layers, top_level)
from mining.errors import (EXIT_CODES, EXIT_CONFIG, EXIT_ERROR, EXIT_INPUT, EXIT_INTERRUPTED,  # noqa: F401
                           EXIT_OK, EXIT_PRIVACY)

log = logging.getLogger("mining")
#: ``mining simulate --corpus`` / ``--behaviour-model`` choices: mining.sim.corpora.KNOWN_CORPORA +
#: HINT3_CORPORA and mining.sim.simulation_config.BEHAVIOUR_MODELS (tests/sim/test_hint3.py).
SIMULATE_CORPORA = ("hwu64", "slurp", "hint3-curekart", "hint3-powerplay11", "hint3-sofmattress")
SIMULATE_BEHAVIOUR_MODELS = ("default", "hard")


def _or_config(value, section: str, key: str):
    """``value`` when the flag was given, else ``section.key`` of the effective configuration
    (mining/defaults.toml and its layers): the CLI never repeats a default of the file."""
    from mining.config import build_sections, resolve_sections

    return value if value is not None else getattr(build_sections(resolve_sections()[0])[section], key)


def _run_stages(args, stages) -> dict:
    from mining.spark.session import get_spark
    from mining.stages.runner import run_all

    cfg = config_from_args(args)
    return run_all(get_spark(), cfg, stages)


def _simulate(args) -> dict:
    from mining.sim.simulation import SimulationConfig, simulate

    if args.locales:
        if args.traffic_utterances:
            raise argparse.ArgumentTypeError("--traffic-utterances grows one corpus: drop --locales")
        from mining.sim.locales import DEFAULT_LOCALES, simulate_locales

        locales = DEFAULT_LOCALES if args.locales == "all" else tuple(x.strip() for x in args.locales.split(","))
        return simulate_locales(locales, args.turns, args.logs, args.gold, days=args.days,
                                start_date=args.start_date, seed=args.seed, out_format=args.format,
                                behaviour_model=args.behaviour_model)
    cfg = SimulationConfig(corpus=args.corpus, n_turns=args.turns, days=args.days,
                           start_date=args.start_date, seed=args.seed, out_format=args.format,
                           behaviour_model=args.behaviour_model,
                           traffic_utterances=args.traffic_utterances,
                           utterance_zipf_s=args.utterance_zipf_s)
    return simulate(cfg, args.logs, args.gold)


def _corrupt_logs(args) -> dict | None:
    from mining.sim import corruption
    if args.list:
        width = max(map(len, corruption.KINDS)) + 2
        print("\n".join(f"{k.ljust(width)}{desc}" for k, (_, desc) in corruption.KINDS.items()))
        return None
    if not args.logs or not args.out:
        raise argparse.ArgumentTypeError("--logs and --out are required (or --list)")
    summary = corruption.corrupt_logs(args.logs, args.out, args.kinds, seed=args.seed,
                                      rows_per_kind=args.rows_per_kind, include_clean=not args.no_clean)
    return {"out": args.out, "total_rows": summary["total_rows"], "clean_rows": summary["clean_rows"],
            "kinds": {k: {"rows": v["rows"], "expected": v["expected"]} for k, v in summary["kinds"].items()}}


def _evaluate(args) -> dict:
    from mining.eval import evaluation
    from pathlib import Path

    from mining.eval.report import write_evaluation_report

    report = evaluation.evaluate(args.gold, args.out)
    print(evaluation.format_table(report))
    if "by_locale" in report:
        print("\nPer locale (each locale's NLU retrained on its own seed split):\n")
        print(evaluation.format_locale_table(report))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2, sort_keys=True)
    html = Path(args.report) if args.report else Path(args.out) / "evaluation" / "report.html"
    html.parent.mkdir(parents=True, exist_ok=True)
    write_evaluation_report(args.out, html, args.gold, evaluation=report)
    log.info("report with the gold figures and the reliability diagram: %s", html)
    return None


def _fit_rephrase(args, argv: list[str]) -> dict:
    from pathlib import Path

    from mining.fit import rephrase as rephrase_fit
    model = rephrase_fit.fit(args.corpus or list(rephrase_fit.DEFAULT_CORPORA), args.turns,
                             rephrase_fit.FIT_SEED if args.seed is None else args.seed, Path(args.work),
                             c=args.c, target_precision=args.target_precision,
                             out=Path(args.out) if args.out else None, argv=argv, reuse=args.reuse_runs)
    return model.to_dict()


def _fit_calibration(args, argv: list[str]) -> dict:
    from pathlib import Path

    from mining.fit import calibration as calibration_fit
    if args.audit:
        given = [f for f, v in (("--work", args.work), ("--corpus", args.corpus), ("--turns", args.turns),
                                ("--seed", args.seed), ("--min-users", args.min_users)) if v is not None]
        if given:
            raise argparse.ArgumentTypeError(f"--audit refits from the reviewed CSV alone: drop {', '.join(given)}")
        from mining.core.calibration import MIN_PER_KIND
        from mining.fit.audit import fit_from_audit
        cal, out = fit_from_audit(args.audit, args.out, argv=argv,
                                  min_per_kind=MIN_PER_KIND if args.min_per_kind is None else args.min_per_kind)
        return {"version": cal.version, "out": str(out), **cal.fit}
    if not args.work:
        raise argparse.ArgumentTypeError("needs --work (refit on simulator gold) or --audit (a reviewed CSV)")
    if args.min_per_kind is not None:
        raise argparse.ArgumentTypeError("--min-per-kind applies to --audit only")
    cal = calibration_fit.fit(args.corpus or ["hwu64"], 80_000 if args.turns is None else args.turns,
                              calibration_fit.FIT_SEED if args.seed is None else args.seed, Path(args.work),
                              min_users=_or_config(args.min_users, "privacy", "min_users"), out=Path(args.out) if args.out else None, argv=argv)
    return {"version": cal.version, **cal.fit}


def _audit_sample(args) -> dict:
    from mining.config import resolve_sections
    from mining.fit.audit import sample_run

    return sample_run(args.run, args.n, args.out, seed=args.seed, strata=args.strata,
                      min_users=_or_config(args.min_users, "privacy", "min_users"),
                      locales=tuple(args.locale), force=args.force,
                      dp=bool(resolve_sections()[0]["privacy"]["dp"]["enabled"]))


def _number_arg(lo: float, hi: float, *, above: bool = False):
    """argparse type: a finite number in [lo, hi], (lo, hi] when ``above`` (NaN fails)."""
    def parse(value: str) -> float:
        try:
            x = float(value)
        except ValueError:
            x = float("nan")
        if not (x == x and (x > lo if above else x >= lo) and x <= hi):
            raise argparse.ArgumentTypeError(f"expected a number in {'(' if above else '['}{lo:g}, {hi:g}], "
                                             f"got {value!r}")
        return x
    return parse


#: argparse type of ``--turns`` and ``--min-users``: an integer >= 1
_positive_arg = int_at_least(1)


#: ``merge --dev-share``: a share in [0, 1], as ``export.dev_share`` of the configuration
_share_arg = _number_arg(0.0, 1.0)


def _conflicts_path(value: str, out: str) -> Path:
    """``merge --conflicts PATH``, checked before anything is written: its folder must exist
    and it must not be a folder itself nor lie inside ``--out`` (which the merge replaces)."""
    path = Path(value)
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"--conflicts {value}: folder {path.parent} does not exist")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"--conflicts {value} is a folder; name a file")
    if Path(out).resolve() in (path.resolve(), *path.resolve().parents):
        raise argparse.ArgumentTypeError(f"--conflicts {value} is inside --out {out}, which the merge replaces")
    return path


def _merge(args) -> dict:
    from mining.io import storage
    from mining.tools import merge
    conflicts_path = _conflicts_path(args.conflicts, args.out) if args.conflicts else None
    mined_path = merge.resolve_mined_path(args.mined)    # a run's output root: its published data
    dev_share = _or_config(args.dev_share, "export", "dev_share")
    seed = _or_config(args.split_seed, "export", "split_seed")
    # a folder resolved once, as --mined is: a base read through a run's latest link is one
    # version's files (a file is not: a link into a content-addressed cache has no suffix)
    base_path = Path(args.base).resolve() if Path(args.base).is_dir() else Path(args.base)
    base = merge.read_training_set(base_path, dev_share=dev_share, seed=seed)
    mined = merge.read_training_set(mined_path, dev_share=dev_share, seed=seed)
    merged, stats = merge.merge_training_sets(base, mined)
    conflicts = merge.human_conflicts(base, mined)
    manifest = merge.write_merged(merged, args.out, stats)
    if conflicts_path is not None:   # checked before anything was written; empty without conflicts
        storage.write_text(conflicts_path, conflicts.to_json(orient="records", lines=True, force_ascii=False)
                           if len(conflicts) else "")
    return {"out": args.out, "rows": manifest["rows"], "stats": stats, "conflicts_with_human": len(conflicts)}


def _loop(args) -> None:
    from mining.eval import loop

    locales = tuple(x.strip() for x in args.locales.split(",")) if args.locales else ()
    records = loop.run_loop(args.out, corpus=args.corpus, locales=locales, nights=args.nights, turns=args.turns,
                            seed=args.seed, start_date=args.start_date, lookback_days=args.lookback_days,
                            policy=args.policy)
    print(loop.format_table(records))
    doc = json.loads((Path(args.out) / "loop.json").read_text(encoding="utf-8"))
    for name, t in doc["targets"].items():
        print(f"{name}: {t['value']} ({'met' if t['met'] else 'MISSED'}; target {t.get('target', '-')})")
    log.info("curves: %s", Path(args.out) / "loop.html")


def _inspect(args) -> None:
    from mining.tools import inspect_dataset
    summary = inspect_dataset.summarize(args.path, samples=args.samples, locale=args.locale, intent=args.intent)
    sys.stdout.write(inspect_dataset.to_json(summary) + "\n" if args.json
                     else inspect_dataset.format_summary(summary))


def _diff(args) -> None:
    from mining.tools import diff
    result = diff.diff_versions(args.old, args.new)
    sys.stdout.write(diff.to_json(result) + "\n" if args.json else diff.format_diff(result, args.rows))


def _config_show(args) -> None:
    from mining.config import build_sections, resolve_sections
    from mining.tools.config_show import format_toml

    sections, origins = resolve_sections(args.config, override_layers(args))
    build_sections(sections)                     # validate ranges as a run would
    print("# Effective mining configuration: mining/defaults.toml <- --config/$MINING_CONFIG <- "
          "MINING__SECTION__KEY\n# variables <- --set <- flags. A comment names where a value came "
          "from; the rest are defaults.\n")
    sys.stdout.write(format_toml(sections, origins))


def build_parser() -> argparse.ArgumentParser:
    from mining.stages import STAGE_NAMES

    description, epilog = top_help()
    parser = argparse.ArgumentParser(prog="mining", usage="mining [-h] [-v] COMMAND [options]",
                                     description=description, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging; tracebacks of unexpected errors")
    verbose = argparse.ArgumentParser(add_help=False)   # -v also after the command: `mining run ... -v`
    verbose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="debug logging; tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS)

    sim = add_command(sub, "simulate", verbose)
    # literal lists: the CLI must not import the simulator (tests/test_layout.py); tests/sim checks them
    sim.add_argument("--corpus", default="hwu64", choices=SIMULATE_CORPORA,
                     help="hwu64, slurp, or a HINT3 chatbot corpus (real queries, fine-grained intents)")
    sim.add_argument("--behaviour-model", default="default", choices=SIMULATE_BEHAVIOUR_MODELS,
                     help="simulated users: default, or hard (silently failing rephrase targets, quick goal "
                          "switches, given-up goals asked again in a later session, users who never retry)")
    sim.add_argument("--locales", metavar="LIST",
                     help="mixed multilingual logs instead: comma-separated locales (en-US from HWU64, "
                          "de-DE fr-FR es-ES ru-RU zh-CN th-TH ar-SA el-GR generated with hassil), or all; "
                          "--turns is split evenly, locale i uses seed SEED*100+i")
    sim.add_argument("--turns", type=_positive_arg, default=20_000, help="approximate number of turns")
    sim.add_argument("--traffic-utterances", type=count_arg, metavar="N",
                     help="grow the traffic utterances to N distinct texts (mining/sim/growth.py) so the "
                          "logs carry as many distinct texts as real traffic; for scale benchmarks")
    sim.add_argument("--utterance-zipf-s", type=float, default=1.1, metavar="S",
                     help="Zipf exponent of utterance popularity within an intent (default 1.1; lower: "
                          "more distinct texts per turn)")
    sim.add_argument("--days", type=int, default=3, help="number of dt partitions")
    sim.add_argument("--start-date", type=iso_date, default=dt.date(2026, 11, 1))
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--format", default="parquet", choices=["parquet", "jsonl"])
    sim.add_argument("--logs", required=True, help="output log root")
    sim.add_argument("--gold", required=True, help="output gold folder (never read by the miner)")
    bad = add_command(sub, "corrupt-logs", verbose, "Write a corrupted copy of a clean log root for testing "
               "ingest: the clean partitions plus, per kind of corruption, files of malformed rows "
               "(see mining/sim/corruption.py), with the accounting ingest must report.")
    bad.add_argument("--logs", help="clean log root (dt=YYYY-MM-DD partitions; Parquet or JSON Lines)")
    bad.add_argument("--out", help="output log root (must not exist or be empty)")
    bad.add_argument("--kinds", default="all", help="comma-separated kinds, or all (default)")
    bad.add_argument("--seed", type=int, default=0, help="which clean rows each kind copies (default 0)")
    bad.add_argument("--rows-per-kind", type=int, default=12, metavar="N", help="rows per kind (default 12)")
    bad.add_argument("--no-clean", action="store_true", help="write only the corrupted files, not the clean ones")
    bad.add_argument("--list", action="store_true", help="list the kinds and exit")
    add_run_args(add_command(sub, "run", verbose, "Run the five stages in order in one local Spark session "
                      "($MINING_SPARK_MASTER, default local[2]): " + " -> ".join(STAGE_NAMES) + "."))
    for stage in STAGE_NAMES:
        cmd = stage.replace("_", "-")
        add_run_args(add_command(sub, cmd, verbose, f"Only the {stage} stage ({SUMMARY[cmd]}).",
                          stage_epilog(stage)))

    ins = add_command(sub, "inspect", verbose, "Print what a published dataset version holds: rows by locale, "
               "intent and evidence, confidence quantiles, drops by reason, dropped slots, scrubbed PII, "
               "train/dev partitions, and sample rows (most users first). Reads Parquet and the "
               "manifest; no Spark.")
    ins.add_argument("path", metavar="PATH", help="a run's OUT root (its latest version), versions/<v>, or latest")
    ins.add_argument("--samples", type=count_arg, default=5, metavar="N", help="sample rows to show (default 5)")
    ins.add_argument("--locale", help="only this locale")
    ins.add_argument("--intent", help="only this intent")
    ins.add_argument("--json", action="store_true", help="print the summary as JSON (every intent, full texts)")

    dif = add_command(sub, "diff", verbose, "Print the changelog between two published dataset versions: "
               "labels added, changed (intent or slots) and retired from OLD to NEW, keyed by (locale, "
               "utterance), each with a reason; counts by change and reason, then the changes. Reads "
               "Parquet and the manifests; no Spark.")
    dif.add_argument("old", metavar="OLD", help="the older version: a run's OUT root (its latest version), "
                     "versions/<v>, or latest")
    dif.add_argument("new", metavar="NEW", help="the newer version, any path OLD accepts")
    dif.add_argument("--rows", type=count_arg, default=50, metavar="N",
                     help="changes listed in the table (default 50)")
    dif.add_argument("--json", action="store_true", help="print the summary and every change as JSON")

    ev = add_command(sub, "evaluate", verbose)
    ev.add_argument("--gold", required=True)
    ev.add_argument("--out", required=True, help="output root of the run to score")
    ev.add_argument("--json", help="also write the report as JSON here")
    ev.add_argument("--report", help="report.html with the gold figures and a reliability diagram "
                    "(default: OUT/evaluation/report.html)")

    lp = add_command(sub, "loop", verbose, "Simulate the self-learning loop: each night, logs simulated "
              "with that night's production NLU (users fail where it errs), the nightly pipeline over the "
              "lookback window, then the NLU retrained on seed + the published training set for the next "
              "night. Writes OUT/loop.json (one record per night), OUT/loop.html and OUT/loop.png "
              "(see mining/eval/loop.py).")
    lp.add_argument("--corpus", default="hwu64", choices=["hwu64", "slurp"])
    lp.add_argument("--locales", metavar="LIST", help="comma-separated locales instead (as simulate --locales)")
    lp.add_argument("--nights", type=count_arg, default=7, help="nights to simulate (default 7)")
    lp.add_argument("--turns", type=count_arg, default=20_000, help="simulated turns per night (default 20000)")
    lp.add_argument("--seed", type=int, default=7)
    lp.add_argument("--start-date", type=iso_date, default=dt.date(2026, 11, 1))
    lp.add_argument("--lookback-days", type=count_arg, default=3, help="partitions mined per night (default 3)")
    lp.add_argument("--policy", default="until_contradicted", choices=["until_contradicted", "window"],
                    help="export.label_retention of the nightly runs (default until_contradicted)")
    lp.add_argument("--out", required=True, help="output folder (logs, gold, runs, loop.json); not one holding a finished loop")

    conf = add_command(sub, "config", verbose, "Configuration tools.")
    conf_sub = conf.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_config_args(add_command(conf_sub, "config show", verbose,
                         "Print the effective configuration as TOML: the values a run with these "
                         "options and this environment would use, each one set above the defaults "
                         "followed by a comment naming where it came from."))

    mg = add_command(sub, "merge", verbose, "Add mined labels to a training set in MASSIVE JSON Lines shape without "
              "duplicates; a human label is never overridden (see mining/tools/merge.py for the rules).")
    mg.add_argument("--base", required=True, help="existing training set: MASSIVE .jsonl file or folder, or Parquet")
    mg.add_argument("--mined", required=True,
                    help="a run's output root (its published massive/, else training_set/), or any path "
                         "--base accepts")
    mg.add_argument("--out", required=True,
                    help="output folder (<locale>.jsonl + merge_manifest.json, atomic): new, empty, "
                         "or an earlier merge's output (replaced as a whole)")
    mg.add_argument("--conflicts", help="write mined labels that contradict a human label here (JSON Lines; "
                    "empty when none; its folder must exist)")
    mg.add_argument("--dev-share", type=_share_arg, metavar="SHARE",
                    help="partition split for Parquet inputs that have no partition column "
                         "(in [0, 1]; default: export.dev_share of the configuration)")
    mg.add_argument("--split-seed", type=int, help="seed of that split (default: export.split_seed)")

    fit = add_command(sub, "fit-rephrase", verbose, "Simulate logs from the development corpora, run "
               "detect_rephrases, fit the logistic scorer on the gold cases and write the model TOML.")
    fit.add_argument("--corpus", action="append",
                     help="development corpus (repeatable; default and valid: DEFAULT_CORPORA and "
                          "DEV_CORPORA of mining/fit/rephrase.py)")
    fit.add_argument("--turns", type=_positive_arg, default=40_000, help="simulated turns per corpus")
    fit.add_argument("--seed", type=int, help="simulation seed (default: FIT_SEED of mining/fit/rephrase.py; "
                     "the benchmark uses others)")
    fit.add_argument("--work", required=True, help="folder for the simulated logs and runs (reused)")
    fit.add_argument("--c", type=_number_arg(0.0, 1e12, above=True), default=1.0,
                     help="inverse L2 strength of the logistic regression (> 0)")
    fit.add_argument("--target-precision", type=_number_arg(0.0, 1.0, above=True), default=0.97,
                     help="the threshold is the lowest with at least this pair precision on the fit data")
    fit.add_argument("--out", help="model TOML to write (default: the packaged mining/models/rephrase_lr.toml)")
    fit.add_argument("--reuse-runs", action="store_true",
                     help="keep detect_rephrases outputs already under --work (refit without rerunning)")

    cal = add_command(sub, "fit-calibration", verbose, "Simulate logs from the development corpora, run the "
               "pipeline to aggregate_labels uncalibrated, fit isotonic maps raw score -> P(label right) "
               "and write the calibration TOML.")
    cal.add_argument("--corpus", action="append", choices=["hwu64", "slurp"],
                     help="development corpus (repeatable; default: hwu64, so slurp stays unseen)")
    cal.add_argument("--audit", metavar="CSV", action="append",
                     help="refit from this reviewed `mining audit sample` CSV instead of simulating (a new "
                          "domain's own calibration; repeatable: several nights' audits together)")
    cal.add_argument("--min-per-kind", type=count_arg, metavar="N",
                     help="with --audit: an evidence kind needs N reviewed rows for a map of its own, "
                          "else it uses the pooled map (default 200, the simulator refit's)")
    cal.add_argument("--turns", type=_positive_arg, help="simulated turns per corpus (default 80000)")
    cal.add_argument("--seed", type=int, help="simulation seed (default: FIT_SEED of mining/fit/calibration.py; "
                     "the benchmark uses others)")
    cal.add_argument("--min-users", type=_positive_arg,
                     help="fit on labels of texts said by at least this many users, the exported "
                          "population (default: privacy.min_users of the configuration)")
    cal.add_argument("--work", help="folder for the simulated logs and runs (reused); required without --audit")
    cal.add_argument("--out", help="calibration TOML to write (default: the packaged mining/models/calibration.toml; "
                     "with --audit: <CSV stem>.calibration.toml beside the CSV)")

    aud = add_command(sub, "audit", verbose, "Audit a run's labels by hand: sample them for review; "
                      "`mining fit-calibration --audit` refits the calibration from the review.")
    aud_sub = aud.add_subparsers(dest="action", required=True, metavar="ACTION")
    smp = add_command(aud_sub, "audit sample", verbose,
                      "Write N candidate labels of a run (OUT/labels/), stratified by confidence (equal-count "
                      "raw-score strata), as a CSV for human review: locale, scrubbed text, candidate intent, "
                      "evidence, raw_score, confidence, support, the run's versions and an empty `correct` "
                      "column for the reviewer (see mining/fit/audit.py).")
    smp.add_argument("--run", required=True, metavar="OUT_DIR", help="output root of the run (its labels/ is read)")
    smp.add_argument("--n", required=True, type=count_arg, metavar="N", help="labels to sample")
    smp.add_argument("--seed", type=count_arg, default=0, help="sampling seed, >= 0 (default 0)")
    smp.add_argument("--strata", type=count_arg, default=10, metavar="K", help="equal-count strata (default 10)")
    smp.add_argument("--locale", action="append", default=[], metavar="LOCALE", help="only this locale (repeatable)")
    smp.add_argument("--min-users", type=_positive_arg, metavar="K",
                     help="only texts said by at least K users, those the export may publish "
                          "(default: privacy.min_users of the configuration); the run's own is the floor either way")
    smp.add_argument("--out", required=True, metavar="CSV", help="audit CSV to write (UTF-8)")
    smp.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    return parser


def _dispatch(args, argv: list[str]) -> int:
    handlers = {"simulate": (_simulate, args), "corrupt-logs": (_corrupt_logs, args), "evaluate": (_evaluate, args), "inspect": (_inspect, args),
                "loop": (_loop, args),
                "diff": (_diff, args),
                "config": (_config_show, args), "merge": (_merge, args),
                "fit-rephrase": (_fit_rephrase, args, argv), "fit-calibration": (_fit_calibration, args, argv),
                "audit": (_audit_sample, args)}
    if args.command in handlers:
        return guarded(*handlers[args.command])
    from mining.stages import STAGE_NAMES

    stages = STAGE_NAMES if args.command == "run" else (args.command.replace("-", "_"),)
    return guarded(_run_stages, args, stages)


def main(argv: list[str] | None = None) -> int:
    """``mining`` console script; returns the exit code (:data:`EXIT_CODES`)."""
    from mining.run_logging import setup_logging

    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    setup_logging(args.verbose)
    return top_level(_dispatch, args, argv)


if __name__ == "__main__":
    sys.exit(main())
