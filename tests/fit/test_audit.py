"""`mining audit sample` and `mining fit-calibration --audit`: stratified, seeded, scrubbed
sampling of a run's candidate labels; reading a reviewed CSV with every skipped row counted;
the refit and its round trip through the CLI and ``load_calibration``. No Spark: the run's
``labels/`` is written with pyarrow."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mining import cli
from mining.core.aggregation import LABEL_COLUMNS
from mining.core.calibration import load_calibration
from mining.errors import AuditError
from mining.fit import audit

pytestmark = pytest.mark.usefixtures("clean_cli_state")


def _labels(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """``n`` label rows like aggregate_labels writes: 80% candidates (labeled or
    low_confidence), some below the k-anonymity gate, a few abstentions."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.1, 0.95, n).round(4)
    cand = rng.random(n) < 0.8
    users = rng.integers(1, 6, n)
    rows = {c: [None] * n for c in LABEL_COLUMNS}
    rows.update(
        locale=np.where(np.arange(n) % 3 == 0, "de-DE", "en-US"), text_norm=[f"text {i}" for i in range(n)],
        utterance=[f"Text {i}" for i in range(n)], intent=np.where(cand & (raw > 0.4), "alarm_set", None),
        slots=[[] for _ in range(n)], confidence=np.where(cand & (raw > 0.4), raw, np.nan),
        support_users=users, support_events=users, evidence=np.where(cand & (raw > 0.4), "rephrase", None),
        cluster_id=None, decision=np.where(cand, np.where(raw > 0.4, "labeled", "low_confidence"), "insufficient_events"),
        defect_rate=0.5, text_users=users, candidate_intent=np.where(cand, "alarm_set", None),
        candidate_evidence=np.where(cand, np.where(np.arange(n) % 5 == 0, "variant", "rephrase"), None),
        raw_score=np.where(cand, raw, np.nan), posterior_mean=np.where(cand, raw, np.nan),
        vote_intent="alarm_set", vote_share=raw, vote_events=users)
    return pd.DataFrame(rows, columns=LABEL_COLUMNS)


def _run(tmp_path: Path, labels: pd.DataFrame, name: str = "run") -> Path:
    run = tmp_path / name
    (run / "labels").mkdir(parents=True)
    labels.to_parquet(run / "labels" / "part-00000.parquet", index=False)
    (run / "labels" / "_SUCCESS").touch()
    (run / "labels" / "_stats.json").write_text(json.dumps({"calibration": "calibration-test-1"}))
    return run


def _pop(labels=None):
    return audit.candidate_population(_labels() if labels is None else labels, min_users=2)


# ---- sampling ------------------------------------------------------------------------

def test_population_is_the_k_anonymous_candidates_sorted_by_raw_score():
    lab = _labels()
    lab.loc[lab.index[:10], "decision"] = "contradicted_by_logs"     # abstained on the logs: not gated
    pop = audit.candidate_population(lab, min_users=2)
    expect = lab[lab["candidate_intent"].notna() & (lab["text_users"] >= 2)
                 & lab["decision"].isin(["labeled", "low_confidence"])]
    assert len(pop) == len(expect) and set(pop["text_norm"]) == set(expect["text_norm"])
    assert pop["raw_score"].is_monotonic_increasing
    assert set(audit.candidate_population(lab, 2, ("de-DE",))["locale"]) == {"de-DE"}


@pytest.mark.parametrize("change, match", [
    (lambda l: l.drop(columns=["raw_score"]), "lack columns"),
    (lambda l: l.assign(raw_score=np.where(l["candidate_intent"].notna(), np.nan, 0.0)), "no raw_score"),
])
def test_population_refuses_corrupt_labels(change, match):
    with pytest.raises(AuditError, match=match):                  # an input problem: exit 3
        audit.candidate_population(change(_labels()), min_users=2)


def test_sample_is_deterministic_and_independent_of_input_order():
    lab = _labels()
    a = audit.stratified_sample(audit.candidate_population(lab, 2), 40, seed=3)
    b = audit.stratified_sample(audit.candidate_population(lab.sample(frac=1, random_state=1), 2), 40, seed=3)
    c = audit.stratified_sample(audit.candidate_population(lab, 2), 40, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert set(a["text_norm"]) != set(c["text_norm"])
    assert a["text_norm"].is_unique and len(a) == 40


@pytest.mark.parametrize("n, strata", [(40, 10), (43, 10), (7, 10), (25, 4)])
def test_every_equal_count_stratum_gives_an_equal_share(n, strata):
    pop = _pop()
    sample = audit.stratified_sample(pop, n, seed=0, strata=strata)
    k = min(strata, n)
    counts = sample["stratum"].value_counts().reindex(range(1, k + 1), fill_value=0)
    assert counts.sum() == n and set(counts) <= {n // k, n // k + 1}
    # stratum s holds the s-th k-quantile of the raw scores: the sample spans the whole range
    edges = np.quantile(pop["raw_score"], [1 / k, 1 - 1 / k])
    assert sample["raw_score"].min() <= edges[0] and sample["raw_score"].max() >= edges[1]
    ranks = pop.reset_index().set_index("text_norm").loc[sample["text_norm"], "index"].to_numpy()
    assert np.array_equal(sample["stratum"].to_numpy(), ranks * k // len(pop) + 1)


def test_sample_larger_than_population_takes_everything():
    pop = _pop()
    assert len(audit.stratified_sample(pop, len(pop) + 50, seed=0)) == len(pop)
    with pytest.raises(ValueError):
        audit.stratified_sample(pop, 0, seed=0)


def test_audit_csv_is_scrubbed_and_holds_no_pseudonym_or_normalized_text(tmp_path):
    lab = _labels(60)
    lab.loc[0, ["utterance", "text_users", "candidate_intent", "candidate_evidence", "raw_score"]] = \
        ["call me at 415 555 0132 please", 3, "calling_call", "rephrase", 0.5]
    lab.loc[1, ["utterance", "text_users", "candidate_intent", "candidate_evidence", "raw_score"]] = \
        ["=HYPERLINK(\"x\")", 3, "qa_factoid", "rephrase", 0.6]
    lab["user_pseudonym"] = "f" * 64                          # even if a column carried one
    run = _run(tmp_path, lab)
    out = tmp_path / "audit.csv"
    summary = audit.sample_run(run, 30, out, seed=0, min_users=2)
    text = out.read_text(encoding="utf-8")
    assert summary["written"] == 30
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(df.columns) == audit.AUDIT_COLUMNS and set(df["correct"]) == {""}
    assert "415 555 0132" not in text and "f" * 64 not in text and "text 1" not in text
    full = audit.audit_frame(audit.stratified_sample(audit.candidate_population(lab, 2), 100, 0),
                             dataset_version="", labels_digest="d", calibration_version="c")
    assert "call me at <phone> please" in set(full["text"])     # scrubbed as the export scrubs
    assert "'=HYPERLINK(\"x\")" in set(full["text"])          # no formula for a spreadsheet
    assert set(df["calibration_version"]) == {"calibration-test-1"}
    assert set(df["labels_digest"]) == {audit.labels_digest(run)}


def test_sample_run_same_bytes_refuses_to_overwrite_and_short_runs(tmp_path):
    run = _run(tmp_path, _labels())
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    audit.sample_run(run, 50, a, seed=1, min_users=2)
    audit.sample_run(run, 50, b, seed=1, min_users=2)
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(ValueError, match="exists"):
        audit.sample_run(run, 50, a, seed=1, min_users=2)
    n_pop = len(_pop())
    short = tmp_path / "short.csv"
    with pytest.raises(AuditError, match=f"fewer than --n {n_pop + 1}: wrote all {n_pop}"):
        audit.sample_run(run, n_pop + 1, short, seed=1, min_users=2)
    assert len(pd.read_csv(short)) == n_pop
    with pytest.raises(AuditError, match="no candidate label"):
        audit.sample_run(run, 5, tmp_path / "none.csv", seed=1, min_users=99)
    with pytest.raises(FileNotFoundError, match="aggregate_labels"):
        audit.sample_run(tmp_path / "empty", 5, tmp_path / "x.csv", min_users=2)


def test_sample_run_refuses_under_differential_privacy(tmp_path):
    from mining.errors import PrivacyError

    run = _run(tmp_path, _labels())
    with pytest.raises(PrivacyError, match="privacy.dp"):
        audit.sample_run(run, 5, tmp_path / "a.csv", min_users=2, dp=True)
    (run / "manifest.json").write_text(json.dumps({"dataset_version": "v1", "dp": {"enabled": True}}))
    with pytest.raises(PrivacyError, match="privacy.dp"):
        audit.sample_run(run, 5, tmp_path / "a.csv", min_users=2)
    assert not (tmp_path / "a.csv").exists()
    stats = json.loads((run / "labels" / "_stats.json").read_text())
    (run / "manifest.json").write_text(json.dumps({"dataset_version": "v1", "dp": {"enabled": False},
                                                   "stages": {"labels": stats}}))
    audit.sample_run(run, 5, tmp_path / "a.csv", min_users=2)
    assert set(pd.read_csv(tmp_path / "a.csv")["dataset_version"]) == {"v1"}
    # labels/ newer than the published version (export not run yet, or its gate failed): no stamp
    (run / "labels" / "_stats.json").write_text(json.dumps({**stats, "texts_with_friction": 1}))
    audit.sample_run(run, 5, tmp_path / "b.csv", min_users=2)
    assert pd.read_csv(tmp_path / "b.csv", dtype=str, keep_default_na=False)["dataset_version"].tolist() == [""] * 5
    # a run whose labels were aggregated under DP is refused whatever this configuration says
    (run / "labels" / "_stats.json").write_text(json.dumps({**stats, "privacy": {"min_users": 2, "dp": True}}))
    with pytest.raises(PrivacyError, match="privacy.dp"):
        audit.sample_run(run, 5, tmp_path / "c.csv", min_users=2)


def test_sample_run_never_goes_below_the_runs_own_min_users(tmp_path):
    """A run mined with `--config` privacy.min_users = 5, audited without that config, still
    shows only texts of >= 5 users: the larger of the configured, the labels stage's and the
    last export's k-anonymity gate."""
    run = _run(tmp_path, _labels(400))
    stats = json.loads((run / "labels" / "_stats.json").read_text())
    (run / "labels" / "_stats.json").write_text(json.dumps({**stats, "privacy": {"min_users": 5, "dp": False}}))
    summary = audit.sample_run(run, 20, tmp_path / "a.csv", seed=0, min_users=2)
    assert summary["min_users"] == 5
    assert pd.read_csv(tmp_path / "a.csv")["text_users"].min() >= 5
    (run / "labels" / "_stats.json").write_text(json.dumps(stats))          # an older run: no record
    (run / "manifest.json").write_text(json.dumps({"config": {"privacy": {"min_users": 4}}}))
    assert audit.sample_run(run, 20, tmp_path / "b.csv", seed=0, min_users=2)["min_users"] == 4
    assert audit.sample_run(run, 20, tmp_path / "c.csv", seed=0, min_users=5)["min_users"] == 5


# ---- reading a review ----------------------------------------------------------------

def _review(tmp_path: Path, rows: list[tuple], name="reviewed.csv", sep=",", bom=False, keyed=False) -> Path:
    cols = ["audit_id", "raw_score", "evidence", "correct"]
    if keyed:     # the label key of `mining audit sample`'s CSV: labels of this file's own run
        cols += list(audit.LABEL_KEY)
        rows = [(*r, f"labels-{name}", "en-US", f"text {r[0]}", "alarm_set") for r in rows]
    text = sep.join(cols) + "\n" + "".join(sep.join(map(str, r)) + "\n" for r in rows)
    path = tmp_path / name
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")
    return path


def test_review_parsing_counts_every_skipped_row_by_reason(tmp_path):
    path = _review(tmp_path, [
        (1, 0.9, "rephrase", "1"), (2, 0.8, "rephrase", "Yes"), (3, 0.7, "variant", "false"),
        (4, 0.6, "rephrase", " N "), (5, 0.5, "rephrase", ""), (6, 0.4, "rephrase", "maybe"),
        (7, '"0,4"', "rephrase", "1"), (8, 1.7, "rephrase", "0"), (9, 0.3, "friend", "1"), (1, 0.9, "rephrase", "1"),
        (10, 0.2, "variant", "TRUE"), (11, '"0,4,1"', "rephrase", "1"),
    ])
    rows, counts = audit.read_review(path)
    assert counts["rows"] == 12 and counts["used"] == 6             # "0,4": a decimal comma
    assert {r: counts[r] for r in audit.SKIP_REASONS} == {
        "not_reviewed": 1, "unreadable_correct": 1, "bad_raw_score": 2, "unknown_evidence": 1, "duplicate_audit_id": 1,
        "duplicate_label": 0}
    assert counts["used"] + sum(counts[r] for r in audit.SKIP_REASONS) == counts["rows"]
    assert rows["correct"].tolist() == [True, True, False, False, True, True]
    assert rows["raw_score"].dtype == np.float64


def test_review_reads_semicolons_and_a_bom(tmp_path):
    rows, counts = audit.read_review(_review(tmp_path, [(1, 0.9, "rephrase", "1"), (2, 0.1, "variant", "0")],
                                             sep=";", bom=True))
    assert counts["used"] == 2 and rows["evidence"].tolist() == ["rephrase", "variant"]


def test_review_reads_a_spreadsheet_saved_in_a_german_or_french_setting(tmp_path):
    """``;`` cells, decimal commas, CRLF and the spreadsheet's own booleans: every row used."""
    path = tmp_path / "de.csv"
    path.write_bytes("\ufeffaudit_id;raw_score;evidence;correct\r\n1;0,923456;rephrase;WAHR\r\n"
                     "2;0,100000;variant;FALSCH\r\n3;0,5;rephrase;vrai\r\n4;1,0;rephrase;1,0\r\n".encode("utf-8"))
    rows, counts = audit.read_review(path)
    assert counts["used"] == 4 and counts["bad_raw_score"] == 0
    assert rows["raw_score"].tolist() == [0.923456, 0.1, 0.5, 1.0]
    assert rows["correct"].tolist() == [True, False, True, True]


@pytest.mark.parametrize("value, expect", [("1", True), ("0", False), ("YES", True), ("no", False),
                                           ("True", True), ("f", False), ("", None), (None, None)])
def test_parse_correct(value, expect):
    assert audit.parse_correct(value) is expect


def test_review_without_needed_columns_or_rows_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("audit_id,raw_score,evidence\n1,0.5,rephrase\n")
    with pytest.raises(AuditError, match="missing column.*correct"):
        audit.read_review(bad)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("raw_score,evidence,correct\n0.5,rephrase,1\n0,4,rephrase,1\n")
    with pytest.raises(AuditError, match="not a readable UTF-8 CSV"):
        audit.read_review(ragged)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("raw_score,evidence,correct\n0.5,rephrase,oui \xe9\n".encode("latin-1"))
    with pytest.raises(AuditError, match="not a readable UTF-8 CSV"):
        audit.read_review(latin)
    empty = tmp_path / "empty.csv"
    empty.write_text("raw_score,evidence,correct\n")
    with pytest.raises(AuditError, match="no rows"):
        audit.read_review(empty)


# ---- refit -----------------------------------------------------------------------------

def _gold_rows(n: int, seed: int = 0) -> list[tuple]:
    """Reviewed rows whose P(correct) rises with the raw score; ~10% variant, a few unreviewed."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.1, 0.95, n)
    ok = rng.random(n) < raw
    return [(i, round(r, 4), "variant" if i % 10 == 0 else "rephrase", "" if i % 17 == 0 else int(c))
            for i, (r, c) in enumerate(zip(raw, ok))]


def test_refit_from_a_small_review_records_its_source_and_pooled_kinds(tmp_path):
    path = _review(tmp_path, _gold_rows(300))
    cal, out = audit.fit_from_audit(path, None, min_per_kind=100, argv=["fit-calibration", "--audit", str(path)])
    assert out == tmp_path / "reviewed.calibration.toml"
    loaded = load_calibration(out)
    assert loaded.version == cal.version and cal.version.startswith("calibration-isotonic-audit-")
    assert set(loaded.maps) == {"pooled", "rephrase"}            # 30 variant rows < 100: pooled
    fit = tomllib.loads(out.read_text())["fit"]
    assert fit["audit_sha256"] == [audit.file_sha256(path)] and fit["audit_files"] == ["reviewed.csv"]
    assert fit["audit_rows"]["not_reviewed"] == 18 and fit["audit_rows"]["used"] == 282
    assert "variant" in fit["pooled_for"] and fit["command"].startswith("mining fit-calibration --audit")
    conf = loaded.apply(np.array([0.15, 0.9]), np.array(["variant", "rephrase"], dtype=object))
    assert conf[0] < conf[1]


def test_refit_from_several_audits_sums_their_rows(tmp_path):
    one = _review(tmp_path, _gold_rows(150, seed=1), name="night1.csv", keyed=True)
    two = _review(tmp_path, _gold_rows(150, seed=2), name="night2.csv", keyed=True)   # same audit_ids: other file
    _, out = audit.fit_from_audit([one, two], tmp_path / "c.toml", min_per_kind=200, argv=[])
    fit = tomllib.loads(out.read_text())["fit"]
    assert fit["audit_rows"]["rows"] == 300 and fit["audit_rows"]["duplicate_audit_id"] == 0
    assert fit["audit_files"] == ["night1.csv", "night2.csv"] and len(fit["audit_sha256"]) == 2
    assert fit["labels_by_evidence"]["rephrase"] + fit["labels_by_evidence"]["variant"] == fit["audit_rows"]["used"]


def test_a_review_counts_once_across_files(tmp_path):
    """The same file twice is refused; a label reviewed in two overlapping audits of one run
    (same labels_digest, locale, text, intent) is used once and counted as duplicate_label."""
    one = _review(tmp_path, _gold_rows(150, seed=1), name="night1.csv")
    from mining.errors import ConfigError

    with pytest.raises(ConfigError, match="same bytes"):
        audit.fit_from_audit([one, one], tmp_path / "c.toml", min_per_kind=200, argv=[])

    def keyed(name: str, ids: range) -> Path:
        df = pd.DataFrame({"audit_id": [str(i) for i in ids], "locale": "en-US", "text": [f"text {i}" for i in ids],
                           "candidate_intent": "alarm_set", "labels_digest": "labels-abc", "evidence": "rephrase",
                           "raw_score": [f"{0.1 + i / 100:.4f}" for i in ids], "correct": [str(i % 2) for i in ids]})
        df.to_csv(tmp_path / name, index=False)
        return tmp_path / name

    rows, counts = audit.read_reviews([keyed("a.csv", range(0, 30)), keyed("b.csv", range(20, 50))])
    assert counts["rows"] == 60 and counts["used"] == 50 and counts["duplicate_label"] == 10
    assert len(rows) == 50 and rows["label_key"].is_unique


def test_pooled_for_names_the_real_reason(tmp_path):
    rows = [(i, 0.2 + i / 100, "rephrase", i % 2) for i in range(40)] + \
           [(100 + i, 0.5, "variant", i % 2) for i in range(25)]          # enough rows, one raw score
    path = _review(tmp_path, rows)
    cal, _ = audit.fit_from_audit(path, tmp_path / "c.toml", min_per_kind=20, argv=[])
    assert cal.fit["pooled_for"] == {"variant": "25 reviewed rows with 1 distinct raw score(s) < 2: uses the pooled map"}


def test_a_calibration_file_missing_a_map_array_is_a_configuration_error(tmp_path):
    from mining.errors import ConfigError

    bad = tmp_path / "cal.toml"
    bad.write_text('version = "v"\n[pooled]\ny = [0.0, 1.0]\n')
    with pytest.raises(ConfigError, match=r"\[pooled\] needs arrays"):
        load_calibration(bad)
    bad.write_text('[pooled]\nx = [0.0, 1.0]\ny = [0.0, 1.0]\n')
    with pytest.raises(ConfigError, match="version"):
        load_calibration(bad)


def test_refit_refuses_one_sided_verdicts_and_unkeyed_files_together(tmp_path):
    """Found in review: 25 reviews all "yes" gave a flat map, every label confidence 1.0; two
    audits without the label key columns counted a label reviewed in both twice."""
    same = _review(tmp_path, [(i, round(0.05 + i / 30, 4), "rephrase", "yes") for i in range(25)])
    with pytest.raises(AuditError, match="all 25 usable verdicts are right"):
        audit.fit_from_audit(same, tmp_path / "c.toml", min_per_kind=200, argv=[])
    one = _review(tmp_path, _gold_rows(150, seed=1), name="night1.csv")
    two = _review(tmp_path, _gold_rows(150, seed=2), name="night2.csv")
    with pytest.raises(AuditError, match="would count twice"):
        audit.fit_from_audit([one, two], tmp_path / "c.toml", min_per_kind=200, argv=[])
    audit.fit_from_audit(one, tmp_path / "c.toml", min_per_kind=200, argv=[])      # one file: no key needed
    assert (tmp_path / "c.toml").exists()


def test_refit_refuses_too_few_reviewed_rows(tmp_path):
    path = _review(tmp_path, [(i, 0.5 + i / 100, "rephrase", "" if i > 5 else 1) for i in range(30)])
    with pytest.raises(AuditError, match=r"6 usable reviewed rows of 30 \(not_reviewed 24\)"):
        audit.fit_from_audit(path, tmp_path / "c.toml", min_per_kind=200, argv=[])
    assert not (tmp_path / "c.toml").exists()


# ---- the CLI round trip ------------------------------------------------------------------

def test_cli_sample_review_fit_load(tmp_path, capsys, monkeypatch):
    run = _run(tmp_path, _labels(400))
    csv = tmp_path / "audit.csv"
    assert cli.main(["audit", "sample", "--run", str(run), "--n", "120", "--seed", "5", "--out", str(csv)]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == 120
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(0)
    df["correct"] = np.where(rng.random(len(df)) < df["raw_score"].astype(float), "yes", "no")
    df.loc[:4, "correct"] = ""                                    # five left unreviewed
    df.to_csv(csv, index=False)
    toml = tmp_path / "cal.toml"
    assert cli.main(["fit-calibration", "--audit", str(csv), "--out", str(toml)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["audit_rows"]["used"] == 115 and result["audit_rows"]["not_reviewed"] == 5
    cal = load_calibration(toml)
    assert cal.version == result["version"] and "pooled" in cal.maps
    # exit codes: fewer labels than N (all written), --audit with simulation options, neither
    assert cli.main(["audit", "sample", "--run", str(run), "--n", "100000", "--out", str(tmp_path / "all.csv")]) == 3
    assert "fewer than --n 100000" in capsys.readouterr().err
    assert cli.main(["audit", "sample", "--run", str(tmp_path / "nothing"), "--n", "5",
                     "--out", str(tmp_path / "n.csv")]) == 3
    (tmp_path / "dp.toml").write_text("[privacy.dp]\nenabled = true\n")
    monkeypatch.setenv("MINING_CONFIG", str(tmp_path / "dp.toml"))
    assert cli.main(["audit", "sample", "--run", str(run), "--n", "5", "--out", str(tmp_path / "dp.csv")]) == 4
    monkeypatch.delenv("MINING_CONFIG")
    assert cli.main(["fit-calibration", "--audit", str(csv), "--work", str(tmp_path)]) == 2
    assert cli.main(["fit-calibration"]) == 2
    assert "--audit" in capsys.readouterr().err
    assert cli.main(["fit-calibration", "--work", str(tmp_path), "--min-per-kind", "50"]) == 2
    assert "--min-per-kind applies to --audit only" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad_seed:                        # argparse: a negative seed
        cli.main(["audit", "sample", "--run", str(run), "--n", "5", "--seed", "-1", "--out", str(tmp_path / "s.csv")])
    assert bad_seed.value.code == 2


def test_fit_calibration_refuses_the_rephrase_scorers_seed_on_its_corpora(tmp_path):
    """Found in review: the calibration was fitted on HWU64 seed 101, the scorer's own fit logs
    (the simulator writes users in order), so the map learned from pairs the scorer was trained
    on. The packaged calibration and the default seed differ from the scorer's now."""
    from mining.core.calibration import load_calibration
    from mining.core.rephrase_model import load_model
    from mining.errors import ConfigError
    from mining.fit import calibration as calibration_fit

    scorer = load_model(None).fit
    with pytest.raises(ConfigError, match="its training logs would be inside the calibration's"):
        calibration_fit.fit(["hwu64"], 1000, scorer["seed"], tmp_path, min_users=2, out=tmp_path / "c.toml", argv=[])
    assert not (tmp_path / "c.toml").exists()
    assert calibration_fit.FIT_SEED != scorer["seed"]
    assert load_calibration(None).fit["seed"] == calibration_fit.FIT_SEED
