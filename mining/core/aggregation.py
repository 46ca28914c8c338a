"""Aggregate rephrase evidence across users into weak labels (pure pandas, per locale).

Evidence. For a normalized source text *u* (per locale), each accepted rephrase event *e*
(a failed turn saying *u*, rephrased by the same user into a successful turn) carries the
target's intent cₑ, its pair score sₑ ∈ [0, 1] and its user. The target's interpretation can
itself be wrong while the turn looks successful (a silent failure: nothing in the session
says so). The night's other turns of the same target words say how often they fail: the
event's weight is ``sₑ · (1 − φₑ)``, φₑ = the posterior probability that the target's
interpretation is wrong, from a two-rate mixture over the locale's target texts fitted per
run by EM on their other turns' friction (:mod:`mining.core.target_failure`; where a locale
has too few targets to fit it, φₑ = the target text's defect rate, friction turns / turns).
This is the reformulation target's success rate that Ponnusamy et al. (AAAI 2020, §3) weigh
rewrites by, derived per run from unlabelled logs: no constant. A user's repeats are not
independent evidence, so each user contributes at most one vote per intent: the user's best
weight, ``w(user, c) = max sₑ(1 − φₑ)``. Per intent ``W_c = Σ_users w(user, c)``,
``W = Σ_c W_c``, K = number of distinct observed intents.

Posterior (Dirichlet-multinomial). A symmetric Dirichlet(α) prior over the K observed
intents plus one bucket for "an intent nobody rephrased into" gives the posterior
Dirichlet(α + W_1, …, α + W_K, α). By the aggregation property of the Dirichlet
distribution, the top intent's share θ is Beta(a, b) with

    a = α + W_top,   b = α·K + (W − W_top)
    p  = a / (a + b)                                   (posterior mean)
    lb = F⁻¹_Beta(a, b)(q)                             (lower credible bound, q = credible_quantile)

(Gelman et al., *Bayesian Data Analysis*, 3rd ed., §3.4 and §23.2; ``scipy.stats.beta``.)
The bound rewards both agreement and amount of evidence: one user with weight 1 (score 1,
a target whose words never failed) gives lb = F⁻¹(q; 2, 1) = √q ≈ 0.22 at q = 0.05, five
agreeing users ≈ 0.61.

Raw score and calibration. ``raw_score`` = lb; the exported ``confidence`` is
``raw_score`` passed through the fitted isotonic map of :mod:`mining.core.calibration` for the
label's evidence kind, so it reads as a probability that the label is right.

Abstentions, each a named ``decision``, checked in this order:

* ``source_usually_succeeds``: the source's defect rate (friction turns / turns) is below
  ``min_defect_rate``: words that usually work carry weak evidence that they mean something
  else (Ponnusamy et al., AAAI 2020, weigh reformulations by the source's defect rate);
* ``insufficient_events`` (thin): fewer than ``min_events`` accepted events;
* ``conflicting_evidence``: K ≥ 2 and p < ``min_top_share``;
* ``contradicted_by_logs`` (``aggregation.logs_check``): the night's friction-free turns
  confidently say the text means another intent (:mod:`mining.core.confident_learning`), or
  a variant's cluster members' accepted intents disagree with its label
  (``variant_cluster_disagrees``);
* ``low_confidence``: calibrated confidence < ``min_confidence`` (the candidate intent is
  kept in ``candidate_intent`` for inspection).

Abstaining rather than lowering the confidence keeps the confidence calibrated: the isotonic
map was fitted on labels without this evidence, so a demoted score would read as no
probability at all until the map is refit on checked labels.

Cross-user variants (MARUPA, Falke et al., COLING 2020, pool paraphrases the same way):
the events of all texts of a variant cluster are pooled with the same vote. A failing text
that is thin on its own inherits its cluster's top intent as ``evidence = "variant"`` when
the pool passes the same gates with ≥ ``variant_min_events`` events of *other* texts (the
text's own were just found too few), the pool's top intent is the text's own top intent when
it has events (``min_events`` > 1), the cluster has two or
more texts and the text is close to its medoid (cosine ≥ ``variant_min_sim``). Variant
labels carry no slots (no successful turn of their own words to project from).

A label model from a weak-supervision library (e.g. Snorkel's) was considered: its sources
are labeling functions voting on the same item, while here the votes are users'
interpretations weighted by pair score × target success rate, which the Dirichlet vote
models directly.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

LABEL_COLUMNS = ["locale", "text_norm", "utterance", "intent", "slots", "confidence",
                 "support_users", "support_events", "evidence", "cluster_id", "decision",
                 "defect_rate", "text_users", "candidate_intent", "candidate_evidence", "raw_score", "posterior_mean",
                 "vote_intent", "vote_share", "vote_events", "logs_check", "logs_intent"]
VOTE_COLUMNS = ["top_intent", "p", "lb", "k", "n_events", "n_users", "n_top_events", "n_top_users"]


def vote(events: pd.DataFrame, key: str, prior: float, quantile: float = 0.05) -> pd.DataFrame:
    """Per ``key`` value: top intent, posterior mean ``p`` and lower credible bound ``lb`` of
    its share, K (distinct intents), events and distinct users (``n_events``/``n_users``: all
    of them, whatever intent they voted for; ``n_top_events``/``n_top_users``: those that
    voted for the top intent, the label's support).

    ``events`` columns: ``key``, target_intent (str), score (float, 0..1), user_pseudonym.
    ``prior`` α > 0; ``quantile`` q in (0, 1). Ties in weight break by intent name
    (deterministic). Returns one row per key value, columns ``[key, *VOTE_COLUMNS]``."""
    if events.empty:
        return pd.DataFrame(columns=[key, *VOTE_COLUMNS])
    per_user = events.groupby([key, "target_intent", "user_pseudonym"], sort=True)["score"].max()
    w = per_user.groupby(level=[0, 1]).sum().rename("w").reset_index()
    w = w.sort_values([key, "w", "target_intent"], ascending=[True, False, True])
    total = w.groupby(key)["w"].agg(["sum", "size"])
    top = w.drop_duplicates(key).set_index(key)
    a = top["w"] + prior
    b = prior * total["size"] + (total["sum"] - top["w"])
    out = pd.DataFrame({"top_intent": top["target_intent"]})
    out["p"] = a / (a + b)
    out["lb"] = stats.beta.ppf(quantile, a.to_numpy(), b.reindex(a.index).to_numpy())
    out["k"] = total["size"]
    out["n_events"] = events.groupby(key).size()
    out["n_users"] = events.groupby(key)["user_pseudonym"].nunique()
    for_top = events[events["target_intent"].to_numpy() == top["target_intent"].reindex(events[key]).to_numpy()]
    out["n_top_events"] = for_top.groupby(key).size()
    out["n_top_users"] = for_top.groupby(key)["user_pseudonym"].nunique()
    return out.reset_index()


def _gates(p, k, n_events, defect_rate, cfg, min_events) -> np.ndarray:
    """The evidence gates (all but ``low_confidence``) as a decision per row."""
    decision = np.full(len(p), "labeled", dtype=object)
    rules = [
        (defect_rate < cfg.min_defect_rate, "source_usually_succeeds"),
        (n_events < min_events, "insufficient_events"),
        ((k >= 2) & (p < cfg.min_top_share), "conflicting_evidence"),
    ]
    for cond, reason in reversed(rules):
        decision = np.where(cond, reason, decision)
    return decision


def aggregate_locale(texts: pd.DataFrame, events: pd.DataFrame, cfg, calibration=None,
                     classifier=None, target_failure=None) -> pd.DataFrame:
    """Labels for one locale, or for one slice of it (see ``classifier``).

    texts: one row per normalized text: locale, text_norm, utterance (most frequent raw
    form), n_turns, n_friction, text_users, cluster_id, cluster_size, sim_to_medoid; with
    ``cfg.logs_check`` also accepted_intent / rejected_intent (str or None: the most frequent
    NLU intent of its friction-free / friction turns) and embedding (floats or None; needed
    for the friction-free texts fitted on and the failing ones), else ``ValueError``.
    events: accepted pairs: text_norm (source), target_turn_id, target_text_norm, target_intent,
    target_slots, score, user_pseudonym; each event votes with ``score`` × (1 − φ), φ the
    probability that its target's interpretation is wrong (:mod:`mining.core.target_failure`;
    an event of weight 0 is dropped: it counts in no vote, event or user count)
    from the target text's turns: the columns ``target_n_turns``/``target_n_friction`` when
    present, else looked up in ``texts``; a target text found nowhere counts as never failing
    (full score).
    ``target_failure``: the locale's :class:`mining.core.target_failure.TargetFailureModel`,
    fitted beforehand on the whole locale's targets (as ``classifier``, for a slice); None →
    fitted here on the events' distinct targets.
    ``cfg``: :class:`mining.config.AggregationConfig`; ``calibration``:
    a :class:`mining.core.calibration.Calibration` (None → ``cfg.fitted_calibration``).

    ``classifier``: the locale's :class:`mining.core.confident_learning.LogsClassifier`, fitted
    beforehand on the whole locale (:func:`~mining.core.confident_learning.fit_locale`); then
    ``texts``/``events`` may be one slice of the locale that holds whole variant clusters (every
    text of a cluster, with its events) and the targets' turn counts, and the labels are those
    of the whole locale's call. None → the check is fitted on ``texts``.

    Returns one row per text that failed at least once, with :data:`LABEL_COLUMNS`;
    ``intent``/``confidence``/``evidence`` are null when ``decision`` is an abstention, and
    ``candidate_intent``/``candidate_evidence``/``raw_score`` are set for every row that reached the confidence
    gate (``labeled`` and ``low_confidence``). ``vote_intent``/``vote_share``/``vote_events``:
    the text's own vote whatever the decision (top intent, its posterior mean share, accepted
    events; null/NaN/0 without events): the evidence that can contradict a retained label
    (:mod:`mining.io.retention`). ``logs_check``/``logs_intent``: each candidate's status
    and the intent the logs point to (:mod:`mining.core.confident_learning`)."""
    calibration = calibration if calibration is not None else cfg.fitted_calibration
    q = cfg.credible_quantile
    all_texts = texts.assign(defect_rate=texts["n_friction"] / texts["n_turns"])
    events = events.assign(score=events["score"] * (1.0 - _target_failed(all_texts, events, target_failure)))
    # a weight of 0 is no evidence (φ = 1: an unfitted locale's target that failed on every
    # turn): counted, it passed min_events and labeled a text from nothing (raw Beta(α, α) bound)
    events = events[events["score"] > 0]
    texts = all_texts[all_texts["n_friction"] > 0].copy()
    events = events.merge(texts[["text_norm", "cluster_id"]], on="text_norm", how="left")
    own = vote(events, "text_norm", cfg.prior, q).set_index("text_norm")
    pooled = vote(events.dropna(subset=["cluster_id"]), "cluster_id", cfg.prior, q).set_index("cluster_id")
    t = texts.join(own, on="text_norm").join(pooled.add_prefix("c_"), on="cluster_id")
    counts = ["n_events", "k", "n_users", "n_top_events", "n_top_users"]
    t[counts] = t[counts].fillna(0)
    defect = t["defect_rate"].to_numpy()
    own_dec = _gates(t["p"].fillna(0).to_numpy(), t["k"].to_numpy(), t["n_events"].to_numpy(),
                     defect, cfg, cfg.min_events)
    c_dec = _gates(t["c_p"].fillna(0).to_numpy(), t["c_k"].fillna(0).to_numpy(),
                   t["c_n_events"].fillna(0).to_numpy(), defect, cfg, cfg.variant_min_events)
    own_ok = own_dec == "labeled"
    # a variant label needs the cluster's evidence beyond the text's own (which min_events just
    # found too little) and never overrules the text's own vote (min_events > 1 leaves both)
    others = t["c_n_events"].fillna(0).to_numpy() - t["n_events"].to_numpy()
    variant = ((own_dec == "insufficient_events") & (c_dec == "labeled")
               & (others >= cfg.variant_min_events)
               & ((t["n_events"].to_numpy() == 0) | (t["top_intent"] == t["c_top_intent"]).to_numpy())
               & (t["cluster_size"].fillna(1).to_numpy() >= 2)
               & (t["sim_to_medoid"].fillna(-1).to_numpy() >= cfg.variant_min_sim))
    candidate = own_ok | variant
    ev = np.where(own_ok, "rephrase", np.where(variant, "variant", None))
    t["candidate_intent"] = np.where(own_ok, t["top_intent"], np.where(variant, t["c_top_intent"], None))
    t["candidate_evidence"] = ev
    t["raw_score"] = np.where(own_ok, t["lb"], np.where(variant, t["c_lb"], np.nan)).astype(float)
    t["posterior_mean"] = np.where(own_ok, t["p"], np.where(variant, t["c_p"], np.nan)).astype(float)
    conf = calibration.apply(t["raw_score"].to_numpy(), ev)
    against = _logs_check(all_texts, t, candidate, variant, cfg, classifier)
    candidate &= ~against
    confident = candidate & (np.nan_to_num(conf, nan=-1.0) >= cfg.min_confidence)
    t["decision"] = np.where(against, t["decision_logs"],
                             np.where(candidate, np.where(confident, "labeled", "low_confidence"), own_dec))
    t["evidence"] = np.where(confident, ev, None)
    t["intent"] = np.where(confident, t["candidate_intent"], None)
    t["confidence"] = np.where(confident, conf, np.nan)
    # support: the events and users whose vote went to the label's intent (training_set.v1)
    t["support_events"] = np.where(variant, t["c_n_top_events"], t["n_top_events"]).astype(np.int64)
    t["support_users"] = np.where(variant, t["c_n_top_users"], t["n_top_users"]).astype(np.int64)
    t["slots"] = _best_slots(events, t, confident & own_ok)
    t["vote_intent"] = t["top_intent"].astype(object).where(t["top_intent"].notna(), None)
    t["vote_share"] = t["p"].astype(float)
    t["vote_events"] = t["n_events"].astype(np.int64)
    return t[LABEL_COLUMNS].sort_values("text_norm", kind="stable").reset_index(drop=True)


def _target_failed(texts: pd.DataFrame, events: pd.DataFrame, model=None) -> np.ndarray:
    """φ per event (float64 (n,)): P(its target's interpretation is wrong); 0 for a target
    text whose turns are unknown."""
    from mining.core import target_failure

    if "target_n_turns" in events.columns:
        counts = events[["target_text_norm", "target_n_turns", "target_n_friction"]].set_axis(
            ["text_norm", "n_turns", "n_friction"], axis=1)
    else:
        counts = events[["target_text_norm"]].rename(columns={"target_text_norm": "text_norm"}).merge(
            texts[["text_norm", "n_turns", "n_friction"]], on="text_norm", how="left").set_axis(events.index)
    known = counts["n_turns"].notna().to_numpy()
    if model is None:
        model = target_failure.fit_from_texts(counts[known].drop_duplicates("text_norm").astype(
            {"n_turns": np.int64, "n_friction": np.int64}))
    phi = np.zeros(len(events))
    if known.any():
        phi[known] = model.p_failed(counts.loc[known, "n_friction"].to_numpy(np.int64),
                                    counts.loc[known, "n_turns"].to_numpy(np.int64))
    return phi


def _logs_check(all_texts: pd.DataFrame, t: pd.DataFrame, candidate: np.ndarray, variant: np.ndarray,
                cfg, classifier=None) -> np.ndarray:
    """Sets ``t``'s ``logs_check``/``logs_intent`` (None for non-candidates; ``off`` when
    ``cfg.logs_check`` is false) and ``decision_logs``; returns the mask of candidates that
    abstain on the logs' evidence: ``contradicted_by_logs``, or ``variant_cluster_disagrees``
    for a variant whose cluster's friction-free turns mostly accepted another intent."""
    t["logs_check"], t["logs_intent"], t["decision_logs"] = None, None, None
    if not cfg.logs_check:
        t.loc[candidate, "logs_check"] = "off"
        return np.zeros(len(t), dtype=bool)
    from mining.core import confident_learning

    checked, _ = confident_learning.check_labels(
        all_texts, t.loc[candidate], max_texts=cfg.logs_check_max_texts, min_texts=cfg.logs_check_min_texts,
        folds=cfg.logs_check_folds, seed=cfg.logs_check_seed, clf=classifier)
    t.loc[candidate, "logs_check"] = checked["logs_check"]
    t.loc[candidate, "logs_intent"] = checked["logs_intent"]
    contradicted = (t["logs_check"] == "contradicted").to_numpy()
    ok = all_texts[all_texts["accepted_intent"].notna() & all_texts["cluster_id"].notna()]
    weight = (ok["n_turns"] - ok["n_friction"]).rename("w")
    accepted = (pd.concat([ok[["cluster_id", "accepted_intent"]], weight], axis=1)
                .groupby(["cluster_id", "accepted_intent"])["w"].sum().reset_index()
                .sort_values(["cluster_id", "w", "accepted_intent"], ascending=[True, False, True])
                .drop_duplicates("cluster_id").set_index("cluster_id")["accepted_intent"])
    c_acc = t["cluster_id"].map(accepted)
    disagrees = variant & c_acc.notna().to_numpy() & (c_acc != t["candidate_intent"]).to_numpy()
    t["decision_logs"] = np.where(contradicted, "contradicted_by_logs",
                                  np.where(disagrees, "variant_cluster_disagrees", None))
    return candidate & (contradicted | disagrees)


def _best_slots(events: pd.DataFrame, t: pd.DataFrame, own_ok: np.ndarray) -> list:
    """Slots of the highest-weighted event whose target intent is the label (rephrase
    evidence only; variants and abstentions get []). Ties on weight break by the target
    turn id, so the choice never depends on the rows' order."""
    if events.empty:
        return [[] for _ in range(len(t))]
    best = (events.sort_values(["text_norm", "score", "target_turn_id"], ascending=[True, False, True])
            .drop_duplicates(["text_norm", "target_intent"]).set_index(["text_norm", "target_intent"]))
    slots = []
    for text_norm, intent, ok in zip(t["text_norm"], t["intent"], own_ok):
        found = ok and (text_norm, intent) in best.index
        raw = best.loc[(text_norm, intent), "target_slots"] if found else None
        slots.append([dict(s) for s in raw] if raw is not None else [])
    return slots
