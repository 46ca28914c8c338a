"""Plant raw ids and PII in the logs, run the real pipeline (``mining run``), and scan
every file the run wrote, and what it printed, for them.

The planted PII sits in frequent, failing utterances, with the same value in every
occurrence, so each planted text is said by far more than ``min_users`` distinct users:
the k-anonymity gate alone would export it. Every user and session id carries the marker
``PLNTID``. The scan reads every file under OUT as raw bytes and, for Parquet, every
column decoded to text (dictionary pages and compression hide strings from a byte scan);
JSON, JSON Lines, HTML and ``_stats.json`` files are text already. The test also proves
the planted items reached the pipeline (the ingest scrub counts them, and exported rows
carry the placeholders), so it cannot pass by planting nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow
MINING = str(Path(sys.executable).with_name("mining"))
ID_MARKER = "PLNTID"
REJECT_MARKER = "QRNTID"
TEST_KEY = "scan-test-key-0123456789abcdef"

#: (kind, words before it, planted value). The utterance gets "<words> <value>" appended
#: and a slot ``contact`` = value; the same value for every user who says the text.
PLANTED = [
    ("email", "mail", "zqxwv.planted@example.org"),
    ("email", "write to", "Ｐｌａｎｔ．Ｍｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"),          # full-width
    ("phone_number", "call", "+1 415 555 0134"),
    ("phone_number", "ring", "(212) 555-0187"),
    ("card_number", "pay with", "4539 1488 0343 6467"),
    ("card_number", "card", "5500-0055-5555-5559"),
    ("iban", "send it to", "DE89 3704 0044 0532 0130 00"),
    ("iban", "iban", "GB82WEST12345698765432"),
    ("long_digit_run", "account", "88421397"),
    ("long_digit_run", "code", "٧٣٩١٨٤٦٢"),                          # Arabic-Indic digits
    ("long_digit_run", "number", "０９０７３１８２６４５"),               # full-width digits
    ("long_digit_run", "my pin is", "seven three nine one eight four"),  # spoken digits
]


def _needles(value: str) -> set[str]:
    """Forms a planted value may take downstream: as written, NFKC + casefold, normalized
    like ``text_norm`` (:func:`mining.core.text.normalize`), and its digits alone (>= 7)."""
    from mining.core.text import normalize

    nfkc = unicodedata.normalize("NFKC", value)
    out = {value, nfkc.casefold(), normalize(value)}
    digits = "".join(ch for ch in nfkc if ch.isdigit())
    if len(digits) >= 7:
        out.add(digits)
    return {n for n in out if len(n) >= 6}


def _plant(src: Path, dst: Path, min_texts_users: int = 3) -> dict:
    """Copy the simulated log with planted ids and PII; returns what was planted."""
    files = sorted(src.rglob("*.parquet"))
    tables = {f: pq.read_table(f) for f in files}
    allrows = pa.concat_tables(tables.values()).to_pandas()
    failing = allrows[allrows["response_status"] != "SUCCESS"]
    users = allrows.groupby("utterance")["user_id"].nunique()
    fails = failing.groupby("utterance").size()
    ranked = [t for t in fails.sort_values(ascending=False, kind="stable").index
              if users.get(t, 0) >= min_texts_users]
    chosen = ranked[: 2 * len(PLANTED)]
    assert len(chosen) == 2 * len(PLANTED), "simulated log too small to plant into"
    planted = {t: PLANTED[i % len(PLANTED)] for i, t in enumerate(chosen)}
    for f, table in tables.items():
        df = table.to_pandas()
        utts, slots = [], []
        for utt, sl in zip(df["utterance"], df["nlu_slots"]):
            if utt in planted:
                _, words, value = planted[utt]
                utt = f"{utt} {words} {value}"
                sl = [*(list(sl) if sl is not None else []), {"name": "contact", "value": value}]
            utts.append(utt)
            slots.append(sl)
        df["utterance"], df["nlu_slots"] = utts, slots
        df["user_id"] = ID_MARKER + "-u-" + df["user_id"].astype(str)
        df["session_id"] = ID_MARKER + "-s-" + df["session_id"].astype(str)
        # a few rows with a blank session id: the inferred id embeds the raw user id
        df.loc[df.index[:5], "session_id"] = ""
        out = dst / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(df, schema=table.schema, preserve_index=False), out)
    # one row the validator rejects (unknown response_status), with its own id marker
    bad = table.slice(0, 1).to_pandas()
    bad["turn_id"], bad["user_id"], bad["session_id"] = "reject-me", REJECT_MARKER + "-u", REJECT_MARKER + "-s"
    bad["response_status"] = "BOGUS"
    pq.write_table(pa.Table.from_pandas(bad, schema=table.schema, preserve_index=False),
                   dst / f.relative_to(src).parent / "part-99999.parquet")
    said_by = {t: int(users[t]) for t in chosen}
    return {"texts": planted, "said_by": said_by, "kinds": sorted({k for k, _, _ in PLANTED}),
            "items": len(PLANTED), "needles": sorted({n for _, _, v in PLANTED for n in _needles(v)})}


def _file_texts(path: Path) -> list[str]:
    """The file's bytes as text (lossy), and for Parquet every column decoded to text."""
    raw = path.read_bytes()
    texts = [raw.decode("utf-8", errors="replace"), raw.decode("latin-1")]
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        texts.append(json.dumps(table.to_pylist(), ensure_ascii=False, default=str))
        texts.append(json.dumps(table.schema.metadata and {k.decode(errors="replace"): v.decode(errors="replace")
                                                          for k, v in table.schema.metadata.items()}))
    return texts


def _scan(out: Path, extra: dict[str, str], needles: list[str]) -> tuple[int, dict[str, list[str]]]:
    found: dict[str, list[str]] = {}
    sources = {str(p.relative_to(out)): _file_texts(p) for p in sorted(out.rglob("*"))
               if p.is_file() and not p.is_symlink()}
    sources.update({name: [text] for name, text in extra.items()})
    for name, texts in sources.items():
        blob = "\n".join(texts)
        folded = unicodedata.normalize("NFKC", blob).casefold()
        hits = [n for n in needles if n in blob or n.casefold() in folded]
        if hits:
            found[name] = hits
    return len(sources), found


@pytest.fixture(scope="module")
def scanned(small_sim, tmp_path_factory):
    root = tmp_path_factory.mktemp("scan")
    planted = _plant(small_sim["logs"], root / "logs")
    env = {k: v for k, v in os.environ.items() if k != "MINING_DEMO_MODE"}
    env.update(MINING_PSEUDONYM_KEY=TEST_KEY, MINING_LOG_FORMAT="json")
    run = subprocess.run([MINING, "run", "-v", "--logs", str(root / "logs"), "--out", str(root / "out"),
                          "--min-users", "2"], capture_output=True, text=True, env=env, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    return {"root": root, "out": root / "out", "planted": planted, "stdout": run.stdout, "stderr": run.stderr,
            "manifest": json.loads((root / "out" / "manifest.json").read_text())}


def test_planted_pii_reached_the_pipeline(scanned):
    """Not vacuous: the ingest scrub replaced every planted kind, and exported rows carry
    placeholders (said by >= min_users users, so k-anonymity alone would have let them out)."""
    m = scanned["manifest"]
    at_ingest = m["stages"]["turns"]["pii_scrubbed"]
    print("planted", scanned["planted"]["items"], "items of", len(scanned["planted"]["kinds"]), "kinds;",
          "scrubbed at ingest", at_ingest, "in export", m["pii_scrubbed"])
    assert all(at_ingest[k] > 0 for k in scanned["planted"]["kinds"]), at_ingest
    assert sum(m["pii_scrubbed"].values()) > 0, m["pii_scrubbed"]
    import pyarrow.dataset as ds
    exported = ds.dataset(str(scanned["out"] / "training_set"), format="parquet", partitioning="hive").to_table()
    placeholders = [u for u in exported.column("utterance").to_pylist() if "<" in u]
    assert placeholders
    # each planted text was said by at least 3 distinct users (min_users is 2)
    assert min(scanned["planted"]["said_by"].values()) >= 3


def test_the_scan_finds_what_was_planted_in_the_input(scanned):
    """Control: the same scan over the planted logs finds every id marker and value."""
    raw = [ID_MARKER, REJECT_MARKER, *(v for _, _, v in PLANTED)]
    _, found = _scan(scanned["root"] / "logs", {}, raw)
    assert set().union(*found.values()) == set(raw)


def test_no_planted_id_pii_or_key_in_any_output_or_log(scanned):
    needles = [ID_MARKER, TEST_KEY, *scanned["planted"]["needles"]]
    n, found = _scan(scanned["out"], {"<stdout>": scanned["stdout"], "<stderr>": scanned["stderr"]}, needles)
    print(f"scanned {n} files and logs for {len(needles)} needles: {found or 'none found'}")
    assert n > 20
    assert not found, found


def test_logs_never_print_raw_ids(scanned):
    logs = scanned["stdout"] + scanned["stderr"]
    assert "run=" in logs or '"run_id"' in logs          # the -v run did log
    assert ID_MARKER not in logs and REJECT_MARKER not in logs


def test_rejected_rows_keep_no_raw_ids(scanned):
    n, found = _scan(scanned["out"], {}, [REJECT_MARKER])
    assert not found, found
