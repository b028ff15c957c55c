"""The reports plugin behind Airflow's login: registered by the plugins manager, served by a real `airflow api-server`
(simple auth manager, users with and without a role), and opened from the UI's navigation in headless Chromium.

Roles of the simple auth manager: every role (viewer, user, op, admin) may read DAG runs, so each may read the
reports; a user configured without a role (``guest:``) may not (403).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from fastapi import FastAPI

from tests.monitoring.synthetic import weekly_report

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
USERS = {"admin": "admin", "viewer": "viewer", "guest": ""}  # name -> simple auth manager role ("" = none)
WEEK = "Week of 2025-01-12"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ApiServer:
    base: str
    home: Path
    passwords: dict[str, str]
    report: str

    def token(self, user: str) -> str:
        """A JWT for ``user`` from the auth manager's token endpoint (what API clients use)."""
        body = {"username": user, "password": self.passwords[user]}
        response = requests.post(f"{self.base}/auth/token", json=body, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()["access_token"]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """`airflow api-server` on a free 127.0.0.1 port, fresh SQLite metadata, LEADSCORE_HOME with synthetic reports."""
    root = tmp_path_factory.mktemp("reports-api")
    home = root / "home"
    report = weekly_report(home)
    (report.parent / "training_20250112.html").write_text("<!DOCTYPE html><title>LeadScore training</title>")
    airflow_home = root / "airflow"
    airflow_home.mkdir()
    passwords = {user: secrets.token_urlsafe(12) for user in USERS}
    pw_file = root / "passwords.json"
    pw_file.write_text(json.dumps(passwords))
    port = _free_port()
    env = {
        **os.environ,
        "LEADSCORE_HOME": str(home),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(pw_file),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "include"), os.environ.get("PYTHONPATH", "")])),
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    log = root / "api-server.log"
    subprocess.run([airflow, "db", "migrate"], env=env, cwd=root, check=True, capture_output=True, timeout=300)
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [airflow, "api-server", "--port", str(port)],
            env=env,
            cwd=root,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"api-server exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            try:
                if requests.get(f"{base}/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"api-server did not answer in 180 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield ApiServer(base=base, home=home, passwords=passwords, report=report.name)
    finally:
        _stop(proc)


def test_plugin_registers_with_airflow() -> None:
    from airflow import plugins_manager

    plugins, errors = plugins_manager._get_plugins()
    assert not {k: v for k, v in errors.items() if "leadscore_reports" in k}
    ours = [p for p in plugins if p.name == "leadscore_reports"]
    assert len(ours) == 1
    apps, _ = plugins_manager.get_fastapi_plugins()
    app = next(a["app"] for a in apps if a["url_prefix"] == "/leadscore-reports")
    assert isinstance(app, FastAPI) and len(app.router.dependencies) == 2  # read access to both DAGs' runs
    views, _ = plugins_manager._get_ui_plugins()
    view = next(v for v in views if v["name"] == "LeadScore reports")
    assert view["href"] == "leadscore-reports/" and view["url_route"] == "leadscore-reports"


def _pages(server: ApiServer) -> list[str]:
    return [f"{server.base}/leadscore-reports/", f"{server.base}/leadscore-reports/{server.report}"]


def test_without_credentials_every_page_answers_401_with_a_login_link(api_server: ApiServer) -> None:
    for url in [*_pages(api_server), f"{api_server.base}/leadscore-reports/latest"]:
        response = requests.get(url, timeout=30, allow_redirects=False)
        assert response.status_code == 401, (url, response.status_code)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert 'id="login" href="/auth/login?next=' in response.text
        assert "LeadScore weekly report" not in response.text
    assert requests.get(f"{api_server.base}/api/v2/dags", timeout=30).status_code == 401  # as the REST API does
    forged = requests.get(_pages(api_server)[0], headers={"Authorization": "Bearer not-a-jwt"}, timeout=30)
    assert forged.status_code in (401, 403) and 'id="login"' in forged.text  # a bad token: log in again
    assert "may not read the runs" not in forged.text


def test_a_user_without_the_permission_gets_403(api_server: ApiServer) -> None:
    token = api_server.token("guest")
    for url in _pages(api_server):
        by_bearer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        by_cookie = requests.get(url, cookies={"_token": token}, timeout=30)
        assert by_bearer.status_code == by_cookie.status_code == 403, url
        assert "may not read the runs of lead_inference and lead_training" in by_bearer.text
        assert "LeadScore weekly report" not in by_bearer.text


@pytest.mark.parametrize("user", ["viewer", "admin"])
def test_a_permitted_user_reads_the_reports_by_bearer_token_or_session_cookie(api_server: ApiServer, user: str) -> None:
    token = api_server.token(user)
    index_url, report_url = _pages(api_server)
    for auth in ({"headers": {"Authorization": f"Bearer {token}"}}, {"cookies": {"_token": token}}):
        index = requests.get(index_url, timeout=30, **auth)
        assert index.status_code == 200
        assert f'<a href="{api_server.report}">{WEEK}</a>' in index.text and f"Signed in as {user}" in index.text
        assert 'href="training_20250112.html"' in index.text
        page = requests.get(report_url, timeout=30, **auth)
        assert page.status_code == 200 and "LeadScore weekly report 2025-01-12" in page.text
        for text in (index.text, page.text):  # no server folder on any page
            assert str(api_server.home) not in text and str(api_server.home.parent) not in text
        latest = requests.get(f"{index_url}latest", timeout=30, **auth)
        assert latest.status_code == 200 and latest.url == report_url
        traversal = requests.get(f"{index_url}..%2Fhistory.parquet", timeout=30, **auth)
        assert traversal.status_code == 404 and "history" not in traversal.text.replace("..%2Fhistory", "")


def test_index_escapes_what_it_shows(tmp_path: Path) -> None:
    from leadscore.monitoring.pages import index_html

    (tmp_path / "a&b.html").write_text("x")  # not a report name: not listed
    (tmp_path / "training_1.html").write_text("x")
    html = index_html(tmp_path, user='<script>alert("x")</script>')
    assert "<script>" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "a&" not in html and 'href="training_1.html"' in html
    assert str(tmp_path) not in html


def _require_chromium() -> None:
    if CHROMIUM is None:
        message = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run installs it")
        pytest.skip(message)


def test_login_in_headless_chromium_then_open_the_report_from_the_navigation(
    api_server: ApiServer, tmp_path: Path
) -> None:
    _require_chromium()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1600})
            page = context.new_page()
            page.set_default_timeout(60_000)
            # Not logged in: the report link answers 401 with a link to Airflow's login page.
            page.goto(f"{api_server.base}/leadscore-reports/")
            expect(page.locator("#login")).to_be_visible()
            page.locator("#login").click()
            page.get_by_label("Username").fill("viewer")
            page.get_by_label("Password").fill(api_server.passwords["viewer"])
            page.get_by_role("button", name="Sign in").click()
            # The login sets the UI's session cookie and returns to the page asked for.
            page.wait_for_url(f"{api_server.base}/leadscore-reports/")
            expect(page.locator("#user")).to_have_text("Signed in as viewer")
            assert any(c["name"] == "_token" for c in context.cookies())
            # From the UI's navigation: the plugin's entry shows the index inside the UI, the week's link the report.
            page.goto(f"{api_server.base}/")
            page.get_by_role("link", name="LeadScore reports").click()
            frame = page.frame_locator("iframe")
            expect(frame.locator("#user")).to_have_text("Signed in as viewer")
            frame.get_by_role("link", name=WEEK).click()
            expect(frame.locator("h1")).to_contain_text("LeadScore weekly report 2025-01-12")
            expect(frame.locator("#summary")).to_contain_text("Week of 2025-01-12: status ")
            assert frame.locator('img[src^="data:image/png;base64,"]').count() >= 5
            shot = tmp_path / "report-in-ui.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
