"""Process entry points shared by ``mining`` (mining/cli.py) and ``jobs/<stage>.py``
(:func:`mining.stages.runner.job_main`): the run arguments, the configuration they build,
and the mapping of failures to the exit codes of :mod:`mining.errors`."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys

from mining.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, KNOWN_FAILURES, classify

log = logging.getLogger("mining")


def iso_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {value!r}") from None


def int_at_least(minimum: int):
    """argparse type: an integer >= ``minimum`` (what is no integer fails too)."""
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            n = minimum - 1
        if n < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value!r}")
        return n
    return parse


#: argparse type: a count, an integer >= 0
count_arg = int_at_least(0)


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
    p.add_argument("--start-date", type=iso_date, metavar="YYYY-MM-DD", help="first dt partition (inclusive)")
    p.add_argument("--end-date", type=iso_date, metavar="YYYY-MM-DD", help="last dt partition (inclusive)")
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


def guarded(fn, *a) -> int:
    """Run ``fn`` and map known failures to one-line messages and exit codes; print a
    returned result as JSON on stdout."""
    try:
        result = fn(*a)
    except tuple(t for _, _, types in KNOWN_FAILURES for t in types) as e:
        code, kind = classify(e)
        log.debug("%s error", kind, exc_info=True)
        print(f"mining: {kind} error: {one_line(e)}", file=sys.stderr)
        return code
    if result is not None:
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return EXIT_OK


def one_line(e: BaseException, limit: int = 500) -> str:
    """First informative line of ``str(e)`` (Py4J errors carry a Java stack), clipped. A
    Py4JJavaError's first line only names the Java call ("An error occurred while calling
    o123.parquet."); its cause is the line after, which is taken instead."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].startswith("An error occurred while calling"):
        lines = lines[1:]
    text = lines[0].lstrip(": ") if lines else type(e).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


def top_level(fn, *a) -> int:
    """Run ``fn`` (which returns an exit code); an exception it lets through becomes exit 1
    with one line on stderr (traceback logged at DEBUG: ``-v``), Ctrl-C exit 130."""
    from mining.run_logging import current_run_id

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
        print(f"mining: unexpected error: {type(e).__name__}: {one_line(e)} (run {current_run_id()}; {where})",
              file=sys.stderr)
        return EXIT_ERROR
