"""The pages of the reports plugin: which report files exist, and the HTML of the index and of the error pages.

Rendered with Jinja2 (autoescape on) from ``templates/`` beside this module. The pages name report files only, never a
folder of the server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

REPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.html$")
_WEEKLY = re.compile(r"^weekly_(\d{8})\.html$")
_TEMPLATES = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class ReportLink:
    """One report in the index.

    Attributes:
        name: file name (also the link, relative to the index).
        label: what the index shows, e.g. ``Week of 2025-01-12``.
        status: the week's monitoring status (``ok``, ``warning``, ``failed``) or "" when unknown or not weekly.
        modified: local time the file was last written, ``YYYY-MM-DD HH:MM``.
    """

    name: str
    label: str
    status: str
    modified: str


def list_reports(reports_dir: Path) -> tuple[list[Path], list[Path]]:
    """(weekly reports newest first, other reports by name) among the report files of ``reports_dir``.

    A missing folder holds no report.
    """
    if not reports_dir.is_dir():
        return [], []
    files = [p for p in reports_dir.iterdir() if p.is_file() and REPORT_NAME.match(p.name)]
    weekly = sorted((p for p in files if _WEEKLY.match(p.name)), key=lambda p: p.name, reverse=True)
    other = sorted((p for p in files if not _WEEKLY.match(p.name)), key=lambda p: p.name)
    return weekly, other


def _statuses(reports_dir: Path) -> dict[str, str]:
    path = reports_dir / "history.parquet"
    if not path.is_file():
        return {}
    import pandas as pd

    frame = pd.read_parquet(path, columns=["scored_on", "status"])
    return {str(d).replace("-", ""): str(s) for d, s in zip(frame["scored_on"], frame["status"], strict=True)}


def _link(path: Path, statuses: dict[str, str]) -> ReportLink:
    match = _WEEKLY.match(path.name)
    label, status = path.name, ""
    if match:
        d = match.group(1)
        label, status = f"Week of {d[:4]}-{d[4:6]}-{d[6:]}", statuses.get(d, "")
    modified = datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    return ReportLink(name=path.name, label=label, status=status, modified=modified)


@cache
def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **values: object) -> str:
    """Render one template of ``templates/`` with autoescaping (values are escaped unless marked safe)."""
    return _environment().get_template(template).render(**values)


def index_html(reports_dir: Path, user: str = "") -> str:
    """The index page: weekly reports (newest first, with their status) and the other reports.

    Args:
        reports_dir: the folder holding the reports (never shown on the page).
        user: the signed-in user's name, shown in the header; "" shows none.
    """
    weekly, other = list_reports(reports_dir)
    statuses = _statuses(reports_dir)
    return render(
        "reports_index.html",
        weekly=[_link(p, statuses) for p in weekly],
        other=[_link(p, statuses) for p in other],
        user=user,
    )


def error_html(status: int, title: str, detail: str, login_url: str = "") -> str:
    """A small error page (e.g. 401 with a link to the login page, 403, 404)."""
    return render("reports_error.html", status=status, title=title, detail=detail, login_url=login_url)
