"""mining: mine weak NLU training labels from voice-assistant interaction logs.

Commands: the pipeline (``run`` or one stage), ``inspect`` a published dataset version,
``evaluate`` against simulator gold, ``config show``, ``merge`` into a training set,
refit the packaged models, ``simulate`` logs, ``corrupt-logs`` for ingest tests. ``mining --help`` lists them;
``mining COMMAND --help`` gives each one's options and examples.

Exit codes (:data:`EXIT_CODES`): 0 success; 1 unexpected error (one line on stderr, the
traceback with ``-v``); 2 bad arguments or configuration; 3 input problem (no partitions,
reject share over the limit, missing upstream stage, no complete dataset version, a failed
data-quality gate);
4 privacy precondition (no pseudonymization key); 130 interrupted (Ctrl-C).

Logging (:mod:`mining.logs`): every line carries the run id (``$MINING_RUN_ID``, exported to
child processes); ``MINING_LOG_FORMAT=json`` writes one JSON object per line.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys

EXIT_OK = 0
EXIT_ERROR = 1          # unexpected error: one line on stderr, the traceback with -v
EXIT_CONFIG = 2         # bad arguments (argparse's own code) or configuration
EXIT_INPUT = 3          # input problem: no partitions, rejects over the limit, missing stage or version,
                        # data-quality gate failed
EXIT_PRIVACY = 4        # privacy precondition: no pseudonymization key
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it
EXIT_CODES = {EXIT_OK: "success",
              EXIT_ERROR: "unexpected error (one line on stderr; -v logs the traceback)",
              EXIT_CONFIG: "bad arguments or configuration (unknown key, value out of range)",
              EXIT_INPUT: "input problem: no log partitions, too many rejects, missing upstream "
                          "stage or dataset version, failed data-quality gate",
              EXIT_PRIVACY: "privacy precondition: no pseudonymization key (MINING_PSEUDONYM_KEY)",
              EXIT_INTERRUPTED: "interrupted (Ctrl-C)"}
log = logging.getLogger("mining")


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {value!r}") from None


def _count(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value!r}")
    return n


def add_config_args(p: argparse.ArgumentParser) -> None:
    """The configuration layers a command line adds (see :mod:`mining.config`)."""
    p.add_argument("--config", metavar="FILE",
                   help="TOML file overriding mining/defaults.toml (default: $MINING_CONFIG)")
    p.add_argument("--min-users", type=int, metavar="K", help="k-anonymity: distinct users an exported text needs")
    p.add_argument("--cache-dir", metavar="DIR", help="embedding cache root, shared across runs")
    p.add_argument("--model-path", metavar="DIR", help="sentence-transformers model folder (default: packaged MiniLM)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. rephrase.threshold=0.6 (repeatable; wins over "
                        "the file and MINING__SECTION__KEY variables)")


def add_run_args(p: argparse.ArgumentParser) -> None:
    """Arguments shared by ``mining run``, the stage subcommands and ``jobs/*.py``."""
    p.add_argument("--logs", required=True, metavar="DIR", help="log root holding dt=YYYY-MM-DD/ partitions")
    p.add_argument("--out", required=True, metavar="DIR", help="output root of the run")
    p.add_argument("--start-date", type=_date, metavar="YYYY-MM-DD", help="first dt partition (inclusive)")
    p.add_argument("--end-date", type=_date, metavar="YYYY-MM-DD", help="last dt partition (inclusive)")
    p.add_argument("--locale", action="append", default=[], metavar="LOCALE", help="only this locale (repeatable)")
    add_config_args(p)


def override_layers(args) -> list[tuple[str, dict]]:
    """``--set`` values, then the one-key flags (which win), as (origin, values) layers."""
    from mining.config import parse_set

    layers = [("--set", parse_set(args.set))] if args.set else []
    for flag, section, key in (("min_users", "privacy", "min_users"), ("cache_dir", "embedding", "cache_dir"),
                               ("model_path", "embedding", "model_path")):
        value = getattr(args, flag)
        if value is not None and value != "":
            layers.append((f"--{flag.replace('_', '-')}", {section: {key: value}}))
    return layers


def config_from_args(args):
    from mining.config import load_config

    return load_config(args.logs, args.out, config_file=args.config, start_date=args.start_date,
                       end_date=args.end_date, locales=tuple(args.locale), overrides=override_layers(args))


def _guarded(fn, *a) -> int:
    """Run ``fn`` and map known failures to one-line messages and exit codes; print a
    returned result as JSON on stdout."""
    from mining.ingest import NoInputPartitions, RejectShareExceeded
    from mining.inspect_dataset import DatasetNotFound
    from mining.privacy import PrivacyError
    from mining.quality import QualityGateFailed

    known = ((EXIT_CONFIG, "configuration", (ValueError, argparse.ArgumentTypeError)),
             (EXIT_INPUT, "input", (NoInputPartitions, RejectShareExceeded, FileNotFoundError, DatasetNotFound,
                                    QualityGateFailed)),
             (EXIT_PRIVACY, "privacy", (PrivacyError,)))
    try:
        result = fn(*a)
    except tuple(t for _, _, types in known for t in types) as e:
        code, kind = next((code, kind) for code, kind, types in known if isinstance(e, types))
        log.debug("%s error", kind, exc_info=True)
        print(f"mining: {kind} error: {_one_line(e)}", file=sys.stderr)
        return code
    if result is not None:
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return EXIT_OK


def _one_line(e: BaseException, limit: int = 500) -> str:
    """First non-empty line of ``str(e)`` (Py4J errors carry a Java stack), clipped."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = lines[0] if lines else type(e).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _top_level(fn, *a) -> int:
    """Run ``fn`` (which returns an exit code); an exception it lets through becomes exit 1
    with one line on stderr (traceback logged at DEBUG: ``-v``), Ctrl-C exit 130."""
    from mining.logs import current_run_id

    try:
        code = fn(*a)
        sys.stdout.flush()             # a closed pipe fails here, not at interpreter exit
        return code
    except KeyboardInterrupt:
        print("mining: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:            # stdout closed early (`mining inspect ... | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as e:
        log.debug("unexpected error", exc_info=True)
        where = "traceback above" if log.isEnabledFor(logging.DEBUG) else "-v logs the traceback"
        print(f"mining: unexpected error: {type(e).__name__}: {_one_line(e)} (run {current_run_id()}; {where})",
              file=sys.stderr)
        return EXIT_ERROR


def _run_stages(args, stages) -> dict:
    from mining import pipeline
    from mining.spark import get_spark

    cfg = config_from_args(args)
    return pipeline.run_all(get_spark(), cfg, stages)


def _simulate(args) -> dict:
    from mining.simulation import SimulationConfig, simulate

    if args.locales:
        from mining.simulation_locales import DEFAULT_LOCALES, simulate_locales

        locales = DEFAULT_LOCALES if args.locales == "all" else tuple(x.strip() for x in args.locales.split(","))
        return simulate_locales(locales, args.turns, args.logs, args.gold, days=args.days,
                                start_date=args.start_date, seed=args.seed, out_format=args.format)
    cfg = SimulationConfig(corpus=args.corpus, n_turns=args.turns, days=args.days,
                           start_date=args.start_date, seed=args.seed, out_format=args.format)
    return simulate(cfg, args.logs, args.gold)


def _corrupt_logs(args) -> dict | None:
    from mining import corruption

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
    from mining import evaluation

    from pathlib import Path

    from mining.report import write_report

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
    write_report(args.out, html, args.gold, evaluation=report)
    log.info("report with the gold figures and the reliability diagram: %s", html)
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


def _inspect(args) -> None:
    from mining import inspect_dataset

    summary = inspect_dataset.summarize(args.path, samples=args.samples, locale=args.locale, intent=args.intent)
    sys.stdout.write(inspect_dataset.to_json(summary) + "\n" if args.json
                     else inspect_dataset.format_summary(summary))


def _config_show(args) -> None:
    from mining.config import build_sections, format_toml, resolve_sections

    sections, origins = resolve_sections(args.config, override_layers(args))
    build_sections(sections)                     # validate ranges as a run would
    print("# Effective mining configuration: mining/defaults.toml <- --config/$MINING_CONFIG <- "
          "MINING__SECTION__KEY\n# variables <- --set <- flags. A comment names where a value came "
          "from; the rest are defaults.\n")
    sys.stdout.write(format_toml(sections, origins))


#: Commands as `mining --help` lists them: (group, ((command, one-line summary), ...)).
COMMAND_GROUPS = (
    ("mine logs (local Spark; under Airflow: jobs/<stage>.py)", (
        ("run", "all five stages in order, in one local Spark session"),
        ("detect-rephrases", "stage 1: validate, pseudonymize, sessions, friction, scored rephrase pairs"),
        ("embed-utterances", "stage 2: embed each distinct utterance (cached across runs)"),
        ("cluster-variants", "stage 3: FAISS kNN graph -> variant clusters per locale"),
        ("aggregate-labels", "stage 4: vote over users' rephrases -> labels with calibrated confidence"),
        ("export-dataset", "stage 5: privacy gates -> versioned training set, publish OUT/latest"))),
    ("look at results", (
        ("inspect", "counts and sample rows of a published dataset version (no Spark)"),
        ("evaluate", "score a run against the simulator's gold"),
        ("config show", "the effective configuration as TOML, with where each value came from"))),
    ("use the labels", (
        ("merge", "merge a run's mined labels into an existing training set"),)),
    ("refit the packaged models", (
        ("fit-rephrase", "refit the rephrase scorer on simulator gold"),
        ("fit-calibration", "refit the label-confidence calibration on simulator gold"))),
    ("test data", (
        ("simulate", "interaction logs + gold from a labeled corpus (HWU64, SLURP)"),
        ("corrupt-logs", "copy clean logs and add malformed rows and files (28 kinds) for ingest tests"))),
)
SUMMARY = {cmd: text for _, cmds in COMMAND_GROUPS for cmd, text in cmds}

ENVIRONMENT = """environment:
  MINING_CONFIG=FILE                default of --config
  MINING__<SECTION>__<KEY>=VALUE    one config value, between the file and --set
                                    (e.g. MINING__PRIVACY__MIN_USERS=3)
  MINING_PSEUDONYM_KEY              HMAC key for user/session ids (secret, >= 16 bytes)
  MINING_DEMO_MODE=1                allow the public demo key instead
  MINING_SPARK_MASTER               Spark master of local runs (default local[2])
  MINING_LOG_FORMAT=json            one JSON object per log line (default: text)
  MINING_RUN_ID                     run id in every log line (default: a new one per invocation)"""


def _top_help() -> tuple[str, str]:
    width = max(len(c) for c in SUMMARY) + 2
    lines = ["Mine weak NLU training labels from voice-assistant interaction logs: rephrase pairs,",
             "cross-user variants (sentence embeddings + FAISS) and calibrated labels, on Spark.", "",
             "commands:"]
    for group, cmds in COMMAND_GROUPS:
        lines.append(f"  {group}")
        lines += [f"    {cmd.ljust(width)}{text}" for cmd, text in cmds]
    lines += ["", "Run `mining COMMAND --help` for a command's options and examples."]
    codes = "\n".join(f"  {code:<4}{text}" for code, text in EXIT_CODES.items())
    return "\n".join(lines), f"{EXAMPLES}\nexit codes:\n{codes}\n\n{ENVIRONMENT}\n"


EXAMPLES = """examples:
  mining simulate --corpus hwu64 --turns 20000 --days 3 --logs /tmp/logs --gold /tmp/gold
  MINING_DEMO_MODE=1 mining run --logs /tmp/logs --out /tmp/run --min-users 2
  mining inspect /tmp/run --samples 10
  mining evaluate --gold /tmp/gold --out /tmp/run
  mining merge --base human/ --mined /tmp/run --out /tmp/merged   # add mined labels, keep human ones
"""

_STAGE_EXAMPLES = """examples:
  MINING_DEMO_MODE=1 mining {cmd} --logs /tmp/logs --out /tmp/run
  mining {cmd} --logs /data/logs --out /data/mining/runs/2026-11-03 \\
      --start-date 2026-11-01 --end-date 2026-11-03 --config prod.toml -v

Reruns only this stage: the outputs of the earlier stages must be in --out.
Under spark-submit the same stage is jobs/{stage}.py with the same options."""

EPILOGS = {
    "run": """examples:
  MINING_DEMO_MODE=1 mining run --logs /tmp/logs --out /tmp/run --min-users 2
  mining run --logs /data/logs --out /data/mining/runs/2026-11-03 --start-date 2026-11-01 \\
      --end-date 2026-11-03 --locale en-US --set rephrase.threshold=0.6
  MINING__PRIVACY__MIN_USERS=5 mining run --config prod.toml --logs /data/logs --out /tmp/run

Prints the stages' stats as JSON on stdout; logs (stderr) one line per stage, or a progress
bar on a terminal. The dataset version is published under OUT/latest.""",
    "inspect": """examples:
  mining inspect /tmp/run                       # a run's OUT root: its latest version
  mining inspect /tmp/run/versions/v20261103-7063d03c77 --samples 20 --locale en-US
  mining inspect /tmp/run/latest --intent alarm_set --json | jq .confidence

Rows, locales, intents, evidence and confidence follow --locale/--intent; drops, dropped
slots and scrubbed PII are whole-version figures from the manifest. Exit 3 when PATH holds
no complete dataset version.""",
    "evaluate": """examples:
  mining evaluate --gold /tmp/gold --out /tmp/run
  mining evaluate --gold demo/gold --out demo/mining/runs/2026-11-03 --json /tmp/eval.json""",
    "config": """examples:
  mining config show
  mining config show --config prod.toml --set rephrase.threshold=0.6""",
    "config show": """examples:
  mining config show
  mining config show --config prod.toml --set rephrase.threshold=0.6 --min-users 5
  MINING__PRIVACY__MIN_USERS=3 mining config show > effective.toml   # reusable as --config

Precedence, lowest first: mining/defaults.toml, --config FILE (default $MINING_CONFIG),
MINING__<SECTION>__<KEY> variables, --set, the one-key flags. Exit 2 on an unknown key or a
bad value.""",
    "merge": """examples:
  mining merge --base human/ --mined /tmp/run --out /tmp/merged
  mining merge --base massive/en-US.jsonl --mined /tmp/run/massive --out /tmp/merged \\
      --conflicts /tmp/conflicts.jsonl""",
    "fit-rephrase": """examples:
  mining fit-rephrase --work /tmp/fit           # refit mining/models/rephrase_lr.toml
  mining fit-rephrase --work /tmp/fit --corpus hwu64 --target-precision 0.95 --out /tmp/rephrase_lr.toml""",
    "fit-calibration": """examples:
  mining fit-calibration --work /tmp/fit        # refit mining/models/calibration.toml
  mining fit-calibration --work /tmp/fit --turns 40000 --out /tmp/calibration.toml""",
    "corrupt-logs": """examples:
  mining corrupt-logs --list                    # the kinds of corruption
  mining corrupt-logs --logs /tmp/logs --out /tmp/bad --kinds all --seed 0
  mining corrupt-logs --logs /tmp/logs --out /tmp/bad --kinds truncated_gzip,invalid_utf8 --no-clean
  MINING_DEMO_MODE=1 mining detect-rephrases --logs /tmp/bad --out /tmp/run \\
      --set validation.max_reject_share=1.0     # every kind accounted for in rejects/

Copies the clean dt= partitions to --out and adds files corrupt-<kind>.* with fresh turn ids
x-<kind>-<n>. Prints (and writes to OUT/_corruption.json) per kind: the input rows ingest must
count, the expected outcome {reason or "accepted": rows} and details (blank lines, lost rows).
Deterministic for a seed. Exit 2 on an unknown kind or a non-empty --out, 3 when --logs holds
no rows.""",
    "simulate": """examples:
  mining simulate --corpus hwu64 --turns 20000 --days 3 --logs /tmp/logs --gold /tmp/gold
  mining simulate --corpus slurp --format jsonl --seed 3 --logs /tmp/slurp-logs --gold /tmp/slurp-gold
  mining simulate --locales all --turns 90000 --logs /tmp/ml-logs --gold /tmp/ml-gold""",
}


def _add(sub, name: str, verbose: argparse.ArgumentParser, description: str | None = None,
         epilog: str | None = None) -> argparse.ArgumentParser:
    """Subcommand ``name`` (``"config show"``: ``show`` under ``config``) with a description
    (default: its one-line summary) and an examples epilog (:data:`EPILOGS`)."""
    import textwrap

    summary = SUMMARY.get(name, "")
    description = textwrap.fill(description or summary[:1].upper() + summary[1:] + ".", width=88)
    return sub.add_parser(name.split()[-1], parents=[verbose], prog=f"mining {name}", help=summary,
                          description=description, epilog=epilog or EPILOGS[name],
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    from mining.calibration_fit import FIT_SEED as CAL_SEED
    from mining.pipeline import STAGES
    from mining.rephrase_fit import FIT_SEED

    description, epilog = _top_help()
    parser = argparse.ArgumentParser(prog="mining", usage="mining [-h] [-v] COMMAND [options]",
                                     description=description, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging; tracebacks of unexpected errors")
    verbose = argparse.ArgumentParser(add_help=False)   # -v also after the command: `mining run ... -v`
    verbose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="debug logging; tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS)

    sim = _add(sub, "simulate", verbose)
    sim.add_argument("--corpus", default="hwu64", choices=["hwu64", "slurp"])
    sim.add_argument("--locales", metavar="LIST",
                     help="mixed multilingual logs instead: comma-separated locales (en-US from HWU64, "
                          "de-DE fr-FR es-ES ru-RU zh-CN th-TH ar-SA el-GR generated with hassil), or all; "
                          "--turns is split evenly, locale i uses seed SEED*100+i")
    sim.add_argument("--turns", type=int, default=20_000, help="approximate number of turns")
    sim.add_argument("--days", type=int, default=3, help="number of dt partitions")
    sim.add_argument("--start-date", type=_date, default=dt.date(2026, 11, 1))
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--format", default="parquet", choices=["parquet", "jsonl"])
    sim.add_argument("--logs", required=True, help="output log root")
    sim.add_argument("--gold", required=True, help="output gold folder (never read by the miner)")
    bad = _add(sub, "corrupt-logs", verbose, "Write a corrupted copy of a clean log root for testing "
               "ingest: the clean partitions plus, per kind of corruption, files of malformed rows "
               "(see mining/corruption.py), with the accounting ingest must report.")
    bad.add_argument("--logs", help="clean log root (dt=YYYY-MM-DD partitions; Parquet or JSON Lines)")
    bad.add_argument("--out", help="output log root (must not exist or be empty)")
    bad.add_argument("--kinds", default="all", help="comma-separated kinds, or all (default)")
    bad.add_argument("--seed", type=int, default=0, help="which clean rows each kind copies (default 0)")
    bad.add_argument("--rows-per-kind", type=int, default=12, metavar="N", help="rows per kind (default 12)")
    bad.add_argument("--no-clean", action="store_true", help="write only the corrupted files, not the clean ones")
    bad.add_argument("--list", action="store_true", help="list the kinds and exit")
    add_run_args(_add(sub, "run", verbose, "Run the five stages in order in one local Spark session "
                      "($MINING_SPARK_MASTER, default local[2]): " + " -> ".join(STAGES) + "."))
    for stage in STAGES:
        cmd = stage.replace("_", "-")
        add_run_args(_add(sub, cmd, verbose, f"Only the {stage} stage ({SUMMARY[cmd]}).",
                          _STAGE_EXAMPLES.format(cmd=cmd, stage=stage)))

    ins = _add(sub, "inspect", verbose, "Print what a published dataset version holds: rows by locale, "
               "intent and evidence, confidence quantiles, drops by reason, dropped slots, scrubbed PII, "
               "train/dev partitions, and sample rows (most users first). Reads Parquet and the "
               "manifest; no Spark.")
    ins.add_argument("path", metavar="PATH", help="a run's OUT root (its latest version), versions/<v>, or latest")
    ins.add_argument("--samples", type=_count, default=5, metavar="N", help="sample rows to show (default 5)")
    ins.add_argument("--locale", help="only this locale")
    ins.add_argument("--intent", help="only this intent")
    ins.add_argument("--json", action="store_true", help="print the summary as JSON (every intent, full texts)")

    ev = _add(sub, "evaluate", verbose)
    ev.add_argument("--gold", required=True)
    ev.add_argument("--out", required=True, help="output root of the run to score")
    ev.add_argument("--json", help="also write the report as JSON here")
    ev.add_argument("--report", help="report.html with the gold figures and a reliability diagram "
                    "(default: OUT/evaluation/report.html)")

    conf = _add(sub, "config", verbose, "Configuration tools.")
    conf_sub = conf.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_config_args(_add(conf_sub, "config show", verbose,
                         "Print the effective configuration as TOML: the values a run with these "
                         "options and this environment would use, each one set above the defaults "
                         "followed by a comment naming where it came from."))

    mg = _add(sub, "merge", verbose, "Add mined labels to a training set in MASSIVE JSON Lines shape without "
              "duplicates; a human label is never overridden (see mining/merge.py for the rules).")
    mg.add_argument("--base", required=True, help="existing training set: MASSIVE .jsonl file or folder, or Parquet")
    mg.add_argument("--mined", required=True,
                    help="a run's output root (its massive/ folder is used), or any path --base accepts")
    mg.add_argument("--out", required=True, help="output folder (<locale>.jsonl + merge_manifest.json, atomic)")
    mg.add_argument("--conflicts", help="write mined labels that contradict a human label here (JSON Lines)")
    mg.add_argument("--dev-share", type=float, default=0.1,
                    help="partition split for Parquet inputs that have no partition column")
    mg.add_argument("--split-seed", type=int, default=0)

    fit = _add(sub, "fit-rephrase", verbose, "Simulate logs from the development corpora, run "
               "detect_rephrases, fit the logistic scorer on the gold cases and write the model TOML.")
    fit.add_argument("--corpus", action="append", choices=["hwu64", "slurp"],
                     help="development corpus (repeatable; default: hwu64 and slurp)")
    fit.add_argument("--turns", type=int, default=40_000, help="simulated turns per corpus")
    fit.add_argument("--seed", type=int, default=FIT_SEED, help="simulation seed (the benchmark uses others)")
    fit.add_argument("--work", required=True, help="folder for the simulated logs and runs (reused)")
    fit.add_argument("--c", type=float, default=1.0, help="inverse L2 strength of the logistic regression")
    fit.add_argument("--target-precision", type=float, default=0.97,
                     help="the threshold is the lowest with at least this pair precision on the fit data")
    fit.add_argument("--out", help="model TOML to write (default: the packaged mining/models/rephrase_lr.toml)")

    cal = _add(sub, "fit-calibration", verbose, "Simulate logs from the development corpora, run the "
               "pipeline to aggregate_labels uncalibrated, fit isotonic maps raw score -> P(label right) "
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


def _dispatch(args, argv: list[str]) -> int:
    handlers = {"simulate": (_simulate, args), "corrupt-logs": (_corrupt_logs, args), "evaluate": (_evaluate, args), "inspect": (_inspect, args),
                "config": (_config_show, args), "merge": (_merge, args),
                "fit-rephrase": (_fit_rephrase, args, argv), "fit-calibration": (_fit_calibration, args, argv)}
    if args.command in handlers:
        return _guarded(*handlers[args.command])
    from mining.pipeline import STAGES

    stages = STAGES if args.command == "run" else (args.command.replace("-", "_"),)
    return _guarded(_run_stages, args, stages)


def main(argv: list[str] | None = None) -> int:
    """``mining`` console script; returns the exit code (:data:`EXIT_CODES`)."""
    from mining.logs import setup_logging

    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    setup_logging(args.verbose)
    return _top_level(_dispatch, args, argv)


def job_main(stage: str, argv: list[str] | None = None) -> int:
    """Entry point of ``jobs/<stage>.py`` under spark-submit (the master comes from the
    submit configuration, not from the job). Same logging (run id from ``$MINING_RUN_ID``
    when the submitter sets it) and exit codes as :func:`main`."""
    from mining.logs import setup_logging

    parser = argparse.ArgumentParser(prog=f"jobs/{stage}.py", description=f"Spark job: {stage}")
    add_run_args(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)

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

    return _top_level(_guarded, go)


if __name__ == "__main__":
    sys.exit(main())
