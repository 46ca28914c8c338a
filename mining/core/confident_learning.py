"""Check weak labels against the logs' accepted interpretations, the confident-learning way
(pure numpy / scikit-learn / cleanlab, per locale).

Evidence. A turn without friction is one whose interpretation the user accepted: its text
and the production NLU's intent form a (noisy) labelled example. The candidate's own words
are never fitted on (they failed), but the words its users rephrased into can be: a target
text that never failed is a training text, with the intent the candidate inherited from it.
So the check is not independent of the candidate's pairs; what it adds is whether the
candidate's own words sit among that intent's accepted requests. (Holding every accepted
pair's targets out of the fit was not measured.) Per locale, a multinomial logistic regression (scikit-learn) maps
the text's sentence embedding (the vectors ``embed_utterances`` already cached, never
re-encoded) to that accepted intent, fitted on texts that never failed.

Per-class thresholds (Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty
in Dataset Labels", JAIR 70, 2021, §3.1; ``cleanlab.count.get_confident_thresholds``):
the out-of-fold predicted probabilities of the training texts (``cross_val_predict``,
seeded stratified folds) give, per class *j*, ``t_j`` = the mean out-of-fold probability of
class *j* over the training texts whose accepted intent is *j*. A text is *confidently* of
class *j* when ``p_j ≥ t_j``; among several such classes the most probable wins (the
confident joint's rule). The thresholds come from the night's own logs: nothing is fitted on
labelled data.

A candidate (a failing text, never a training text) with candidate intent *c* gets its
probabilities from the model fitted on all training texts and one ``logs_check`` status:

* ``confirmed``: its confident class (the most probable class at or above its threshold) is *c*;
* ``contradicted``: its confident class is some *j ≠ c*, ``p_c < t_c``, and *j* is not the
  intent the NLU gave the candidate's own failing turns (``rejected_intent``): a classifier
  fitted on the NLU's accepted outputs reproduces the NLU's mistakes on nearby texts, so
  agreeing with the interpretation the user just rejected is no evidence against the label
  (development logs, HWU64 seed 7: labels "contradicted" by the rejected intent were right
  94.5% of the time, as often as the unchecked ones; the other contradicted labels 76%);
* ``uninformative``: anything else: no confident class; a confident class that is the
  rejected intent; or one *j ≠ c* while ``p_c ≥ t_c`` (*c* is confident too, just less
  probable);
* ``unknown_intent``: *c* is not among the classifier's classes (no friction-free text of
  that intent, or fewer than ``folds`` of them), nothing to check it against.

A locale with fewer than ``min_texts`` training texts or fewer than two classes of at
least ``folds`` texts is not checked: every candidate gets ``skipped_too_few_texts`` or
``skipped_too_few_classes``, so the skip is visible in ``labels/`` and the stage stats.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: ``logs_check`` values of a checked candidate, then of a candidate in a skipped locale.
STATUSES = ("confirmed", "contradicted", "uninformative", "unknown_intent")
SKIPPED = ("skipped_too_few_texts", "skipped_too_few_classes")


@dataclass(frozen=True)
class LogsClassifier:
    """A locale's fitted check (or why none was fitted).

    ``status``: ``"fitted"`` or a :data:`SKIPPED` value. ``classes`` (k,) str sorted;
    ``thresholds`` (k,) float in [0, 1], cleanlab's per-class thresholds; ``model`` the
    scikit-learn estimator fitted on all training texts (None when skipped);
    ``n_train``: texts fitted on; ``n_rare``: texts left out because their intent has
    fewer than ``folds`` texts; ``oof_accuracy``: out-of-fold accuracy (NaN when skipped)."""
    status: str
    classes: np.ndarray
    thresholds: np.ndarray
    model: object
    n_train: int
    n_rare: int
    oof_accuracy: float


def subsample(n: int, cap: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``cap`` of ``n`` rows, a seeded uniform sample
    (``numpy.random.default_rng(seed)``); all rows when ``n <= cap``. Raises ``ValueError``
    when ``cap < 1`` or ``n < 0``."""
    if cap < 1 or n < 0:
        raise ValueError(f"subsample needs cap >= 1 and n >= 0, got cap={cap}, n={n}")
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def fit(x: np.ndarray, y: np.ndarray, *, folds: int = 5, min_texts: int = 100, seed: int = 0,
        c: float = 10.0) -> LogsClassifier:
    """Fit a locale's check on its friction-free texts.

    :param x: (n, d) float embeddings (L2-normalized sentence vectors), finite
    :param y: (n,) str accepted intents (no null)
    :param folds: stratified folds of ``cross_val_predict`` (≥ 2; cleanlab's default 5)
    :param min_texts: fewer training texts (after leaving out intents of < ``folds`` texts)
        → skipped (``skipped_too_few_texts``)
    :param seed: fold shuffling seed (the fit itself is deterministic, lbfgs)
    :param c: inverse L2 regularization of the logistic regression; 10 on development logs
        (HWU64 seed 7, MiniLM): out-of-fold accuracy 0.946 vs 0.913 at scikit-learn's default 1,
        whose probabilities of unit-norm inputs stay flat (mean top probability 0.48)
    :raises ValueError: shapes disagree, ``x`` is not finite, ``y`` holds a null, ``folds < 2``."""
    from cleanlab.count import get_confident_thresholds
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=object)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"x must be (n, d) with n = len(y), got {x.shape} and {len(y)}")
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    if len(x) and not np.isfinite(x).all():
        raise ValueError("x holds non-finite values")
    if any(v is None or v != v for v in y):
        raise ValueError("y holds a null intent")
    y = y.astype(str)
    names, counts = np.unique(y, return_counts=True)
    keep = np.isin(y, names[counts >= folds])
    n_rare = int((~keep).sum())
    x, y = x[keep], y[keep]
    classes = np.unique(y)
    empty = np.array([], dtype=float)
    if len(y) < min_texts:
        return LogsClassifier("skipped_too_few_texts", classes, empty, None, len(y), n_rare, float("nan"))
    if len(classes) < 2:
        return LogsClassifier("skipped_too_few_classes", classes, empty, None, len(y), n_rare, float("nan"))
    model = LogisticRegression(C=c, max_iter=200, tol=1e-3)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    oof = cross_val_predict(model, x, y, cv=cv, method="predict_proba")
    labels = np.searchsorted(classes, y)
    thresholds = np.asarray(get_confident_thresholds(labels, oof), dtype=float)
    model.fit(x, y)
    return LogsClassifier("fitted", classes, thresholds, model, len(y), n_rare,
                          float((oof.argmax(axis=1) == labels).mean()))


def check(clf: LogsClassifier, x: np.ndarray, intents: np.ndarray, rejected: np.ndarray) -> tuple:
    """The ``logs_check`` status of each candidate (see the module docstring).

    :param x: (m, d) embeddings of the candidates (texts the classifier was not fitted on)
    :param intents: (m,) str candidate intents
    :param rejected: (m,) str or None: the NLU intent of the candidate's failing turns
    :return: (status (m,) object, logs_intent (m,) object: the confident class or None,
        logs_prob (m,) float: the classifier's probability of the candidate intent, NaN when
        not checked)
    :raises ValueError: lengths disagree."""
    m = len(intents)
    if len(x) != m or len(rejected) != m:
        raise ValueError(f"x, intents and rejected must have one row per candidate, got {len(x)}, {m}, "
                         f"{len(rejected)}")
    logs_intent = np.full(m, None, dtype=object)
    prob = np.full(m, np.nan)
    if clf.status != "fitted":
        return np.full(m, clf.status, dtype=object), logs_intent, prob
    if m == 0:
        return np.array([], dtype=object), logs_intent, prob
    p = clf.model.predict_proba(np.asarray(x, dtype=np.float64))
    above = p >= clf.thresholds[None, :]
    best = np.where(above, p, -1.0).argmax(axis=1)
    has = above.any(axis=1)
    logs_intent[has] = clf.classes[best[has]]
    idx = np.searchsorted(clf.classes, np.asarray(intents, dtype=str))
    idx = np.minimum(idx, len(clf.classes) - 1)
    known = clf.classes[idx] == np.asarray(intents, dtype=str)
    prob[known] = p[np.flatnonzero(known), idx[known]]
    agrees = has & known & (best == idx)
    echo = np.array([li is not None and li == r for li, r in zip(logs_intent, rejected)], dtype=bool)
    against = (has & known & (best != idx) & ~echo
               & (np.where(known, prob, 1.0) < clf.thresholds[idx]))
    status = np.where(~known, "unknown_intent",
                      np.where(agrees, "confirmed", np.where(against, "contradicted", "uninformative")))
    return status.astype(object), logs_intent, prob


def fit_locale(texts: pd.DataFrame, *, max_texts: int, min_texts: int, folds: int, seed: int) -> LogsClassifier:
    """Fit a locale's check on its friction-free texts.

    :param texts: texts of one locale: ``text_norm`` (str, unique), ``n_friction``
        (int ≥ 0), ``accepted_intent`` (str or None: the NLU intent of its friction-free
        turns), ``embedding`` (sequence of floats or None). Training texts: never failed
        (``n_friction == 0``), with an accepted intent and an embedding; sorted by
        ``text_norm`` and, beyond ``max_texts``, a seeded sample (:func:`subsample`). An empty
        frame gives a skipped classifier (``skipped_too_few_texts``, or
        ``skipped_too_few_classes`` when ``min_texts`` is 0).
    :raises ValueError: a column is missing, embeddings of different lengths."""
    _require(texts, ("text_norm", "n_friction", "accepted_intent", "embedding"))
    train = texts[(texts["n_friction"] == 0) & texts["accepted_intent"].notna()
                  & texts["embedding"].notna()].sort_values("text_norm", kind="stable")
    train = train.iloc[subsample(len(train), max_texts, seed)]
    return fit(_matrix(train["embedding"]), train["accepted_intent"].to_numpy(), folds=folds,
               min_texts=min_texts, seed=seed)


def check_labels(texts: pd.DataFrame | None, cands: pd.DataFrame, *, max_texts: int, min_texts: int, folds: int,
                 seed: int, clf: LogsClassifier | None = None) -> tuple[pd.DataFrame, LogsClassifier]:
    """Check a locale's candidates, fitting its check on its friction-free texts first
    (:func:`fit_locale` over ``texts``) unless ``clf`` is given: a classifier already fitted
    on the whole locale, when ``cands`` are one slice of it (``texts`` is then not read).

    :param cands: the rows to check: ``candidate_intent`` (str), ``rejected_intent`` (str or
        None), ``embedding`` (or None → status ``no_embedding``)
    :return: (frame indexed like ``cands`` with ``logs_check`` (:data:`STATUSES`,
        :data:`SKIPPED` or ``no_embedding``) and ``logs_intent`` (the confident class or
        None), the :class:`LogsClassifier`)
    :raises ValueError: a column is missing, embeddings of different lengths."""
    _require(cands, ("candidate_intent", "rejected_intent", "embedding"))
    if clf is None:
        clf = fit_locale(texts, max_texts=max_texts, min_texts=min_texts, folds=folds, seed=seed)
    out = pd.DataFrame({"logs_check": "no_embedding", "logs_intent": None}, index=cands.index, dtype=object)
    has = cands["embedding"].notna().to_numpy()
    if has.any():
        c = cands[has]
        rejected = c["rejected_intent"].astype(object).where(c["rejected_intent"].notna(), None).to_numpy()
        status, intent, _ = check(clf, _matrix(c["embedding"]), c["candidate_intent"].to_numpy(), rejected)
        out.loc[has, "logs_check"] = status
        out.loc[has, "logs_intent"] = intent
    return out, clf


def _require(frame: pd.DataFrame, cols: tuple) -> None:
    """``ValueError`` naming the columns of ``cols`` that ``frame`` lacks."""
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"the logs check needs columns {missing}")


def _matrix(col: pd.Series) -> np.ndarray:
    """(n, d) float64 from a column of equal-length float sequences (n = 0 → (0, 0))."""
    if len(col) == 0:
        return np.zeros((0, 0))
    lengths = {len(v) for v in col}
    if len(lengths) != 1:
        raise ValueError(f"embeddings of different lengths {sorted(lengths)}")
    return np.stack([np.asarray(v, dtype=np.float64) for v in col])
