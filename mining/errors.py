"""The failures a run can end with, and the one table of exit codes.

Every command (``mining ...``), every job (``jobs/<stage>.py`` under spark-submit) and
the DAGs (``dags/mining_stages.py``: which codes a retry cannot fix) read
:data:`EXIT_CODES` from here; ``tests/stages/test_registry.py`` and ``tests/dags/test_dags.py`` check that they agree.
Standard library only: the DAG processor imports this module at parse time.
"""
from __future__ import annotations

import argparse

EXIT_OK = 0
EXIT_ERROR = 1          # unexpected error: one line on stderr, the traceback with -v
EXIT_CONFIG = 2         # bad arguments (argparse's own code) or configuration
EXIT_INPUT = 3          # input problem: no partitions, rejects over the limit, missing stage or
                        # version, data-quality gate failed
EXIT_PRIVACY = 4        # privacy precondition: no pseudonymization key
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it

#: exit code → what it means to an operator.
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_ERROR: "unexpected error (one line on stderr; -v logs the traceback)",
    EXIT_CONFIG: "bad arguments or configuration (unknown key, value out of range)",
    EXIT_INPUT: "input problem: no log partitions, too many rejects, missing upstream "
                "stage (or one from another run) or dataset version, failed data-quality gate",
    EXIT_PRIVACY: "privacy precondition: no pseudonymization key (MINING_PSEUDONYM_KEY)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}

#: Codes that a retry of the same task cannot fix: the scheduler fails the task at once.
NON_RETRYABLE_EXIT_CODES: tuple[int, ...] = (EXIT_CONFIG, EXIT_INPUT, EXIT_PRIVACY)


class RejectShareExceeded(RuntimeError):
    """More rows were rejected than ``validation.max_reject_share`` allows (exit 3)."""


class NoInputPartitions(FileNotFoundError):
    """No ``dt=`` partition with files in the requested date range (exit 3)."""


class BadPartitionName(FileNotFoundError):
    """A ``dt=`` folder of the logs whose name is no calendar date, e.g. ``dt=2026-02-30``
    (exit 3: the input needs fixing, a retry cannot help)."""


class StageOutputMismatch(FileNotFoundError):
    """Stage outputs of one ``OUT`` come from different ``detect_rephrases`` runs (their
    ``lineage`` stamps differ, :func:`mining.io.storage.stage_lineage`): the output of this
    run that the stage needs is not there (exit 3)."""


class DatasetNotFound(Exception):
    """The path holds no complete, readable dataset: missing, never exported, incomplete, or
    not a training set (a malformed line, missing columns: ``mining merge``) (exit 3)."""


class QualityGateFailed(RuntimeError):
    """A new dataset version failed the data-quality gate; nothing was published (exit 3)."""


class PrivacyError(RuntimeError):
    """A privacy precondition failed: missing key, demo key outside demo mode (exit 4)."""


class AuditError(RuntimeError):
    """An audit cannot give what was asked (``mining audit sample``, ``mining fit-calibration
    --audit``): a run without candidate labels or with fewer than asked, a reviewed CSV
    without the needed columns or with too few reviewed rows (exit 3)."""


class ConfigError(ValueError):
    """A bad argument or configuration value: an unknown key, a value out of range, an unknown
    corpus, locale or backend name, an output folder that must not exist yet (exit 2: a retry
    cannot fix it). A ``ValueError``, so callers that catch ``ValueError`` still catch it.
    A plain ``ValueError`` (a bug, a data or I/O failure: numpy, pandas, pyarrow, a truncated
    manifest) is no configuration error: it takes the unexpected-error path (exit 1, retried)."""


#: (exit code, kind named on stderr, exception types), first match wins. ``ConfigError``
#: covers configuration validation (``mining.config``) and bad arguments; ``FileNotFoundError``
#: a missing upstream stage (``mining.io.storage.require_stage``).
KNOWN_FAILURES: tuple[tuple[int, str, tuple[type[BaseException], ...]], ...] = (
    (EXIT_CONFIG, "configuration", (ConfigError, argparse.ArgumentTypeError)),
    (EXIT_INPUT, "input", (NoInputPartitions, RejectShareExceeded, FileNotFoundError, DatasetNotFound,
                           QualityGateFailed, AuditError)),
    (EXIT_PRIVACY, "privacy", (PrivacyError,)),
)


def classify(error: BaseException) -> tuple[int, str] | None:
    """``(exit code, kind)`` of a known failure (:data:`KNOWN_FAILURES`), else None (exit 1)."""
    for code, kind, types in KNOWN_FAILURES:
        if isinstance(error, types):
            return code, kind
    return None
