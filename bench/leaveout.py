"""The leave-out benchmark (issue 19): quality where nothing was fitted, in one command.

    python bench/leaveout.py                              # default sizes → bench/LEAVEOUT.md
    python bench/leaveout.py --locale-turns 1500 --hint3-turns 4000     # a small run (minutes)
    python bench/leaveout.py --parts hint3 --models hard --min-users 1  # a slice

Everything reported is data that no fit of the project ever saw:

- **locales**: home-assistant-intents languages outside :data:`mining.sim.locales.DEFAULT_LOCALES`
  (:data:`mining.sim.hassil_locales.HELD_OUT_LOCALES`; default: :data:`LOCALES`, 24 languages in
  8 scripts), mixed into one log as a multilingual assistant writes it
  (``mining simulate --locales``);
- **HINT3**: the three chatbot corpora (real users' queries, fine-grained single-domain
  taxonomies), one log each (``mining simulate --corpus hint3-<bot>``);
- **seed 13** (development seeds are 7, 11, 101 and 211; seed 13 was looked at while a method was
  chosen, see :data:`LOOKED_AT`);
- **both behaviour models** of the simulator (``--behaviour-model default|hard``).

Each log goes through the real pipeline, ``MINING_DEMO_MODE=1 mining run`` with the committed
configuration and the default ``privacy.min_users``, then ``mining evaluate``; then
``mining export-dataset --min-users 1`` on the same upstream outputs (only the export stage
reads ``min_users``; one user's word is enough, so the labels the k-anonymity gate holds back
are scored too) and ``mining evaluate`` again. Reported per locale and per corpus: pair precision, label precision,
precision at confidence ≥ 0.9, confidence ECE (10 bins), coverage of the oracle texts and the
share of the oracle's retraining lift recovered (definitions: :mod:`mining.eval.evaluation`).
The commands and helpers are those of ``bench/locales.py`` (imported, not copied).
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mining.sim.corpora import HINT3_CORPORA  # noqa: E402
from mining.sim.hassil_locales import HELD_OUT_LOCALES, SCRIPTS  # noqa: E402
from mining.sim.locales import DEFAULT_LOCALES  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_locales", ROOT / "bench" / "locales.py")
bench_locales = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_locales)
MINING, _run = bench_locales.MINING, bench_locales._run

WORK = ROOT / "bench" / ".work" / "leaveout"
#: Held-out locales of the default run: 24 languages in 8 scripts, each generating ≥ 10
#: intents (hassil_corpus keeps an intent with ≥ 12 distinct sentences). Measured 2026-12-05
#: (intents generated): left out for too few intents, as their templates need free-text
#: wildcards or lists we do not fill: tr-TR 6, ur-PK 6, id-ID 3, ms-MY 4, sw-KE 2, mn-MN 2,
#: gu-IN 4, pa-IN 2, ta-IN 2, te-IN 2, kn-IN 2, ka-GE 2, hy-AM 4, ja-JP 4; left out for run
#: time only (enough intents, pass ``--locales`` to add them): sk-SK, nb-NO, sl-SI, lv-LV.
LOCALES = ("pl-PL", "it-IT", "nl-NL", "pt-PT", "cs-CZ", "sv-SE", "da-DK", "fi-FI", "hu-HU", "ro-RO",
           "hr-HR", "ca-ES", "lt-LT", "vi-VN", "uk-UA", "bg-BG", "sr-RS", "he-IL", "fa-IR", "hi-IN",
           "ne-NP", "bn-IN", "ml-IN", "ko-KR")
METRICS = (("pair_precision", "pair precision"), ("label_precision", "label precision"),
           ("label_precision_conf90", "precision @conf≥0.9"), ("ece", "ECE"),
           ("coverage", "coverage"), ("lift_recovered", "lift recovered"))
#: Seeds whose logs shaped a fit (7, 101) or a rule (11: the min_events rule, bench/locales.py).
DEV_SEEDS = (7, 11, 101, 211)
#: Seeds held out from every fit whose logs were still looked at while a method was chosen.
LOOKED_AT = {13: "seed 13's logs were held out from every fit but looked at while the target-failure "
                 "method and its BIC gate were chosen (docs/results.md)"}
#: Default sizes: turns per held-out locale (about 30 labels each) and per HINT3 corpus.
LOCALE_TURNS, HINT3_TURNS = 1500, 4000


#: The label precision target of issue 19, per locale and per corpus.
TARGET = 0.93


def precision_ci(precision: float, labels: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927; ``scipy.stats.binomtest(...).proportion_ci``) of a
    label precision measured on ``labels`` labels: (low, high) in [0, 1], (nan, nan) for no
    labels. With the ~30 labels of a held-out locale it spans about ±10 points, so a per-locale
    precision or a best–worst gap is only evidence where the interval says so."""
    from scipy.stats import binomtest

    if labels <= 0:
        return float("nan"), float("nan")
    ci = binomtest(round(precision * labels), labels).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def _row(name: str, r: dict) -> str:
    cells = [f"{r['turns']:,}", f"{r['accepted_pairs']:,}", f"{r['labels']:,}", f"{r['labels_conf90']:,}"]
    cells += [f"{r[k]:.1%}" if k == "lift_recovered" else f"{r[k]:.3f}" for k, _ in METRICS]
    low, high = precision_ci(r["label_precision"], r["labels"])
    cells.insert(6, f"{low:.2f}–{high:.2f}")
    delta = accuracy_delta(r)
    cells.append(f"{100 * delta:+.1f}" if math.isfinite(delta) else "n/a")
    return f"| {name} | " + " | ".join(cells) + " |"


def accuracy_delta(r: dict) -> float:
    """Test accuracy of seed + mined minus seed alone (−1..1; NaN without a test split):
    ``accuracy_delta``, or from the two accuracies in a report written before that key."""
    d = r.get("accuracy_delta")
    if d is None:
        d = r.get("acc_seed_mined", float("nan")) - r.get("acc_seed", float("nan"))
    return float("nan") if d is None else float(d)


def lowered_summary(rows: dict[str, dict]) -> str:
    """How many rows' retraining on seed + mined lowered accuracy (:func:`accuracy_delta` < 0,
    also where the oracle gains nothing and ``lift_recovered`` reads 0), of those with a
    test split."""
    known = {n: accuracy_delta(r) for n, r in rows.items() if math.isfinite(accuracy_delta(r))}
    lowered = sorted(n for n, d in known.items() if d < 0)
    return (f"retraining on seed + mined lowered accuracy in {len(lowered)} of {len(known)}"
            f"{' (' + ', '.join(lowered) + ')' if lowered else ''}"
            f"{f' ({len(rows) - len(known)} without a test split)' if len(known) < len(rows) else ''}")


def ci_summary(rows: dict[str, dict]) -> str:
    """How many rows' 95% interval of label precision lies wholly below / above :data:`TARGET`."""
    cis = {n: precision_ci(r["label_precision"], r["labels"]) for n, r in rows.items() if r["labels"]}
    below = sorted(n for n, (_, hi) in cis.items() if hi < TARGET)
    above = sorted(n for n, (lo, _) in cis.items() if lo >= TARGET)
    return (f"95% Wilson intervals of label precision: wholly below {TARGET} in {len(below)} of {len(cis)}"
            f"{' (' + ', '.join(below) + ')' if below else ''}, wholly at or above it in {len(above)}; "
            f"the rest cannot tell at these label counts.")


def table(rows: dict[str, dict], first: str) -> str:
    """A Markdown table: one row per locale or corpus of evaluate results ``rows``."""
    head = [first, "turns", "accepted pairs", "labels", "labels @≥0.9", *(h for _, h in METRICS)]
    head.insert(7, "label precision 95% CI")
    head.append("accuracy Δ (points)")
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *(_row(n, r) for n, r in rows.items())])


@functools.cache
def _code_version() -> str:
    """The commit the benchmark runs (``git describe --always --dirty``), read once per
    process at the start of :func:`main`: outputs of another commit are never reused, so every
    figure belongs to one version of the code, and a commit made while the benchmark runs
    changes neither its markers nor its header."""
    done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def _simulate(logs: Path, gold: Path, what: list[str], turns: int, seed: int, model: str) -> float:
    stamp, inputs = gold / ".leaveout-code", gold / ".leaveout-input"   # the corpus/locales, e.g.
    if (logs / "_SUCCESS").exists() and stamp.exists() and stamp.read_text() == _code_version() \
            and inputs.exists() and inputs.read_text() == " ".join(what):   # another locale set
        return 0.0                                                          # of the same size
    shutil.rmtree(logs, ignore_errors=True)
    shutil.rmtree(gold, ignore_errors=True)
    seconds, _ = _run([*MINING, "simulate", *what, "--turns", str(turns), "--days", "3", "--seed", str(seed),
                       "--behaviour-model", model, "--logs", str(logs), "--gold", str(gold)])
    stamp.write_text(_code_version())
    inputs.write_text(" ".join(what))
    return seconds


def runs_dir(locale_turns: int, hint3_turns: int) -> Path:
    """Where the runs and evaluate reports of one size live: ``runs/`` at the default sizes,
    ``runs-<locale turns>-<hint3 turns>/`` otherwise, so a run at another size never
    overwrites (or is rendered as) the default one."""
    default = (LOCALE_TURNS, HINT3_TURNS) == (locale_turns, hint3_turns)
    return WORK / ("runs" if default else f"runs-{locale_turns}-{hint3_turns}")


def _pipeline(logs: Path, gold: Path, tag: str, min_users: list[str], sets: list[str],
              runs: Path) -> tuple[dict, list[str]]:
    """``mining run`` once (with the first of ``min_users``), then for each further value only
    ``mining export-dataset --min-users K`` on the same upstream outputs (only export_dataset
    reads ``privacy.min_users``), the previous versions removed first so that label retention
    has nothing to keep; ``mining evaluate`` after each. A run of the same commit, logs and
    ``sets`` already complete (markers ``.leaveout-run``, ``.leaveout-code``,
    ``.leaveout-input``) is reused: every min_users is then exported anew. Returns
    ({min_users: report}, timing lines)."""
    out = runs / tag
    reports, timings = {}, []
    for i, k in enumerate(min_users):
        extra = [] if k == "default" else ["--min-users", k]
        marker = out / ".leaveout-run"   # holds the min_users of the latest export
        code = out / ".leaveout-code"    # and the commit of the run: another commit's run is redone
        inputs = out / ".leaveout-input"  # and its logs (seed, size) and --set: other ones are redone
        # the logs' path names their size, seed and model; their simulate inputs name the locale
        # set (another set of the same size reuses the path): all three decide a rerun
        key = "\n".join([str(logs), (gold / ".leaveout-input").read_text(), *sets])
        if i == 0 and not (marker.exists() and code.exists() and code.read_text() == _code_version()
                           and inputs.exists() and inputs.read_text() == key):
            shutil.rmtree(out, ignore_errors=True)
            run_s, _ = _run([*MINING, "run", "--logs", str(logs), "--out", str(out), *extra, *sets])
            marker.write_text(k)
            code.write_text(_code_version())
            inputs.write_text(key)
            timings.append(f"mining run {run_s:.0f} s")
        elif marker.read_text() != k:   # a further min_users, or a reused run exported with another
            marker.unlink()             # first: an export that fails below leaves no run to reuse
            for name in ("latest", "manifest.json", "massive", "report.html", "rewrites", "training_set"):
                (out / name).unlink(missing_ok=True)
            shutil.rmtree(out / "versions", ignore_errors=True)
            exp_s, _ = _run([*MINING, "export-dataset", "--logs", str(logs), "--out", str(out), *extra, *sets])
            marker.write_text(k)
            timings.append(f"export-dataset --min-users {k} {exp_s:.0f} s")
        report = runs / f"{tag}-mu{k}.json"
        report.unlink(missing_ok=True)  # a failed evaluate leaves no older report to be rendered
        eval_s, _ = _run([*MINING, "evaluate", "--gold", str(gold), "--out", str(out), "--json", str(report)])
        timings.append(f"evaluate {eval_s:.0f} s")
        reports[k] = json.loads(report.read_text())
    return reports, timings


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--locales", default=",".join(LOCALES), help="held-out locales, comma-separated")
    ap.add_argument("--locale-turns", type=int, default=LOCALE_TURNS, help="turns per locale (default 1500)")
    ap.add_argument("--hint3-turns", type=int, default=HINT3_TURNS, help="turns per HINT3 corpus (default 4000)")
    ap.add_argument("--seed", type=int, default=13, help="simulation seed (never 7, 11, 101 or 211: development)")
    ap.add_argument("--parts", default="locales,hint3", help="locales, hint3 or both")
    ap.add_argument("--models", default="default,hard", help="behaviour models, comma-separated")
    ap.add_argument("--min-users", default="default,1", help="'default' (the configuration's) and/or integers")
    ap.add_argument("--corpora", default=",".join(HINT3_CORPORA), help="HINT3 corpora of --parts hint3")
    ap.add_argument("--render-only", action="store_true",
                    help="no runs: the tables from the reports earlier runs of these sizes left in "
                         "bench/.work/leaveout (runs_dir)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to mining run --set")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "LEAVEOUT.md")
    args = ap.parse_args(argv)
    code = _code_version()
    locales = [x.strip() for x in args.locales.split(",") if x.strip()]
    fitted = set(DEFAULT_LOCALES) & set(locales)
    if fitted or args.seed in DEV_SEEDS:
        raise SystemExit(f"not held out: locales {sorted(fitted)} / seed {args.seed} are development data")
    unknown = set(locales) - set(HELD_OUT_LOCALES)
    if unknown:
        raise SystemExit(f"no held-out corpus for {sorted(unknown)}; known: {', '.join(HELD_OUT_LOCALES)}")
    parts, models = args.parts.split(","), args.models.split(",")
    min_users = args.min_users.split(",")
    sets = [x for kv in args.set for x in ("--set", kv)]
    started, timings, results = time.time(), [], {}
    jobs = []
    if "locales" in parts:
        jobs.append(("locales", ["--locales", ",".join(locales)], args.locale_turns * len(locales)))
    if "hint3" in parts:
        jobs += [(c, ["--corpus", c], args.hint3_turns) for c in args.corpora.split(",")]
    runs = runs_dir(args.locale_turns, args.hint3_turns)
    if args.render_only:
        codes = set()
        for (name, _, _), model, k in ((j, m, k) for j in jobs for m in models for k in min_users):
            tag = f"{name}-{model}-s{args.seed}"
            if not (runs / f"{tag}-mu{k}.json").exists() and args.seed == 13:
                tag = f"{name}-{model}"     # a report written before runs were keyed by seed (all seed 13)
            report = runs / f"{tag}-mu{k}.json"
            if report.exists():
                results[(name, model, k)] = json.loads(report.read_text())
                marker = runs / tag / ".leaveout-code"
                codes.add(marker.read_text() if marker.exists() else "unknown")
        code = ", ".join(sorted(codes)) or code    # the rendered runs' commits, not this checkout's
        jobs = []
    for name, what, turns in jobs:
        for model in models:
            logs = WORK / f"logs-{name}-{model}-{turns}-s{args.seed}"
            gold = WORK / f"gold-{name}-{model}-{turns}-s{args.seed}"
            sim_s = _simulate(logs, gold, what, turns, args.seed, model)
            t0 = time.perf_counter()
            try:
                reports, steps = _pipeline(logs, gold, f"{name}-{model}-s{args.seed}", min_users, sets, runs)
            except subprocess.CalledProcessError as e:   # report it, go on with the next log
                timings.append(f"{name} / {model}: FAILED after {time.perf_counter() - t0:.0f} s: "
                               f"{(e.stderr or '').strip()[-400:]}")
                print(timings[-1], flush=True)
                continue
            results.update({(name, model, k): r for k, r in reports.items()})
            timings.append(f"{name} / {model}: simulate {sim_s:.0f} s (0 = reused), " + ", ".join(steps))
            print(timings[-1], flush=True)
    if not results:   # never overwrite the page with one of no tables
        raise SystemExit(f"no evaluate report under {runs} for these parts, models and seed: nothing to render")
    text = render(args, argv, locales, results, timings, time.time() - started, code)
    args.results.write_text(text)
    print(text)
    return {f"{n}|{m}|{k}": v for (n, m, k), v in results.items()}


def error_table(rows: dict[str, dict]) -> str:
    """Where the exported labels' errors sit, one row per locale set or corpus of evaluate
    results ``rows``: labels and precision per ``logs_check`` status (``unknown_intent``: no
    friction-free text of the night carries the label's intent, so nothing independent of
    its own pairs checks it; :mod:`mining.core.confident_learning`), and the accepted pairs
    whose target carries the right interpretation, split by whether the target turn had
    friction itself (low NLU or ASR confidence). Empty for reports without these figures."""
    from mining.core.confident_learning import SKIPPED, STATUSES

    rows = {n: r for n, r in rows.items() if "by_logs_check" in r}
    if not rows:
        return ""
    seen = {st for r in rows.values() for st in r["by_logs_check"]}
    statuses = [st for st in (*STATUSES, *SKIPPED) if st in seen] + sorted(seen - {*STATUSES, *SKIPPED})
    head = ["", *(f"{st}: labels / precision" for st in statuses),
            "right target label, target with friction: pairs / share", "without friction: pairs / share"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        by = r["by_logs_check"]
        own = r.get("label_clean_by_target_friction", {})
        cells = [f"{by[st]['labels']:,} / {by[st]['precision']:.3f}" if st in by else "0" for st in statuses]
        cells += [f"{own[k]['accepted']:,} / {own[k]['label_clean_share']:.3f}" if k in own else ""
                  for k in ("target_friction", "target_no_friction")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(args, argv, locales: list[str], results: dict, timings: list[str], seconds: float,
           code: str) -> str:
    """bench/LEAVEOUT.md: machine, commands, one table per (behaviour model, min users);
    ``code``: the commit(s) the runs were made at (:func:`_code_version`)."""
    scripts = sorted({SCRIPTS[loc] for loc in locales})
    lines = ["# Leave-out benchmark: data no fit ever saw", "",
             f"`python bench/leaveout.py {' '.join(sys.argv[1:] if argv is None else argv)}` at "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (commit `{code}`; "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"no GPU; {seconds / 60:.0f} min in all). Seed {args.seed}; {len(locales)} held-out locales in "
             f"{len(scripts)} scripts ({', '.join(scripts)}), mixed in one log; the three HINT3 corpora one log each "
             f"(sizes: the turns column; this invocation's were {args.locale_turns:,} per locale and "
             f"{args.hint3_turns:,} per corpus)." + (f" Caveat: {LOOKED_AT[args.seed]}." if args.seed in LOOKED_AT
                                                      else ""), ""]
    for model in dict.fromkeys(m for _, m, _ in results):
        for k in dict.fromkeys(k for _, _, k in results):
            mu = "the configuration's privacy.min_users" if k == "default" else f"--min-users {k}"
            lines += [f"## Behaviour model `{model}`, {mu}", ""]
            loc = results.get(("locales", model, k))
            if loc is not None:
                per = loc.get("by_locale", {})
                lines += [f"Held-out locales (overall: label precision {loc['label_precision']:.3f} over "
                          f"{loc['labels']:,} labels, ECE {loc['ece']:.3f}, lift recovered {loc['lift_recovered']:.1%}):",
                          "", table(per, "locale"), ""]
                if per:
                    lp = [r["label_precision"] for r in per.values()]
                    lines += [f"Label precision worst {min(lp):.3f}, best {max(lp):.3f}, gap "
                              f"{100 * (max(lp) - min(lp)):.1f} points; {lowered_summary(per)}.", "",
                              ci_summary(per), ""]
            hint = {c: results[(c, model, k)] for c in HINT3_CORPORA if (c, model, k) in results}
            if hint:
                lines += ["HINT3 (fine-grained domains):", "", table(hint, "corpus"), "", ci_summary(hint), ""]
            errors = error_table({**({"held-out locales": loc} if loc is not None else {}), **hint})
            if errors:
                lines += ["Where the label errors sit (`bench/abstain_whatif.py` scores the same runs without "
                          "the `unknown_intent` labels):", "", errors, ""]
    lines += ["## Commands", "", "```",
              f"mining simulate --locales {','.join(locales)} --turns N --days 3 "
              f"--seed {args.seed} --behaviour-model MODEL --logs L --gold G   # N = turns per locale x locales",
              f"mining simulate --corpus hint3-BOT --turns N --days 3 --seed {args.seed} "
              "--behaviour-model MODEL --logs L --gold G",
              "MINING_DEMO_MODE=1 mining run --logs L --out O " + " ".join(args.set),
              "mining evaluate --gold G --out O",
              "MINING_DEMO_MODE=1 mining export-dataset --logs L --out O --min-users 1   # versions/ removed first",
              "mining evaluate --gold G --out O", "```", "", "Timings:", "",
              *(f"- {t}" for t in timings), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
