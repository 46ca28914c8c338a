"""Atomic stage outputs: write to a staging folder, then commit by rename.

A stage's output folder ``OUT/<name>/`` is either absent, the previous complete output,
or the new complete output; never a half-written one. Each committed folder carries
``_stats.json`` (the stage's counts, reasons included) and Spark's ``_SUCCESS``; Spark and
pyarrow readers skip files whose names start with ``_``.

Crash safety (``bench/crash_trials.py`` kills ``mining run`` with SIGKILL in every stage):
a commit first fsyncs every file and folder of the staging folder, then renames it into
place and fsyncs the parent, so a committed name never points at data still in the page
cache only (power loss), and a kill leaves at most garbage under ``.staging/``. Replacing an
existing folder (a rerun, or a republished version that ``OUT/latest`` points at) swaps
the two atomically with ``renameat2(RENAME_EXCHANGE)`` where the file system has it (Linux
ext4, xfs, btrfs, tmpfs, overlayfs), so the name never goes missing, not even for an
instant; elsewhere the old folder is renamed aside first (missing for an instant).

Lineage: the stage outputs of one ``OUT`` must come from one ``detect_rephrases`` run (one
read of the logs with one configuration). That stage stamps its outputs with a ``lineage``
id (:func:`lineage_id`) in ``_stats.json``; each later stage checks that its inputs share
one (:func:`stage_lineage`) and stamps its own outputs with it, so a rerun of the first
stage on other logs (or a failed one that committed ``rejects/`` before failing) never
mixes with the later stages' older outputs: the next stage that reads both refuses with
:class:`mining.errors.StageOutputMismatch` (exit 3) naming the output to redo. Outputs
written before lineage stamps carry none and are not checked.

Leftovers of killed runs under ``.staging/`` are swept (:func:`sweep_staging`) whenever a new
staging folder is made beside them, once nothing under them has changed for
:data:`STALE_STAGING_S` seconds, so a live writer's folder is never touched.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import json
import logging
import os
import shutil
import uuid
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: Age (s) after which an entry of ``.staging/`` counts as the leftover of a killed run: 24 h
#: since anything under it last changed. A live writer adds files far more often, and a stage
#: task of the DAGs is killed after 6 h (``execution_timeout``).
STALE_STAGING_S = 24 * 3600


@contextlib.contextmanager
def removed_on_failure(staging: Path):
    """Context: when the block raises (or is interrupted), remove the staging folder
    ``staging`` before re-raising, so a failed or retried stage leaves no copy behind."""
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def staging_path(out: str | Path, name: str) -> Path:
    """A fresh staging folder ``OUT/.staging/<name>-<random>`` (not yet created). Leftovers
    of killed runs beside it are swept first (:func:`sweep_staging`)."""
    sweep_staging(out)
    return Path(out) / ".staging" / f"{name}-{uuid.uuid4().hex[:12]}"


def _last_change(path: Path) -> float:
    """Newest modification time (s since the epoch) of ``path`` and everything under it;
    links are not followed."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for folder, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
                except FileNotFoundError:
                    pass
    return newest


def sweep_staging(out: str | Path, *, older_than_s: float = STALE_STAGING_S, now: float | None = None) -> list[str]:
    """Remove the entries of ``OUT/.staging/`` in which nothing changed for ``older_than_s``
    seconds (default :data:`STALE_STAGING_S`): staging folders of runs killed before their
    commit, and old outputs a killed commit had set aside. Younger entries may belong to a
    running writer and are left alone. Returns the names removed (logged at INFO); never
    raises for an entry that vanishes or cannot be removed meanwhile."""
    staging = Path(out) / ".staging"
    now = time.time() if now is None else now
    removed: list[str] = []
    try:
        entries = sorted(staging.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        try:
            if now - _last_change(entry) < older_than_s:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue
        removed.append(entry.name)
    if removed:
        log.info("swept %d leftover staging entr%s of killed runs under %s (unchanged for %.0f h): %s",
                 len(removed), "y" if len(removed) == 1 else "ies", staging, older_than_s / 3600,
                 ", ".join(removed))
    return removed


def fsync_dir(path: str | Path) -> None:
    """fsync a folder, so the names created or renamed in it survive a power loss.
    A no-op where folders cannot be opened for reading (Windows)."""
    try:
        fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(root: str | Path) -> None:
    """fsync every regular file and folder under ``root`` (``root`` included; links are
    not followed). Files written by another process (Spark's JVM) are flushed as well."""
    root = Path(root)
    if root.is_file():
        _fsync_file(root)
        return
    for folder, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                _fsync_file(path)
        fsync_dir(folder)


def _fsync_file(path: str | Path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_renameat2 = None


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap the paths ``a`` and ``b`` (both must exist), with Linux
    ``renameat2(..., RENAME_EXCHANGE)``. False where it is not available (other systems,
    old glibc or kernels, file systems without it); ``OSError`` for any other failure."""
    global _renameat2
    if _renameat2 is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fn = libc.renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            fn.restype = ctypes.c_int
            _renameat2 = fn
        except (OSError, AttributeError):
            _renameat2 = False
    if _renameat2 is False:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), f"{a} <-> {b}")


def commit(staging: Path, final: Path, *, durable: bool = True) -> None:
    """Move ``staging`` to ``final``, replacing a previous output.

    ``durable``: fsync the staging folder's files and folders first, and the parent after.
    An existing ``final`` is swapped with ``staging`` atomically (:func:`_exchange`) and
    then deleted; without that system call it is renamed aside first, so ``final`` is
    missing for an instant at most (and put back when the second rename fails). Either way
    it never holds a mix of old and new files."""
    staging, final = Path(staging), Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if durable:
        fsync_tree(staging)
    if final.exists() or final.is_symlink():
        if final.is_dir() and not final.is_symlink() and staging.is_dir() and _exchange(staging, final):
            trash = staging                      # now holds the old output
        else:
            trash = final.parent / ".staging" / f"old-{final.name}-{uuid.uuid4().hex[:8]}"
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.replace(final, trash)
            try:
                os.replace(staging, final)
            except BaseException:                # interrupted between the renames: the old output
                os.replace(trash, final)         # goes back, so final is never left missing
                raise
        if durable:
            fsync_dir(final.parent)
        if trash.is_dir() and not trash.is_symlink():
            shutil.rmtree(trash, ignore_errors=True)
        else:
            trash.unlink(missing_ok=True)
        return
    os.replace(staging, final)
    if durable:
        fsync_dir(final.parent)


def replace_symlink(link: str | Path, target: str, *, durable: bool = True) -> None:
    """Point the symlink ``link`` at ``target`` atomically: a new link under a unique
    temporary name beside it, renamed over ``link``. Readers resolve the old target or
    the new one, never nothing."""
    link = Path(link)
    tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex[:8]}.tmp")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(link.parent)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`write_bytes`)."""
    return write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a temp file beside it, then ``os.replace``;
    readers see the old file or the new one. Creates the parent folder. The file is
    fsynced before the rename and the folder after it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return path


def write_json(path: Path, payload: dict) -> None:
    """Write JSON atomically (:func:`write_text`), sorted keys, UTF-8."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def read_toml(path: str | Path, what: str) -> dict:
    """The TOML file at ``path`` that a configuration key names (``what``: "calibration file
    (aggregation.calibration)"). :class:`mining.errors.ConfigError` (exit 2) when it is
    missing, not UTF-8 or no TOML: a wrong configured path is a configuration error."""
    import tomllib

    from mining.errors import ConfigError

    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a TOML {what}: {e}") from None
    except OSError as e:               # missing, a folder, unreadable: the configured path is wrong
        raise ConfigError(f"{path}: no such readable {what} ({type(e).__name__})") from None


def write_toml(path: str | Path, payload: dict, header: str = "") -> None:
    """Write ``header`` (comment lines) + ``payload`` as TOML atomically (:func:`write_text`)."""
    import tomli_w

    write_text(path, header + tomli_w.dumps(payload))


def write_parquet_stage(df, out: str | Path, name: str, stats, *, num_files: int | None = None) -> dict:
    """Write a Spark DataFrame as the stage output ``OUT/<name>/`` atomically.

    ``stats``: a dict, or a function of the staged DataFrame (read back from the staging
    folder, so counting does not recompute the plan) returning one; it is written as
    ``_stats.json`` inside the folder. ``num_files`` coalesces for small outputs.
    Returns the stats. On any failure the staging folder is removed before re-raising."""
    staging = staging_path(out, name)
    if num_files:
        df = df.coalesce(num_files)
    with removed_on_failure(staging):
        df.write.mode("error").parquet(str(staging))
        # the mark of a complete output (require_stage), also where a cluster writes none
        # (mapreduce.fileoutputcommitter.marksuccessfuljobs=false)
        (staging / "_SUCCESS").touch()
        if callable(stats):
            stats = stats(df.sparkSession.read.parquet(str(staging)))
        write_json(staging / "_stats.json", stats)
        commit(staging, Path(out) / name)
    return stats


def read_stats(out: str | Path, name: str) -> dict:
    """``OUT/<name>/_stats.json`` as a dict ({} when the stage has not run)."""
    path = Path(out) / name / "_stats.json"
    return json.loads(path.read_text()) if path.exists() else {}


def lineage_id(inputs: dict) -> str:
    """The ``lineage`` stamp of one ``detect_rephrases`` run: the first 16 hex digits of the
    SHA-256 of ``inputs`` as canonical JSON (sorted keys). ``inputs``: what decides the
    first stage's outputs (the logs' listing digest, partitions, locales, code version,
    configuration, a keyed hash of the pseudonymization key); JSON-serializable."""
    blob = json.dumps(inputs, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def stage_lineage(out: str | Path, names: list[str]) -> str | None:
    """The ``lineage`` that the committed outputs ``names`` of ``OUT`` share (from their
    ``_stats.json``), or None when none carries one (outputs from before lineage stamps).

    :raises mining.errors.StageOutputMismatch: two of them carry different lineages (they
        come from different ``detect_rephrases`` runs); the message names each output's
        lineage and the first output (in the order of ``names``: pass them in run order)
        that disagrees with ``names[0]``'s, from whose stage on the run is to be redone."""
    from mining.errors import StageOutputMismatch

    found = {n: read_stats(out, n).get("lineage") for n in names}
    known = {n: v for n, v in found.items() if v}
    if len(set(known.values())) > 1:
        first = next(iter(known))
        odd = [n for n, v in known.items() if v != known[first]]
        raise StageOutputMismatch(
            f"{Path(out)}: stage outputs come from different detect_rephrases runs ("
            + ", ".join(f"{n}/ {v}" for n, v in known.items())
            + f"); rerun the stages from the one that wrote {odd[0]}/ on (or `mining run`)")
    return next(iter(known.values()), None)


def require_stage(out: str | Path, name: str, produced_by: str) -> str:
    """Path of a committed stage output; ``FileNotFoundError`` naming the stage to run."""
    path = Path(out) / name
    if not (path / "_SUCCESS").exists():
        raise FileNotFoundError(f"{path} is missing: run {produced_by} first")
    return str(path)
