"""Owner-only, atomic file writes: every file under LEADSCORE_HOME is created this way."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

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


def stage(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write a 0600 temp file beside ``path`` with ``write`` and fsync it; returns the temp path (see commit)."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def commit(staged: list[tuple[Path, Path]]) -> None:
    """Move staged temp files onto their targets, then fsync their folders; removes the temps on failure."""
    try:
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    for d in {target.parent for _, target in staged}:
        _fsync_dir(d)


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
