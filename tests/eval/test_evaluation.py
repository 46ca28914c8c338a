"""Evaluation figures on hand-computed cases (no Spark)."""
import numpy as np
import pandas as pd
import pytest

from mining.eval.evaluation import ece, retraining, slot_metrics


def test_slot_metrics_hand_computed():
    train = pd.DataFrame({
        "utterance": ["Wake me at seven am", "play jazz", "call mum"],
        "evidence": ["rephrase", "rephrase", "variant"],
        "slots": [[{"name": "time", "value": "seven am"}, {"name": "date", "value": "me"}],
                  [], [{"name": "person", "value": "mum"}]],   # variant rows are not scored
    })
    gold = {"wake me at seven am": [{"name": "time", "value": "Seven AM"}],
            "play jazz": [{"name": "music_genre", "value": "jazz"}],
            "call mum": [{"name": "person", "value": "mum"}]}
    m = slot_metrics(train, gold)
    # projected 2, 1 right; gold slots of rephrase rows 2, 1 recovered
    assert (m["slot_rows"], m["slots_projected"], m["gold_slots"]) == (2, 2, 2)
    assert m["slot_precision"] == pytest.approx(0.5) and m["slot_recall"] == pytest.approx(0.5)


def test_ece_hand_computed():
    conf = np.array([0.95, 0.95, 0.55, 0.55])
    correct = np.array([1.0, 1.0, 1.0, 0.0])
    # bin 9: acc 1.0 vs 0.95; bin 5: acc 0.5 vs 0.55 → 0.5·0.05 + 0.5·0.05
    assert ece(conf, correct) == pytest.approx(0.05)


def _splits():
    rows = []
    words = {"alarm": ["wake", "alarm", "morning"], "weather": ["rain", "sunny", "forecast"],
             "music": ["song", "play", "jazz"]}
    for intent, ws in words.items():
        rows.append(("seed", f"{ws[0]} please", intent))
        for i, w in enumerate(ws[1:]):
            rows += [("test", f"{w} now {j}", intent) for j in range(3)]
    return pd.DataFrame(rows, columns=["split", "text", "intent"])


def test_retraining_lift_overall_and_per_intent():
    splits = _splits()
    oracle = pd.DataFrame({"text": ["alarm", "morning", "sunny", "forecast", "play", "jazz"],
                           "intent": ["alarm", "alarm", "weather", "weather", "music", "music"]})
    mined = pd.DataFrame({"utterance": ["alarm", "morning"], "intent": ["alarm", "alarm"]})
    r = retraining(splits, mined, oracle, oracle_private=oracle.iloc[:2])
    assert r["acc_seed_oracle"] > r["acc_seed"]
    assert r["lift_recovered"] == pytest.approx((r["acc_seed_mined"] - r["acc_seed"])
                                                / (r["acc_seed_oracle"] - r["acc_seed"]))
    per = {p["intent"]: p for p in r["per_intent"]}
    assert set(per) == {"alarm", "weather", "music"} and all(p["test"] == 6 for p in per.values())
    # mined = the private oracle exactly: it recovers all of that oracle's lift
    assert r["acc_seed_mined"] == pytest.approx(r["acc_seed_oracle_private"])
    assert r["lift_recovered_private"] == pytest.approx(1.0)
    # overall accuracy is the test-size-weighted mean of the per-intent accuracies
    assert r["acc_seed_mined"] == pytest.approx(np.mean([p["acc_seed_mined"] for p in per.values()]))
    assert r["accuracy_delta"] == pytest.approx(r["acc_seed_mined"] - r["acc_seed"])


def test_a_regression_shows_in_accuracy_delta_where_the_oracle_gains_nothing():
    """lift_recovered is 0 when the oracle adds nothing; mined labels that hurt must still show."""
    splits = _splits()
    nothing = pd.DataFrame({"text": [], "intent": []})
    wrong = pd.DataFrame({"utterance": ["alarm now", "morning now", "sunny now", "forecast now", "play now",
                                        "jazz now"] * 3,
                          "intent": ["music", "music", "alarm", "alarm", "weather", "weather"] * 3})
    r = retraining(splits, wrong, nothing)
    assert r["acc_seed_oracle"] == r["acc_seed"] and r["lift_recovered"] == 0.0
    assert r["accuracy_delta"] < 0 and r["acc_seed_mined"] < r["acc_seed"]


def test_label_metrics_split_by_logs_check_status():
    from mining.eval.evaluation import label_metrics

    gi = {"wake me up": {"alarm_set"}, "play jazz": {"play_music"}, "call mum": {"call"}}
    train = pd.DataFrame({"utterance": ["wake me up", "play jazz", "call mum"],
                          "intent": ["alarm_set", "play_radio", "call"], "confidence": [0.9, 0.9, 0.5],
                          "evidence": ["rephrase"] * 3,
                          "logs_check": ["confirmed", "unknown_intent", None]})
    m = label_metrics(train, gi)
    assert m["by_logs_check"] == {"confirmed": {"labels": 1, "precision": 1.0},
                                  "not_in_run": {"labels": 1, "precision": 1.0},
                                  "unknown_intent": {"labels": 1, "precision": 0.0}}
    assert "by_logs_check" not in label_metrics(train.drop(columns="logs_check"), gi)


def test_pair_metrics_split_right_target_labels_by_the_target_turns_own_friction():
    from mining.eval.evaluation import pair_metrics

    # three friction sources (s1..s3), each rephrased by an accepted target (t1..t3) of its goal;
    # t2 is a silent failure (wrong label), t2 and t3 had friction themselves (low confidence)
    gold = pd.DataFrame({
        "turn_id": ["s1", "t1", "s2", "t2", "s3", "t3"],
        "goal_id": ["g1", "g1", "g2", "g2", "g3", "g3"],
        "utt_id": ["u1", "u2", "u3", "u4", "u5", "u6"],
        "friction": [True, False, True, False, True, False],
        "silent_failure": [False, False, False, True, False, False],
        "noticed": [False] * 6, "nlu_correct": [False, True, False, False, False, True]})
    turns = pd.DataFrame({"turn_id": gold["turn_id"], "session_pseudonym": ["a", "a", "b", "b", "c", "c"],
                          "ts": [0, 1] * 3, "is_friction": [True, False, True, True, True, True]})
    pairs = pd.DataFrame({"source_turn_id": ["s1", "s2", "s3"], "target_turn_id": ["t1", "t2", "t3"],
                          "accepted": True})
    m = pair_metrics(pairs, turns, gold)
    assert m["label_clean_share"] == pytest.approx(2 / 3)
    assert m["label_clean_by_target_friction"] == {
        "target_friction": {"accepted": 2, "label_clean_share": 0.5},
        "target_no_friction": {"accepted": 1, "label_clean_share": 1.0}}


def test_with_logs_check_joins_the_labeled_rows_status_and_marks_rows_the_run_did_not_decide(tmp_path):
    from mining.eval.evaluation import _with_logs_check

    labels = pd.DataFrame({"locale": ["en-US", "en-US", "en-US", "de-DE"],
                           "utterance": ["play jazz", "play jazz", "call mum", "play jazz"],
                           "decision": ["labeled", "labeled", "contradicted_by_logs", "labeled"],
                           "logs_check": ["confirmed", "confirmed", "contradicted", "unknown_intent"]})
    (tmp_path / "labels").mkdir()
    labels.to_parquet(tmp_path / "labels" / "part-0.parquet")
    train = pd.DataFrame({"locale": ["en-US", "en-US", "de-DE"], "utterance": ["play jazz", "call mum", "play jazz"],
                          "intent": ["play_music", "call", "play_music"]})
    out = _with_logs_check(train, tmp_path / "labels")
    assert out["logs_check"].tolist() == ["confirmed", "not_in_run", "unknown_intent"]   # one row each
    (tmp_path / "old").mkdir()
    labels.drop(columns="logs_check").to_parquet(tmp_path / "old" / "part-0.parquet")
    assert "logs_check" not in _with_logs_check(train, tmp_path / "old")
    # a label's key is its normalized text: another casing or punctuation is the same label
    cased = train.assign(utterance=["Play jazz!", "call mum", "PLAY JAZZ"])
    assert _with_logs_check(cased, tmp_path / "labels")["logs_check"].tolist() == \
        ["confirmed", "not_in_run", "unknown_intent"]


def _tiny_out(root):
    """A run root with one version (no rows exported) and the stage outputs evaluate reads."""
    import json
    import os

    out = root / "out"
    cols = {"turns": ["turn_id", "session_pseudonym", "user_pseudonym", "ts", "text_norm", "locale", "utterance",
                      "nlu_intent", "is_friction", "succeeded"],
            "rephrase_pairs": ["source_turn_id", "target_turn_id", "accepted", "score", "locale", "is_repeat",
                               "target_succeeded", "turn_distance"],
            "clusters": ["text_norm", "cluster_id", "locale"], "labels": ["locale", "utterance", "decision"]}
    for name, names in cols.items():
        (out / name).mkdir(parents=True)
        pd.DataFrame({c: ["x"] for c in names}).to_parquet(out / name / "part-0.parquet")
        (out / name / "_stats.json").write_text(json.dumps({"lineage": "run-b"}))
    version = out / "versions" / "v1"
    (version / "training_set").mkdir(parents=True)      # an export that kept no row: no files
    (version / "manifest.json").write_text(json.dumps({"dataset_version": "v1", "stages": {}}))
    os.symlink("versions/v1", out / "latest")
    gold = root / "gold"
    (gold / "turns").mkdir(parents=True)
    pd.DataFrame({"turn_id": ["x"]}).to_parquet(gold / "turns" / "part-0.parquet")
    pd.DataFrame({"text": ["x"], "split": ["seed"], "intent": ["a"]}).to_parquet(gold / "splits.parquet")
    return out, gold


def test_load_run_reads_an_export_of_no_rows_with_its_columns(tmp_path):
    from mining.eval.evaluation import _load_run

    out, gold = _tiny_out(tmp_path)
    frames = _load_run(gold, out)
    assert frames["train"].empty and {"locale", "utterance", "intent", "confidence"} <= set(frames["train"])
    assert frames["manifest"]["dataset_version"] == "v1"


def test_load_run_refuses_a_version_beside_another_runs_stage_outputs(tmp_path):
    """A backfill or --locale run into the same OUT leaves latest on an older version: its
    labels must not be scored against the newer run's turns."""
    import json

    from mining.errors import StageOutputMismatch
    from mining.eval.evaluation import _load_run

    out, gold = _tiny_out(tmp_path)
    (out / "versions" / "v1" / "manifest.json").write_text(json.dumps(
        {"dataset_version": "v1", "stages": {"turns": {"lineage": "run-a"}}}))
    with pytest.raises(StageOutputMismatch, match="another detect_rephrases run"):
        _load_run(gold, out)
