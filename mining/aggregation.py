"""Aggregate rephrase evidence across users into weak labels (pure pandas, per locale).

For a normalized source text *u* with accepted rephrase events *e* (weight wₑ = pair
score, target intent cₑ): Wc = Σ_{cₑ=c} wₑ, W = Σ Wc, K = number of distinct observed
intents. With a symmetric Dirichlet(α) prior over the K observed intents plus one
"unseen" bucket, the posterior mean share of the top intent is

    p = (W_top + α) / (W + α·(K + 1))            (Dirichlet-multinomial posterior mean)

``confidence`` = p. This first version is *not yet calibrated* (issue 5 fits an isotonic
map on simulator gold); ``mining evaluate`` reports its calibration error.

Abstentions, each a named ``decision`` (checked in this order):
``source_usually_succeeds`` (defect rate < ``min_defect_rate``: words that usually work
carry weak evidence; cf. Ponnusamy et al., AAAI 2020), ``insufficient_events``
(< ``min_events``), ``conflicting_evidence`` (K ≥ 2 and p < ``min_top_share``),
``low_confidence`` (p < ``min_confidence``).

Cluster pooling (cross-user variants): the events of all members of a variant cluster are
pooled the same way. A failing text with no label of its own (no events, or too few)
inherits its cluster's top intent as ``evidence = "variant"`` when the cluster's pooled p
passes the same gates, the pool holds ≥ ``variant_min_events`` events, and the text is
close to the medoid (cosine ≥ ``variant_min_sim``). Such labels carry no slots.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

LABEL_COLUMNS = ["locale", "text_norm", "utterance", "intent", "slots", "confidence",
                 "support_users", "support_events", "evidence", "cluster_id", "decision",
                 "defect_rate", "text_users"]


def vote(events: pd.DataFrame, key: str, prior: float) -> pd.DataFrame:
    """Per ``key`` value: top intent, posterior mean share ``p``, K, events, users.

    ``events`` columns: key, target_intent, score, user_pseudonym. Ties in weight break
    by intent name (deterministic)."""
    if events.empty:
        return pd.DataFrame(columns=[key, "top_intent", "p", "k", "n_events", "n_users"])
    w = events.groupby([key, "target_intent"], sort=True)["score"].sum().rename("w").reset_index()
    w = w.sort_values([key, "w", "target_intent"], ascending=[True, False, True])
    total = w.groupby(key)["w"].agg(["sum", "size"])
    top = w.drop_duplicates(key).set_index(key)
    out = pd.DataFrame({"top_intent": top["target_intent"]})
    out["k"] = total["size"]
    out["p"] = (top["w"] + prior) / (total["sum"] + prior * (total["size"] + 1))
    out["n_events"] = events.groupby(key).size()
    out["n_users"] = events.groupby(key)["user_pseudonym"].nunique()
    return out.reset_index()


def _decide(p, k, n_events, defect_rate, cfg, min_events) -> np.ndarray:
    decision = np.full(len(p), "labeled", dtype=object)
    rules = [
        (defect_rate < cfg.min_defect_rate, "source_usually_succeeds"),
        (n_events < min_events, "insufficient_events"),
        ((k >= 2) & (p < cfg.min_top_share), "conflicting_evidence"),
        (p < cfg.min_confidence, "low_confidence"),
    ]
    for cond, reason in reversed(rules):
        decision = np.where(cond, reason, decision)
    return decision


def aggregate_locale(texts: pd.DataFrame, events: pd.DataFrame, cfg) -> pd.DataFrame:
    """Labels for one locale.

    texts: one row per normalized text: locale, text_norm, utterance (most frequent raw
    form), n_turns, n_friction, text_users, cluster_id, cluster_size, sim_to_medoid.
    events: accepted pairs: text_norm (source), target_intent, target_slots, score,
    user_pseudonym. Returns one row per text that failed at least once, with
    :data:`LABEL_COLUMNS`; ``intent`` is null when ``decision`` is an abstention."""
    texts = texts[texts["n_friction"] > 0].copy()
    texts["defect_rate"] = texts["n_friction"] / texts["n_turns"]
    events = events.merge(texts[["text_norm", "cluster_id"]], on="text_norm", how="left")
    own = vote(events, "text_norm", cfg.prior).set_index("text_norm")
    pooled = vote(events.dropna(subset=["cluster_id"]), "cluster_id", cfg.prior).set_index("cluster_id")
    t = texts.join(own, on="text_norm").join(pooled.add_prefix("c_"), on="cluster_id")
    t[["n_events", "k", "n_users"]] = t[["n_events", "k", "n_users"]].fillna(0)
    t["decision"] = _decide(t["p"].fillna(0).to_numpy(), t["k"].to_numpy(), t["n_events"].to_numpy(),
                            t["defect_rate"].to_numpy(), cfg, cfg.min_events)
    c_dec = _decide(t["c_p"].fillna(0).to_numpy(), t["c_k"].fillna(0).to_numpy(),
                    t["c_n_events"].fillna(0).to_numpy(), t["defect_rate"].to_numpy(), cfg,
                    cfg.variant_min_events)
    variant = (np.isin(t["decision"], ["insufficient_events"]) & (c_dec == "labeled")
               & (t["cluster_size"].fillna(1) >= 2) & (t["sim_to_medoid"].fillna(-1) >= cfg.variant_min_sim))
    own_ok = t["decision"] == "labeled"
    t["evidence"] = np.where(own_ok, "rephrase", np.where(variant, "variant", None))
    t.loc[variant, "decision"] = "labeled"
    t["intent"] = np.where(own_ok, t["top_intent"], np.where(variant, t["c_top_intent"], None))
    t["confidence"] = np.where(own_ok, t["p"], np.where(variant, t["c_p"], np.nan))
    t["support_events"] = np.where(variant, t["c_n_events"], t["n_events"]).astype(np.int64)
    t["support_users"] = np.where(variant, t["c_n_users"], t["n_users"]).astype(np.int64)
    t["slots"] = _best_slots(events, t, own_ok)
    return t[LABEL_COLUMNS].sort_values("text_norm", kind="stable").reset_index(drop=True)


def _best_slots(events: pd.DataFrame, t: pd.DataFrame, own_ok: pd.Series) -> list:
    """Slots of the highest-scoring event whose target intent is the label (rephrase
    evidence only; variants and abstentions get [])."""
    if events.empty:
        return [[] for _ in range(len(t))]
    best = (events.sort_values(["text_norm", "score"], ascending=[True, False], kind="stable")
            .drop_duplicates(["text_norm", "target_intent"]).set_index(["text_norm", "target_intent"]))
    slots = []
    for text_norm, intent, ok in zip(t["text_norm"], t["intent"], own_ok):
        found = ok and (text_norm, intent) in best.index
        raw = best.loc[(text_norm, intent), "target_slots"] if found else None
        slots.append([dict(s) for s in raw] if raw is not None else [])
    return slots
