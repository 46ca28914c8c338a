"""mining.report.run_report: the static run report (no gold: see tests/eval/test_report.py).

Tests use a tiny hand-made run (two locales, no Spark); the report of a real pipeline run,
and its opening in headless Chromium, are tested with the gold figures added, in
tests/eval/test_report.py (the same builder)."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mining.report import data
from mining.report import run_report as report

MALICIOUS = "<script>alert(1)</script>"


def _parquet(path: Path, **columns) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


def _value(page: str, metric: str) -> str:
    """The data-value of the element with ``data-metric="metric"``."""
    m = re.search(rf'data-metric="{re.escape(metric)}" data-value="([^"]*)"', page)
    assert m, f"no data-metric={metric}"
    return m.group(1)


def make_tiny_run(root: Path) -> Path:
    """A hand-made run in ``root/run``: en-US (3 turns, 2 friction, 2 accepted pairs of 3, 2
    labeled texts, 3 exported rows of 2 intents) and de-DE (1 turn, friction, 1 pair, 1
    label, 1 row); one exported utterance is a script tag."""
    out = root / "run"
    _parquet(out / "turns" / "part-0.parquet", locale=["en-US"] * 3 + ["de-DE"],
             is_friction=[True, True, False, True])
    _parquet(out / "rephrase_pairs" / "part-0.parquet", locale=["en-US"] * 3 + ["de-DE"],
             accepted=[True, True, False, True])
    _parquet(out / "labels" / "part-0.parquet", locale=["en-US"] * 3 + ["de-DE"],
             decision=["labeled", "labeled", "insufficient_events", "labeled"])
    # clusters: sizes 1, 1, 2 (a medoid row per cluster carries the size)
    _parquet(out / "clusters" / "part-0.parquet", cluster_size=[1, 1, 2, 2], is_medoid=[True, True, True, False])
    version = out / "versions" / "v1"
    rows = {"en-US": {"utterance": ["wake me at 7", MALICIOUS, "lights on"],
                      "intent": ["alarm_set", "alarm_set", "iot_hue_lighton"], "confidence": [0.91, 0.97, 0.62],
                      "support_users": [3, 5, 2], "support_events": [4, 6, 2],
                      "evidence": ["rephrase", "variant", "rephrase"]},
            "de-DE": {"utterance": ["weck mich"], "intent": ["alarm_set"], "confidence": [0.8],
                      "support_users": [2], "support_events": [2], "evidence": ["rephrase"]}}
    for loc, cols in rows.items():
        _parquet(version / "training_set" / f"locale={loc}" / "part-00000.parquet", **cols)
    manifest = {"dataset_version": "v1", "code_version": "0.1.0+test", "input_partitions": ["2026-11-01"],
                "locales": [], "logs": "/logs", "config": {"privacy": {"min_users": 2}},
                "models": {"rephrase": "r1", "calibration": "c1"}, "rows": 4,
                "rows_by_locale_intent": {"de-DE/alarm_set": 1, "en-US/alarm_set": 2, "en-US/iot_hue_lighton": 1},
                "drops": {"below_min_users": 7, "insufficient_events": 1}, "slots_dropped": {"slot_not_aligned": 2},
                "pii_scrubbed": {"email": 1},
                "stages": {"rejects": {"input": 5, "accepted": 4, "rejected": 1, "by_reason": {"bad_locale": 1}},
                           "turns": {"turns": 4, "friction_turns": 3},
                           "rephrase_pairs": {"candidates": 4, "accepted_pairs": 3, "by_decision": {"accepted": 3}},
                           "labels": {"by_decision": {"labeled": 3, "insufficient_events": 1},
                                      "target_failure": {
                                          "en-US": {"share": 0.25, "rate_ok": 0.04, "rate_failed": 0.6,
                                                    "targets": 40, "informative": 31, "fitted": True, "reason": ""},
                                          "de-DE": {"share": 0.0, "rate_ok": 0.0, "rate_failed": 0.0, "targets": 1,
                                                    "informative": 0, "fitted": False,
                                                    "reason": "fewer than 10 target texts with other turns"}}}}}
    (version / "manifest.json").write_text(json.dumps(manifest))
    os.symlink("versions/v1", out / "latest")
    return out


@pytest.fixture
def tiny_run(tmp_path) -> Path:
    """:func:`make_tiny_run` in the test's temporary folder."""
    return make_tiny_run(tmp_path)


def test_build_report_funnel_and_locales_tiny_run(tiny_run):
    page = report.build_report(tiny_run)
    assert [_value(page, f"funnel.{k}") for k, _ in data.FUNNEL] == ["4", "3", "4", "3", "3", "4"]
    assert _value(page, "exported_rows") == "4"
    expected = {"en-US": [3, 2, 2, 2, 3], "de-DE": [1, 1, 1, 1, 1]}
    for loc, values in expected.items():
        assert [int(_value(page, f"locale.{loc}.{c}")) for c, _ in data.LOCALE_COLUMNS] == values
    assert _value(page, "clusters.texts") == "4" and _value(page, "clusters.clusters") == "3"
    assert _value(page, "drops.below_min_users") == "7" and _value(page, "rejects.bad_locale") == "1"
    assert _value(page, "evidence.rephrase") == "3" and _value(page, "evidence.variant") == "1"
    # what the run derived per locale for its rephrase targets, and which locale kept the defect rate
    assert _value(page, "target_failure.en-US.share") == "0.25"
    assert _value(page, "target_failure.en-US.informative") == "31"
    assert "defect rate: fewer than 10 target texts" in page


def test_retained_rows_are_no_step_of_the_funnel(tiny_run):
    # label retention: 1 of the version's 4 rows comes from this run, 3 from the previous
    # version; the funnel ends at this run's 1 (not 4 of 3 labeled texts, 133%)
    path = tiny_run / "latest" / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "retention": {"policy": "until_contradicted", "fresh": 1,
                                                          "retained": 3}}))
    page = report.build_report(tiny_run)
    assert _value(page, "funnel.exported_rows") == "1"
    assert _value(page, "exported_rows") == "4" and _value(page, "retained_rows") == "3"
    assert "3 rows retained from the previous version" in page


def test_a_version_beside_another_runs_stage_outputs_is_refused(tiny_run):
    # a backfill into the same OUT rewrote turns/ etc. while latest stayed: the per-locale
    # table would count the other run's turns beside this version's funnel
    from mining.errors import StageOutputMismatch

    path = tiny_run / "latest" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["stages"]["turns"]["lineage"] = "aaaaaaaaaaaaaaaa"
    path.write_text(json.dumps(manifest))
    (tiny_run / "turns" / "_stats.json").write_text(json.dumps({"lineage": "aaaaaaaaaaaaaaaa"}))
    report.build_report(tiny_run)                                    # the same run: fine
    (tiny_run / "turns" / "_stats.json").write_text(json.dumps({"lineage": "bbbbbbbbbbbbbbbb"}))
    with pytest.raises(StageOutputMismatch, match=r"turns/ comes from another detect_rephrases run"):
        report.build_report(tiny_run)


def test_build_report_escapes_utterances(tiny_run):
    page = report.build_report(tiny_run)
    assert MALICIOUS not in page and "<script" not in page
    assert html_escaped(MALICIOUS) in page


def html_escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_build_report_is_byte_identical_and_chunking_free(tiny_run):
    # streamed one row at a time == the default batches, and two builds give the same bytes
    assert report.build_report(tiny_run) == report.build_report(tiny_run) == report.build_report(tiny_run, batch_rows=1)


def test_top_variants_ranks_by_support_users_then_confidence(tiny_run):
    manifest = json.loads((tiny_run / "latest" / "manifest.json").read_text())
    top = data.top_variants(tiny_run / "latest", manifest, n_intents=2, k=5)
    assert [(key, n) for key, n, _ in top] == [("en-US/alarm_set", 2), ("de-DE/alarm_set", 1)]
    assert list(top[0][2]["utterance"]) == [MALICIOUS, "wake me at 7"]   # 5 users before 3


def test_write_report_atomic(tiny_run, tmp_path):
    path = report.write_report(tiny_run, tmp_path / "a" / "report.html")
    assert path.read_text(encoding="utf-8") == report.build_report(tiny_run)
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]   # no temp file left


def _section_ids(page: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)">', page)


def test_build_report_sections_in_order_without_extras(tiny_run):
    page = report.build_report(tiny_run)
    assert _section_ids(page) == list(report.SECTIONS)
    assert re.findall(r'<figure data-plot="([^"]+)">', page) == ["funnel", "confidence", "clusters"]
    assert re.findall(r'<div class="v" data-metric="([^"]+)"', page) == [
        "exported_rows", "labeled_texts", "accepted_pairs", "turns"]


def test_build_report_places_extra_sections_and_cards(tiny_run):
    extra = [("confidence", '<section id="x1"><h2>X1</h2></section>'),
             ("drops", '<section id="x3"><h2>X3</h2></section>'),
             ("confidence", '<section id="x2"><h2>X2</h2></section>')]
    page = report.build_report(tiny_run, cards=[("extra card", 0.25, "extra")], sections=extra)
    assert _section_ids(page) == ["meta", "funnel", "locales", "confidence", "x1", "x2", "clusters",
                                  "variants", "drops", "x3", "changelog"]
    assert _value(page, "extra") == "0.25" and '<div class="k">extra card</div>' in page
    # without the extras, exactly the plain page
    plain = report.build_report(tiny_run)
    stripped = re.sub(r'<section id="x\d"><h2>X\d</h2></section>', "", page)
    stripped = stripped.replace('<div class="card"><div class="v" data-metric="extra" data-value="0.25">0.250'
                                '</div><div class="k">extra card</div></div>', "")
    assert stripped == plain


def test_build_report_rejects_unknown_anchor(tiny_run):
    with pytest.raises(ValueError, match="gold"):
        report.build_report(tiny_run, sections=[("gold", "<section></section>")])



def test_changelog_section_counts_reasons_and_samples(tiny_run):
    """The manifest's changelog entry and a few rows of the version's changelog.jsonl."""
    version = tiny_run / "versions" / "v1"
    assert "No changelog recorded" in report.build_report(tiny_run)
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["changelog"] = {"previous": "v0", "added": 4, "changed": 1, "retired": 1,
                             "by_reason": {"new_evidence": 4, "intent_changed": 1, "conflicting_evidence": 1}}
    (version / "manifest.json").write_text(json.dumps(manifest))
    changes = [{"locale": "en-US", "utterance": f"added {i}", "change": "added", "reason": "new_evidence",
                "old_intent": None, "new_intent": "alarm_set", "old_annot_utt": None, "new_annot_utt": f"added {i}"}
               for i in range(4)]
    changes += [{"locale": "en-US", "utterance": MALICIOUS, "change": "retired", "reason": "conflicting_evidence",
                 "old_intent": "alarm_set", "new_intent": None, "old_annot_utt": MALICIOUS, "new_annot_utt": None}]
    (version / "changelog.jsonl").write_text("".join(json.dumps(c) + "\n" for c in changes))
    page = report.build_report(tiny_run)
    assert _value(page, "changelog.added") == "4" and _value(page, "changelog.retired") == "1"
    assert _value(page, "changelog_reason.conflicting_evidence") == "1"
    assert "<code>v0</code>" in page and MALICIOUS not in page
    assert page.count('data-sample="added"') == 3 and page.count('data-sample="retired"') == 1


def test_scale_table_shows_the_cosines_the_stages_used_and_meta_the_models_that_embedded(tiny_run):
    """The edge and variant cosines come from cluster_variants' and aggregate_labels' stats (a
    per-locale override or a stage rerun changes them after detect_rephrases derived its own);
    the embedding model is the one that ran, not the configured name."""
    path = tiny_run / "versions" / "v1" / "manifest.json"
    manifest = json.loads(path.read_text())
    background = {"en-US": {"source": "locale", "n_texts": 400, "mean": 0.2, "std": 0.1,
                            "cluster_min_sim": 0.71, "variant_min_sim": 0.74},
                  "de-DE": {"source": "pooled", "n_texts": 12, "mean": 0.3, "std": 0.1,
                            "cluster_min_sim": 0.8, "variant_min_sim": 0.82}}
    manifest["stages"]["rephrase_pairs"]["background"] = background
    manifest["stages"]["rephrase_pairs"]["embedding"] = {"by_model": {
        "enc-openvino-bf16": {"locales": ["en-US"], "precision": ["bf16"]},
        "multilingual-e5-small-q4": {"locales": ["de-DE"], "precision": ["q4"]}}}
    manifest["stages"]["clusters"] = {"min_sim_by_locale": {"en-US": 0.9}}
    manifest["stages"]["labels"]["variant_min_sim_by_locale"] = {"en-US": 0.93, "de-DE": 0.82}
    manifest["config"]["embedding"] = {"model_id": "all-MiniLM-L6-v2", "languages": ["en"]}
    path.write_text(json.dumps(manifest))
    page = report.build_report(tiny_run)
    assert _value(page, "scale.en-US.cluster_min_sim") == "0.9"
    assert _value(page, "scale.en-US.variant_min_sim") == "0.93"
    assert _value(page, "scale.de-DE.cluster_min_sim") == "0.8"     # no stat recorded: the derived one
    assert _value(page, "scale.en-US.mean") == "0.2"
    meta = re.search(r'data-meta="model.embedding">([^<]*)<', page).group(1)
    assert meta == "enc-openvino-bf16 (en-US; bf16); multilingual-e5-small-q4 (de-DE; q4)"


def test_report_of_a_version_with_no_rows(tiny_run):
    """A version whose gates kept no row (quality.min_rows = 0) has an empty training_set/:
    the report says so instead of failing the export that builds it."""
    import shutil

    ts = tiny_run / "versions" / "v1" / "training_set"
    shutil.rmtree(ts)
    ts.mkdir()
    page = report.build_report(tiny_run)
    assert 'id="confidence"' in page and "wake me at 7" not in page
