"""Logging for the CLI and the spark-submit jobs: every line carries the run id.

One run id per process (``uuid4().hex[:12]``), or the one inherited through
``$MINING_RUN_ID``: :func:`setup_logging` exports it there, so processes started from this
one (spark-submit, the local Spark JVM and its Python workers) log under the same id, and
an orchestrator that sets ``MINING_RUN_ID`` ties its tasks' logs together.

Formats (``$MINING_LOG_FORMAT``):

- ``text`` (default): ``%(asctime)s %(levelname)s run=%(run_id)s %(name)s: %(message)s``
- ``json``: one JSON object per line with ``ts`` (ISO 8601 UTC, milliseconds), ``level``,
  ``logger``, ``run_id``, ``msg``, and ``exc`` (the formatted traceback) when there is one.

Only the stdlib is needed; :func:`stage_progress` uses tqdm when it is importable.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from typing import TextIO
from mining import env

RUN_ID_ENV = env.RUN_ID_ENV
FORMAT_ENV = env.LOG_FORMAT_ENV
TEXT_FORMAT = "%(asctime)s %(levelname)s run=%(run_id)s %(name)s: %(message)s"
FORMATS = ("text", "json")

_run_id: str | None = None


def new_run_id() -> str:
    """12 random hex digits (``uuid4``): not derived from inputs, only for telling runs apart."""
    return uuid.uuid4().hex[:12]


def current_run_id() -> str:
    """The run id of this process: the one :func:`setup_logging` chose, else
    ``$MINING_RUN_ID``, else a new one (kept for the rest of the process)."""
    global _run_id
    if _run_id is None:
        _run_id = env.run_id() or new_run_id()
    return _run_id


class _RunIdMixin:
    """Gives every record a ``run_id`` attribute (unless a caller set one via ``extra``).

    On the formatter, not on a handler filter, so handlers that copy only the formatter
    (tqdm's ``logging_redirect_tqdm``) still print it."""
    run_id: str

    def _stamp(self, record: logging.LogRecord) -> None:
        if not getattr(record, "run_id", None):
            record.run_id = self.run_id


class TextFormatter(_RunIdMixin, logging.Formatter):
    """:data:`TEXT_FORMAT` with the run id."""

    def __init__(self, run_id: str):
        super().__init__(TEXT_FORMAT)
        self.run_id = run_id

    def format(self, record: logging.LogRecord) -> str:
        self._stamp(record)
        return super().format(record)


class JsonFormatter(_RunIdMixin, logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``run_id``, ``msg`` [, ``exc``].
    Non-ASCII text is written as is (UTF-8)."""

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id

    def format(self, record: logging.LogRecord) -> str:
        self._stamp(record)
        ts = dt.datetime.fromtimestamp(record.created, dt.UTC)
        obj = {"ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
               "level": record.levelname, "logger": record.name, "run_id": record.run_id,
               "msg": record.getMessage()}
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False, default=str)


def setup_logging(verbose: bool = False, *, run_id: str | None = None, fmt: str | None = None,
                  stream: TextIO | None = None) -> str:
    """Log to ``stream`` (default: the current ``sys.stderr``) at INFO, DEBUG when ``verbose``.

    ``run_id``: default :func:`current_run_id`; exported as ``$MINING_RUN_ID``.
    ``fmt``: ``"text"`` | ``"json"``, default ``$MINING_LOG_FORMAT`` or text (an unknown
    value falls back to text with a warning). Replaces the handler a previous call installed
    and leaves other handlers alone. py4j is capped at WARNING. Returns the run id."""
    global _run_id
    _run_id = run_id or current_run_id()
    env.export_run_id(_run_id)
    fmt = (fmt or env.log_format() or "text").strip().lower()
    bad_format = fmt not in FORMATS
    formatter = JsonFormatter(_run_id) if fmt == "json" else TextFormatter(_run_id)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler._mining = True  # type: ignore[attr-defined]  # marks the handler a later call replaces
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_mining", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    if bad_format:
        logging.getLogger(__name__).warning("%s=%r: expected one of %s; using text", FORMAT_ENV, fmt,
                                            "|".join(FORMATS))
    return _run_id


class _NoProgress:
    def start(self, name: str) -> None:
        pass

    def done(self) -> None:
        pass


class _TqdmProgress:
    def __init__(self, bar):
        self.bar = bar

    def start(self, name: str) -> None:
        self.bar.set_description_str(name)

    def done(self) -> None:
        self.bar.update(1)


@contextlib.contextmanager
def stage_progress(total: int, enabled: bool | None = None) -> Iterator[_NoProgress | _TqdmProgress]:
    """A progress bar over ``total`` pipeline stages on stderr, as an object with
    ``start(name)`` and ``done()``; a no-op object when disabled or tqdm is missing.

    ``enabled`` default: stderr is a terminal (never in Airflow or under spark-submit from
    a scheduler). While the bar shows, root-logger console lines are written above it."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    try:
        if not enabled:
            raise ImportError
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm
    except ImportError:
        yield _NoProgress()
        return
    with logging_redirect_tqdm(), tqdm(total=total, unit="stage", file=sys.stderr, leave=True,
                                       bar_format="{desc:<18} {bar} {n_fmt}/{total_fmt} stages "
                                                  "[{elapsed}]") as bar:
        yield _TqdmProgress(bar)
