"""Help text of ``mining``: the command groups of ``mining --help``, examples, environment.

The stage commands come from the stage registry (:data:`mining.stages.STAGES`) and the exit
codes from :data:`mining.errors.EXIT_CODES`; ``docs/cli.md`` is generated from this help
(``make docs``), and a test checks it is current."""
from __future__ import annotations

import argparse

from mining.errors import EXIT_CODES
from mining.stages import STAGES

#: Commands as `mining --help` lists them: (group, ((command, one-line summary), ...)).
COMMAND_GROUPS = (
    ("mine logs (local Spark; under Airflow: jobs/<stage>.py)", (
        ("run", "all five stages in order, in one local Spark session"),
        *((s.verb, f"stage {i}: {s.summary}") for i, s in enumerate(STAGES, 1)))),
    ("look at results", (
        ("inspect", "counts and sample rows of a published dataset version (no Spark)"),
        ("diff", "labels added, changed and retired between two published versions (no Spark)"),
        ("evaluate", "score a run against the simulator's gold"),
        ("loop", "simulate nights of mining and retraining on the mined labels (the self-learning loop)"),
        ("config show", "the effective configuration as TOML, with where each value came from"))),
    ("use the labels", (
        ("merge", "merge a run's mined labels into an existing training set"),)),
    ("refit the models (packaged, or a domain's own)", (
        ("fit-rephrase", "refit the rephrase scorer on simulator gold"),
        ("audit sample", "N labels of a run, stratified by confidence, as a CSV for human review"),
        ("fit-calibration", "refit the label-confidence calibration on simulator gold or a reviewed audit"))),
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


def top_help() -> tuple[str, str]:
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
  mining diff /data/mining/runs/2026-11-02 /data/mining/runs/2026-11-03   # last night's changelog
  mining evaluate --gold /tmp/gold --out /tmp/run
  mining merge --base human/ --mined /tmp/run --out /tmp/merged   # add mined labels, keep human ones
"""

STAGE_EXAMPLES = """examples:
  MINING_DEMO_MODE=1 mining {cmd} --logs /tmp/logs --out /tmp/run
  mining {cmd} --logs /data/logs --out /data/mining/runs/2026-11-03 \\
      --start-date 2026-11-01 --end-date 2026-11-03 --config prod.toml -v

Reruns only this stage: the outputs of the earlier stages must be in --out.
Under spark-submit the same stage is jobs/{stage}.py with the same options."""


def stage_epilog(stage: str) -> str:
    """Examples of the stage command of ``stage`` (a name of :data:`mining.stages.STAGE_NAMES`)."""
    return STAGE_EXAMPLES.format(cmd=stage.replace("_", "-"), stage=stage)

EPILOGS = {
    "run": """examples:
  MINING_DEMO_MODE=1 mining run --logs /tmp/logs --out /tmp/run --min-users 2
  mining run --logs /data/logs --out /data/mining/runs/2026-11-03 --start-date 2026-11-01 \\
      --end-date 2026-11-03 --locale en-US --set rephrase.threshold=0.6
  MINING__PRIVACY__MIN_USERS=5 mining run --config prod.toml --logs /data/logs --out /tmp/run

Prints the stages' stats as JSON on stdout; logs (stderr) one line per stage, or a progress
bar on a terminal. The dataset version is published under OUT/latest, unless latest
holds a later night (a backfill) or, for a --locale run, another locale's labels; the
version then stays under OUT/versions/ and a warning says so.""",
    "inspect": """examples:
  mining inspect /tmp/run                       # a run's OUT root: its latest version
  mining inspect /tmp/run/versions/v20261103-7063d03c77 --samples 20 --locale en-US
  mining inspect /tmp/run/latest --intent alarm_set --json | jq .confidence

Rows, locales, intents, evidence and confidence follow --locale/--intent; drops, dropped
slots and scrubbed PII are whole-version figures from the manifest. Exit 3 when PATH holds
no complete dataset version.""",
    "diff": """examples:
  mining diff /data/mining/runs/2026-11-02 /data/mining/runs/2026-11-03
  mining diff /tmp/run/versions/v20261102-1a2b3c4d5e /tmp/run/latest --rows 200
  mining diff /tmp/old-run /tmp/run --json | jq '.summary.by_reason'

OLD and NEW are read like `mining inspect` reads PATH. A retired label carries the reason
NEW's run gives it when NEW is inside a run's OUT root with its labels/ (an abstain reason
such as conflicting_evidence, or below_min_users), else no_evidence_in_window; every one
dp_not_selected when NEW was exported under privacy.dp. When NEW's run was limited to some
locales, only those locales of OLD are compared. Every
published version also holds its own changelog against the version before it:
changelog.jsonl and the manifest's "changelog" entry. Exit 3 when OLD or NEW holds no
complete dataset version.""",
    "evaluate": """examples:
  mining evaluate --gold /tmp/gold --out /tmp/run
  mining evaluate --gold demo/gold --out demo/mining/runs/2026-11-03 --json /tmp/eval.json""",
    "loop": """examples:
  mining loop --corpus hwu64 --nights 7 --out /tmp/loop
  mining loop --locales en-US,de-DE --nights 3 --turns 10000 --policy window --out /tmp/loop-window""",
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
  mining fit-calibration --work /tmp/fit --turns 40000 --out /tmp/calibration.toml
  mining fit-calibration --audit reviewed.csv --out /data/mining/calibration-shop.toml

With --audit: refit from a CSV of `mining audit sample` whose `correct` column a reviewer
filled (1/0, yes/no, true/false), or several (--audit repeated: several nights' audits);
then set aggregation.calibration = "PATH" in the run's config. Rows not reviewed or unreadable are counted by reason ([fit].audit_rows), an
evidence kind with fewer than --min-per-kind reviewed rows uses the pooled map
([fit].pooled_for). Exit 3 with fewer than 20 usable rows or a CSV without raw_score,
evidence and correct columns.""",
    "audit": """examples:
  mining audit sample --run /data/mining/runs/2026-11-03 --n 200 --out audit.csv""",
    "audit sample": """examples:
  mining audit sample --run /data/mining/runs/2026-11-03 --n 200 --out audit.csv
  mining audit sample --run /tmp/run --n 100 --seed 3 --locale it-IT --out audit-it.csv
  # review: fill `correct` with 1 (the intent is right for the text) or 0, then
  mining fit-calibration --audit audit.csv --out /data/mining/calibration-it.toml

Samples labels/ rows with a candidate intent (decision labeled or low_confidence) said by
at least --min-users users (or the run's own privacy.min_users, if larger), in equal-count
raw-score strata; same inputs and seed, same
bytes. Texts are scrubbed as the export scrubs them; no pseudonym is written. Exit 3 when
the run has no labels/ or no candidate label, and when it has fewer than N (all are then
written); exit 2 when --out exists (--force overwrites); exit 4 under privacy.dp.""",
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
  mining simulate --locales all --turns 90000 --logs /tmp/ml-logs --gold /tmp/ml-gold
  mining simulate --turns 10000000 --traffic-utterances 2000000 --utterance-zipf-s 0.9 --logs /tmp/big --gold /tmp/big-gold""",
}


def add_command(sub, name: str, verbose: argparse.ArgumentParser, description: str | None = None,
         epilog: str | None = None) -> argparse.ArgumentParser:
    """Subcommand ``name`` (``"config show"``: ``show`` under ``config``) with a description
    (default: its one-line summary) and an examples epilog (:data:`EPILOGS`)."""
    import textwrap

    summary = SUMMARY.get(name, "")
    description = textwrap.fill(description or summary[:1].upper() + summary[1:] + ".", width=88)
    return sub.add_parser(name.split()[-1], parents=[verbose], prog=f"mining {name}", help=summary,
                          description=description, epilog=epilog or EPILOGS[name],
                          formatter_class=argparse.RawDescriptionHelpFormatter)


