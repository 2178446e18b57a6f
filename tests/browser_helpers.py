"""A live server on a free port and a headless Chromium page driving it (Playwright, Debian's chromium)."""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from core.settings import PROJECT_ROOT

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
# Without these Chromium keeps trying to reach Google's services, which this network refuses.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if Path(configured).exists() else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


class LiveServer:
    """The Flask app served by werkzeug in a thread, on 127.0.0.1 and a port the OS picks."""

    def __init__(self, app) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "LiveServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._thread.join(10)


def in_ci(environ=None) -> bool:
    """CI_STRICT (set by .ci/run) or the CI variable most CI services set (CI=true)."""
    environ = os.environ if environ is None else environ
    return bool(environ.get("CI_STRICT")) or environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _missing(reason: str) -> None:
    """Locally a missing browser skips the browser tests; in CI it fails them at once, with the reason (conftest
    would also fail the run for the skip, but only at the end)."""
    if in_ci():
        pytest.fail(f"{reason} (CI: the browser tests may not be skipped)", pytrace=False)
    pytest.skip(reason)


def require_chromium() -> str:
    path = chromium_path()
    if path is None:
        _missing("Chromium not found: install it with `sudo apt-get install chromium` (or set CHROMIUM_PATH "
                 "to its executable); .ci/run installs it")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("Playwright for Python is missing: run `make install`")
    return path


def save_screenshot(tab, nodeid: str) -> Path:
    """The whole page as the failing test left it, under test-artifacts/ (kept by CI as an artifact)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / screenshot_name(nodeid)
    tab.screenshot(path=str(path), full_page=True)
    return path


def screenshot_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])[:120] + ".png"
