"""Score a run against the simulator's gold (never read by the miner).

Figures (DESIGN.md, Evaluation):

- **pair precision**: accepted pairs whose target pursues the source's gold goal in new
  words and did not fail as the user saw it (cases ``true_rephrase`` and ``silent_failure``;
  a verbatim repeat or a failed follow-up of the same goal counts as an error);
  **pair recall**: gold sources (a failed turn whose goal a later turn of the same session
  pursues in other words without a failure the user saw; that target may itself be an
  unnoticed silent failure) that got a true accepted pair.
- **label precision**: exported rows whose intent is a gold intent of the text (overall,
  by evidence, and at confidence ≥ 0.9); **ECE**: expected calibration error, 10 bins.
- **coverage**: share of the oracle set (distinct logged texts the production NLU got
  wrong) that the export labels correctly.
- **retraining lift**: accuracy on the corpus test split of the weak NLU trained on seed,
  seed + mined, seed + oracle (oracle texts with gold intents); **lift recovered** =
  (mined − seed) / (oracle − seed).
- **naive rule**: label each friction turn with the next successful turn's intent in the
  session; precision per turn and per text (majority label of a text).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from mining.sim.corpora import parse_annot_utt
from mining.core.text import normalize
from mining.errors import StageOutputMismatch


def _read(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    return ds.dataset(str(path), format="parquet", partitioning="hive").to_table(columns=columns).to_pandas()


CASES = ("true_rephrase", "silent_failure", "goal_switch", "verbatim_repeat", "failed_follow_up")
#: Cases that are rephrase pairs: the user said the same goal again in new words and the
#: target looked successful to anyone watching. A ``silent_failure`` target carries a wrong
#: interpretation nobody could see (label noise, left to aggregation across users).
PAIR_CASES = ("true_rephrase", "silent_failure")


def _target_failed(g: pd.DataFrame) -> pd.Series:
    """Gold: the turn failed as the user saw it: friction, or a silent failure they noticed."""
    noticed = g["noticed"] if "noticed" in g else False  # gold of older simulator versions lacks it
    return g["friction"] | (g["silent_failure"] & noticed)


def candidate_cases(pairs: pd.DataFrame, gold: pd.DataFrame) -> pd.DataFrame:
    """Gold case of every scored candidate (``source_turn_id``, ``target_turn_id`` columns).

    Adds ``case`` (one of :data:`CASES`), ``positive`` (a rephrase pair: case in
    :data:`PAIR_CASES`) and ``label_clean`` (case == true_rephrase):

    - ``goal_switch``: the target pursues another gold goal;
    - ``verbatim_repeat``: same goal, same corpus utterance (a correction cue in front
      does not make it new wording);
    - ``failed_follow_up``: same goal, new wording, but the target failed too (friction, or
      a silent failure the user noticed and reacted to);
    - ``silent_failure``: same goal, new wording, the target looked successful but the NLU
      was wrong and nobody noticed: a true rephrase that passes on a wrong label;
    - ``true_rephrase``: same goal, new wording, the target's interpretation is right.
    """
    g = gold.set_index("turn_id")
    src, tgt = pairs["source_turn_id"], pairs["target_turn_id"]
    same_goal = g["goal_id"].reindex(src).to_numpy() == g["goal_id"].reindex(tgt).to_numpy()
    same_utt = g["utt_id"].reindex(src).to_numpy() == g["utt_id"].reindex(tgt).to_numpy()
    t_failed = _target_failed(g).reindex(tgt, fill_value=True).to_numpy(dtype=bool)
    t_ok = g["nlu_correct"].reindex(tgt, fill_value=False).to_numpy(dtype=bool)
    case = np.select([~same_goal, same_utt, t_failed, ~t_ok],
                     ["goal_switch", "verbatim_repeat", "failed_follow_up", "silent_failure"],
                     "true_rephrase")
    return pairs.assign(case=case, positive=np.isin(case, PAIR_CASES), label_clean=case == "true_rephrase")


def gold_sources(turns: pd.DataFrame, gold: pd.DataFrame) -> pd.DataFrame:
    """Failed turns that a later turn of the same session rephrases (gold).

    A source failed visibly (gold ``friction``) or silently and the user noticed; a later
    turn of its session has the same goal, a different corpus utterance and did not fail as
    the user saw it. Returns ``turn_id`` and ``kind`` (``visible`` | ``silent_failure``)."""
    t = turns[["turn_id", "session_pseudonym", "ts"]].merge(gold, on="turn_id")
    failed_mask = _target_failed(t)
    failed, ok = t[failed_mask], t[~failed_mask]
    m = failed.merge(ok, on=["session_pseudonym", "goal_id"], suffixes=("", "_t"))
    m = m[(m["ts_t"] > m["ts"]) & (m["utt_id_t"] != m["utt_id"])]
    out = m.drop_duplicates("turn_id")
    return pd.DataFrame({"turn_id": out["turn_id"],
                         "kind": np.where(out["friction"], "visible", "silent_failure")})


def pair_metrics(pairs: pd.DataFrame, turns: pd.DataFrame, gold: pd.DataFrame,
                 thresholds=None) -> dict:
    """Pair precision/recall overall, by gold case and by source kind, and the PR curve.

    ``pairs``: the run's ``rephrase_pairs`` (all scored candidates). Precision = accepted
    pairs that are rephrase pairs (:data:`PAIR_CASES`) / accepted; ``label_clean_share`` =
    accepted true rephrases / accepted (silent-failure targets excluded); recall = gold sources (:func:`gold_sources`)
    with a true accepted pair / gold sources. ``by_case``: candidates and accepted per case
    (recall of true rephrases, leak of the rest). ``label_clean_by_target_friction``: the
    accepted pairs and their ``label_clean_share``, split by whether the target turn itself
    had friction (``turns.is_friction``: an accepted target succeeded, so only its low NLU or
    ASR confidence can have fired). ``pr_curve``: the pipeline's decision
    (best eligible candidate per source, score ≥ t) replayed at each threshold.

    ``turns``: turn_id, is_friction and what :func:`gold_sources` reads."""
    from mining.core.rephrase_model import best_candidates, pr_curve

    cands = candidate_cases(pairs, gold)
    acc = cands[cands["accepted"]]
    src = gold_sources(turns, gold)
    found = set(acc.loc[acc["positive"], "source_turn_id"])
    by_case = {c: {"candidates": int((cands["case"] == c).sum()),
                   "accepted": int((acc["case"] == c).sum())} for c in CASES}
    by_kind = {}
    for kind, ids in src.groupby("kind")["turn_id"]:
        hit = len(found & set(ids))
        by_kind[kind] = {"gold_sources": int(len(ids)), "found": hit, "recall": hit / len(ids)}
    curve = []
    if thresholds is not None and len(cands):
        best = best_candidates(cands)
        curve = pr_curve(best, len(src), thresholds).round(4).to_dict("records")
    own = turns.set_index("turn_id")["is_friction"].reindex(acc["target_turn_id"], fill_value=False).to_numpy(bool)
    by_own = {name: {"accepted": int(sel.sum()),
                     "label_clean_share": float(acc["label_clean"].to_numpy()[sel].mean()) if sel.any() else 0.0}
              for name, sel in (("target_friction", own), ("target_no_friction", ~own))}
    return {"candidates": int(len(cands)), "accepted_pairs": int(len(acc)),
            "pair_precision": float(acc["positive"].mean()) if len(acc) else 0.0,
            "label_clean_share": float(acc["label_clean"].mean()) if len(acc) else 0.0,
            "label_clean_by_target_friction": by_own,
            "gold_sources": int(len(src)),
            "pair_recall": len(found & set(src["turn_id"])) / len(src) if len(src) else 0.0,
            "pairs_by_case": by_case, "recall_by_source_kind": by_kind, "pr_curve": curve}


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error (Guo et al. 2017): Σ_b |B|/n · |acc(B) − conf(B)|."""
    if len(confidence) == 0:
        return 0.0
    idx = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.mean() * abs(correct[sel].mean() - confidence[sel].mean())
    return float(total)


def label_correct(rows: pd.DataFrame, gold_intents: dict[str, set], text_col: str = "utterance",
                  intent_col: str = "intent") -> np.ndarray:
    """bool (n,): each row's intent is a gold intent of its normalized text."""
    return np.array([i in gold_intents.get(normalize(t), ()) for t, i in zip(rows[text_col], rows[intent_col])],
                    dtype=bool)


def gold_intents_for_run(gold_dir: str | Path, out: str | Path) -> dict[str, set]:
    """:func:`gold_intents_by_text` of a run: the corpus splits' (``splits.parquet``) and
    every logged turn's (``gold/turns`` joined to ``OUT/turns`` on turn_id). O(turns) rows."""
    gold = _read(Path(gold_dir) / "turns", ["turn_id", "gold_intent"])
    turns = _read(Path(out) / "turns", ["turn_id", "text_norm"])
    splits = pd.read_parquet(Path(gold_dir) / "splits.parquet", columns=["text", "intent"])
    splits["text_norm"] = splits["text"].map(normalize)
    return gold_intents_by_text(splits, gold.merge(turns, on="turn_id"))


def label_metrics(train: pd.DataFrame, gold_intents: dict[str, set]) -> dict:
    """Precision of exported labels (by text's gold intents), by evidence, at conf ≥ 0.9.

    When ``train`` has a ``logs_check`` column (the run's ``labels/`` status of each row,
    :mod:`mining.core.confident_learning`, :func:`_with_logs_check`), also ``by_logs_check``:
    {status: {labels, precision}}, a null status counted as ``not_in_run``."""
    if train.empty:
        return {"labels": 0, "label_precision": 0.0, "label_precision_conf90": 0.0, "labels_conf90": 0,
                "by_evidence": {}, "ece": 0.0, **({"by_logs_check": {}} if "logs_check" in train else {})}
    correct = label_correct(train, gold_intents)
    hi = train["confidence"].to_numpy() >= 0.9

    def by(col: pd.Series) -> dict:
        return {k: {"labels": int((col == k).sum()), "precision": float(correct[(col == k).to_numpy()].mean())}
                for k in sorted(col.unique())}

    out = {"labels": int(len(train)), "label_precision": float(correct.mean()),
           "labels_conf90": int(hi.sum()),
           "label_precision_conf90": float(correct[hi].mean()) if hi.any() else 0.0,
           "by_evidence": by(train["evidence"]), "ece": ece(train["confidence"].to_numpy(), correct.astype(float))}
    if "logs_check" in train:
        out["by_logs_check"] = by(train["logs_check"].astype(object).where(train["logs_check"].notna(), "not_in_run"))
    return out


def naive_rule(turns: pd.DataFrame, gold: pd.DataFrame) -> dict:
    """Precision of 'friction turn ← next successful turn's intent (same session)'."""
    t = turns.sort_values(["session_pseudonym", "ts", "turn_id"]).reset_index(drop=True)
    nxt_intent = t["nlu_intent"].where(t["succeeded"])
    nxt_intent = nxt_intent.groupby(t["session_pseudonym"]).transform(lambda s: s.shift(-1).bfill())
    fr = t.assign(naive=nxt_intent)[t["is_friction"]].dropna(subset=["naive"])
    fr = fr.merge(gold[["turn_id", "gold_intent"]], on="turn_id")
    turn_prec = float((fr["naive"] == fr["gold_intent"]).mean()) if len(fr) else 0.0
    per_text = (fr.groupby(["text_norm", "naive"]).size().rename("n").reset_index()
                .sort_values(["text_norm", "n", "naive"], ascending=[True, False, True])
                .drop_duplicates("text_norm"))
    gold_by_text = fr.groupby("text_norm")["gold_intent"].agg(set)
    text_ok = [n in gold_by_text[t] for t, n in zip(per_text["text_norm"], per_text["naive"])]
    return {"naive_turn_labels": int(len(fr)), "naive_turn_precision": turn_prec,
            "naive_text_labels": int(len(per_text)),
            "naive_text_precision": float(np.mean(text_ok)) if text_ok else 0.0}


def retraining(splits: pd.DataFrame, mined: pd.DataFrame, oracle: pd.DataFrame,
               oracle_private: pd.DataFrame | None = None) -> dict:
    """Accuracy on the test split of the weak NLU trained on seed / + mined / + oracle.

    ``mined``: utterance, intent; ``oracle``/``oracle_private``: text, intent (the latter:
    the oracle restricted to texts a k-anonymous export may contain). ``lift_recovered`` =
    (mined − seed) / (oracle − seed), 0 when the oracle gains nothing, so a regression then
    shows only in ``accuracy_delta`` = mined − seed accuracy (−1..1; < 0: retraining on seed +
    mined lowered accuracy); ``per_intent``: the
    same per gold test intent (test utterances, accuracies, lift recovered or None where the
    oracle gains nothing on that intent)."""
    from mining.sim.weak_nlu import WeakNLU

    seed, test = splits[splits["split"] == "seed"], splits[splits["split"] == "test"]
    truth = test["intent"].astype(str).to_numpy()

    def right(extra_texts, extra_intents) -> np.ndarray:
        nlu = WeakNLU().fit(list(seed["text"]) + list(extra_texts), list(seed["intent"]) + list(extra_intents))
        return nlu.predict(list(test["text"]))[0] == truth

    runs = {"seed": right([], []), "seed_mined": right(mined["utterance"], mined["intent"]),
            "seed_oracle": right(oracle["text"], oracle["intent"])}
    if oracle_private is not None:
        runs["seed_oracle_private"] = right(oracle_private["text"], oracle_private["intent"])

    def lift(r: dict, oracle_key: str) -> float | None:
        gain = r[oracle_key] - r["seed"]
        return (r["seed_mined"] - r["seed"]) / gain if gain > 0 else None

    acc = {k: float(v.mean()) for k, v in runs.items()}
    out = {f"acc_{k}": v for k, v in acc.items()}
    out["lift_recovered"] = lift(acc, "seed_oracle") or 0.0
    out["accuracy_delta"] = acc["seed_mined"] - acc["seed"]
    if oracle_private is not None:
        out["lift_recovered_private"] = lift(acc, "seed_oracle_private") or 0.0
        out["oracle_private_examples"] = int(len(oracle_private))
    per_intent = []
    for intent in sorted(set(truth)):
        sel = truth == intent
        a = {k: float(v[sel].mean()) for k, v in runs.items()}
        per_intent.append({"intent": intent, "test": int(sel.sum()), **{f"acc_{k}": v for k, v in a.items()},
                           "lift_recovered": lift(a, "seed_oracle"),
                           **({"lift_recovered_private": lift(a, "seed_oracle_private")}
                              if oracle_private is not None else {})})
    out.update(mined_examples=int(len(mined)), oracle_examples=int(len(oracle)), per_intent=per_intent)
    return out


def slot_metrics(train: pd.DataFrame, gold_slots: dict[str, list]) -> dict:
    """Projected slots of exported rephrase labels against the gold annotation of the text.

    ``train``: exported rows (utterance, slots, evidence); ``gold_slots``: normalized text →
    its gold slots ``[{"name", "value"}]`` (the most frequent annotation of that text in the
    logs). Slots match on name and normalized value. Precision = projected slots that are
    gold / projected; recall = gold slots recovered / gold slots of the rephrase rows (variant
    labels carry no slots by design). A rephrase's slot values often differ from the failed
    words' (another utterance of the same intent), so recall is bounded well below 1."""
    rows = train[train["evidence"] == "rephrase"]
    proj = gold_n = hit = 0
    for utt, slots in zip(rows["utterance"], rows["slots"]):
        pred = {(s["name"], normalize(s["value"])) for s in (slots if slots is not None else [])}
        gold = {(s["name"], normalize(s["value"])) for s in gold_slots.get(normalize(utt), [])}
        proj += len(pred)
        gold_n += len(gold)
        hit += len(pred & gold)
    return {"slot_rows": int(len(rows)), "slots_projected": proj, "gold_slots": gold_n,
            "slot_precision": hit / proj if proj else 0.0, "slot_recall": hit / gold_n if gold_n else 0.0}


def gold_intents_by_text(splits: pd.DataFrame, gold_turns: pd.DataFrame) -> dict[str, set]:
    """Normalized text → its gold intents: the corpus's (``splits``: text_norm, intent) and
    those of every logged turn that said it (``gold_turns``: text_norm, gold_intent). A
    logged text can differ from its corpus text, e.g. with a correction cue in front."""
    both = pd.concat([splits[["text_norm", "intent"]],
                      gold_turns[["text_norm", "gold_intent"]].rename(columns={"gold_intent": "intent"})])
    return both.groupby("text_norm")["intent"].agg(set).to_dict()


def cluster_metrics(labels: np.ndarray, gold: np.ndarray) -> dict:
    """Agreement of variant clusters with gold intents, over texts that have one.

    ``labels``: cluster of each text (any hashable, (n,)); ``gold``: its gold intent (n,).
    Purity = Σ_c max_i |c ∩ i| / n (Manning et al., IR book §16.3); adjusted Rand index
    (Hubert & Arabie 1985) and V-measure (Rosenberg & Hirschberg 2007) from
    ``sklearn.metrics``. Singletons count: they are pure but lower ARI and completeness.
    Also the share of texts in a multi-member cluster (``clustered_share``) and the
    ``pair_precision`` of same-cluster text pairs (share of pairs with the same intent)."""
    from sklearn import metrics

    df = pd.DataFrame({"c": labels, "g": gold})
    n = len(df)
    if n == 0:
        return {"texts": 0}
    ct = df.groupby(["c", "g"]).size()
    sizes = df.groupby("c").size()
    pairs_all = float((sizes * (sizes - 1) / 2).sum())
    pairs_same = float((ct * (ct - 1) / 2).sum())
    return {"texts": n, "clusters": int(len(sizes)),
            "clustered_share": float(sizes[sizes > 1].sum() / n),
            "purity": float(ct.groupby(level=0).max().sum() / n),
            "ari": float(metrics.adjusted_rand_score(df["g"], df["c"])),
            "v_measure": float(metrics.v_measure_score(df["g"], df["c"])),
            "pair_precision": pairs_same / pairs_all if pairs_all else 1.0}


def _with_logs_check(train: pd.DataFrame, labels_dir: Path) -> pd.DataFrame:
    """``train`` plus ``logs_check`` from the run's ``labels/`` (its labeled rows, on locale
    and the utterance's :func:`~mining.core.text.normalize`, the key of a label;
    ``not_in_run`` for a row this run did not decide, e.g. one retained from an earlier
    version); unchanged when ``labels/`` has no such column (a run from before the
    logs check)."""
    if "logs_check" not in ds.dataset(str(labels_dir), format="parquet", partitioning="hive").schema.names:
        return train
    if train.empty:
        return train.assign(logs_check=pd.Series(dtype=object))
    labels = _read(labels_dir, ["locale", "utterance", "decision", "logs_check"])
    status = labels.loc[labels["decision"] == "labeled", ["locale", "utterance", "logs_check"]]
    status = status.assign(_key=status["utterance"].map(normalize)).drop(columns="utterance") \
        .drop_duplicates(["locale", "_key"])
    out = train.assign(_key=train["utterance"].map(normalize)).merge(status, on=["locale", "_key"], how="left") \
        .drop(columns="_key")
    out["logs_check"] = out["logs_check"].astype(object).where(out["logs_check"].notna(), "not_in_run")
    return out


def _load_run(gold_dir: Path, out: Path) -> dict:
    """The frames :func:`_score` needs, read once (Parquet via pyarrow, no Spark): the version
    ``OUT/latest`` points at, resolved once, beside stage outputs of its own run
    (:func:`mining.report.data.check_live_outputs`: a backfill or ``--locale`` run into the
    same OUT raises :class:`mining.errors.StageOutputMismatch` instead of scoring one run's
    labels against another's turns)."""
    from mining.io.export import read_training_set
    from mining.report.data import check_live_outputs, resolve_version_dir

    vdir = resolve_version_dir(out)
    manifest = json.loads((vdir / "manifest.json").read_text())
    check_live_outputs(out, manifest)
    turns = _read(out / "turns", ["turn_id", "session_pseudonym", "user_pseudonym", "ts", "text_norm", "locale",
                                  "utterance", "nlu_intent", "is_friction", "succeeded"])
    splits = pd.read_parquet(gold_dir / "splits.parquet")
    if "locale" not in splits:          # a one-corpus simulation: its only locale
        splits["locale"] = turns["locale"].iloc[0] if len(turns) else "en-US"
    splits["text_norm"] = splits["text"].map(normalize)
    return {"gold": _read(gold_dir / "turns"), "splits": splits, "turns": turns,
            "pairs": _read(out / "rephrase_pairs", ["source_turn_id", "target_turn_id", "accepted", "score", "locale",
                                                    "is_repeat", "target_succeeded", "turn_distance"]),
            # an export of no rows keeps its columns (it has no files to read them from)
            "train": _with_logs_check(read_training_set(vdir).to_pandas(), out / "labels"),
            "clusters": _read(out / "clusters", ["text_norm", "cluster_id", "locale"]),
            "manifest": manifest}


def _locale_subset(f: dict, locale: str) -> dict:
    turns = f["turns"][f["turns"]["locale"] == locale]
    return {**f, "turns": turns, "gold": f["gold"][f["gold"]["turn_id"].isin(turns["turn_id"])],
            **{k: f[k][f[k]["locale"] == locale] for k in ("splits", "pairs", "train", "clusters")}}


def _score(f: dict) -> dict:
    gold, splits, turns, pairs, train, manifest = (f[k] for k in ("gold", "splits", "turns", "pairs", "train",
                                                                  "manifest"))
    g = gold.merge(turns[["turn_id", "text_norm"]], on="turn_id")
    gold_intents = gold_intents_by_text(splits, g)
    wrong = g[~g["nlu_correct"]].drop_duplicates("text_norm")
    oracle = pd.DataFrame({"text": wrong["text_norm"], "intent": wrong["gold_intent"]})
    labels = label_metrics(train, gold_intents)
    min_users = int(manifest.get("config", {}).get("privacy", {}).get("min_users", 1))
    users = turns.groupby("text_norm")["user_pseudonym"].nunique()
    oracle_private = oracle[oracle["text"].map(users).fillna(0) >= min_users]
    mined_ok = {t for t, i in zip(train["utterance"].map(normalize), train["intent"])
                if i in gold_intents.get(t, set())}
    # a text with several gold intents (rare) is scored against its most frequent one
    top_gold = g.groupby("text_norm")["gold_intent"].agg(lambda s: s.value_counts().index[0])
    clusters = f["clusters"].merge(top_gold.rename("gold").reset_index(), on="text_norm")
    top_annot = g.groupby("text_norm")["gold_annot_utt"].agg(lambda s: s.value_counts().index[0])
    gold_slots = {t: parse_annot_utt(a)[1] for t, a in top_annot.items()}
    return {
        "clusters": cluster_metrics(clusters["cluster_id"].to_numpy(), clusters["gold"].to_numpy()),
        "dataset_version": manifest["dataset_version"], "min_users": min_users,
        "turns": int(len(turns)), "friction_turns": int(turns["is_friction"].sum()),
        **pair_metrics(pairs, turns, gold), **labels, **slot_metrics(train, gold_slots),
        "oracle_texts": int(len(oracle)),
        "coverage": len(mined_ok & set(oracle["text"])) / len(oracle) if len(oracle) else 0.0,
        "coverage_private": (len(mined_ok & set(oracle_private["text"])) / len(oracle_private)
                             if len(oracle_private) else 0.0),
        **naive_rule(turns, gold), **retraining(splits, train, oracle, oracle_private),
    }


#: Per-locale figures compared across locales by :func:`locale_parity` (all in 0..1).
PARITY_METRICS = ("pair_precision", "label_precision", "coverage", "lift_recovered")


def locale_parity(by_locale: dict[str, dict]) -> dict:
    """Per metric of :data:`PARITY_METRICS`: best and worst locale and value, and the gap
    best − worst in percentage points. A locale that exported no labels scores 0 label
    precision (its users got nothing)."""
    out = {}
    for m in PARITY_METRICS:
        vals = {loc: float(r[m]) for loc, r in by_locale.items()}
        best, worst = max(vals, key=vals.get), min(vals, key=vals.get)
        out[m] = {"best_locale": best, "best": vals[best], "worst_locale": worst, "worst": vals[worst],
                  "gap_points": 100.0 * (vals[best] - vals[worst])}
    return out


def evaluate(gold_dir: str, out: str, abstain: tuple[str, ...] = ()) -> dict:
    """Every figure above as a dict (JSON-serializable). The naive rule reads the run's
    validated ``turns/``, so the miner and the baseline see the same rows. When the run has
    more than one locale, also ``by_locale`` (the same figures per locale, each locale's NLU
    retrained on its own seed split) and ``locale_parity`` (:func:`locale_parity`).

    :param abstain: a what-if: ``logs_check`` statuses (:mod:`mining.core.confident_learning`)
        whose exported labels are scored as if they had abstained, i.e. left out of the
        training set before every label and retraining figure (``bench/abstain_whatif.py``).
        Empty (default): the run as published.
    :raises FileNotFoundError: the run has no published training set.
    :raises StageOutputMismatch: ``abstain`` is given but the run's ``labels/`` has no
        ``logs_check`` (a run of an older code version: exit 3), or the published version
        sits beside another run's stage outputs (:func:`_load_run`)."""
    frames = _load_run(Path(gold_dir), Path(out))
    if abstain:
        train = frames["train"]
        if "logs_check" not in train:
            raise StageOutputMismatch(f"{out}: labels/ has no logs_check column (an older run?), nothing to abstain on")
        frames["train"] = train[~train["logs_check"].isin(list(abstain))]
    result = _score(frames)
    locales = sorted(frames["turns"]["locale"].unique())
    if len(locales) > 1:
        result["by_locale"] = {loc: _score(_locale_subset(frames, loc)) for loc in locales}
        result["locale_parity"] = locale_parity(result["by_locale"])
    return result


def format_locale_table(r: dict) -> str:
    """Per-locale figures of a multi-locale :func:`evaluate` result as a Markdown table,
    then the best-to-worst gap per metric."""
    lines = ["| locale | turns | accepted pairs | pair precision | labels | label precision | "
             "coverage | lift recovered | accuracy Δ (points) |", "|---|---|---|---|---|---|---|---|---|"]
    for loc, x in r["by_locale"].items():
        # the lift reads 0 where the oracle gains nothing: the accuracy change still shows a loss
        lines.append(f"| {loc} | {x['turns']:,} | {x['accepted_pairs']:,} | {x['pair_precision']:.3f} | "
                     f"{x['labels']:,} | {x['label_precision']:.3f} | {x['coverage']:.3f} | "
                     f"{x['lift_recovered']:.1%} | {100 * x.get('accuracy_delta', float('nan')):+.1f} |")
    lines.append("")
    for m, p in r["locale_parity"].items():
        lines.append(f"{m}: best {p['best_locale']} {p['best']:.3f}, worst {p['worst_locale']} {p['worst']:.3f}, "
                     f"gap {p['gap_points']:.1f} points")
    return "\n".join(lines)


def format_table(r: dict) -> str:
    """The headline figures as an aligned two-column text table."""
    rows = [
        ("dataset version", r["dataset_version"]), ("turns", r["turns"]),
        ("friction turns", r["friction_turns"]), ("accepted rephrase pairs", r["accepted_pairs"]),
        ("pair precision", f"{r['pair_precision']:.3f}"), ("pair recall", f"{r['pair_recall']:.3f}"),
        ("  accepted pairs with a right target label", f"{r['label_clean_share']:.3f}"),
        *[(f"    {'target turn with' if k == 'target_friction' else 'target turn without'} friction "
           "(pairs / share)", f"{v['accepted']} / {v['label_clean_share']:.3f}")
          for k, v in r.get("label_clean_by_target_friction", {}).items()],
        ("labels exported", r["labels"]), ("label precision", f"{r['label_precision']:.3f}"),
        ("label precision @conf>=0.9", f"{r['label_precision_conf90']:.3f} ({r['labels_conf90']} labels)"),
        *[(f"  {ev} labels / precision", f"{v['labels']} / {v['precision']:.3f}")
          for ev, v in r["by_evidence"].items()],
        *[(f"  logs check {st}: labels / precision", f"{v['labels']} / {v['precision']:.3f}")
          for st, v in r.get("by_logs_check", {}).items()],
        ("confidence ECE (10 bins)", f"{r['ece']:.3f}"),
        ("projected slots: precision / recall", f"{r['slot_precision']:.3f} / {r['slot_recall']:.3f} "
                                                f"({r['slots_projected']} slots)"),
        ("naive rule precision (turn / text)",
         f"{r['naive_turn_precision']:.3f} / {r['naive_text_precision']:.3f}"),
        ("oracle texts / coverage", f"{r['oracle_texts']} / {r['coverage']:.3f}"),
        (f"  said by >= {r['min_users']} users (k-anonymous oracle) / coverage",
         f"{r['oracle_private_examples']} / {r['coverage_private']:.3f}"),
        ("NLU acc: seed", f"{r['acc_seed']:.4f}"), ("NLU acc: seed + mined", f"{r['acc_seed_mined']:.4f}"),
        ("NLU acc: seed + oracle", f"{r['acc_seed_oracle']:.4f}"),
        ("NLU acc: seed + k-anonymous oracle", f"{r['acc_seed_oracle_private']:.4f}"),
        ("oracle lift recovered", f"{r['lift_recovered']:.1%}"),
        ("k-anonymous oracle lift recovered", f"{r['lift_recovered_private']:.1%}"),
        ("variant clusters: texts / clusters", f"{r['clusters']['texts']} / {r['clusters']['clusters']}"),
        ("  purity / ARI / V-measure", f"{r['clusters']['purity']:.3f} / {r['clusters']['ari']:.3f} / "
                                       f"{r['clusters']['v_measure']:.3f}"),
    ]
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 32)
    return "\n".join([line, *[f"{k:<{width}}  {v}" for k, v in rows], line])
