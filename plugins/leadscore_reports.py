"""Airflow 3 plugin: the LeadScore reports (weekly monitoring and training insight) inside the Airflow UI.

A small FastAPI app, mounted by the api-server under ``/leadscore-reports``, serves the HTML files of
``LEADSCORE_HOME/reports`` with an index page; an external view adds "LeadScore reports" to the UI's navigation and
shows that index in the UI (``url_route``). The reports hold aggregate metrics and charts only (no lead-level data);
like every plugin FastAPI app, these pages are not behind Airflow's login, so expose the api-server accordingly.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

URL_PREFIX = "/leadscore-reports"
_REPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.html$")
_WEEKLY = re.compile(r"^weekly_(\d{8})\.html$")


def default_reports_dir() -> Path:
    """``Settings.reports_dir`` of the current environment (``LEADSCORE_HOME``), resolved on each request."""
    from leadscore.settings import load_settings

    return load_settings().reports_dir


def list_reports(reports_dir: Path) -> tuple[list[Path], list[Path]]:
    """(weekly reports newest first, other reports by name) among the ``*.html`` files of ``reports_dir``."""
    if not reports_dir.is_dir():
        return [], []
    files = [p for p in reports_dir.iterdir() if p.is_file() and _REPORT_NAME.match(p.name)]
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


def index_html(reports_dir: Path) -> str:
    """The index page: weekly reports (newest first, with their status) and the other reports."""
    weekly, other = list_reports(reports_dir)
    status = _statuses(reports_dir)
    colors = {"ok": "#1b7837", "warning": "#b35806", "failed": "#b2182b"}

    def item(p: Path) -> str:
        m = _WEEKLY.match(p.name)
        label = p.name
        badge = ""
        if m:
            d = m.group(1)
            label = f"Week of {d[:4]}-{d[4:6]}-{d[6:]}"
            s = status.get(d)
            if s:
                badge = f' <span style="color:{colors.get(s, "#555")};font-weight:600">{html.escape(s)}</span>'
        stamp = datetime.fromtimestamp(p.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        name = html.escape(p.name, quote=True)
        return f'<li><a href="{name}">{html.escape(label)}</a>{badge} <small>({stamp})</small></li>'

    weekly_html = "".join(item(p) for p in weekly) or "<li>No weekly report yet: run lead_inference.</li>"
    other_html = "".join(item(p) for p in other) or "<li>None yet: run lead_training.</li>"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>LeadScore reports</title>'
        "<style>body{font-family:system-ui,sans-serif;margin:24px;color:#1a1a1a}li{margin:4px 0}</style></head>"
        "<body><h1>LeadScore reports</h1>"
        f"<p>Folder: <code>{html.escape(str(reports_dir))}</code></p>"
        f'<h2>Weekly monitoring</h2><ul id="weekly">{weekly_html}</ul>'
        f'<h2>Training and other reports</h2><ul id="other">{other_html}</ul></body></html>'
    )


def create_app(reports_dir: Path | Callable[[], Path] = default_reports_dir) -> FastAPI:
    """The reports app.

    Args:
        reports_dir: the folder to serve, or a function returning it (evaluated per request).
    Returns:
        A FastAPI app: ``/`` the index, ``/latest`` a redirect to the newest weekly report, ``/<name>.html`` a report.
    """
    folder = reports_dir if callable(reports_dir) else (lambda: Path(reports_dir))
    app = FastAPI(title="LeadScore reports", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(index_html(folder()))

    @app.get("/latest")
    def latest() -> RedirectResponse:
        weekly, _ = list_reports(folder())
        if not weekly:
            raise HTTPException(404, "no weekly report yet: run lead_inference first")
        return RedirectResponse(weekly[0].name)

    @app.get("/{name}")
    def report(name: str) -> FileResponse:
        if not _REPORT_NAME.match(name):
            raise HTTPException(404, f"{name!r} is not a report name")
        path = folder() / name
        if not path.is_file():
            raise HTTPException(404, f"no report {name!r}")
        return FileResponse(path, media_type="text/html; charset=utf-8")

    return app


app = create_app()


class LeadScoreReportsPlugin(AirflowPlugin):
    """Registers the reports app and its navigation entry."""

    name = "leadscore_reports"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [{"app": app, "url_prefix": URL_PREFIX, "name": "LeadScore reports"}]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "LeadScore reports",
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "url_route": "leadscore-reports",
        }
    ]
