"""Owner-only, atomic file writes: every file under LEADSCORE_HOME is created this way."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from leadscore import faults

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` and missing parents as 0700 folders, and make ``path`` itself 0700; returns it.

    Each folder is chmod-ed after mkdir because mkdir's mode is filtered by the umask.
    """
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=DIR_MODE)
    with contextlib.suppress(PermissionError):
        os.chmod(path, DIR_MODE)
    for d in missing[1:]:
        with contextlib.suppress(PermissionError):
            os.chmod(d, DIR_MODE)
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_dead_temps(path: Path) -> list[Path]:
    """Remove temp files of ``path`` left by processes that died while writing it (see :func:`stage`)."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\..*\.tmp$")
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path.parent):
            m = pattern.match(entry.name)
            if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
                Path(entry.path).unlink(missing_ok=True)
                removed.append(Path(entry.path))
    return removed


def stage(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write a 0600 temp file beside ``path`` with ``write`` and fsync it; returns the temp path (see commit).

    The temp name carries the writer's PID, so the temps of a writer that was killed are removed by the next write
    of the same file (a live writer's temp is left alone).
    """
    private_dir(path.parent)
    remove_dead_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def commit(staged: list[tuple[Path, Path]], journal: Path | None = None, name: str = "files.commit") -> None:
    """Move staged temp files onto their targets, then fsync their folders.

    Without ``journal``: the temps are removed on failure, and a crash between two renames leaves some targets new
    and some old. With ``journal``: the list of moves is first written (atomically) to that file, so the moves
    are all or nothing even across a crash: :func:`recover` completes them (redo log). On a failure the temps and the
    journal are kept for that recovery. ``name`` names the kill point ``<name>.between_replaces``.
    """
    if journal is not None:
        entries = [[str(tmp), str(target)] for tmp, target in staged]
        _replace_into(journal, json.dumps(entries).encode("utf-8"))
    try:
        for i, (tmp, target) in enumerate(staged):
            os.replace(tmp, target)
            if i == 0 and len(staged) > 1:
                faults.point(f"{name}.between_replaces")
    finally:
        if journal is None:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
    for d in {target.parent for _, target in staged}:
        _fsync_dir(d)
    if journal is not None:
        journal.unlink(missing_ok=True)
        _fsync_dir(journal.parent)


def _replace_into(path: Path, data: bytes) -> None:
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    _fsync_dir(path.parent)


def recover(journal: Path) -> bool:
    """Complete the moves of a commit that stopped part-way (its ``journal`` still exists); True when it did.

    Every temp the journal lists was complete and fsynced before the journal was written, so moving the ones still
    there finishes the commit exactly as it would have finished. Safe to call while the committing process is still
    moving (a temp it already moved is skipped).
    """
    try:
        entries = json.loads(journal.read_bytes())
    except FileNotFoundError:
        return False
    for tmp, target in entries:
        with contextlib.suppress(FileNotFoundError):
            os.replace(tmp, target)
    for d in {Path(target).parent for _, target in entries}:
        _fsync_dir(d)
    journal.unlink(missing_ok=True)
    _fsync_dir(journal.parent)
    return True


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write ``path`` atomically: a 0600 temp file in the same folder, fsync, rename over the target.

    A reader sees either the old file or the new one, never a half-written one. Returns ``path``.
    """
    commit([(stage(path, write), path)])
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """``atomic_write`` of a bytes value."""
    atomic_write(path, lambda fh: fh.write(data))


def owner_only_umask() -> int:
    """Make every file this process creates from now on owner-only (umask 077); returns the previous umask.

    Called at the start of every task and command, so that files written by libraries (MLflow's store and artifacts,
    Airflow logs of our tasks, matplotlib output) are as private as the ones LeadScore writes itself.
    """
    return os.umask(0o077)


def restrict_tree(root: Path) -> int:
    """chmod every file under ``root`` to 0600 and every folder to 0700; returns how many modes changed.

    For trees other libraries fill with copies that keep their source's mode (MLflow copies our code into each
    logged model with ``shutil.copy2``), where the umask does not apply.
    """
    changed = 0
    if not root.exists():
        return 0
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        want = DIR_MODE if path.is_dir() else FILE_MODE
        if path.stat().st_mode & 0o777 != want:
            os.chmod(path, want)
            changed += 1
    return changed
