"""Log simulator world: the corpus split, the weak NLU's fixed reading of traffic, popularity.

Everything the simulated users share, built once per config (and cached per process):
:func:`split_corpus` splits a labeled corpus per intent into seed / test / traffic rows,
:func:`build_world` trains the weak production NLU (:class:`mining.sim.weak_nlu.WeakNLU`) on
the seed split, interprets every distinct traffic text once (REJECTED, WRONG or RIGHT) and
returns a :class:`World` with the traffic rows as Arrow columns in contract types and the
Zipf popularity samplers of intents and utterances.
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from mining.io.schemas import arrow_schema
from mining.sim.corpora import load_corpus, parse_annot_utt
from mining.sim.growth import grow_utterances, normalize_whitespace
from mining.sim.simulation_config import (GROWTH_STREAM, POPULARITY_STREAM, REJECTED, RIGHT, SPLIT_STREAM, WRONG,
                                          SimulationConfig)
from mining.sim.weak_nlu import WeakNLU
from mining.errors import ConfigError


def split_corpus(corpus: pd.DataFrame, seed_per_intent: int, test_share: float,
                 seed: int) -> np.ndarray:
    """Split label (``"seed"``, ``"test"`` or ``"traffic"``) of each row of ``corpus``.

    Per intent, rows are shuffled with ``default_rng([seed, 0])``; the first
    ``min(seed_per_intent, n)`` go to seed, the next ``min(round(test_share * n), rest)`` to
    test, the others to traffic (an intent with few rows may have no test or traffic rows).
    Returns an object array of shape (len(corpus),), aligned with the rows."""
    rng = np.random.default_rng([seed, SPLIT_STREAM])
    order = rng.permutation(len(corpus))
    intents = corpus["intent"].to_numpy()[order]
    rank = pd.Series(intents).groupby(intents, sort=False).cumcount().to_numpy()
    size = pd.Series(intents).map(pd.Series(intents).value_counts()).to_numpy()
    n_seed = np.minimum(seed_per_intent, size)
    n_test = np.minimum(np.rint(test_share * size).astype(int), size - n_seed)
    shuffled = np.where(rank < n_seed, "seed",
                        np.where(rank < n_seed + n_test, "test", "traffic")).astype(object)
    labels = np.empty(len(corpus), dtype=object)
    labels[order] = shuffled
    return labels


def _zipf_cdf(n: int, s: float) -> list[float]:
    """Cumulative Zipf weights ``k**-s`` of ranks 1..n, normalized so the last is 1.0."""
    cdf = np.cumsum(np.arange(1, n + 1, dtype=np.float64) ** -s)
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf.tolist()


@dataclass
class World:
    """Everything users share, built once: the traffic utterances with their (fixed) NLU
    interpretation as Arrow columns, and the popularity samplers.

    ``intents``: intent numbers with traffic, most popular first, ``intent_cdf`` their Zipf
    CDF; ``utt_rows[i]``: traffic row numbers of intent ``i``, most popular first,
    ``utt_cdf[i]`` their Zipf CDF; ``outcome[row]``: REJECTED, WRONG or RIGHT;
    ``wrong_rows[i]``: the rows of ``utt_rows[i]`` whose outcome is WRONG, same order."""

    traffic: pa.Table
    texts: list[str]
    outcome: list[int]
    intents: list[int]
    intent_cdf: list[float]
    utt_rows: dict[int, list[int]]
    utt_cdf: dict[int, list[float]]
    can_rephrase: dict[int, bool]
    wrong_rows: dict[int, list[int]] = field(default_factory=dict)  # per intent: rows the NLU misreads
    stats: dict[str, Any] = field(default_factory=dict)

    def pick_intent(self, u: float) -> int:
        return self.intents[bisect_right(self.intent_cdf, u)]

    def pick_utterance(self, intent: int, u: float) -> int:
        return self.utt_rows[intent][bisect_right(self.utt_cdf[intent], u)]

    def other_intent(self, intent: int, draw: Callable[[], float]) -> int:
        """A popularity-weighted intent other than ``intent`` (needs >= 2 intents)."""
        for _ in range(32):
            other = self.pick_intent(draw())
            if other != intent:
                return other
        return next(i for i in self.intents if i != intent)

    def other_utterance(self, intent: int, row: int, draw: Callable[[], float]) -> int:
        """A popularity-weighted traffic row of ``intent`` whose text differs from ``row``'s
        (needs ``can_rephrase[intent]``)."""
        text = self.texts[row]
        for _ in range(32):
            other = self.pick_utterance(intent, draw())
            if self.texts[other] != text:
                return other
        return next(r for r in self.utt_rows[intent] if self.texts[r] != text)


def build_world(cfg: SimulationConfig, nlu_training: pd.DataFrame | None = None) -> tuple[World, pd.DataFrame]:
    """Split the corpus, train the weak NLU on the seed split, interpret every distinct
    traffic text once. Returns the world and the corpus with a ``split`` column, both
    read-only. Cached per process on the config fields they depend on (training the NLU
    takes seconds). Raises ``ValueError`` when fewer than two intents have traffic.

    ``nlu_training``: optional extra rows (columns ``text``, ``intent``) the production NLU
    is trained on after the seed split, e.g. a mined training set (the retrained NLU of a
    night of :mod:`mining.eval.loop`); such a world is not cached."""
    if nlu_training is not None and len(nlu_training):
        return _build_world(SimulationConfig(**{n: getattr(cfg, n) for n in _WORLD_FIELDS}), nlu_training)
    return _build_world_cached(*(getattr(cfg, name) for name in _WORLD_FIELDS))


_WORLD_FIELDS = ("corpus", "seed", "seed_per_intent", "test_share", "reject_threshold",
                 "utterance_zipf_s", "intent_zipf_s", "traffic_utterances")


@lru_cache(maxsize=4)
def _build_world_cached(*values: Any) -> tuple[World, pd.DataFrame]:
    return _build_world(SimulationConfig(**dict(zip(_WORLD_FIELDS, values))), None)


def _build_world(cfg: SimulationConfig, nlu_training: pd.DataFrame | None) -> tuple[World, pd.DataFrame]:
    corpus = load_corpus(cfg.corpus)
    corpus["split"] = split_corpus(corpus, cfg.seed_per_intent, cfg.test_share, cfg.seed)
    seed_rows, test = corpus[corpus.split == "seed"], corpus[corpus.split == "test"]
    traffic = corpus[corpus.split == "traffic"].reset_index(drop=True)
    if cfg.traffic_utterances is not None:
        traffic = grow_traffic(traffic, cfg.traffic_utterances, cfg.seed)
        corpus = pd.concat([corpus[corpus.split != "traffic"], traffic], ignore_index=True)
    if traffic["intent"].nunique() < 2:
        raise ConfigError("fewer than two intents have traffic utterances; lower "
                         "seed_per_intent or test_share")
    texts, intents = list(seed_rows["text"]), list(seed_rows["intent"])
    if nlu_training is not None:
        texts += list(nlu_training["text"])
        intents += list(nlu_training["intent"])
    nlu = WeakNLU().fit(texts, intents)
    unique_texts, inverse = np.unique(traffic["text"].to_numpy(dtype=str), return_inverse=True)
    predicted, confidence = (a[inverse] for a in nlu.predict(unique_texts))
    outcome = np.where(confidence < cfg.reject_threshold, REJECTED,
                       np.where(predicted == traffic["intent"].to_numpy(dtype=str), RIGHT, WRONG))
    world = _make_world(cfg, traffic, predicted, confidence, outcome)
    world.stats = {**_nlu_stats(nlu, traffic, test, predicted, outcome),
                   "extra_training_rows": 0 if nlu_training is None else int(len(nlu_training))}
    return world, corpus


def grow_traffic(traffic: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """The traffic split grown to ``n`` distinct utterances (corpus frame layout of
    :mod:`mining.sim.corpora` plus ``split``). The split's distinct texts come first with
    their own ``utt_id``; a grown row's ``utt_id`` is ``"<origin utt_id>+g<row>"``, its
    intent and locale the origin's, its annotation the grown one
    (:func:`mining.sim.growth.grow_utterances`, seeded from ``seed`` on its own stream). Raises ``ValueError`` when
    ``n`` is below the split's number of distinct texts (growing must not drop any) or the
    transforms cannot reach ``n``."""
    distinct = traffic["text"].map(lambda t: normalize_whitespace(str(t))).nunique()
    if n < distinct:
        raise ConfigError(f"traffic_utterances={n:,} is below the traffic split's {distinct:,} "
                         "distinct texts")
    # growth's own seed: grow_utterances draws from default_rng([seed, 0]) and ([seed, 1]),
    # which with the run's seed would be the split's stream and user 0's (numpy drops
    # trailing zeros of a seed list, so [s, 1] == [s, 1, 0])
    grown = grow_utterances(traffic, n, int(np.random.SeedSequence([seed, GROWTH_STREAM]).generate_state(1)[0]))
    origin = traffic.drop_duplicates("utt_id").set_index("utt_id")
    original = grown["transform"].to_numpy() == "original"
    utt_id = np.where(original, grown["origin_utt_id"],
                      grown["origin_utt_id"] + "+g" + pd.Series(np.arange(n)).astype(str))
    slots = [parse_annot_utt(a)[1] for a in grown["annot_utt"]]
    return pd.DataFrame({
        "utt_id": utt_id, "text": grown["text"], "intent": grown["intent"],
        "annot_utt": grown["annot_utt"], "slots": slots,
        "locale": origin["locale"].reindex(grown["origin_utt_id"]).to_numpy(),
        "split": "traffic"})


def _make_world(cfg: SimulationConfig, traffic: pd.DataFrame, predicted: np.ndarray,
                confidence: np.ndarray, outcome: np.ndarray) -> World:
    rng = np.random.default_rng([cfg.seed, POPULARITY_STREAM])
    intent_codes, intent_names = pd.factorize(traffic["intent"], sort=True)
    intents = rng.permutation(len(intent_names)).tolist()
    utt_rows = {i: rng.permutation(np.flatnonzero(intent_codes == i)).tolist() for i in intents}
    texts = traffic["text"].tolist()
    return World(
        traffic=_traffic_table(traffic, predicted, confidence, outcome),
        texts=texts, outcome=outcome.tolist(), intents=intents,
        intent_cdf=_zipf_cdf(len(intents), cfg.intent_zipf_s),
        utt_rows=utt_rows,
        utt_cdf={i: _zipf_cdf(len(rows), cfg.utterance_zipf_s) for i, rows in utt_rows.items()},
        can_rephrase={i: len({texts[r] for r in rows}) > 1 for i, rows in utt_rows.items()},
        wrong_rows={i: [r for r in rows if outcome[r] == WRONG] for i, rows in utt_rows.items()})


def _traffic_table(traffic: pd.DataFrame, predicted: np.ndarray, confidence: np.ndarray,
                   outcome: np.ndarray) -> pa.Table:
    """Per traffic row: the logged NLU columns and the gold columns, in contract types.
    nlu_slots: the gold slots when RIGHT, [] when WRONG, null when REJECTED."""
    schema = arrow_schema("interaction_turn")
    slots = [s if o == RIGHT else ([] if o == WRONG else None)
             for s, o in zip(traffic["slots"], outcome)]
    return pa.table({
        "utterance": pa.array(traffic["text"].tolist(), pa.string()),
        "nlu_intent": pa.array(predicted.tolist(), pa.string(), mask=outcome == REJECTED),
        "nlu_slots": pa.array(slots, schema.field("nlu_slots").type),
        "nlu_confidence": pa.array(confidence, pa.float64()),
        "locale": pa.array(traffic["locale"].tolist(), pa.string()),
        "utt_id": pa.array(traffic["utt_id"].tolist(), pa.string()),
        "gold_intent": pa.array(traffic["intent"].tolist(), pa.string()),
        "gold_annot_utt": pa.array(traffic["annot_utt"].tolist(), pa.string()),
        "nlu_correct": pa.array(outcome == RIGHT, pa.bool_()),
        "wrong": pa.array(outcome == WRONG, pa.bool_()),
    })


def _nlu_stats(nlu: WeakNLU, traffic: pd.DataFrame, test: pd.DataFrame,
               predicted: np.ndarray, outcome: np.ndarray) -> dict[str, Any]:
    """NLU accuracy on distinct traffic utterances (a rejected one counts as wrong) and on
    the test split, and the shares of traffic utterances rejected / interpreted wrongly."""
    test_pred, _ = nlu.predict(test["text"])
    return {
        "traffic_accuracy": float(np.mean(outcome == RIGHT)),
        "traffic_top1_accuracy": float(np.mean(predicted == traffic["intent"].to_numpy(str))),
        "traffic_rejected_share": float(np.mean(outcome == REJECTED)),
        "traffic_wrong_share": float(np.mean(outcome == WRONG)),
        "test_accuracy": float(np.mean(test_pred == test["intent"].to_numpy(str)))
        if len(test) else None,
    }

