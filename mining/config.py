"""Layered configuration, lowest to highest precedence:

1. ``mining/defaults.toml``: every value has exactly one default, here;
2. a TOML file: ``--config FILE``, else ``$MINING_CONFIG`` (same sections, any subset of keys);
3. environment variables ``MINING__<SECTION>__<KEY>=value`` (``MINING__PRIVACY__MIN_USERS=3``;
   names are case-insensitive, deeper tables add levels: ``MINING__FRICTION__CUES__PL``);
4. command-line ``--set section.key=value``, then the flags that name one key
   (``--min-users``, ``--cache-dir``, ``--model-path``).

Values from the environment and ``--set`` are parsed as TOML values (``0.6``, ``true``,
``["en", "de"]``); what does not parse is a string (``cpu``). An unknown key, at any layer,
fails naming the key and where it came from. Sections become frozen dataclasses that
validate their types and ranges (``ConfigError`` on a bad value, naming the key);
:func:`resolve_sections` also reports where each value came from (``mining config show``).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from mining import env
from mining.config_layers import (ENV_PREFIX, Layer, env_layers, merge_layer,  # noqa: F401  (parse_set: the CLI's)
                                  parse_set)
from mining.errors import ConfigError

DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")
#: Environment variable naming the config file when ``--config`` is not given.
CONFIG_ENV = env.CONFIG_ENV
log = logging.getLogger(__name__)


def _check_by_locale(table: dict, key: str, lo: float, hi: float) -> None:
    """``ConfigError`` unless every value of a per-locale table is a number in [lo, hi]."""
    for locale, value in table.items():
        _check(isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi,
               f"{key}.{locale}", value, f"a number in [{lo}, {hi}]")


def _check(cond: bool, key: str, value: Any, rule: str) -> None:
    if not cond:
        raise ConfigError(f"config {key}={value!r}: must be {rule}")


@dataclass(frozen=True)
class ValidationConfig:
    max_reject_share: float
    max_utterance_chars: int
    max_future_skew_s: float

    def __post_init__(self):
        _check(0 <= self.max_reject_share <= 1, "validation.max_reject_share", self.max_reject_share, "in [0, 1]")
        _check(self.max_utterance_chars > 0, "validation.max_utterance_chars", self.max_utterance_chars, "> 0")
        _check(self.max_future_skew_s >= 0, "validation.max_future_skew_s", self.max_future_skew_s, ">= 0")


@dataclass(frozen=True)
class FrictionConfig:
    statuses: tuple[str, ...]
    barge_in: bool
    low_nlu_confidence: float
    low_asr_confidence: float
    short_dwell_s: float
    repetition: bool
    correction_cues: bool
    cues: dict[str, tuple[str, ...]]

    def __post_init__(self):
        from mining.core.text import normalize

        object.__setattr__(self, "statuses", tuple(self.statuses))
        for k in ("low_nlu_confidence", "low_asr_confidence"):
            v = getattr(self, k)
            _check(0 <= v <= 1, f"friction.{k}", v, "in [0, 1]")
        _check(self.short_dwell_s >= 0, "friction.short_dwell_s", self.short_dwell_s, ">= 0")
        # Cues are compared with normalized text, so they are normalized here once.
        cues = {lang.lower(): tuple(sorted({normalize(c) for c in words} - {""}))
                for lang, words in self.cues.items()}
        object.__setattr__(self, "cues", cues)


@dataclass(frozen=True)
class SessionsConfig:
    inactivity_gap_s: float

    def __post_init__(self):
        _check(self.inactivity_gap_s > 0, "sessions.inactivity_gap_s", self.inactivity_gap_s, "> 0")


@dataclass(frozen=True)
class RephraseConfig:
    """``model`` is the fitted scoring model (:mod:`mining.core.rephrase_model`): "" = the
    packaged file. ``threshold`` is the model file's unless the config sets one."""
    max_gap_s: float
    max_turn_distance: int
    char_ngram: int
    model: str
    threshold: float | None = None
    threshold_by_locale: dict[str, float] = field(default_factory=dict)  # locale → threshold
    fitted: Any = field(init=False, repr=False, compare=False)  # the loaded RephraseModel

    def __post_init__(self):
        from mining.core.rephrase_model import load_model

        _check(self.max_gap_s > 0, "rephrase.max_gap_s", self.max_gap_s, "> 0")
        _check(self.max_turn_distance >= 1, "rephrase.max_turn_distance", self.max_turn_distance, ">= 1")
        _check(self.char_ngram >= 1, "rephrase.char_ngram", self.char_ngram, ">= 1")
        object.__setattr__(self, "fitted", load_model(self.model or None))
        if self.threshold is None:
            object.__setattr__(self, "threshold", self.fitted.threshold)
        _check(0 <= self.threshold <= 1, "rephrase.threshold", self.threshold, "in [0, 1]")
        _check_by_locale(self.threshold_by_locale, "rephrase.threshold_by_locale", 0, 1)

    def threshold_for(self, locale: str) -> float:
        """The acceptance threshold of ``locale``: its entry of ``threshold_by_locale``,
        else ``threshold``."""
        return float(self.threshold_by_locale.get(locale, self.threshold))


@dataclass(frozen=True)
class EmbeddingConfig:
    model_path: str
    model_id: str
    languages: tuple[str, ...]
    multilingual: str
    batch_size: int
    device: str
    cache_dir: str
    backend: str

    def __post_init__(self):
        from mining.core.encoders import MINILM_MODEL_ID, MULTILINGUAL_MODEL_IDS, RUNTIMES, model_cache_id

        object.__setattr__(self, "languages", tuple(lang.lower() for lang in self.languages))
        if self.model_path and self.model_id == MINILM_MODEL_ID:
            # the cache key must name the weights: a custom folder never reuses MiniLM vectors
            object.__setattr__(self, "model_id", model_cache_id(self.model_path))
        _check(self.multilingual in ("", *MULTILINGUAL_MODEL_IDS), "embedding.multilingual", self.multilingual,
               " or ".join(repr(b) for b in ("", *MULTILINGUAL_MODEL_IDS)))
        _check(self.batch_size > 0, "embedding.batch_size", self.batch_size, "> 0")
        _check(self.device in ("auto", "cpu", "cuda"), "embedding.device", self.device, "auto|cpu|cuda")
        _check(self.backend in RUNTIMES, "embedding.backend", self.backend, "|".join(RUNTIMES))

    def cache_root(self, out: str) -> str:
        """The embedding cache: ``cache_dir``, else ``<out>/embedding_cache``."""
        return self.cache_dir or str(Path(out) / "embedding_cache")


@dataclass(frozen=True)
class ClusterConfig:
    k: int
    min_sim: float
    max_cluster_size: int
    exact_max_n: int
    ivf_nprobe: int
    max_task_texts: int
    seed: int
    min_sim_rel: float = 0.8  # edge threshold as a cosine relative to the locale's background (mining.core.background)
    min_sim_by_locale: dict[str, float] = field(default_factory=dict)  # locale → min_sim (override)

    def __post_init__(self):
        # a GPU index returns at most 2048 results a query (mining.core.index.GPU_MAX_K), the row itself one
        _check(1 <= self.k <= 2047, "cluster.k", self.k, "in [1, 2047]")
        for k in ("min_sim_rel", "min_sim"):
            _check(-1 <= getattr(self, k) <= 1, f"cluster.{k}", getattr(self, k), "in [-1, 1]")
        for k in ("seed", "exact_max_n"):    # a seed reaches numpy's default_rng: negative fails there
            _check(getattr(self, k) >= 0, f"cluster.{k}", getattr(self, k), ">= 0")
        _check_by_locale(self.min_sim_by_locale, "cluster.min_sim_by_locale", -1, 1)
        _check(self.max_cluster_size >= 2, "cluster.max_cluster_size", self.max_cluster_size, ">= 2")
        _check(self.ivf_nprobe >= 1, "cluster.ivf_nprobe", self.ivf_nprobe, ">= 1")
        _check(self.max_task_texts >= 1000, "cluster.max_task_texts", self.max_task_texts, ">= 1000")

    def for_locale(self, locale: str, derived: Mapping | None = None) -> "ClusterConfig":
        """This config with ``min_sim`` of ``locale``: its ``min_sim_by_locale`` entry (an
        override), else the run's own at ``min_sim_rel`` on the locale's stored background
        (``derived``: :func:`mining.core.background.cosine_for`), else ``min_sim``."""
        from mining.core.background import cosine_for

        if locale in self.min_sim_by_locale:
            return replace(self, min_sim=float(self.min_sim_by_locale[locale]))
        sim = cosine_for(derived, "cluster_min_sim", self.min_sim_rel, self.min_sim)
        return self if sim is None else replace(self, min_sim=sim)


@dataclass(frozen=True)
class AggregationConfig:
    prior: float
    min_top_share: float
    min_events: int
    min_defect_rate: float
    min_confidence: float
    variant_min_sim: float
    variant_min_events: int
    credible_quantile: float
    calibration: str
    logs_check: bool = True            # confident-learning check of labels (mining/core/confident_learning.py)
    logs_check_max_texts: int = 4000   # friction-free texts fitted on per locale (seeded sample)
    logs_check_min_texts: int = 100    # fewer → the locale is not checked (named in labels/ and stats)
    logs_check_folds: int = 5          # out-of-fold folds for cleanlab's per-class thresholds
    logs_check_seed: int = 13          # sample and fold seed
    variant_min_sim_rel: float = 0.85  # variant gate as a cosine relative to the locale's background
    variant_min_sim_by_locale: dict[str, float] = field(default_factory=dict)  # locale → variant_min_sim
    min_events_by_locale: dict[str, int] = field(default_factory=dict)  # locale → min_events
    fitted_calibration: Any = field(init=False, repr=False, compare=False)  # mining.core.calibration.Calibration

    def __post_init__(self):
        from mining.core.calibration import load_calibration

        _check(self.prior > 0, "aggregation.prior", self.prior, "> 0")
        for k, lo in (("min_top_share", 0), ("min_defect_rate", 0), ("min_confidence", 0),
                      ("variant_min_sim", -1), ("variant_min_sim_rel", -1)):
            _check(lo <= getattr(self, k) <= 1, f"aggregation.{k}", getattr(self, k), f"in [{lo}, 1]")
        _check(0 < self.credible_quantile < 1, "aggregation.credible_quantile", self.credible_quantile,
               "in (0, 1)")
        _check_by_locale(self.variant_min_sim_by_locale, "aggregation.variant_min_sim_by_locale", -1, 1)
        _check(isinstance(self.logs_check, bool), "aggregation.logs_check", self.logs_check, "true or false")
        for k, low in (("logs_check_max_texts", 2), ("logs_check_min_texts", 2), ("logs_check_folds", 2),
                       ("min_events", 1), ("variant_min_events", 1),   # min events 0: a text without events passes
                       ("logs_check_seed", 0)):
            v = getattr(self, k)
            _check(isinstance(v, int) and not isinstance(v, bool) and v >= low, f"aggregation.{k}", v,
                   f"an integer >= {low}")
        for locale, n in self.min_events_by_locale.items():
            _check(isinstance(n, int) and not isinstance(n, bool) and n >= 1,
                   f"aggregation.min_events_by_locale.{locale}", n, "an integer >= 1")
        object.__setattr__(self, "fitted_calibration", load_calibration(self.calibration or None))

    def for_locale(self, locale: str, derived: Mapping | None = None) -> "AggregationConfig":
        """This config with ``variant_min_sim`` and ``min_events`` of ``locale``: its entries
        of ``variant_min_sim_by_locale`` / ``min_events_by_locale`` (overrides), else for
        ``variant_min_sim`` the run's own at ``variant_min_sim_rel`` on the locale's stored
        background (``derived``, its entry of :func:`mining.core.background.read_derived`:
        :func:`mining.core.background.cosine_for`), else the global ones."""
        from mining.core.background import cosine_for

        sim = cosine_for(derived, "variant_min_sim", self.variant_min_sim_rel, self.variant_min_sim)
        sim = float(self.variant_min_sim_by_locale.get(locale, self.variant_min_sim if sim is None else sim))
        events = int(self.min_events_by_locale.get(locale, self.min_events))
        if sim == self.variant_min_sim and events == self.min_events:
            return self
        return replace(self, variant_min_sim=sim, min_events=events)


#: ``export.label_retention`` values (mining/io/retention.py).
RETENTION_POLICIES = ("until_contradicted", "window")


@dataclass(frozen=True)
class ExportConfig:
    dev_share: float
    split_seed: int
    label_retention: str

    def __post_init__(self):
        _check(0 <= self.dev_share <= 1, "export.dev_share", self.dev_share, "in [0, 1]")
        _check(self.label_retention in RETENTION_POLICIES, "export.label_retention", self.label_retention,
               " or ".join(repr(p) for p in RETENTION_POLICIES))


@dataclass(frozen=True)
class QualityConfig:
    min_rows: int
    max_row_change: float
    min_baseline_rows: int
    baseline: str

    def __post_init__(self):
        _check(self.min_rows >= 0, "quality.min_rows", self.min_rows, ">= 0")
        _check(self.max_row_change >= 0, "quality.max_row_change", self.max_row_change, ">= 0")
        _check(self.min_baseline_rows >= 1, "quality.min_baseline_rows", self.min_baseline_rows, ">= 1")


@dataclass(frozen=True)
class DPConfig:
    """``[privacy.dp]``: optional differential privacy of the released texts and counts
    (:mod:`mining.privacy.dp`). Off by default; the k-anonymity gate applies either way."""
    enabled: bool
    epsilon: float
    delta: float
    max_texts_per_user: int
    seed: int
    noise: str

    def __post_init__(self):   # types: _check_types
        _check(math.isfinite(self.epsilon) and self.epsilon > 0, "privacy.dp.epsilon", self.epsilon, "> 0")
        _check(0 < self.delta < 1, "privacy.dp.delta", self.delta, "in (0, 1)")
        _check(self.max_texts_per_user >= 1, "privacy.dp.max_texts_per_user", self.max_texts_per_user, ">= 1")
        _check(self.seed >= 0, "privacy.dp.seed", self.seed, ">= 0")
        _check(self.noise in ("keyed", "opendp"), "privacy.dp.noise", self.noise, "'keyed' or 'opendp'")


@dataclass(frozen=True)
class PrivacyConfig:
    min_users: int
    dp: DPConfig

    def __post_init__(self):
        _check(self.min_users >= 1, "privacy.min_users", self.min_users, ">= 1")
        if isinstance(self.dp, Mapping):
            object.__setattr__(self, "dp", DPConfig(**self.dp))


@dataclass(frozen=True)
class RunConfig:
    """Where a run reads and writes, which partitions, and every stage's settings.

    ``start_date``/``end_date`` are inclusive dt partitions (None = all found);
    ``locales`` empty = all locales (sorted, once each: the order given changes no output or version)."""
    logs: str
    out: str
    start_date: dt.date | None
    end_date: dt.date | None
    locales: tuple[str, ...]
    validation: ValidationConfig
    friction: FrictionConfig
    sessions: SessionsConfig
    rephrase: RephraseConfig
    embedding: EmbeddingConfig
    cluster: ClusterConfig
    aggregation: AggregationConfig
    privacy: PrivacyConfig
    export: ExportConfig
    quality: QualityConfig
    sections: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def __post_init__(self):
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ConfigError(f"start_date {self.start_date} is after end_date {self.end_date}")

    @property
    def cache_dir(self) -> str:
        return self.embedding.cache_root(self.out)

    def to_json(self) -> str:
        """Canonical JSON of every setting (sorted keys), for manifests and version hashes."""
        return json.dumps({**self.sections, "rephrase_model": self.rephrase.fitted.to_dict(),
                           "calibration": self.aggregation.fitted_calibration.to_dict()},
                          sort_keys=True, default=str)


SECTIONS = {"validation": ValidationConfig, "friction": FrictionConfig, "sessions": SessionsConfig,
            "rephrase": RephraseConfig,
            "embedding": EmbeddingConfig, "cluster": ClusterConfig,
            "aggregation": AggregationConfig, "privacy": PrivacyConfig, "export": ExportConfig,
            "quality": QualityConfig}


# dataclass field type (as written) → accepted Python types, and the rule in the message
_TYPES = {"float": ((int, float), "a number"), "float | None": ((int, float), "a number"),
          "int": ((int,), "an integer"), "bool": ((bool,), "true or false"), "str": ((str,), "a string"),
          "tuple[str, ...]": ((list, tuple), "an array of strings"),
          "dict[str, tuple[str, ...]]": ((dict,), "a table of string arrays"),
          "dict[str, float]": ((dict,), "a table of numbers"), "dict[str, int]": ((dict,), "a table of integers"),
          "DPConfig": ((dict,), "a table")}


def _check_types(sections: dict, origins: Mapping[str, str]) -> None:
    """``ConfigError`` naming the key (and its origin) when a value has the wrong TOML type
    (``"abc"`` for an integer; booleans are not numbers)."""
    for name, cls in SECTIONS.items():
        _check(isinstance(sections.get(name), dict), name, sections.get(name),
               "a table" + (f" (from {origins[name]})" if name in origins else ""))
        _check_fields(cls, sections[name], name, origins)


def _check_fields(cls, table: dict, name: str, origins: Mapping[str, str]) -> None:
    for f in fields(cls):
        if f.init and f.name in table and f.type in _TYPES:
            value = table[f.name]
            types, rule = _TYPES[f.type]
            ok = isinstance(value, types) and (bool in types or not isinstance(value, bool))
            if ok and f.type.startswith("tuple"):
                ok = all(isinstance(v, str) for v in value)
            elif ok and f.type == "dict[str, tuple[str, ...]]":     # a string would split into characters
                ok = all(isinstance(v, (list, tuple)) and all(isinstance(w, str) for w in v) for v in value.values())
            elif ok and f.type.startswith("float"):    # NaN and inf pass some range checks
                ok = math.isfinite(value)
            origin = origins.get(f"{name}.{f.name}")
            _check(ok, f"{name}.{f.name}", value, rule + (f" (from {origin})" if origin else ""))
            if f.type == "DPConfig":
                _check_fields(DPConfig, value, f"{name}.{f.name}", origins)


def resolve_sections(config_file: str | None = None, overrides: dict | Sequence[Layer] | None = None,
                     environ: Mapping[str, str] | None = None) -> tuple[dict, dict[str, str]]:
    """Merge the layers of the module docstring: defaults ← ``config_file`` (default
    ``environ["MINING_CONFIG"]``) ← ``MINING__*`` variables of ``environ`` ← ``overrides``
    (one dict, or (origin, dict) layers applied in order).

    Returns (sections, origins): the merged nested dict, and for every value set above the
    defaults its dotted key → origin (``"file my.toml"``, ``"env MINING__X__Y"``, ``"--set"``).
    Raises ``ConfigError`` for unknown keys (naming the key and its origin), wrong value
    types, an unparsable or a missing config file (a configuration error, exit 2)."""
    environ, layers = env.environ() if environ is None else environ, []
    config_file = config_file or environ.get(CONFIG_ENV) or None
    if config_file:
        try:   # a missing, unreadable or unparsable file: a configuration error (exit 2)
            layers.append((f"file {config_file}", tomllib.loads(Path(config_file).read_text())))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as e:
            raise ConfigError(f"config file {config_file} (--config or ${CONFIG_ENV}): {e}") from None
    layers += env_layers(environ)
    layers += [("override", overrides)] if isinstance(overrides, dict) else list(overrides or ())
    sections = tomllib.loads(DEFAULTS_PATH.read_text())
    origins: dict[str, str] = {}
    for origin, values in layers:
        try:
            sections = merge_layer(sections, values, "", origins, origin)
        except ConfigError as e:
            raise ConfigError(f"{e} (from {origin})") from None
    _check_types(sections, origins)
    return sections, origins


def build_sections(sections: dict) -> dict[str, Any]:
    """{section: validated frozen dataclass} of merged ``sections`` (``ConfigError`` naming a
    key whose value is out of range)."""
    return {name: cls(**sections[name]) for name, cls in SECTIONS.items()}


def load_config(logs: str, out: str, *, config_file: str | None = None,
                start_date: dt.date | None = None, end_date: dt.date | None = None,
                locales: tuple[str, ...] = (), overrides: dict | Sequence[Layer] | None = None,
                environ: Mapping[str, str] | None = None) -> RunConfig:
    """Build a :class:`RunConfig` from the layers of :func:`resolve_sections` (defaults, a
    TOML file, ``MINING__*`` variables of ``environ``, ``overrides``); logs the file used
    and each value the environment set.

    Raises ``ConfigError`` for unknown keys, bad values or a missing config file."""
    sections, origins = resolve_sections(config_file, overrides, environ)
    for origin in sorted({o for o in origins.values() if o.startswith("file ")}):
        log.info("config: %s", origin)
    for key, origin in sorted(origins.items()):
        if origin.startswith("env "):
            log.info("config: %s from %s", key, origin)
    return RunConfig(logs=str(logs), out=str(out), start_date=start_date, end_date=end_date,
                     locales=tuple(sorted(set(locales))), sections=sections, **build_sections(sections))
