"""Where a Spark stage's time goes: job wall time per call site, from Spark event logs.

    python bench/spark_profile.py run -- mining detect-rephrases --logs L --out O   # run + profile
    python bench/spark_profile.py show bench/.work/events/<app-id>                  # profile a log

``run`` points ``SPARK_CONF_DIR`` at a folder whose ``spark-defaults.conf`` turns on
Spark's event log (``spark.eventLog.enabled``; the CLI's session reads that file like
``spark-submit`` does), runs the command, then prints the profile of the log it wrote.
The profile groups SQL executions (each DataFrame action of our code: a ``count``,
``collect``, a write) by call site and sums their wall time, largest first; the rest of the
application's time is Spark start, planning and driver-side Python. Executions overlap
nothing here: our stages run one action at a time. Beside the wall time, each call site's
tasks give their summed run time (``Executor Run Time``: task-seconds, so the parallelism
is in it; a Python UDF's time is inside its task) and the shuffle bytes they wrote and
read (``SparkListenerTaskEnd`` metrics, tasks → stages → jobs → SQL execution by the job's
``spark.sql.execution.id``). The bytes are steadier than the wall time, which the machine's
load moves by up to 21% per run and 47% per call site here, but not exact: of four runs of
two trees with the same plan, three wrote 882 MB and one 912 MB (30 MB more at one call site,
likely a cached DataFrame recomputed).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "bench" / ".work" / "events"


def _label(e: dict) -> str:
    """A SQL execution's call site (``count at mining/stages/detect_rephrases.py:50``), and for a write
    the folder it writes (``write .../turns``)."""
    site = e["description"].replace(str(ROOT) + "/", "")
    m = re.search(r"Execute InsertIntoHadoopFsRelationCommand\nInput: .*\nArguments: file:([^,]+),",
                  e.get("physicalPlanDescription", ""))
    if m:   # a stage folder is written to .staging/<name>-<run id> first (mining.io.storage)
        site = "write " + re.sub(r"-[0-9a-f]{12}$", "", Path(m.group(1)).name)
    return site


def profile(event_log: Path) -> dict:
    """{"app_s", "sql_s", "by_site": [(call site, executions, seconds)] largest first,
    "tasks": {call site: {"task_s", "shuffle_write_mb", "shuffle_read_mb"}}} of
    one event log: a file, or a Spark 4 ``eventlog_v2_*`` folder of rolled ``events_*``
    files (JSON lines; ``run`` turns Spark 4's default zstd compression off). Grouped by
    SQL execution (a DataFrame action: ``count``, ``collect``, a write), the unit our code
    triggers; wall time from ``SQLExecutionStart`` to ``End``; nested executions count
    only under their root."""
    files = sorted(event_log.glob("events_*"), key=lambda f: int(f.name.split("_")[1])) \
        if event_log.is_dir() else [event_log]
    starts, by_site = {}, defaultdict(lambda: [0, 0.0])
    site_of, stage_site = {}, {}        # SQL execution → its root's call site; stage → call site
    tasks = defaultdict(lambda: {"task_s": 0.0, "shuffle_write_mb": 0.0, "shuffle_read_mb": 0.0})
    app = [None, None]
    for line in (ln for f in files for ln in f.read_text().splitlines()):
        e = json.loads(line)
        kind = e["Event"].rsplit(".", 1)[-1]
        if kind == "SparkListenerApplicationStart":
            app[0] = e["Timestamp"]
        elif kind == "SparkListenerApplicationEnd":
            app[1] = e["Timestamp"]
        elif kind == "SparkListenerSQLExecutionStart":
            root = e.get("rootExecutionId", e["executionId"])
            if root == e["executionId"]:
                starts[root] = (e["time"], _label(e))
            site_of[e["executionId"]] = site_of.get(root) or _label(e)
        elif kind == "SparkListenerSQLExecutionEnd" and e["executionId"] in starts:
            t0, site = starts.pop(e["executionId"])
            by_site[site][0] += 1
            by_site[site][1] += (e["time"] - t0) / 1000
        elif kind == "SparkListenerJobStart":
            sql_id = (e.get("Properties") or {}).get("spark.sql.execution.id")
            site = site_of.get(int(sql_id)) if sql_id is not None else None
            for stage in e["Stage IDs"]:
                stage_site[stage] = site or "(no SQL execution)"
        elif kind == "SparkListenerTaskEnd" and e.get("Task Metrics"):
            m, t = e["Task Metrics"], tasks[stage_site.get(e["Stage ID"], "(no SQL execution)")]
            t["task_s"] += m["Executor Run Time"] / 1000
            t["shuffle_write_mb"] += m["Shuffle Write Metrics"]["Shuffle Bytes Written"] / 2**20
            r = m["Shuffle Read Metrics"]
            t["shuffle_read_mb"] += (r["Remote Bytes Read"] + r["Local Bytes Read"]) / 2**20
    rows = sorted(((s, n, t) for s, (n, t) in by_site.items()), key=lambda r: -r[2])
    app_s = (app[1] - app[0]) / 1000 if None not in app else None
    return {"app_s": app_s, "sql_s": sum(r[2] for r in rows), "by_site": rows, "tasks": dict(tasks)}


def print_profile(p: dict, top: int = 15) -> None:
    print(f"application {p['app_s'] or float('nan'):.1f} s, SQL executions {p['sql_s']:.1f} s")
    print("| call site | executions | seconds | share | task seconds | shuffle written MB |")
    print("|---|---|---|---|---|---|")
    for site, n, t in p["by_site"][:top]:
        m = p["tasks"].get(site, {})
        print(f"| `{site}` | {n} | {t:.1f} | {t / max(p['sql_s'], 1e-9):.0%} | {m.get('task_s', 0):.1f} "
              f"| {m.get('shuffle_write_mb', 0):,.0f} |")


def run(cmd: list[str], events: Path = EVENTS, env: dict | None = None, cwd: Path | None = None) -> list[Path]:
    """Run ``cmd`` (environment ``env``, default this process's; in folder ``cwd``) with
    the event log on; return the event logs it wrote."""
    events.mkdir(parents=True, exist_ok=True)
    before = set(events.iterdir())
    with tempfile.TemporaryDirectory() as conf:
        Path(conf, "spark-defaults.conf").write_text(
            f"spark.eventLog.enabled true\nspark.eventLog.dir file://{events}\n"
            "spark.eventLog.compress false\n")
        subprocess.run(cmd, check=True, env={**(os.environ if env is None else env), "SPARK_CONF_DIR": conf},
                       cwd=cwd)
    return sorted(set(events.iterdir()) - before)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="action", required=True)
    r = sub.add_parser("run", help="run a command with Spark's event log on, then profile it")
    r.add_argument("cmd", nargs=argparse.REMAINDER)
    s = sub.add_parser("show", help="profile event log files")
    s.add_argument("logs", nargs="+", type=Path)
    for p in (r, s):
        p.add_argument("--top", type=int, default=15)
    args = ap.parse_args(argv)
    logs = args.logs if args.action == "show" else run([c for c in args.cmd if c != "--"])
    for path in logs:
        print(f"\n{path.name}")
        print_profile(profile(path), args.top)


if __name__ == "__main__":
    sys.exit(main())
