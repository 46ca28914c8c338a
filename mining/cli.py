"""mining: simulate logs, run the pipeline or one stage, evaluate against gold, refit models.

Exit codes: 0 success; 2 bad arguments or configuration; 3 input problem (no partitions,
reject share over the limit, missing upstream stage); 4 privacy precondition (no key);
1 anything else.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys

EXIT_CONFIG, EXIT_INPUT, EXIT_PRIVACY = 2, 3, 4
log = logging.getLogger("mining")


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {value!r}") from None


def add_run_args(p: argparse.ArgumentParser) -> None:
    """Arguments shared by ``mining run``, the stage subcommands and ``jobs/*.py``."""
    p.add_argument("--logs", required=True, help="log root holding dt=YYYY-MM-DD/ partitions")
    p.add_argument("--out", required=True, help="output root of the run")
    p.add_argument("--start-date", type=_date, help="first dt partition (inclusive)")
    p.add_argument("--end-date", type=_date, help="last dt partition (inclusive)")
    p.add_argument("--locale", action="append", default=[], help="only this locale (repeatable)")
    p.add_argument("--config", help="TOML file overriding mining/defaults.toml")
    p.add_argument("--min-users", type=int, help="k-anonymity: distinct users an exported text needs")
    p.add_argument("--cache-dir", help="embedding cache root, shared across runs")
    p.add_argument("--model-path", help="sentence-transformers model folder (default: packaged MiniLM)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. rephrase.threshold=0.6")


def config_from_args(args):
    from mining.config import load_config, parse_set

    overrides = parse_set(args.set)
    if args.min_users is not None:
        overrides.setdefault("privacy", {})["min_users"] = args.min_users
    if args.cache_dir:
        overrides.setdefault("embedding", {})["cache_dir"] = args.cache_dir
    if args.model_path:
        overrides.setdefault("embedding", {})["model_path"] = args.model_path
    return load_config(args.logs, args.out, config_file=args.config, start_date=args.start_date,
                       end_date=args.end_date, locales=tuple(args.locale), overrides=overrides)


def _guarded(fn, *a) -> int:
    """Run ``fn`` and map known failures to one-line messages and exit codes."""
    from mining.ingest import NoInputPartitions, RejectShareExceeded
    from mining.privacy import PrivacyError

    try:
        result = fn(*a)
    except (ValueError, argparse.ArgumentTypeError) as e:
        print(f"mining: configuration error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except (NoInputPartitions, RejectShareExceeded, FileNotFoundError) as e:
        print(f"mining: input error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except PrivacyError as e:
        print(f"mining: privacy error: {e}", file=sys.stderr)
        return EXIT_PRIVACY
    if result is not None:
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 0


def _run_stages(args, stages) -> dict:
    from mining import pipeline
    from mining.spark import get_spark

    cfg = config_from_args(args)
    return pipeline.run_all(get_spark(), cfg, stages)


def _simulate(args) -> dict:
    from mining.simulation import SimulationConfig, simulate

    cfg = SimulationConfig(corpus=args.corpus, n_turns=args.turns, days=args.days,
                           start_date=args.start_date, seed=args.seed, out_format=args.format)
    return simulate(cfg, args.logs, args.gold)


def _evaluate(args) -> dict:
    from mining import evaluation

    report = evaluation.evaluate(args.gold, args.out)
    print(evaluation.format_table(report))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2, sort_keys=True)
    return None


def _fit_rephrase(args, argv: list[str]) -> dict:
    from pathlib import Path

    from mining import rephrase_fit

    model = rephrase_fit.fit(args.corpus or ["hwu64", "slurp"], args.turns, args.seed, Path(args.work),
                             c=args.c, target_precision=args.target_precision,
                             out=Path(args.out) if args.out else None, argv=argv)
    return model.to_dict()


def _fit_calibration(args, argv: list[str]) -> dict:
    from pathlib import Path

    from mining import calibration_fit

    cal = calibration_fit.fit(args.corpus or ["hwu64"], args.turns, args.seed, Path(args.work),
                              min_users=args.min_users, out=Path(args.out) if args.out else None, argv=argv)
    return {"version": cal.version, **cal.fit}


def _merge(args) -> dict:
    from pathlib import Path

    from mining import merge

    mined_path = Path(args.mined)
    if (mined_path / "massive").is_dir():          # a run's output root: its published JSONL
        mined_path = mined_path / "massive"
    base = merge.read_training_set(args.base, dev_share=args.dev_share, seed=args.split_seed)
    mined = merge.read_training_set(mined_path, dev_share=args.dev_share, seed=args.split_seed)
    merged, stats = merge.merge_training_sets(base, mined)
    conflicts = merge.human_conflicts(base, mined)
    manifest = merge.write_merged(merged, args.out, stats)
    if len(conflicts) and args.conflicts:
        conflicts.to_json(args.conflicts, orient="records", lines=True, force_ascii=False)
    return {"out": args.out, "rows": manifest["rows"], "stats": stats, "conflicts_with_human": len(conflicts)}


EXAMPLES = """examples:
  mining simulate --corpus hwu64 --turns 20000 --days 3 --logs /tmp/logs --gold /tmp/gold
  MINING_DEMO_MODE=1 mining run --logs /tmp/logs --out /tmp/run --min-users 2
  mining evaluate --gold /tmp/gold --out /tmp/run
  mining fit-rephrase --work /tmp/fit     # refit mining/models/rephrase_lr.toml
  mining fit-calibration --work /tmp/fit  # refit mining/models/calibration.toml
  mining merge --base human/ --mined /tmp/run --out /tmp/merged   # add mined labels, keep human ones
"""


def build_parser() -> argparse.ArgumentParser:
    from mining.pipeline import STAGES

    parser = argparse.ArgumentParser(prog="mining", description=__doc__.split("\n")[0],
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="interaction logs + gold from a labeled corpus")
    sim.add_argument("--corpus", default="hwu64", choices=["hwu64", "slurp"])
    sim.add_argument("--turns", type=int, default=20_000, help="approximate number of turns")
    sim.add_argument("--days", type=int, default=3, help="number of dt partitions")
    sim.add_argument("--start-date", type=_date, default=dt.date(2026, 11, 1))
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--format", default="parquet", choices=["parquet", "jsonl"])
    sim.add_argument("--logs", required=True, help="output log root")
    sim.add_argument("--gold", required=True, help="output gold folder (never read by the miner)")
    run = sub.add_parser("run", help="all stages in one local Spark session")
    add_run_args(run)
    for stage in STAGES:
        add_run_args(sub.add_parser(stage.replace("_", "-"), help=f"only the {stage} stage"))
    ev = sub.add_parser("evaluate", help="score a run against the simulator's gold")
    ev.add_argument("--gold", required=True)
    ev.add_argument("--out", required=True, help="output root of the run to score")
    ev.add_argument("--json", help="also write the report as JSON here")
    from mining.rephrase_fit import FIT_SEED

    fit = sub.add_parser("fit-rephrase", help="refit the rephrase scorer on simulator gold",
                         description="Simulate logs from the development corpora, run detect_rephrases, "
                         "fit the logistic scorer on the gold cases and write the model TOML.")
    fit.add_argument("--corpus", action="append", choices=["hwu64", "slurp"],
                     help="development corpus (repeatable; default: hwu64 and slurp)")
    fit.add_argument("--turns", type=int, default=40_000, help="simulated turns per corpus")
    fit.add_argument("--seed", type=int, default=FIT_SEED, help="simulation seed (the benchmark uses others)")
    fit.add_argument("--work", required=True, help="folder for the simulated logs and runs (reused)")
    fit.add_argument("--c", type=float, default=1.0, help="inverse L2 strength of the logistic regression")
    fit.add_argument("--target-precision", type=float, default=0.97,
                     help="the threshold is the lowest with at least this pair precision on the fit data")
    fit.add_argument("--out", help="model TOML to write (default: the packaged mining/models/rephrase_lr.toml)")
    mg = sub.add_parser("merge", help="merge a run's mined labels into an existing training set",
                        description="Add mined labels to a training set in MASSIVE JSON Lines shape without "
                        "duplicates; a human label is never overridden (see mining/merge.py for the rules).")
    mg.add_argument("--base", required=True, help="existing training set: MASSIVE .jsonl file or folder, or Parquet")
    mg.add_argument("--mined", required=True,
                    help="a run's output root (its massive/ folder is used), or any path --base accepts")
    mg.add_argument("--out", required=True, help="output folder (<locale>.jsonl + merge_manifest.json, atomic)")
    mg.add_argument("--conflicts", help="write mined labels that contradict a human label here (JSON Lines)")
    mg.add_argument("--dev-share", type=float, default=0.1,
                    help="partition split for Parquet inputs that have no partition column")
    mg.add_argument("--split-seed", type=int, default=0)
    from mining.calibration_fit import FIT_SEED as CAL_SEED

    cal = sub.add_parser("fit-calibration", help="refit the label-confidence calibration on simulator gold",
                         description="Simulate logs from the development corpora, run the pipeline to "
                         "aggregate_labels uncalibrated, fit isotonic maps raw score -> P(label right) "
                         "and write the calibration TOML.")
    cal.add_argument("--corpus", action="append", choices=["hwu64", "slurp"],
                     help="development corpus (repeatable; default: hwu64, so slurp stays unseen)")
    cal.add_argument("--turns", type=int, default=80_000, help="simulated turns per corpus")
    cal.add_argument("--seed", type=int, default=CAL_SEED, help="simulation seed (the benchmark uses others)")
    cal.add_argument("--min-users", type=int, default=2,
                     help="fit on labels of texts said by at least this many users (the exported population)")
    cal.add_argument("--work", required=True, help="folder for the simulated logs and runs (reused)")
    cal.add_argument("--out", help="calibration TOML to write (default: the packaged mining/models/calibration.toml)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    from mining.pipeline import STAGES

    if args.command == "simulate":
        return _guarded(_simulate, args)
    if args.command == "evaluate":
        return _guarded(_evaluate, args)
    if args.command == "fit-rephrase":
        return _guarded(_fit_rephrase, args, argv)
    if args.command == "merge":
        return _guarded(_merge, args)
    if args.command == "fit-calibration":
        return _guarded(_fit_calibration, args, argv)
    stages = STAGES if args.command == "run" else (args.command.replace("-", "_"),)
    return _guarded(_run_stages, args, stages)


def job_main(stage: str, argv: list[str] | None = None) -> int:
    """Entry point of ``jobs/<stage>.py`` under spark-submit (the master comes from the
    submit configuration, not from the job)."""
    parser = argparse.ArgumentParser(prog=f"jobs/{stage}.py", description=f"Spark job: {stage}")
    add_run_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)

    def go():
        from pyspark.sql import SparkSession

        from mining import pipeline
        from mining.spark import configure_python_env, session_conf

        configure_python_env()
        cfg = config_from_args(args)
        spark = SparkSession.builder.appName(f"mining.{stage}").getOrCreate()
        session_conf(spark)
        try:
            return pipeline.run_all(spark, cfg, (stage,))
        finally:
            spark.stop()

    return _guarded(go)


if __name__ == "__main__":
    sys.exit(main())
