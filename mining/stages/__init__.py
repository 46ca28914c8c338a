"""The five stages of a night, in run order: the one registry that the pipeline runner
(:mod:`mining.stages.runner`), the CLI verbs, the spark-submit jobs (``jobs/<name>.py``) and
the Airflow DAGs (``dags/mining_stages.py``) all read.

Each stage is a module ``mining.stages.<name>`` with ``run(spark, cfg) -> stats``; its job
module, its Airflow task_id and its CLI verb (``-`` for ``_``) share the name. Standard
library only: the DAG processor imports this module at parse time, so it names the stage
modules without importing them (:func:`stage_fn` imports one when it runs).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from mining.errors import ConfigError


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline.

    :param name: snake_case stem of ``mining/stages/<name>.py``, ``jobs/<name>.py`` and the task_id.
    :param outputs: folders it writes under ``--out`` (``versions/<v>/`` for the export).
    :param summary: one line for ``mining --help`` and the DAG docs.
    :param encoder: holds a sentence encoder per Python worker (memory, GPU).
    :param index: holds a FAISS index per Python worker (memory, GPU).
    """

    name: str
    outputs: tuple[str, ...]
    summary: str
    encoder: bool = False
    index: bool = False

    @property
    def verb(self) -> str:
        """The CLI subcommand: ``detect-rephrases`` for ``detect_rephrases``."""
        return self.name.replace("_", "-")

    @property
    def gpu(self) -> bool:
        """Whether a GPU speeds it up (an encoder or a FAISS index): routed to GPU workers."""
        return self.encoder or self.index


STAGES: tuple[Stage, ...] = (
    # detect_rephrases embeds every distinct text of the night (the rephrase features need
    # the vectors; the cache makes embed_utterances a lookup): it holds the encoder.
    Stage("detect_rephrases", ("rejects", "turns", "rephrase_pairs"),
          "validate, pseudonymize, sessions, friction, scored rephrase pairs", encoder=True),
    Stage("embed_utterances", ("embeddings",),
          "embed each distinct utterance (cached across runs)", encoder=True),
    Stage("cluster_variants", ("clusters",),
          "FAISS kNN graph -> variant clusters per locale", index=True),
    Stage("aggregate_labels", ("labels",),
          "vote over users' rephrases -> labels with calibrated confidence"),
    Stage("export_dataset", ("versions", "latest"),
          "privacy gates -> versioned training set, publish OUT/latest"),
)
#: Stage names in run order.
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


def get(name: str) -> Stage:
    """The stage called ``name`` (``ConfigError`` naming the known ones otherwise)."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}")


def stage_fn(name: str) -> Callable[..., dict]:
    """``run(spark, cfg) -> stats`` of stage ``name``, imported on first use."""
    return importlib.import_module(f"mining.stages.{get(name).name}").run
