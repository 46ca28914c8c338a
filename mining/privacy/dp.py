"""Optional differential privacy (``[privacy.dp]``): DP selection of the released texts and
noisy released user counts.

What is private, and for whom. The **unit of privacy is one user** (the keyed pseudonym
``user_pseudonym`` of the raw ``user_id``; :mod:`mining.privacy.pii`): neighbouring inputs differ
by *all* turns of one user. The private input is, per user, the set of distinct
(locale, normalized text) that the user said in a failed turn that starts a candidate
rephrase pair (``rephrase_pairs/``, accepted or not). Which (user, text) rows exist depends
only on that user's own sessions (friction signals and candidate pairs look at the user's
own turns and the fixed configuration, never at other users), so this is a per-user
transformation of the logs and neighbours stay neighbours, provided ``turn_id``s are unique
across users: validation keeps one copy of a repeated ``turn_id`` before anything is bounded
(:func:`mining.spark.validate.validate`), so a user replaying another user's id could
displace that user's turn.

Mechanism (:func:`select_texts`):

1. *Contribution bounding* (:func:`bound_contributions`): each user keeps at most
   ``max_texts_per_user`` of their distinct texts (those with the smallest
   sha256(``seed``, user, locale, text): a per-user choice, independent of other users),
   and contributes at most 1 to a text's count ("one count per (user, text)"). A user then
   changes at most ``max_texts_per_user`` counts by at most 1: (ℓ0, ℓ1, ℓ∞) sensitivity
   (L, L, 1).
2. *Noisy threshold* ("stability-based histogram", propose-test-release over an unknown
   set of keys): ``noisy = n_users + DLap(scale)`` per text, released iff
   ``noisy >= threshold``. OpenDP's ``make_laplace_threshold`` (Rogers 2023,
   arXiv:2309.09170; discrete Laplace of Canonne, Kamath & Steinke 2020, arXiv:2004.00010;
   proof: docs.opendp.org/en/v0.16.0/proofs/rust/src/measurements/noise_threshold/)
   supplies the privacy map: :func:`calibrate` picks the smallest ``scale`` with
   ε_map ≤ ε and the smallest integer ``threshold`` with δ ≤ δ_target for d_in = (L, L, 1),
   as certified by that map after correcting its off-by-one at the threshold
   (opendp/opendp#2922: the map's δ at T is the true δ at T + 1).
3. The released per-text count is that same noisy value (no extra budget: post-processing).

Guarantee (stated the same way in docs/operations.md). With ``privacy.dp.enabled``, the pair
(set of selected (locale, text), noisy user count of each) is (ε, δ)-differentially private
with respect to adding or removing all turns of one user, for one run over its input
window. Consequences: a text that only one user said is released with probability at
most δ; the exported ``support_users`` (and ``support_events``, which in DP mode equals
it: one contribution per (user, text)) carry discrete Laplace noise of scale
``L/ε`` (standard deviation √2·L/ε for large scales).

What it does **not** cover (non-private functions of the whole data that are intersected
with / attached to the DP output): which selected texts are labeled at all, their
``intent``, ``confidence``, ``slots``, ``evidence``, ``cluster_id`` and ``annot_utt`` come
from the non-noised evidence of :mod:`mining.core.aggregation` (one user's rephrases can change
them); ``utterance`` is the most frequent raw form of the text (case and punctuation may
come from few users). The k-anonymity gate (``privacy.min_users``) stays on but reads the
noisy counts (post-processing: the exact gate would release a text of exactly ``min_users``
users on one user's data, beyond δ), and the changelog gives every text it retires one
reason, ``dp_not_selected`` (an abstain decision, or no evidence at all, would tell whether
anyone said the text). Label retention carries the previous version's released
labels forward, but no exact vote retires one (``contradicted``): only a fresh selected label
of the same text replaces it (:func:`mining.io.retention.carry_forward`). The manifest's stage statistics and drop counts, ``report.html`` and the
intermediate stage folders (turns, rephrase_pairs, clusters, labels) hold exact counts and
unreleased texts: operator-internal, never to be handed out. Whether a version is published
at all is not covered either: the reject-share and quality gates read exact counts (one
user's malformed rows near ``validation.max_reject_share`` can decide it). Privacy loss composes across
releases: every run (every night, every rerun with another config or code version) over
data of the same user spends another (ε, δ).

Randomness and determinism. The project requires same inputs + config → same bytes, while
DP needs noise the reader cannot predict. ``noise = "keyed"`` (default) draws each text's
noise with an exact sampler (CKS20 Algorithms 1–2, integer arithmetic only, no floating
point) from an HMAC-SHA256 stream keyed by the run's secret pseudonymization key
(``$MINING_PSEUDONYM_KEY``) and labelled by the run fingerprint (config incl. ``seed``,
input partitions, locales, code version, the logs' listing), a digest of the whole bounded
counts table (:func:`spark_counts_digest`), the text and its exact count: reruns give
identical bytes (and so leak nothing new), any change gives fresh independent noise for
every text (the listing names file sizes, not bytes: a log rewritten to the same size
would otherwise keep the noise of every unchanged count, and which texts kept theirs would
tell whose counts changed), and the noise is only as
unpredictable as that key is secret (in demo mode the key is public, so demo noise is
not private). ``noise = "opendp"`` uses OpenDP's own measurement (OpenSSL CSPRNG) instead:
no key needed, but output bytes differ run to run.

Why OpenDP and not PipelineDP (both install here: opendp 0.16.0; pipeline-dp 0.3.1 with
python-dp 1.1.5): PipelineDP's partition selection and noise come from PyDP's C++ library,
which cannot be seeded, so reruns could never be byte-identical; OpenDP exposes the
mechanism's privacy map as a function, so the library certifies the (ε, δ) of exactly the
distribution that is sampled, either by OpenDP itself or by the keyed sampler here. The
contribution bounding (a few lines of Spark) is ours either way, since the data lives in
Spark already.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import pandas as pd

from mining.errors import ConfigError

LIBRARY = "opendp"
MECHANISM = "laplace_threshold"  # OpenDP make_laplace_threshold: discrete Laplace + threshold
MECHANISM_REF = ("OpenDP make_laplace_threshold (Rogers 2023, arXiv:2309.09170); discrete Laplace "
                 "(Canonne, Kamath & Steinke 2020, arXiv:2004.00010)")
NOISE_SOURCES = ("keyed", "opendp")
#: label prefix of the keyed noise stream; bump when the sampler changes
_NOISE_DOMAIN = b"mining-dp-noise-v1"


def library_version() -> str:
    """``"opendp <version>"`` of the installed library."""
    from importlib.metadata import version

    return f"{LIBRARY} {version('opendp')}"


@dataclass(frozen=True)
class Calibration:
    """Noise ``scale`` and integer ``threshold`` of the noisy-threshold mechanism, and the
    (``epsilon``, ``delta``) that OpenDP's privacy map certifies for them at
    d_in = (``max_texts_per_user``, ``max_texts_per_user``, 1)."""
    scale: float
    threshold: int
    epsilon: float
    delta: float
    max_texts_per_user: int

    def to_dict(self) -> dict:
        return {"scale": self.scale, "threshold": self.threshold, "epsilon_certified": self.epsilon,
                "delta_certified": self.delta, "max_texts_per_user": self.max_texts_per_user}


def _opendp():
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def measurement(scale: float, threshold: int):
    """OpenDP measurement: {key (str): count (i64)} → {key: count + DLap(scale)} for the keys
    whose noisy count is ``>= threshold`` (input metric ℓ01∞ of absolute distances)."""
    dp = _opendp()
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T="i64"))
    metric = dp.l01inf_distance(dp.absolute_distance(T="i64"))
    return dp.m.make_laplace_threshold(domain, metric, scale=float(scale), threshold=int(threshold))


@lru_cache(maxsize=64)
def calibrate(epsilon: float, delta: float, max_texts_per_user: int) -> Calibration:
    """Smallest noise scale and integer threshold whose privacy loss, by OpenDP's privacy
    map for one user changing up to ``max_texts_per_user`` counts by 1, is at most
    (``epsilon``, ``delta``).

    ``ConfigError`` when ε ≤ 0, δ ∉ (0, 1) or ``max_texts_per_user`` < 1."""
    if not epsilon > 0 or not 0 < delta < 1 or max_texts_per_user < 1:
        raise ConfigError(f"need epsilon > 0, 0 < delta < 1, max_texts_per_user >= 1; got "
                         f"{epsilon}, {delta}, {max_texts_per_user}")
    d_in = (max_texts_per_user, max_texts_per_user, 1)
    scale = max_texts_per_user / epsilon        # ε = ℓ1 / scale for the discrete Laplace
    huge = 2**40
    while measurement(scale, huge).map(d_in)[0] > epsilon:  # float rounding: nudge up
        scale = math.nextafter(scale, math.inf)
    lo, hi = 1, 2
    while measurement(scale, hi).map(d_in)[1] > delta:
        lo, hi = hi, hi * 2
    while lo < hi:                               # δ_map falls as the threshold grows
        mid = (lo + hi) // 2
        if measurement(scale, mid).map(d_in)[1] <= delta:
            hi = mid
        else:
            lo = mid + 1
    # OpenDP 0.16's map leaves out the noise mass exactly at the threshold while the
    # measurement releases counts >= threshold (opendp/opendp#2922, open; reproduced here:
    # a one-user key at scale 1, threshold 3 is released at rate 0.099, the map says 0.036).
    # The true δ at threshold T is the map's δ at T - 1, so the threshold is one above the
    # map's and the certified δ is read at T - 1 (tests/privacy/test_dp.py measures the rate).
    eps_map, delta_true = measurement(scale, lo).map(d_in)
    return Calibration(scale, lo + 1, float(eps_map), float(delta_true), max_texts_per_user)


# ----------------------------------------------------------------- contribution bounding

def contribution_rank(seed: int, user: str, locale: str, text_norm: str) -> str:
    """sha256 hex of ``f"{seed}\\t{user}\\t{locale}\\t{text_norm}"``: a user keeps the texts
    with the smallest ranks (equal to the Spark ``sha2(concat_ws("\\t", ...), 256)``)."""
    return hashlib.sha256(f"{seed}\t{user}\t{locale}\t{text_norm}".encode("utf-8")).hexdigest()


def bound_contributions(rows: pd.DataFrame, max_texts_per_user: int, seed: int) -> pd.DataFrame:
    """Per-user contribution bounding (pandas reference of :func:`spark_text_counts`).

    ``rows``: columns ``user_pseudonym``, ``locale``, ``text_norm`` (any number of rows per
    user and text). Returns one row per kept distinct (user, locale, text_norm): at most
    ``max_texts_per_user`` per user, those with the smallest :func:`contribution_rank`."""
    distinct = rows[["user_pseudonym", "locale", "text_norm"]].drop_duplicates()
    rank = [contribution_rank(seed, u, loc, t) for u, loc, t in
            zip(distinct["user_pseudonym"], distinct["locale"], distinct["text_norm"])]
    distinct = distinct.assign(_rank=rank).sort_values(["user_pseudonym", "_rank"], kind="stable")
    kept = distinct.groupby("user_pseudonym", sort=False).head(max_texts_per_user)
    return kept.drop(columns="_rank").reset_index(drop=True)


def text_counts(rows: pd.DataFrame, max_texts_per_user: int, seed: int) -> pd.DataFrame:
    """Distinct users per (locale, text_norm) after :func:`bound_contributions`: columns
    locale, text_norm, n_users (int64), sorted by locale, text_norm."""
    kept = bound_contributions(rows, max_texts_per_user, seed)
    out = kept.groupby(["locale", "text_norm"], sort=True).size().rename("n_users").reset_index()
    return out.astype({"n_users": "int64"})


def spark_text_counts(pairs, max_texts_per_user: int, seed: int):
    """Spark version of :func:`text_counts` over ``rephrase_pairs`` rows (every candidate,
    accepted or not; source side): DataFrame locale, text_norm, n_users (long)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    src = pairs.select("user_pseudonym", "locale", F.col("source_text_norm").alias("text_norm")).distinct()
    rank = F.sha2(F.concat_ws("\t", F.lit(str(seed)), "user_pseudonym", "locale", "text_norm"), 256)
    w = Window.partitionBy("user_pseudonym").orderBy(rank)
    kept = src.withColumn("_r", F.row_number().over(w)).where(F.col("_r") <= max_texts_per_user)
    return kept.groupBy("locale", "text_norm").agg(F.count("*").cast("long").alias("n_users"))


def spark_counts_digest(counts) -> str:
    """Digest of the whole bounded counts table (:func:`spark_text_counts`: locale, text_norm,
    n_users), independent of row order and partitioning: ``"<rows>:<sum of the rows' 64-bit
    xxhash>"`` (the sum exact, as a 38-digit decimal). It labels the keyed noise with the run
    fingerprint (:func:`noise_key`), so a change of any count, even one the fingerprint
    misses (a log rewritten to the same size), draws fresh noise for every text: two
    releases can then not be compared text by text (which texts kept their noise would tell
    which counts changed, one user's presence)."""
    from pyspark.sql import functions as F

    r = counts.agg(F.count("*").alias("n"), F.sum(F.xxhash64("locale", "text_norm", "n_users")
                                                   .cast("decimal(38,0)")).alias("s")).first()
    return f"{r['n']}:{r['s'] or 0}"


# ------------------------------------------------------------------- keyed exact sampler

class KeyedStream:
    """Deterministic random integers from HMAC-SHA256(``key``, ``label`` ‖ counter) blocks
    (a PRF in counter mode): unpredictable to whoever does not hold ``key``."""

    def __init__(self, key: bytes, label: str):
        self._key, self._label = key, label.encode("utf-8") + b"\0"
        self._counter = self._buf = self._nbits = 0

    def bits(self, k: int) -> int:
        """A uniform integer in [0, 2**k)."""
        while self._nbits < k:
            block = hmac.new(self._key, self._label + self._counter.to_bytes(8, "big"), hashlib.sha256).digest()
            self._counter += 1
            self._buf = (self._buf << 256) | int.from_bytes(block, "big")
            self._nbits += 256
        self._nbits -= k
        out = self._buf >> self._nbits
        self._buf &= (1 << self._nbits) - 1
        return out

    def randbelow(self, n: int) -> int:
        """A uniform integer in [0, n) (rejection sampling, exact)."""
        k = (n - 1).bit_length()
        while True:
            r = self.bits(k)
            if r < n:
                return r


def _bernoulli(rng: KeyedStream, p: Fraction) -> bool:
    return rng.randbelow(p.denominator) < p.numerator


def _bernoulli_exp(rng: KeyedStream, gamma: Fraction) -> bool:
    """Bernoulli(exp(-gamma)) exactly, gamma ≥ 0 rational (CKS20 Algorithm 1)."""
    while gamma > 1:
        if not _bernoulli_exp(rng, Fraction(1)):
            return False
        gamma -= 1
    k = 1
    while _bernoulli(rng, gamma / k):
        k += 1
    return k % 2 == 1


def discrete_laplace(rng: KeyedStream, scale: float) -> int:
    """One exact draw of the discrete Laplace distribution P(x) ∝ exp(-|x| / scale) over the
    integers (CKS20 Algorithm 2, with scale = t/s the exact rational value of the float, as
    OpenDP uses it)."""
    t, s = Fraction(scale).as_integer_ratio()
    while True:
        u = rng.randbelow(t)
        if not _bernoulli_exp(rng, Fraction(u, t)):
            continue
        v = 0
        while _bernoulli_exp(rng, Fraction(1)):
            v += 1
        y = (u + t * v) // s
        negative = rng.bits(1) == 1
        if negative and y == 0:
            continue
        return -y if negative else y


def noise_key(pseudonym_key: bytes, fingerprint: str) -> bytes:
    """Key of the keyed noise: HMAC-SHA256(pseudonymization key, domain ‖ run fingerprint).
    Same key and fingerprint → same noise; anything else → independent noise."""
    return hmac.new(pseudonym_key, _NOISE_DOMAIN + b"\0" + fingerprint.encode("utf-8"), hashlib.sha256).digest()


# ----------------------------------------------------------------------------- release

def select_texts(counts: pd.DataFrame, cal: Calibration, key: bytes | None) -> pd.DataFrame:
    """The noisy-threshold mechanism on bounded counts.

    ``counts``: locale, text_norm, n_users (from :func:`text_counts` /
    :func:`spark_text_counts`). ``key`` None → OpenDP's measurement draws the noise (secure,
    not reproducible); else the keyed exact sampler (:class:`KeyedStream`,
    :func:`discrete_laplace`), one stream per (locale, text, exact count), so the result does
    not depend on how rows are batched and a changed count draws fresh noise.

    Returns ``counts`` plus ``dp_users``: the noisy count (int64) where it is ``>=
    cal.threshold`` (the text is selected), else null (``Int64`` dtype)."""
    counts = counts.reset_index(drop=True)
    labels = [f"{loc}\t{text}" for loc, text in zip(counts["locale"], counts["text_norm"])]
    if key is None:
        released = measurement(cal.scale, cal.threshold)(
            {lab: int(n) for lab, n in zip(labels, counts["n_users"])})
        noisy = [released.get(lab) for lab in labels]
    else:
        noisy = []
        for lab, n in zip(labels, counts["n_users"]):
            value = int(n) + discrete_laplace(KeyedStream(key, f"{lab}\t{int(n)}"), cal.scale)
            noisy.append(value if value >= cal.threshold else None)
    return counts.assign(dp_users=pd.array(noisy, dtype="Int64"))


def release_fn(cal: Calibration, key: bytes | None):
    """``mapInPandas`` function applying :func:`select_texts` to each batch (output
    columns locale, text_norm, n_users, dp_users)."""
    def run(batches):
        for pdf in batches:
            yield select_texts(pdf, cal, key)
    return run


RELEASE_SCHEMA = "locale string, text_norm string, n_users long, dp_users long"


def manifest_record(dp_cfg, cal: Calibration | None = None, **counts) -> dict:
    """The manifest's ``dp`` entry: ``{"enabled": false}`` when off; else the settings, the
    library and mechanism, the certified calibration and ``counts``: ``texts_considered``
    (distinct (locale, text) with at least one user after contribution bounding),
    ``texts_selected`` (of those, released by the noisy threshold); the export adds
    ``labels_released`` and ``labels_not_selected`` (labeled texts dropped as
    ``dp_not_selected``). These counts are exact, so the manifest is operator-internal."""
    if not dp_cfg.enabled:
        return {"enabled": False}
    return {"enabled": True, "epsilon": dp_cfg.epsilon, "delta": dp_cfg.delta,
            "unit": "user (user_pseudonym); neighbours differ by all turns of one user",
            "mechanism": MECHANISM, "mechanism_ref": MECHANISM_REF, "library": library_version(),
            "noise": dp_cfg.noise, "seed": dp_cfg.seed, **(cal.to_dict() if cal else {}),
            "covers": "which texts are released; support_users, support_events (noisy)",
            "not_covered": "intent, confidence, slots, evidence, cluster_id of released texts; "
                           "manifest stage statistics, report.html, intermediate stages; "
                           "whether a version is published (reject-share and quality gates)",
            **counts}
