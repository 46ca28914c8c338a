"""mining.report.run_report: the static run report.

Fast tests use a tiny hand-made run (two locales, no Spark); the slow ones build the
report of a real pipeline run on the small simulated HWU64 log (with its gold) and open it
in headless Chromium through Playwright (Debian's /usr/bin/chromium; never a downloaded
browser: skipped, visibly, where it is not installed)."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mining.report import run_report as report
MALICIOUS = "<script>alert(1)</script>"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _parquet(path: Path, **columns) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


def _value(page: str, metric: str) -> str:
    """The data-value of the element with ``data-metric="metric"``."""
    m = re.search(rf'data-metric="{re.escape(metric)}" data-value="([^"]*)"', page)
    assert m, f"no data-metric={metric}"
    return m.group(1)


@pytest.fixture
def tiny_run(tmp_path) -> Path:
    """A hand-made run: en-US (3 turns, 2 friction, 2 accepted pairs of 3, 2 labeled texts,
    3 exported rows of 2 intents) and de-DE (1 turn, friction, 1 pair, 1 label, 1 row); one
    exported utterance is a script tag."""
    out = tmp_path / "run"
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
                           "labels": {"by_decision": {"labeled": 3, "insufficient_events": 1}}}}
    (version / "manifest.json").write_text(json.dumps(manifest))
    os.symlink("versions/v1", out / "latest")
    return out


def test_build_report_funnel_and_locales_tiny_run(tiny_run):
    page = report.build_report(tiny_run)
    assert [_value(page, f"funnel.{k}") for k, _ in report.FUNNEL] == ["4", "3", "4", "3", "3", "4"]
    assert _value(page, "exported_rows") == "4"
    expected = {"en-US": [3, 2, 2, 2, 3], "de-DE": [1, 1, 1, 1, 1]}
    for loc, values in expected.items():
        assert [int(_value(page, f"locale.{loc}.{c}")) for c, _ in report.LOCALE_COLUMNS] == values
    assert _value(page, "clusters.texts") == "4" and _value(page, "clusters.clusters") == "3"
    assert _value(page, "drops.below_min_users") == "7" and _value(page, "rejects.bad_locale") == "1"
    assert _value(page, "evidence.rephrase") == "3" and _value(page, "evidence.variant") == "1"


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
    top = report.top_variants(tiny_run / "latest", manifest, n_intents=2, k=5)
    assert [(key, n) for key, n, _ in top] == [("en-US/alarm_set", 2), ("de-DE/alarm_set", 1)]
    assert list(top[0][2]["utterance"]) == [MALICIOUS, "wake me at 7"]   # 5 users before 3


def test_write_report_atomic(tiny_run, tmp_path):
    path = report.write_report(tiny_run, tmp_path / "a" / "report.html")
    assert path.read_text(encoding="utf-8") == report.build_report(tiny_run)
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]   # no temp file left


def test_build_report_rejects_evaluation_of_another_version(tiny_run):
    with pytest.raises(ValueError, match="v0"):
        report.build_report(tiny_run, evaluation={"dataset_version": "v0", "label_precision": 1.0, "ece": 0.0})


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
def test_build_report_real_run_is_byte_identical(real_run):
    def build() -> str:
        return report.build_report(real_run["out"], real_run["gold"], evaluation=real_run["evaluation"])

    assert build() == build()


@pytest.mark.slow
def test_build_report_real_run_agrees_with_manifest_and_evaluation(real_run):
    page = report.build_report(real_run["out"], real_run["gold"], evaluation=real_run["evaluation"])
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
def test_report_in_chromium(real_run, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not installed ({CHROMIUM}): apt-get install chromium")
    from playwright.sync_api import sync_playwright

    html_path = report.write_report(real_run["tampered"], tmp_path / "report.html", real_run["gold"],
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
