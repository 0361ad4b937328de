"""Drive the real app: `streamlit run` in a child process and Debian's chromium through Playwright.

Waits on the app's own readiness (/_stcore/health, then the script's running state), never on sleeps.
Screenshots go to artifacts/e2e/ (kept as CI artifacts).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`streamlit run app.py` on a free port with its own run store and data source. It listens on loopback
    unless ``address`` says otherwise (roles tests bind 0.0.0.0 to be a plant-network server); the tests always
    connect through 127.0.0.1."""

    def __init__(self, env: dict, log_path: Path, address: str = "127.0.0.1"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(self.port), "--server.address", address, "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=dict(os.environ, **env), stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, timeout: float = 120) -> float:
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}")
            try:
                if urllib.request.urlopen(self.url + "/_stcore/health", timeout=2).read().strip() == b"ok":
                    return time.time() - t0
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("the app never became healthy")

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except Exception:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


def wait_idle(page, timeout: float = 90) -> float:
    """Until the app is connected, its script has run and is not running, and no skeleton or running-man
    status is left (quiet for 0.3 s). Returns the time (``time.time()``) at which the quiet began: the
    moment the page was rendered, without the 0.3 s of waiting to be sure."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout * 1000)
    deadline = time.time() + timeout
    quiet_since = None
    while time.time() < deadline:
        ready = page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").count()
        busy = (page.locator("[data-testid='stSkeleton'], [data-testid='stAppSkeleton'], "
                             "[data-testid='stStatusWidget']").count())
        if ready and not busy:
            quiet_since = quiet_since or time.time()
            if time.time() - quiet_since >= 0.3:
                return quiet_since
        else:
            quiet_since = None
        time.sleep(0.05)
    raise TimeoutError("the app did not become idle")


def wait_for(predicate, timeout: float = 60, every: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}")


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    p = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(p), full_page=True)
    return p
