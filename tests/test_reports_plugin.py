"""The reports plugin: registered by Airflow's plugins manager, served by uvicorn, opened in headless Chromium."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import requests
import uvicorn
from fastapi import FastAPI

from tests.monitoring.synthetic import weekly_report

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    def __init__(self, app: FastAPI) -> None:
        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        for _ in range(600):
            if self.server.started:
                return f"http://127.0.0.1:{self.port}"
            self.thread.join(0.05)
        raise RuntimeError("uvicorn did not start within 30 s")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return weekly_report(tmp_path_factory.mktemp("plugin-home"))


def _plugin_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "leadscore_reports_under_test", ROOT / "plugins" / "leadscore_reports.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_plugin_registers_with_airflow() -> None:
    from airflow import plugins_manager

    plugins, errors = plugins_manager._get_plugins()
    assert not {k: v for k, v in errors.items() if "leadscore_reports" in k}
    ours = [p for p in plugins if p.name == "leadscore_reports"]
    assert len(ours) == 1
    apps, _ = plugins_manager.get_fastapi_plugins()
    assert any(a["url_prefix"] == "/leadscore-reports" and isinstance(a["app"], FastAPI) for a in apps)
    views, _ = plugins_manager._get_ui_plugins()
    view = next(v for v in views if v["name"] == "LeadScore reports")
    assert view["href"] == "leadscore-reports/" and view["url_route"] == "leadscore-reports"


def test_api_server_mounts_the_app(reports: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.api_fastapi.app import init_plugins

    monkeypatch.setenv("LEADSCORE_HOME", str(reports.parents[1]))
    app = FastAPI()
    init_plugins(app)  # what the api-server does with plugin apps
    with _Server(app) as base:
        index = requests.get(f"{base}/leadscore-reports/", timeout=30)
        assert index.status_code == 200
        assert f'href="{reports.name}"' in index.text and "Week of 2025-01-12" in index.text
        page = requests.get(f"{base}/leadscore-reports/{reports.name}", timeout=30)
        assert page.status_code == 200 and "LeadScore weekly report 2025-01-12" in page.text
        assert requests.get(f"{base}/leadscore-reports/..%2Fhistory.parquet", timeout=30).status_code == 404
        latest = requests.get(f"{base}/leadscore-reports/latest", timeout=30)
        assert latest.url.endswith(reports.name)


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)")
def test_report_page_in_headless_chromium(reports: Path, tmp_path: Path) -> None:
    module = _plugin_module()
    with _Server(module.create_app(reports.parent)) as base:
        dom = _chromium("--dump-dom", f"{base}/{reports.name}", profile=tmp_path / "p1").stdout
        assert "<title>LeadScore weekly report 2025-01-12</title>" in dom
        assert "Week of 2025-01-12: status " in dom
        assert re.search(r"Scores of 2025-01-05 \(7 days earlier\): realized AUC 0\.\d{3} on 800 leads", dom)
        assert len(re.findall(r'<img src="data:image/png;base64,', dom)) >= 5
        index = _chromium("--dump-dom", f"{base}/", profile=tmp_path / "p2").stdout
        assert "LeadScore reports" in index and reports.name in index
        shot = tmp_path / "report.png"
        _chromium(
            f"--screenshot={shot}",
            "--window-size=1200,2400",
            "--hide-scrollbars",
            f"{base}/{reports.name}",
            profile=tmp_path / "p3",
        )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
