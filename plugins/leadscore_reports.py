"""Airflow 3 plugin: the LeadScore reports (weekly monitoring and training insight) inside the Airflow UI.

A small FastAPI app, mounted by the api-server under ``/leadscore-reports``, serves the HTML files of
``LEADSCORE_HOME/reports`` with an index page; an external view adds "LeadScore reports" to the UI's navigation and
shows that index inside the UI (``url_route``).

Airflow 3 does not put plugin apps behind its login, so this app declares its own dependencies: every page needs a
user authenticated by Airflow's auth manager (the UI's ``_token`` session cookie, or ``Authorization: Bearer <JWT>``
from ``POST /auth/token``) who may read the runs of ``lead_inference`` and ``lead_training``, the DAGs that write
the reports. Otherwise the answer is 401 (with a link to the login page) or 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

URL_PREFIX = "/leadscore-reports"
# The DAGs whose output the reports show: reading their runs is what reading the reports requires.
REPORT_DAGS = ("lead_inference", "lead_training")
_TITLES = {401: "Log in to see the LeadScore reports", 403: "Not allowed", 404: "Not found"}


def default_reports_dir() -> Path:
    """``Settings.reports_dir`` of the current environment (``LEADSCORE_HOME``), resolved on each request."""
    from leadscore.settings import load_settings

    return load_settings().reports_dir


def _login_url(request: Request) -> str:
    from airflow.api_fastapi.app import get_auth_manager

    try:
        return get_auth_manager().get_url_login(next_url=str(request.url))
    except Exception:  # no auth manager (or one without a login page): the error page still explains itself
        return ""


def _error_page(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
    from fastapi.responses import HTMLResponse

    from leadscore.monitoring.pages import error_html

    status = exc.status_code
    denied = status == 403 and exc.detail == "Forbidden"  # the permission check; other 403s are bad tokens
    if denied:
        detail = (
            "Your Airflow user may not read the runs of " + " and ".join(REPORT_DAGS) + ": ask an Airflow admin for "
            "read access to them."
        )
    else:
        detail = str(exc.detail)
    login = _login_url(request) if status == 401 or (status == 403 and not denied) else ""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    html = error_html(status, _TITLES.get(status, "Error"), detail, login_url=login)
    return HTMLResponse(html, status_code=status, headers=headers)


def create_app(reports_dir: Path | Callable[[], Path] = default_reports_dir) -> FastAPI:
    """The reports app, behind Airflow's auth manager.

    Args:
        reports_dir: the folder to serve, or a function returning it (evaluated per request).
    Returns:
        A FastAPI app: ``/`` the index, ``/latest`` a redirect to the newest weekly report, ``/<name>.html`` a report.
        Every route needs read access to the runs of :data:`REPORT_DAGS` (401 unauthenticated, 403 without access).
    """
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from leadscore.monitoring.pages import REPORT_NAME, index_html, list_reports

    folder = reports_dir if callable(reports_dir) else (lambda: Path(reports_dir))
    access = [Depends(requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=d)) for d in REPORT_DAGS]
    app = FastAPI(title="LeadScore reports", docs_url=None, redoc_url=None, openapi_url=None, dependencies=access)
    app.add_exception_handler(StarletteHTTPException, _error_page)  # also the router's own 404s

    # Annotations here name only module-level names: FastAPI resolves them in this module's globals, and the
    # imports above are local to keep loading the plugin light.
    current_user = Depends(get_user)

    @app.get("/", response_class=HTMLResponse)
    def index(user: Any = current_user):
        return HTMLResponse(index_html(folder(), user=user.get_name()))

    @app.get("/latest", response_class=RedirectResponse)
    def latest():
        weekly, _ = list_reports(folder())
        if not weekly:
            raise HTTPException(404, "No weekly report yet: run lead_inference first.")
        return RedirectResponse(weekly[0].name)

    @app.get("/{name}", response_class=FileResponse)
    def report(name: str):
        if not REPORT_NAME.match(name):
            raise HTTPException(404, f"{name!r} is not a report name.")
        path = folder() / name
        if not path.is_file():
            raise HTTPException(404, f"No report {name!r}.")
        return FileResponse(path, media_type="text/html; charset=utf-8")

    return app


@cache
def _fastapi_app_entry() -> dict[str, Any]:
    return {"app": create_app(), "url_prefix": URL_PREFIX, "name": "LeadScore reports"}


class LeadScoreReportsPlugin(AirflowPlugin):
    """Registers the reports app and its navigation entry."""

    name = "leadscore_reports"
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "LeadScore reports",
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "url_route": "leadscore-reports",
        }
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        # Built when the api-server asks for it: every task process also loads plugins (for macros), and need not
        # import FastAPI and Airflow's API security (~2 s).
        return [_fastapi_app_entry()]
