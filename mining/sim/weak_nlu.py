"""A deliberately weak "production NLU" for simulation and the retraining-lift evaluation.

TF-IDF over word 1-2 grams and character 2-4 grams (``char_wb``), then multinomial
logistic regression. Trained on a few utterances per intent it makes the kind of real,
lexically plausible mistakes a production NLU makes on unseen phrasings; its confidence is
the top-class probability. The same class and hyperparameters serve as the production NLU of
the simulator and as the model of the retraining lift (seed vs seed + mined vs seed +
oracle), so the lift measures the data, not a model change.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

RANDOM_STATE = 0
# Inverse L2 strength of the logistic regression. Chosen so the top-class probability
# spreads over 0..1 when the model is trained on a few utterances per intent: on HWU64 with
# 8 seed utterances per intent, the share of other utterances whose top probability is below
# 0.2 is 89% at sklearn's default C=1 and 19% at C=100; accuracy is ~0.68 at both.
C = 100.0
MAX_ITER = 2000
# BLAS threads during fit and predict. One thread makes the probabilities bit-identical
# whatever the machine's core count (multi-threaded BLAS sums in a different order), and is
# faster here: the work is many small vector operations, and threads oversubscribe a busy
# machine (HWU64 seed fit: 1.7 s with 1 thread, 6.4 s with 2 on a loaded 2-core host).
BLAS_THREADS = 1


PREDICT_CHUNK = 65_536  # texts scored per predict_proba call (bounds memory)


def _pipeline() -> Pipeline:
    features = FeatureUnion([
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                                 lowercase=True, token_pattern=r"(?u)\b\w+\b")),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True,
                                 lowercase=True)),
    ])
    model = LogisticRegression(C=C, solver="lbfgs", max_iter=MAX_ITER,
                               random_state=RANDOM_STATE)
    return Pipeline([("features", features), ("model", model)])


class WeakNLU:
    """TF-IDF (word 1-2 grams + char_wb 2-4 grams) + logistic regression intent classifier.

    Deterministic: the same training data in the same order gives the same model and
    bit-identical probabilities (BLAS runs single-threaded, see ``BLAS_THREADS``)."""

    def __init__(self) -> None:
        self._pipeline: Pipeline | None = None

    @property
    def classes_(self) -> np.ndarray:
        """Intent labels known to the fitted model, sorted; ``str`` array of shape (k,)."""
        if self._pipeline is None:
            raise RuntimeError("WeakNLU is not fitted; call fit() first")
        return self._pipeline.classes_

    def fit(self, texts: Sequence[str], intents: Sequence[str]) -> "WeakNLU":
        """Train on parallel sequences of utterances and intent labels (same length ≥ 2,
        at least two distinct intents, else ``ValueError``). Returns ``self``."""
        texts, intents = list(texts), [str(i) for i in intents]
        if len(texts) != len(intents):
            raise ValueError(f"{len(texts)} texts but {len(intents)} intents")
        if len(set(intents)) < 2:
            raise ValueError("WeakNLU needs at least two distinct intents to train")
        with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
            self._pipeline = _pipeline().fit(texts, intents)
        return self

    def predict(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Top intent and its probability for each text.

        Returns ``(intents, confidence)``: a ``str`` array of shape (n,) and a ``float64``
        array of shape (n,) in 0..1 (the top-class probability). Raises ``RuntimeError``
        when not fitted."""
        classes = self.classes_
        texts = list(texts)
        if not texts:
            return np.array([], dtype=classes.dtype), np.array([], dtype=np.float64)
        top = np.empty(len(texts), dtype=np.int64)
        confidence = np.empty(len(texts), dtype=np.float64)
        # In chunks: a grown traffic split (SimulationConfig.traffic_utterances) has millions of
        # texts, and their dense probabilities would not fit; rows are scored independently.
        with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
            for start in range(0, len(texts), PREDICT_CHUNK):
                proba = self._pipeline.predict_proba(texts[start:start + PREDICT_CHUNK])
                best = proba.argmax(axis=1)
                top[start:start + len(best)] = best
                confidence[start:start + len(best)] = proba[np.arange(len(best)), best]
        return classes[top], confidence


def train_and_score(train_texts: Sequence[str], train_intents: Sequence[str],
                    test_texts: Sequence[str], test_intents: Sequence[str]) -> float:
    """Accuracy (0..1) on the test set of a :class:`WeakNLU` trained on the train set.

    Test intents unseen in training count as errors. Raises ``ValueError`` on an empty test
    set or mismatched lengths."""
    if len(test_texts) != len(test_intents):
        raise ValueError(f"{len(test_texts)} test texts but {len(test_intents)} intents")
    if len(test_texts) == 0:
        raise ValueError("empty test set")
    predicted, _ = WeakNLU().fit(train_texts, train_intents).predict(test_texts)
    return float(np.mean(predicted == np.asarray([str(i) for i in test_intents])))
