"""Owner-only, atomic file writes: every file under LEADSCORE_HOME is created this way."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by the owner only; returns it."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    with contextlib.suppress(PermissionError):
        os.chmod(path, DIR_MODE)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temp file in the same folder, fsync, then rename over the target.

    A reader sees either the old file or the new one, never a half-written one. The file is mode 0600.
    """
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
