"""CLI glue for `python -m leadscore sandbox generate|serve`."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from leadscore.settings import Settings


def generate(leads: int, seed: int, out: Path, end: datetime | None) -> int:
    """Generate a sandbox Slate into ``out`` and print its summary; returns the exit code."""
    from leadscore.sandbox.generator import generate_command

    meta = generate_command(leads=leads, seed=seed, out=out, end=end)
    print(
        json.dumps(
            {k: meta[k] for k in meta if k in ("leads", "seed", "start", "end", "dirt_counts", "rates")},
            indent=2,
            default=str,
        )
    )
    print(f"sandbox written to {out}")
    return 0


def ensure_generated(data_dir: Path, leads: int, seed: int, end: datetime | None = None) -> bool:
    """Generate a sandbox into ``data_dir`` unless one is already there; True when it generated one."""
    if (data_dir / "meta.json").exists():
        return False
    from leadscore.sandbox.generator import generate_command

    generate_command(leads=leads, seed=seed, out=data_dir, end=end)
    return True


def serve(
    data_dir: Path,
    web_port: int,
    sftp_port: int,
    leads: int | None,
    settings: Settings,
    host: str = "127.0.0.1",
    advertise_host: str | None = None,
    key_order: str | None = None,
) -> int:
    """Serve the sandbox in the foreground (generating it first when the folder is empty) until Ctrl-C.

    ``key_order`` (``sqlserver`` or ``text``) defaults to the ``sandbox_key_order`` setting.
    """
    from leadscore.sandbox.serve import serve_command

    if ensure_generated(data_dir, leads or settings.sandbox_leads, settings.sandbox_seed):
        print(f"generated a sandbox Slate in {data_dir}")
    return serve_command(
        data_dir,
        web_port,
        sftp_port,
        host=host,
        advertise_host=advertise_host,
        key_order=key_order or settings.sandbox_key_order,
        timezone=settings.sandbox_zone,
    )
