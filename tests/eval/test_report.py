"""mining.eval.report: the run report with the gold figures and the reliability diagram.

Fast tests use the tiny hand-made run of tests/report/test_run_report.py (no Spark); the
slow ones build the report of a real pipeline run on the small simulated HWU64 log (with
its gold) and open it in headless Chromium through Playwright (Debian's /usr/bin/chromium;
never a downloaded browser: skipped, visibly, where it is not installed)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mining.core.text import normalize
from mining.eval import report as gold_report
from mining.eval.evaluation import ece
from mining.report import run_report
from tests.report.test_run_report import MALICIOUS, _value, make_tiny_run

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TINY_EVALUATION = {"dataset_version": "v1", "label_precision": 0.75, "ece": 0.125, "pair_precision": 0.5,
                   "lift_recovered": 0.3, "by_evidence": {"rephrase": {"labels": 3, "precision": 0.66}}}


@pytest.fixture
def tiny_run(tmp_path) -> Path:
    return make_tiny_run(tmp_path)


def _without_gold(page: str) -> str:
    """The page less its ``#gold`` section and the evaluation's two summary cards."""
    page = re.sub(r'<section id="gold">.*?</section>', "", page, count=1, flags=re.S)
    return re.sub(r'<div class="card"><div class="v" data-metric="(label_precision|ece)" [^>]*>[^<]*</div>'
                  r'<div class="k">[^<]*</div></div>', "", page)


def test_reliability_bins_hand_computed(tiny_run):
    # rows: 0.91 right, 0.97 wrong (no gold), 0.62 right, 0.8 wrong (another intent)
    gold = {normalize("wake me at 7"): {"alarm_set"}, normalize("lights on"): {"iot_hue_lighton"},
            normalize("weck mich"): {"alarm_query"}}
    rel = gold_report.reliability(tiny_run / "latest", gold, batch_rows=1)
    assert rel["bin"].tolist() == [6, 8, 9] and rel["rows"].tolist() == [1, 1, 2]
    assert rel["accuracy"].tolist() == [1.0, 0.0, 0.5]
    assert rel["mean_confidence"].tolist() == pytest.approx([0.62, 0.8, 0.94])
    conf, right = np.array([0.91, 0.97, 0.62, 0.8]), np.array([1.0, 0.0, 1.0, 0.0])
    assert gold_report.ece_from_bins(rel) == pytest.approx(ece(conf, right), abs=1e-12)


def test_evaluation_report_is_the_run_report_plus_gold(tiny_run):
    page = gold_report.build_evaluation_report(tiny_run, evaluation=TINY_EVALUATION)
    assert re.findall(r'<section id="([^"]+)">', page) == [
        "meta", "funnel", "locales", "confidence", "gold", "clusters", "variants", "drops", "changelog"]
    assert _value(page, "label_precision") == "0.75" and _value(page, "ece") == "0.125"
    assert _value(page, "gold.pair_precision") == "0.5" and _value(page, "gold.by_evidence.rephrase.labels") == "3"
    assert "pass the gold folder to draw it" in page and 'data-plot="reliability"' not in page
    assert _without_gold(page) == run_report.build_report(tiny_run)
    # neither gold nor evaluation: the plain run report
    assert gold_report.build_evaluation_report(tiny_run) == run_report.build_report(tiny_run)


def test_write_evaluation_report_atomic(tiny_run, tmp_path):
    path = gold_report.write_evaluation_report(tiny_run, tmp_path / "a" / "report.html", evaluation=TINY_EVALUATION)
    assert path.read_text(encoding="utf-8") == gold_report.build_evaluation_report(tiny_run, evaluation=TINY_EVALUATION)
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]   # no temp file left


def test_evaluation_report_rejects_evaluation_of_another_version(tiny_run):
    with pytest.raises(ValueError, match="v0"):
        gold_report.build_evaluation_report(tiny_run, evaluation={"dataset_version": "v0", "label_precision": 1.0,
                                                                  "ece": 0.0})


# ---------------------------------------------------------------------------- a real run

@pytest.fixture(scope="module")
def real_run(spark, small_sim, tmp_path_factory):
    """The five stages on the 4,000-turn simulated log (about a minute), its evaluation, and
    a copy whose top exported utterance is replaced by a script tag."""
    from mining.stages import runner
    from mining.config import load_config
    from mining.eval.evaluation import evaluate

    out = tmp_path_factory.mktemp("report-run") / "out"
    runner.run_all(spark, load_config(str(small_sim["logs"]), str(out)))
    evaluation = evaluate(str(small_sim["gold"]), str(out))
    tampered = out.parent / "tampered"
    shutil.copytree(out, tampered, symlinks=True)
    manifest = json.loads((out / "manifest.json").read_text())
    key = min(manifest["rows_by_locale_intent"].items(), key=lambda kv: (-kv[1], kv[0]))[0]
    locale, intent = key.split("/", 1)
    part = next((tampered / "training_set" / f"locale={locale}").glob("*.parquet"))
    t = pq.read_table(part)
    df = t.to_pandas()
    top = df[df["intent"] == intent].sort_values(["support_users", "confidence", "support_events"],
                                                 ascending=False).index[0]
    df.loc[top, "utterance"] = MALICIOUS
    pq.write_table(pa.Table.from_pandas(df, schema=t.schema, preserve_index=False), part)
    return {"out": out, "tampered": tampered, "gold": small_sim["gold"], "manifest": manifest,
            "evaluation": evaluation}


@pytest.mark.slow
def test_evaluation_report_real_run_is_byte_identical(real_run):
    def build() -> str:
        return gold_report.build_evaluation_report(real_run["out"], real_run["gold"],
                                                   evaluation=real_run["evaluation"])

    assert build() == build()


@pytest.mark.slow
def test_real_run_reports_share_the_run_sections(real_run):
    """The export's report.html is the plain run report, and the evaluation report is it
    plus the gold section and cards, byte for byte."""
    out = real_run["out"]
    plain = run_report.build_report(out)
    assert (out / "report.html").read_text(encoding="utf-8") == plain
    page = gold_report.build_evaluation_report(out, real_run["gold"], evaluation=real_run["evaluation"])
    assert _without_gold(page) == plain and 'data-metric="reliability.ece"' not in plain


@pytest.mark.slow
def test_evaluation_report_real_run_agrees_with_manifest_and_evaluation(real_run):
    page = gold_report.build_evaluation_report(real_run["out"], real_run["gold"], evaluation=real_run["evaluation"])
    m, ev = real_run["manifest"], real_run["evaluation"]
    assert int(_value(page, "exported_rows")) == m["rows"]
    # per-locale counts, streamed from the stage outputs, add up to the funnel's stage stats
    for key in ("turns", "friction_turns", "accepted_pairs", "labeled_texts", "exported_rows"):
        assert _value(page, f"locale_total.{key}") == _value(page, f"funnel.{key}")
    # the reliability bins recompute evaluate()'s ECE and count every exported row
    assert float(_value(page, "reliability.ece")) == pytest.approx(ev["ece"], abs=1e-12)
    bins = [int(v) for v in re.findall(r'data-metric="reliability\.\d+\.rows" data-value="(\d+)"', page)]
    assert sum(bins) == m["rows"]
    assert float(_value(page, "gold.label_precision")) == ev["label_precision"]


@pytest.mark.slow
def test_evaluation_report_in_chromium(real_run, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not installed ({CHROMIUM}): apt-get install chromium")
    from playwright.sync_api import sync_playwright

    html_path = gold_report.write_evaluation_report(real_run["tampered"], tmp_path / "report.html", real_run["gold"],
                                                    evaluation={**real_run["evaluation"]})
    errors, failed, requests, dialogs = [], [], [], []
    with sync_playwright() as p:
        # launch() gives each browser a fresh temporary profile (--user-data-dir)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("requestfailed", lambda req: failed.append(req.url))
        page.on("request", lambda req: requests.append(req.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(html_path.as_uri(), wait_until="load")
        m = real_run["manifest"]
        assert page.title() == f"Mining run report {m['dataset_version']}"
        assert int(page.locator('[data-metric="exported_rows"]').inner_text().replace(",", "")) == m["rows"]
        assert page.locator("#funnel-table tbody tr").count() == 6
        locales = sorted({k.split("/", 1)[0] for k in m["rows_by_locale_intent"]})
        assert page.locator("#locale-table tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.locale)") == locales
        plots = page.locator("figure[data-plot] svg")
        assert page.locator("figure[data-plot]").evaluate_all("fs => fs.map(f => f.dataset.plot)") == [
            "funnel", "confidence", "reliability", "clusters"]
        for i in range(plots.count()):
            box = plots.nth(i).bounding_box()
            assert box and box["width"] > 100 and box["height"] > 50
            assert plots.nth(i).locator("path").count() > 0
        # the script tag is shown as text, never run
        assert page.locator("td.utt", has_text=MALICIOUS).count() == 1
        assert page.locator("script").count() == 0
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 10_000
    assert errors == [] and failed == [] and dialogs == []
    assert requests == [html_path.as_uri()]


@pytest.mark.slow
def test_evaluate_splits_labels_by_logs_check_and_scores_an_abstention(real_run):
    """by_logs_check counts every exported label once; the abstain what-if scores the same
    run without the labels of a status (bench/abstain_whatif.py)."""
    from mining.eval.evaluation import evaluate

    ev = real_run["evaluation"]
    by = ev["by_logs_check"]
    assert sum(v["labels"] for v in by.values()) == ev["labels"] == real_run["manifest"]["rows"]
    status = max(sorted(by), key=lambda k: by[k]["labels"])
    without = evaluate(str(real_run["gold"]), str(real_run["out"]), abstain=(status,))
    assert without["labels"] == ev["labels"] - by[status]["labels"]
    assert status not in without["by_logs_check"]
    assert without["label_precision"] == pytest.approx(
        (ev["label_precision"] * ev["labels"] - by[status]["precision"] * by[status]["labels"])
        / max(without["labels"], 1))
    assert sum(v["accepted"] for v in ev["label_clean_by_target_friction"].values()) == ev["accepted_pairs"]
