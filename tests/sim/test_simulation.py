"""Log simulator: contract, determinism, behaviour kinds, noticed silent failures,
correction cues, heavy tails, time, chunking."""
import datetime as dt
import filecmp
import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mining.sim.corpora import load_corpus
from mining.io.schemas import arrow_schema
from mining.sim.simulation import (CORRECTION_CUES, GOLD_TURNS_SCHEMA, SPLITS_SCHEMA,
                               SimulationConfig, simulate, split_corpus)

N_TURNS = 3000


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _run(root: Path, **overrides):
    config = SimulationConfig(n_turns=N_TURNS, **overrides)
    summary = simulate(config, root / "logs", root / "gold")
    return summary, root / "logs", root / "gold"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("sim"))


def _joined(logs_dir: Path, gold_dir: Path) -> pd.DataFrame:
    """Logs joined with the gold and with ``text``, the corpus text of ``utt_id``, sorted by
    session and time; ``prev_*`` / ``next_*`` = previous / next turn of the same session."""
    logs = pd.read_parquet(logs_dir)
    frame = logs.merge(pd.read_parquet(gold_dir / "turns"), on="turn_id", validate="1:1")
    texts = pd.read_parquet(gold_dir / "splits.parquet", columns=["utt_id", "text"])
    frame = frame.merge(texts, on="utt_id", validate="m:1")
    frame = frame.sort_values(["session_id", "ts"]).reset_index(drop=True)
    by_session = frame.groupby("session_id")
    prev = by_session[["utterance", "text", "gold_intent", "goal_id", "friction", "noticed"]]
    nxt = by_session[["goal_id", "behaviour"]]
    return frame.join(prev.shift(1).add_prefix("prev_")).join(nxt.shift(-1).add_prefix("next_"))


def _logged_as(turns: pd.DataFrame) -> pd.Series:
    """Per turn, whether the logged utterance is the corpus text, with one of the
    CORRECTION_CUES in front exactly where the gold says ``correction_cue``."""
    return pd.Series([(u in {f"{c} {t}" for c in CORRECTION_CUES}) if cue else u == t
                      for u, t, cue in zip(turns["utterance"], turns["text"],
                                           turns["correction_cue"])], index=turns.index)


@pytest.fixture(scope="module")
def turns(run):
    _, logs_dir, gold_dir = run
    return _joined(logs_dir, gold_dir)


def test_simulate_writes_exact_contract_schema_and_gold_schemas(run):
    summary, logs_dir, gold_dir = run
    log_files = sorted(logs_dir.glob("dt=*/part-*.parquet"))
    assert log_files and (logs_dir / "_SUCCESS").exists()
    for path in log_files:
        assert pq.read_schema(path).equals(arrow_schema("interaction_turn")), path
    for path in (gold_dir / "turns").glob("part-*.parquet"):
        assert pq.read_schema(path).equals(GOLD_TURNS_SCHEMA)
    assert pq.read_schema(gold_dir / "splits.parquet").equals(SPLITS_SCHEMA)
    assert sum(pq.read_metadata(p).num_rows for p in log_files) == summary["turns"]


def test_simulate_is_byte_identical_for_the_same_config(run, tmp_path):
    _, logs_dir, gold_dir = run
    _, logs_again, gold_again = _run(tmp_path)
    for first, second in ((logs_dir, logs_again), (gold_dir, gold_again)):
        names = _files(first)
        assert names == _files(second)
        _, mismatch, errors = filecmp.cmpfiles(first, second, names, shallow=False)
        assert not mismatch and not errors


def test_simulate_summary_counts_match_the_files(run, turns):
    summary, _, gold_dir = run
    assert N_TURNS <= summary["turns"] == len(turns)
    assert summary["users"] == turns["user_id"].nunique()
    assert summary["sessions"] == turns["session_id"].nunique()
    assert summary["goals"] == turns["goal_id"].nunique()
    assert summary["friction_turns"] == turns["friction"].sum()
    assert summary["silent_failures"] == turns["silent_failure"].sum()
    assert summary["noticed_silent_failures"] == turns["noticed"].sum()
    assert summary["correction_cue_turns"] == turns["correction_cue"].sum()
    assert summary["by_behaviour"] == turns["behaviour"].value_counts().to_dict()
    document = json.loads((gold_dir / "simulation.json").read_text())
    assert document["config"]["n_turns"] == N_TURNS and document["counts"]["turns"] == len(turns)
    assert 0.5 < document["counts"]["nlu"]["test_accuracy"] < 0.85
    assert "CC BY 4.0" in document["attribution"]


def test_simulate_ids_and_user_ids_look_real(turns):
    assert turns["turn_id"].is_unique
    assert turns["turn_id"].str.fullmatch(r"[0-9a-f]{32}").all()
    assert turns["session_id"].str.fullmatch(r"[0-9a-f]{32}").all()
    assert turns["user_id"].str.fullmatch(r"acct-[0-9a-f]{16}").all()
    assert (turns["locale"] == "en-US").all()
    assert turns["asr_confidence"].between(0, 1).all() and turns["asr_confidence"].mean() > 0.85


def test_simulate_every_behaviour_kind_occurs(turns):
    counts = turns["behaviour"].value_counts()
    assert set(counts.index) == {"new_goal", "rephrase", "repeat", "switch"}
    assert counts["rephrase"] > counts["repeat"] > 0 and counts["switch"] > 0


def test_simulate_friction_follows_from_status_and_barge_in(turns):
    friction = (turns["response_status"] != "SUCCESS") | turns["barge_in"]
    assert (turns["friction"] == friction).all()
    assert 0.1 < friction.mean() < 0.7
    assert set(turns["response_status"]) == {"SUCCESS", "ERROR", "UNHANDLED"}
    assert (turns.loc[turns["response_status"] == "UNHANDLED", "nlu_intent"].isna()).all()


def test_simulate_silent_failures_are_wrong_interpretations_without_friction(turns):
    silent = turns[turns["silent_failure"]]
    assert len(silent) > 0
    assert (silent["response_status"] == "SUCCESS").all() and not silent["barge_in"].any()
    assert (silent["nlu_intent"] != silent["gold_intent"]).all()
    assert (turns["nlu_correct"] == (turns["nlu_intent"] == turns["gold_intent"])).all()


def test_simulate_nlu_slots_follow_the_interpretation(turns):
    no_intent = turns["nlu_intent"].isna()
    assert (turns["nlu_slots"].isna() == no_intent).all()
    wrong = ~no_intent & ~turns["nlu_correct"]
    assert (turns.loc[wrong, "nlu_slots"].map(len) == 0).all()
    right = turns[turns["nlu_correct"] & turns["gold_annot_utt"].str.contains("[", regex=False)]
    assert len(right) > 0
    assert (right["nlu_slots"].map(len) > 0).all()


def _after_friction_or_noticed(frame: pd.DataFrame) -> pd.Series:
    return frame["prev_friction"].astype(bool) | frame["prev_noticed"].astype(bool)


def test_simulate_rephrase_is_another_text_of_the_same_goal_after_friction(turns):
    rephrase = turns[turns["behaviour"] == "rephrase"]
    assert (rephrase["text"] != rephrase["prev_text"]).all()
    assert (rephrase["utterance"] != rephrase["prev_utterance"]).all()
    assert (rephrase["gold_intent"] == rephrase["prev_gold_intent"]).all()
    assert (rephrase["goal_id"] == rephrase["prev_goal_id"]).all()
    assert _after_friction_or_noticed(rephrase).all()
    assert (rephrase["attempt"] >= 2).all()


def test_simulate_repeat_is_verbatim_and_switch_is_a_new_goal(turns):
    repeat = turns[turns["behaviour"] == "repeat"]
    assert (repeat["text"] == repeat["prev_text"]).all()  # verbatim up to a correction cue
    plain = repeat[~repeat["correction_cue"]]
    assert (plain["utterance"] == plain["text"]).all()
    assert (repeat["goal_id"] == repeat["prev_goal_id"]).all()
    switch = turns[turns["behaviour"] == "switch"]
    assert (switch["gold_intent"] != switch["prev_gold_intent"]).all()
    assert (switch["goal_id"] != switch["prev_goal_id"]).all()
    assert _after_friction_or_noticed(switch).all() and (switch["attempt"] == 1).all()


def test_simulate_noticed_silent_failures_are_retried_like_friction(run, turns):
    silent, noticed = turns["silent_failure"], turns["noticed"]
    assert noticed.sum() > 0 and (silent & ~noticed).sum() > 0  # default p_notice_silent 0.5
    assert not (noticed & ~silent).any()
    reacted = turns[noticed]
    retried = reacted["next_behaviour"].isin(["rephrase", "repeat"])
    assert retried.sum() > 0
    assert (reacted.loc[retried, "next_goal_id"] == reacted.loc[retried, "goal_id"]).all()
    # the other reactions: switch (a new goal) or give up (the session ends)
    assert (reacted.loc[~retried, "next_goal_id"] != reacted.loc[~retried, "goal_id"]).all()
    # a silent failure not noticed passes for a success: the next turn is a new goal
    unnoticed = turns[silent & ~noticed]
    assert (unnoticed["next_behaviour"].isna() | (unnoticed["next_behaviour"] == "new_goal")).all()
    assert run[0]["noticed_silent_failures"] == noticed.sum()


def test_simulate_correction_cues_prefix_only_the_logged_retries(turns):
    cue = turns[turns["correction_cue"]]
    assert 0 < len(cue) and cue["behaviour"].isin(["rephrase", "repeat"]).all()
    prefixes = tuple(c + " " for c in CORRECTION_CUES)
    assert cue["utterance"].map(lambda u: u.startswith(prefixes)).all()
    assert _logged_as(turns).all()  # utterance = corpus text of utt_id, cue in front or not
    cues = [u[:len(u) - len(t) - 1] for u, t in zip(cue["utterance"], cue["text"])]
    assert set(cues) == set(CORRECTION_CUES)
    retries = turns["behaviour"].isin(["rephrase", "repeat"])
    assert 0.05 < turns.loc[retries, "correction_cue"].mean() < 0.3  # default 0.15
    # the NLU outcome is that of the corpus utterance, not of the prefixed text
    assert cue["utt_id"].isin(turns.loc[~turns["correction_cue"], "utt_id"]).any()
    assert (turns.groupby("utt_id")[["nlu_intent", "nlu_confidence"]].nunique() <= 1).all().all()


def test_simulate_without_notice_and_cues_has_neither(tmp_path):
    summary, logs_dir, gold_dir = _run(tmp_path, p_notice_silent=0.0, p_correction_cue=0.0)
    turns = _joined(logs_dir, gold_dir)
    assert turns["silent_failure"].sum() > 0
    assert not turns["noticed"].any() and not turns["correction_cue"].any()
    assert summary["noticed_silent_failures"] == summary["correction_cue_turns"] == 0
    assert (turns["utterance"] == turns["text"]).all()
    retries = turns[turns["behaviour"].isin(["rephrase", "repeat", "switch"])]
    assert retries["prev_friction"].astype(bool).all()  # only friction is reacted to


def test_simulate_always_noticing_retries_after_every_silent_failure(tmp_path):
    summary, logs_dir, gold_dir = _run(tmp_path, p_notice_silent=1.0, p_correction_cue=1.0)
    turns = _joined(logs_dir, gold_dir)
    assert (turns["noticed"] == turns["silent_failure"]).all() and turns["noticed"].any()
    retries = turns["behaviour"].isin(["rephrase", "repeat"])
    assert (turns["correction_cue"] == retries).all()


def test_simulate_attempts_are_bounded(turns):
    assert turns["attempt"].between(1, SimulationConfig().max_attempts).all()
    first = turns["prev_goal_id"] != turns["goal_id"]
    assert (turns.loc[first, "attempt"] == 1).all()


def test_simulate_traffic_only_and_splits_are_disjoint(run, turns):
    _, _, gold_dir = run
    splits = pd.read_parquet(gold_dir / "splits.parquet")
    assert splits["utt_id"].is_unique and len(splits) == len(load_corpus("hwu64"))
    used = splits.set_index("utt_id").loc[turns["utt_id"].unique(), "split"]
    assert (used == "traffic").all()
    assert (splits.groupby("intent")["split"].apply(lambda s: (s == "seed").sum()) == 8).all()


def test_simulate_user_activity_is_heavy_tailed(turns):
    per_user = turns.groupby("user_id").size().sort_values(ascending=False)
    top = max(1, len(per_user) // 100)
    assert per_user.iloc[:top].sum() / len(turns) > 0.05  # top 1% of users: > 5% of turns
    assert per_user.median() < per_user.mean()


def test_simulate_popular_utterances_recur_across_users(turns):
    counts = turns["utterance"].value_counts()
    top_users = turns.loc[turns["utterance"] == counts.index[0], "user_id"].nunique()
    assert top_users >= 20
    assert counts.iloc[0] > 20 * counts.median()


def test_simulate_dt_partitions_match_ts_and_window(run):
    _, logs_dir, _ = run
    for path in logs_dir.glob("dt=*/*.parquet"):
        day = dt.date.fromisoformat(path.parent.name.removeprefix("dt="))
        ts = pd.read_parquet(path, columns=["ts"])["ts"]
        assert (ts.dt.date == day).all() and ts.is_monotonic_increasing
    assert {p.name for p in logs_dir.glob("dt=*")} == {
        "dt=2026-11-01", "dt=2026-11-02", "dt=2026-11-03"}


def test_simulate_time_gaps_follow_behaviour(turns):
    gap_s = turns["ts"].diff().dt.total_seconds()[turns["prev_goal_id"].notna()]
    median = gap_s.groupby(turns["behaviour"]).median()
    assert 2 < median["rephrase"] < 8 and 2 < median["repeat"] < 8
    assert 5 < median["switch"] < 20 and 12 < median["new_goal"] < 50
    assert (gap_s >= 1.0).all()


def test_simulate_sessions_of_a_user_do_not_overlap(turns):
    spans = turns.groupby(["user_id", "session_id"])["ts"].agg(["min", "max"]).reset_index()
    spans = spans.sort_values(["user_id", "min"])
    next_start = spans.groupby("user_id")["min"].shift(-1)
    assert (next_start.isna() | (next_start > spans["max"])).all()


@pytest.mark.parametrize("users_per_chunk", [7, 120])
def test_simulate_output_does_not_depend_on_users_per_chunk(run, tmp_path, users_per_chunk):
    summary, logs_dir, gold_dir = run
    chunked, logs_chunked, gold_chunked = _run(tmp_path, users_per_chunk=users_per_chunk)
    assert chunked["turns"] == summary["turns"] and chunked["users"] == summary["users"]
    assert chunked["chunks"] == -(-summary["users"] // users_per_chunk)
    for whole, parts in ((logs_dir, logs_chunked), (gold_dir / "turns", gold_chunked / "turns")):
        a = pd.read_parquet(whole).sort_values("turn_id").reset_index(drop=True)
        b = pd.read_parquet(parts).sort_values("turn_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("n_turns", [1, 500, 2000])
def test_simulate_n_turns_is_reached_at_a_user_boundary(tmp_path, n_turns):
    summary = simulate(SimulationConfig(n_turns=n_turns, users_per_chunk=50),
                       tmp_path / "logs", tmp_path / "gold")
    gold = pd.read_parquet(tmp_path / "gold" / "turns")
    assert summary["turns"] == len(gold) >= n_turns
    assert summary["turns"] - n_turns < 200  # at most one user's turns beyond the target


def test_simulate_jsonl_holds_the_same_turns_with_iso_ts(run, tmp_path):
    _, logs_dir, _ = run
    summary, jsonl_dir, _ = _run(tmp_path, out_format="jsonl")
    files = sorted(jsonl_dir.glob("dt=*/part-*.jsonl.gz"))
    first = json.loads(gzip.open(files[0], "rt").readline())
    assert list(first) == arrow_schema("interaction_turn").names
    assert first["ts"].endswith("Z") and dt.datetime.fromisoformat(first["ts"])
    rows = pd.concat(pd.read_json(f, lines=True, dtype={"ts": str}) for f in files)
    parquet = pd.read_parquet(logs_dir)
    assert len(rows) == len(parquet) == summary["turns"]
    assert sorted(rows["turn_id"]) == sorted(parquet["turn_id"])
    assert (pd.to_datetime(rows["ts"]).sort_values().to_numpy()
            == parquet["ts"].sort_values().to_numpy()).all()


def test_simulate_refuses_non_empty_or_nested_output(run, tmp_path):
    _, logs_dir, gold_dir = run
    with pytest.raises(FileExistsError, match="overwrite"):
        simulate(SimulationConfig(n_turns=10), logs_dir, tmp_path / "gold")
    with pytest.raises(ValueError, match="never read the gold"):
        simulate(SimulationConfig(n_turns=10), tmp_path / "out", tmp_path / "out" / "gold")
    summary = simulate(SimulationConfig(n_turns=10), tmp_path / "logs", tmp_path / "gold")
    again = simulate(SimulationConfig(n_turns=10), tmp_path / "logs", tmp_path / "gold",
                     overwrite=True)
    assert again["turns"] == summary["turns"]
    assert not list(tmp_path.glob(".*staging"))


def test_simulate_slurp_corpus(tmp_path):
    summary = simulate(SimulationConfig(corpus="slurp", n_turns=500), tmp_path / "logs",
                       tmp_path / "gold")
    turns = _joined(tmp_path / "logs", tmp_path / "gold")
    assert len(turns) == summary["turns"] >= 500
    assert set(turns["text"]) <= set(load_corpus("slurp")["text"])
    assert _logged_as(turns).all()


def test_split_corpus_is_per_intent_deterministic_and_complete():
    corpus = load_corpus("slurp")
    labels = split_corpus(corpus, seed_per_intent=8, test_share=0.2, seed=7)
    assert (labels == split_corpus(corpus, 8, 0.2, 7)).all()
    assert not (labels == split_corpus(corpus, 8, 0.2, 8)).all()
    table = pd.crosstab(corpus["intent"], labels)
    size = table.sum(axis=1)
    assert (table["seed"] == np.minimum(8, size)).all()
    big = size >= 50
    assert (abs(table.loc[big, "test"] - 0.2 * size[big]) <= 1).all()


@pytest.mark.parametrize("bad", [dict(corpus="atis"), dict(out_format="csv"), dict(n_turns=0),
                                 dict(p_rephrase=0.7), dict(p_silent=1.5), dict(days=0),
                                 dict(p_notice_silent=-0.1), dict(p_notice_silent=1.01),
                                 dict(p_correction_cue=2.0), dict(p_correction_cue=-1e-9),
                                 dict(test_share=1.0), dict(p_next_goal=1.0),
                                 dict(traffic_utterances=0), dict(traffic_utterances=True),
                                 dict(traffic_utterances=1e6)])
def test_simulation_config_rejects_invalid_values(bad):
    with pytest.raises(ValueError):
        SimulationConfig(**bad)


def test_simulation_config_accepts_iso_start_date_and_serializes():
    config = SimulationConfig(start_date="2026-12-24")
    assert config.start_date == dt.date(2026, 12, 24)
    assert json.loads(json.dumps(config.to_dict()))["start_date"] == "2026-12-24"


def test_nights_of_a_series_have_the_same_users_acting_anew(tmp_path):
    """``night`` n ≥ 1 (mining loop): the same user ids every night, other sessions and turns."""
    night = {n: pd.read_parquet(_run(tmp_path / f"n{n}", night=n, days=1)[1]) for n in (1, 2)}
    users = {n: set(df["user_id"]) for n, df in night.items()}
    shared = len(users[1] & users[2]) / len(users[1] | users[2])
    assert shared > 0.7                        # the same accounts come back (n_turns ends mid-user)
    assert not set(night[1]["turn_id"]) & set(night[2]["turn_id"])
    assert not set(night[1]["session_id"]) & set(night[2]["session_id"])
    # a one-off simulation (night 0) draws the ids from the behaviour stream: other users
    assert not users[1] & set(pd.read_parquet(_run(tmp_path / "n0", days=1)[1])["user_id"])


def test_an_nlu_trained_on_extra_rows_serves_them_and_reports_them(tmp_path):
    """``nlu_training``: the production NLU learns the extra rows (the NLU of a loop night)."""
    base, _, gold = _run(tmp_path / "base")
    splits = pd.read_parquet(gold / "splits.parquet")
    traffic = splits[splits["split"] == "traffic"][["text", "intent"]]
    summary = simulate(SimulationConfig(n_turns=N_TURNS), tmp_path / "x" / "logs", tmp_path / "x" / "gold",
                       nlu_training=traffic)
    assert summary["nlu"]["extra_training_rows"] == len(traffic) and base["nlu"]["extra_training_rows"] == 0
    assert summary["nlu"]["traffic_accuracy"] > 0.95 > base["nlu"]["traffic_accuracy"]
    assert summary["friction_turns"] < base["friction_turns"] / 2


def test_grown_traffic_carries_many_more_distinct_texts_with_consistent_gold(run, tmp_path):
    summary = simulate(SimulationConfig(n_turns=N_TURNS, traffic_utterances=40_000, utterance_zipf_s=0.9),
                       tmp_path / "logs", tmp_path / "gold")
    splits = pd.read_parquet(tmp_path / "gold" / "splits.parquet")
    assert summary["splits"]["traffic"] == (splits["split"] == "traffic").sum() == 40_000
    plain = pd.read_parquet(run[2] / "splits.parquet")
    for split in ("seed", "test"):  # only traffic grows
        assert set(splits.loc[splits["split"] == split, "utt_id"]) == set(plain.loc[plain["split"] == split, "utt_id"])
    traffic = splits[splits["split"] == "traffic"]
    assert traffic["utt_id"].is_unique and traffic["text"].is_unique
    assert set(plain.loc[plain["split"] == "traffic", "text"]) <= set(traffic["text"])
    turns = _joined(tmp_path / "logs", tmp_path / "gold")
    assert len(turns) == summary["turns"] and _logged_as(turns).all()
    assert turns["utt_id"].str.contains("+g", regex=False).mean() > 0.5
    # 2,105 distinct texts in 3,000 turns against 1,398 from the corpus as it is
    assert turns["utterance"].nunique() > 1.3 * pd.read_parquet(run[1])["utterance"].nunique()
    origin = traffic.assign(origin=traffic["utt_id"].str.split("+g", regex=False).str[0])
    intents = dict(zip(plain["utt_id"], plain["intent"]))
    assert (origin["intent"] == origin["origin"].map(intents)).all()   # a grown text keeps its origin's intent
    assert (turns["gold_intent"] == turns["utt_id"].map(dict(zip(traffic["utt_id"], traffic["intent"])))).all()


def test_grown_traffic_below_the_corpus_traffic_is_refused(tmp_path):
    with pytest.raises(ValueError, match="below the traffic split"):
        simulate(SimulationConfig(n_turns=100, traffic_utterances=100), tmp_path / "logs", tmp_path / "gold")
