"""`mining inspect`: what a published dataset version holds (mining.tools.inspect_dataset)."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from mining import cli

pytestmark = pytest.mark.usefixtures("clean_cli_state")


# ---- mining inspect ------------------------------------------------------------------

def _version(root, rows=None, manifest=None, name="v20261103-abc"):
    """A published version under OUT=root, written like export_dataset does: training_set/
    by the project's writer, a manifest, and the latest link."""
    import os

    from mining.io import export

    from mining.io import schemas
    rows = rows if rows is not None else [
        # utterance, locale, intent, confidence, support_users, evidence
        ("wake me at six", "en-US", "alarm_set", 0.95, 4, "rephrase"),
        ("set alarm six", "en-US", "alarm_set", 0.70, 2, "variant"),
        ("lights off", "en-US", "iot_hue_lightoff", 0.99, 9, "rephrase"),
        ("licht aus", "de-DE", "iot_hue_lightoff", 0.80, 3, "rephrase"),
    ]
    table = pa.Table.from_pylist([
        {"utterance": u, "locale": loc, "intent": i, "slots": [], "annot_utt": u, "confidence": c,
         "support_users": n, "support_events": n + 1, "evidence": e, "cluster_id": None,
         "dataset_version": name} for u, loc, i, c, n, e in rows], schema=schemas.arrow_schema("training_set"))
    version = root / "versions" / name
    export.write_training_set(table, version / "training_set")
    manifest = manifest if manifest is not None else {
        "dataset_version": name, "code_version": "0.1.0+test", "input_partitions": ["2026-11-03"],
        "rows": len(rows), "drops": {"below_min_users": 5, "insufficient_events": 11},
        "slots_dropped": {"slot_not_aligned": 2, "slot_overlaps": 0}, "pii_scrubbed": {"email": 1, "iban": 0},
        "massive_jsonl": {"de-DE": {"train": 1, "dev": 0}, "en-US": {"train": 2, "dev": 1}},
        "config": {"privacy": {"min_users": 2}}, "checksums": export.checksums(version)}
    (version / "manifest.json").write_text(json.dumps(manifest))
    os.symlink(f"versions/{name}", root / "latest")
    return version


def test_inspect_prints_the_counts_and_samples(tmp_path, capsys):
    _version(tmp_path)
    assert cli.main(["inspect", str(tmp_path), "--samples", "2"]) == 0
    out = capsys.readouterr().out
    assert "v20261103-abc" in out
    assert "rows              4" in out
    assert "  en-US      3      2    1" in out and "  de-DE      1      1    0" in out
    assert "  alarm_set         2" in out and "  rephrase  3" in out
    assert "insufficient_events  11" in out and "slot_not_aligned  2" in out and "email  1" in out
    samples = out[out.index("samples (2 of 4"):]
    assert samples.index("lights off") < samples.index("wake me at six")   # most users first
    assert "licht aus" not in samples


def test_inspect_json_parses_and_filters(tmp_path, capsys):
    version = _version(tmp_path)
    assert cli.main(["inspect", str(version), "--json", "--locale", "en-US", "--samples", "10"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["rows"], s["manifest_rows"]) == (3, 4)
    assert s["by_locale"] == {"en-US": 3} and s["by_intent"] == {"alarm_set": 2, "iot_hue_lightoff": 1}
    assert s["by_evidence"] == {"rephrase": 2, "variant": 1}
    assert s["confidence"]["min"] == 0.7 and s["confidence"]["max"] == 0.99
    assert s["partitions"] == {"en-US": {"train": 2, "dev": 1}}
    assert [r["utterance"] for r in s["samples"]] == ["lights off", "wake me at six", "set alarm six"]


def test_inspect_reads_the_latest_link_and_a_version_folder_alike(tmp_path, capsys):
    version = _version(tmp_path)
    outs = []
    for path in (tmp_path, tmp_path / "latest", version):
        assert cli.main(["inspect", str(path), "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0] == outs[1] == outs[2]


def test_inspect_an_empty_version_prints_zero_rows(tmp_path, capsys):
    _version(tmp_path, rows=[])
    assert cli.main(["inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "rows              0" in out and "by intent: no rows" in out


@pytest.mark.parametrize("layout, message", [
    ("missing", "does not exist"),
    ("run_without_export", "did export_dataset run?"),
    ("no_manifest", "manifest.json missing"),
    ("file_of_manifest_missing", "incomplete"),
    ("versions_folder", "holds dataset versions, pass one: v20261103-abc"),
])
def test_inspect_without_a_complete_version_exits_3(tmp_path, capsys, layout, message):
    path = tmp_path / "out"
    if layout == "run_without_export":
        (path / "turns").mkdir(parents=True)
    elif layout == "no_manifest":
        (_version(path) / "manifest.json").unlink()
    elif layout == "file_of_manifest_missing":
        next((_version(path) / "training_set").rglob("*.parquet")).unlink()
    elif layout == "versions_folder":
        _version(path)
        path = path / "versions"
    assert cli.main(["inspect", str(path)]) == cli.EXIT_INPUT == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
