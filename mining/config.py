"""Layered configuration: ``mining/defaults.toml`` ← ``--config FILE`` ← flags / ``--set``.

Every value has exactly one default, in ``defaults.toml``. Sections become frozen
dataclasses that validate their ranges in ``__post_init__`` (``ValueError`` on a bad
value, naming the key).
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")


def _check(cond: bool, key: str, value: Any, rule: str) -> None:
    if not cond:
        raise ValueError(f"config {key}={value!r}: must be {rule}")


@dataclass(frozen=True)
class ValidationConfig:
    max_reject_share: float
    max_utterance_chars: int
    max_future_skew_s: float

    def __post_init__(self):
        _check(0 <= self.max_reject_share <= 1, "validation.max_reject_share", self.max_reject_share, "in [0, 1]")
        _check(self.max_utterance_chars > 0, "validation.max_utterance_chars", self.max_utterance_chars, "> 0")


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
        from mining.text import normalize

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
    """``model`` is the fitted scoring model (:mod:`mining.rephrase_model`): "" = the
    packaged file. ``threshold`` is the model file's unless the config sets one."""
    max_gap_s: float
    max_turn_distance: int
    char_ngram: int
    model: str
    threshold: float | None = None
    fitted: Any = field(init=False, repr=False, compare=False)  # the loaded RephraseModel

    def __post_init__(self):
        from mining.rephrase_model import load_model

        _check(self.max_gap_s > 0, "rephrase.max_gap_s", self.max_gap_s, "> 0")
        _check(self.max_turn_distance >= 1, "rephrase.max_turn_distance", self.max_turn_distance, ">= 1")
        _check(self.char_ngram >= 1, "rephrase.char_ngram", self.char_ngram, ">= 1")
        object.__setattr__(self, "fitted", load_model(self.model or None))
        if self.threshold is None:
            object.__setattr__(self, "threshold", self.fitted.threshold)
        _check(0 <= self.threshold <= 1, "rephrase.threshold", self.threshold, "in [0, 1]")


@dataclass(frozen=True)
class EmbeddingConfig:
    model_path: str
    model_id: str
    languages: tuple[str, ...]
    multilingual: str
    batch_size: int
    device: str
    cache_dir: str

    def __post_init__(self):
        from mining.encoders import MINILM_MODEL_ID, MULTILINGUAL_MODEL_IDS

        object.__setattr__(self, "languages", tuple(lang.lower() for lang in self.languages))
        if self.model_path and self.model_id == MINILM_MODEL_ID:
            # the cache key must name the weights: a custom folder never reuses MiniLM vectors
            object.__setattr__(self, "model_id", Path(self.model_path).name)
        _check(self.multilingual in ("", *MULTILINGUAL_MODEL_IDS), "embedding.multilingual", self.multilingual,
               " or ".join(repr(b) for b in ("", *MULTILINGUAL_MODEL_IDS)))
        _check(self.batch_size > 0, "embedding.batch_size", self.batch_size, "> 0")
        _check(self.device in ("auto", "cpu", "cuda"), "embedding.device", self.device, "auto|cpu|cuda")


@dataclass(frozen=True)
class ClusterConfig:
    k: int
    min_sim: float
    max_cluster_size: int
    exact_max_n: int
    ivf_nprobe: int
    max_task_texts: int
    seed: int

    def __post_init__(self):
        _check(self.k >= 1, "cluster.k", self.k, ">= 1")
        _check(-1 <= self.min_sim <= 1, "cluster.min_sim", self.min_sim, "in [-1, 1]")
        _check(self.max_cluster_size >= 2, "cluster.max_cluster_size", self.max_cluster_size, ">= 2")
        _check(self.ivf_nprobe >= 1, "cluster.ivf_nprobe", self.ivf_nprobe, ">= 1")
        _check(self.max_task_texts >= 1000, "cluster.max_task_texts", self.max_task_texts, ">= 1000")


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
    fitted_calibration: Any = field(init=False, repr=False, compare=False)  # mining.calibration.Calibration

    def __post_init__(self):
        from mining.calibration import load_calibration

        _check(self.prior > 0, "aggregation.prior", self.prior, "> 0")
        for k in ("min_top_share", "min_defect_rate", "min_confidence"):
            _check(0 <= getattr(self, k) <= 1, f"aggregation.{k}", getattr(self, k), "in [0, 1]")
        _check(0 < self.credible_quantile < 1, "aggregation.credible_quantile", self.credible_quantile,
               "in (0, 1)")
        object.__setattr__(self, "fitted_calibration", load_calibration(self.calibration or None))


@dataclass(frozen=True)
class ExportConfig:
    dev_share: float
    split_seed: int

    def __post_init__(self):
        _check(0 <= self.dev_share <= 1, "export.dev_share", self.dev_share, "in [0, 1]")


@dataclass(frozen=True)
class PrivacyConfig:
    min_users: int

    def __post_init__(self):
        _check(self.min_users >= 1, "privacy.min_users", self.min_users, ">= 1")


@dataclass(frozen=True)
class RunConfig:
    """Where a run reads and writes, which partitions, and every stage's settings.

    ``start_date``/``end_date`` are inclusive dt partitions (None = all found);
    ``locales`` empty = all locales."""
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
    sections: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def __post_init__(self):
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ValueError(f"start_date {self.start_date} is after end_date {self.end_date}")

    @property
    def cache_dir(self) -> str:
        return self.embedding.cache_dir or str(Path(self.out) / "embedding_cache")

    def to_json(self) -> str:
        """Canonical JSON of every setting (sorted keys), for manifests and version hashes."""
        return json.dumps({**self.sections, "rephrase_model": self.rephrase.fitted.to_dict(),
                           "calibration": self.aggregation.fitted_calibration.to_dict()},
                          sort_keys=True, default=str)


SECTIONS = {"validation": ValidationConfig, "friction": FrictionConfig, "sessions": SessionsConfig,
            "rephrase": RephraseConfig,
            "embedding": EmbeddingConfig, "cluster": ClusterConfig,
            "aggregation": AggregationConfig, "privacy": PrivacyConfig, "export": ExportConfig}


# Keys without a default in defaults.toml (their default comes from elsewhere, see the
# section's dataclass) that a config file or --set may still set.
OPTIONAL_KEYS = {"rephrase.threshold"}
# Tables whose keys are data (languages), not settings: an override replaces them per key.
OPEN_TABLES = {"friction.cues"}


def _merge(base: dict, override: dict, where: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in out and f"{where}{key}" not in OPTIONAL_KEYS and where.rstrip(".") not in OPEN_TABLES:
            raise ValueError(f"unknown config key {where}{key}")
        if key in out and isinstance(out[key], dict):
            out[key] = _merge(out[key], value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def parse_set(items: list[str]) -> dict:
    """``["rephrase.threshold=0.6", ...]`` → nested dict; values parsed as TOML scalars."""
    nested: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or "." not in key:
            raise ValueError(f"--set expects section.key=value, got {item!r}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        section, name = key.split(".", 1)
        nested.setdefault(section, {})[name] = value
    return nested


def load_config(logs: str, out: str, *, config_file: str | None = None,
                start_date: dt.date | None = None, end_date: dt.date | None = None,
                locales: tuple[str, ...] = (), overrides: dict | None = None) -> RunConfig:
    """Build a :class:`RunConfig` from defaults, an optional TOML file and overrides.

    Raises ``ValueError`` for unknown keys or out-of-range values, ``FileNotFoundError``
    for a missing config file."""
    sections = tomllib.loads(DEFAULTS_PATH.read_text())
    if config_file:
        sections = _merge(sections, tomllib.loads(Path(config_file).read_text()), "")
    sections = _merge(sections, overrides or {}, "")
    built = {name: cls(**sections[name]) for name, cls in SECTIONS.items()}
    return RunConfig(logs=str(logs), out=str(out), start_date=start_date, end_date=end_date,
                     locales=tuple(locales), sections=sections, **built)
