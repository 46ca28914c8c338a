"""What abstaining on the labels the logs' check cannot check would cost and gain.

    python bench/abstain_whatif.py RUN=GOLD [RUN=GOLD ...]
    python bench/abstain_whatif.py --abstain unknown_intent --abstain uninformative RUN=GOLD

A label whose intent no friction-free text of the night carries (``logs_check`` =
``unknown_intent``, :mod:`mining.core.confident_learning`) has no evidence independent of
its own pairs. Per finished run (``RUN``: a ``mining run`` output; ``GOLD``: its simulator
gold folder, e.g. the ``bench/leaveout.py`` and ``bench/labels.py`` work folders), this
scores the published training set as it is and as if the labels of each ``--abstain``
status had abstained (:func:`mining.eval.evaluation.evaluate` with ``abstain``): labels,
label precision, precision at confidence >= 0.9, ECE, coverage of the oracle texts and the
share of the oracle's retraining lift recovered. Both rows of a run come from the same
outputs, so the difference is the abstention alone. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mining.eval.evaluation import evaluate  # noqa: E402

COLUMNS = ("labels", "label_precision", "label_precision_conf90", "ece", "coverage", "lift_recovered")


def rows(run: str, gold: str, abstain: tuple[str, ...]) -> list[str]:
    """Two Markdown rows for one run: as published (with how many of its labels have an
    ``abstain`` status), then with those labels left out."""
    out = []
    for arm, statuses in (("as published", ()), ("abstain " + " + ".join(abstain), abstain)):
        r = evaluate(gold, run, abstain=statuses)
        of_status = sum(v["labels"] for k, v in r.get("by_logs_check", {}).items() if k in abstain)
        cells = [f"{r['labels']:,}", *(f"{r[c]:.3f}" for c in COLUMNS[1:5]), f"{r['lift_recovered']:.1%}",
                 "" if statuses else f"{of_status:,}"]
        out.append(f"| {Path(run).parent.name}/{Path(run).name} | {arm} | " + " | ".join(cells) + " |")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="RUN=GOLD", help="a run's output folder and its gold folder")
    ap.add_argument("--abstain", action="append", metavar="STATUS",
                    help="logs_check status scored as abstained (repeatable; default unknown_intent)")
    args = ap.parse_args(argv)
    abstain = tuple(args.abstain or ["unknown_intent"])
    lines = ["| run | arm | labels | precision | precision @conf>=0.9 | ECE | coverage | lift recovered "
             "| of them with the status |", "|---|---|---|---|---|---|---|---|---|"]
    for pair in args.runs:
        run, sep, gold = pair.partition("=")
        if not sep:
            ap.error(f"expected RUN=GOLD, got {pair!r}")
        lines += rows(run, gold, abstain)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
