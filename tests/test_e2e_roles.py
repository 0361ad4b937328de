"""Roles in the real app (`streamlit run`, headless Chromium): a viewer-only server shows no Start, Stop, Delete
or Sweep control on any page; a server bound to 0.0.0.0 with an engineer password treats a browser as a viewer
until the right password, refuses a wrong one after a delay, and ignores a forged Stop click sent over a
viewer's own websocket (the same bytes do stop the run from an engineer's session).

The run store holds hand-made runs: a finished one, one in the trash, and one "running" whose pid is this test
process (alive while the test runs), so the Stop control exists for engineers without any training.
"""
import os
import re
import shutil
import time

import pytest

from browser import CHROMIUM, AppServer, shot, wait_for, wait_idle
from snw_core import roles as R
from snw_core.runs import RunStore
from test_e2e import browser  # noqa: F401  (fixture: one headless Chromium per module)
from test_pages_train_runs import finished, running

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAGES = ["", "pairs", "train", "accuracy", "embeddings", "runs", "inspect"]
ACTION = re.compile(r"\b(start|stop|delete|sweep|restore|empty)\b", re.I)
PASSWORD = "plant-engineer-2026"
# keeps every websocket the page opens and a copy of every binary message it sends, so a test can send bytes on
# the app's own connection, as someone with the browser's developer tools could
TRACK_SOCKETS = """(() => { const Orig = window.WebSocket; window.__snwSockets = []; window.__snwSent = [];
  window.WebSocket = class extends Orig {
    constructor(...a) { super(...a); window.__snwSockets.push(this); }
    send(data) {
      if (ArrayBuffer.isView(data)) window.__snwSent.push(Array.from(new Uint8Array(data.buffer, data.byteOffset,
                                                                                    data.byteLength)));
      else if (data instanceof ArrayBuffer) window.__snwSent.push(Array.from(new Uint8Array(data)));
      super.send(data);
    } }; })();"""
SEND = "b => window.__snwSockets.filter(s => s.readyState === 1).at(-1).send(new Uint8Array(b))"


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_parquet):
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium)")
    root = tmp_path_factory.mktemp("e2e-roles")
    data = root / "tiny.parquet"
    shutil.copy(tiny_parquet, data)
    store = RunStore(root / "runs")
    finished(store, "r0-trashed", started="2026-01-01T09:00:00+00:00")
    store.delete("r0-trashed")
    finished(store, "r1-done")
    running(store, "r9-running")
    return {"SNW_RUNS_DIR": str(store.root), "SNW_DATA_SOURCE": str(data), "SNW_DATA_ROOTS": str(root)}


def serve(env, tmp_path_factory, address="127.0.0.1", **extra):
    s = AppServer(dict(env, **extra), tmp_path_factory.mktemp("log") / "streamlit.log", address=address)
    s.wait_healthy()
    return s


def new_page(browser, track=False):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    if track:
        ctx.add_init_script(TRACK_SOCKETS)
    return ctx.new_page()


def open_page(page, server, path):
    page.goto(f"{server.url}/{path}")
    wait_idle(page, timeout=120)
    assert page.locator("[data-testid='stException']").count() == 0, page.locator(
        "[data-testid='stException']").first.inner_text()


def action_buttons(page) -> list[str]:
    """Texts of all buttons on the page (sidebar included) that name a changing action."""
    # Streamlit's own header "Stop" (a rerun in progress, under load) is not one of the app's controls
    return [t for t in page.locator("button:not([data-testid='stBaseButton-header'])").all_inner_texts()
            if ACTION.search(t)]


def test_viewer_only_server_has_no_action_control(env, browser, tmp_path_factory):
    server = serve(env, tmp_path_factory, **{R.VIEWER_ONLY_ENV: "1"})
    page = new_page(browser)
    try:
        for path in PAGES:
            open_page(page, server, path)
            if path == "runs":                               # open the trash: its buttons would be inside
                page.get_by_text("Trash: 1 run").click()
                wait_idle(page)
            assert action_buttons(page) == [], (path, action_buttons(page))
            assert "viewer-only mode" in page.locator("[data-testid='stSidebar']").inner_text()
        shot(page, "roles_viewer_only_runs")
    finally:
        page.context.close()
        server.stop()


def sign_in(page, password, name="Ann"):
    side = page.locator("[data-testid='stSidebar']")
    side.get_by_label("Your name (for the action log)").fill(name)
    side.get_by_label("Engineer password").fill(password)
    t0 = time.time()
    side.get_by_role("button", name="Sign in as engineer").click()
    return t0


def sent_frames(page, marker: bytes) -> list[bytes]:
    """The binary messages the page has sent on its websockets that contain ``marker``."""
    return [f for f in map(bytes, page.evaluate("() => window.__snwSent")) if marker in f]


def test_plant_network_server_viewer_password_and_forged_stop(env, browser, tmp_path_factory):
    server = serve(env, tmp_path_factory, address="0.0.0.0", **{R.PASSWORD_HASH_ENV: R.hash_password(PASSWORD)})
    stop_file = RunStore(env["SNW_RUNS_DIR"]).get("r9-running").file("stop_request")
    viewer, engineer = new_page(browser, track=True), new_page(browser, track=True)
    try:
        # not signed in: a viewer, with the sign-in form
        for page in (viewer, engineer):
            open_page(page, server, "train")
            assert action_buttons(page) == [], action_buttons(page)
            assert "Viewer: every page" in page.locator("[data-testid='stSidebar']").inner_text()
        # a wrong password is refused, after a delay
        t0 = sign_in(engineer, "not-the-password")
        engineer.get_by_text("Wrong password").wait_for(timeout=60_000)
        assert time.time() - t0 >= 1.0
        wait_idle(engineer)
        assert action_buttons(engineer) == []
        # the right one unlocks the engineer controls for this browser session only
        sign_in(engineer, PASSWORD)
        stop = engineer.get_by_test_id("stMainBlockContainer").get_by_role("button", name=re.compile("Stop"))
        stop.wait_for(timeout=60_000)
        assert "Engineer: Ann (password)" in engineer.locator("[data-testid='stSidebar']").inner_text()
        assert engineer.get_by_role("button", name=re.compile("Start training")).count() == 1
        open_page(viewer, server, "train")
        assert action_buttons(viewer) == []
        shot(engineer, "roles_engineer_signed_in")
        # the engineer's Stop click, as bytes on the wire
        engineer.evaluate("() => { window.__snwSent = []; }")
        stop.click()
        wait_for(stop_file.exists, timeout=30, what="the engineer's stop request")
        forged = sent_frames(engineer, b"train_stop")
        assert forged, "the Stop click was not among the messages the page sent"
        stop_file.unlink()
        stop.wait_for(timeout=30_000)                          # the live view offers Stop again
        # the same bytes sent over the viewer's own connection change nothing
        viewer.evaluate(SEND, list(forged[-1]))
        time.sleep(2)
        wait_idle(viewer)
        assert not stop_file.exists()
        assert viewer.locator("[data-testid='stException']").count() == 0
        # ... while from a session where the control exists they do stop the run (the forgery is a real click)
        engineer.evaluate(SEND, list(forged[-1]))
        wait_for(stop_file.exists, timeout=30, what="the replayed stop request")
        # the Runs page: Delete for the engineer (still signed in after switching pages), not for the viewer
        engineer.locator("[data-testid='stSidebarNav'] a", has_text="Runs").click()
        engineer.get_by_role("button", name=re.compile("Delete selected")).wait_for(timeout=60_000)
        open_page(viewer, server, "runs")
        assert action_buttons(viewer) == []
        assert "Action log" in viewer.locator("[data-testid='stMain']").inner_text()
        shot(viewer, "roles_viewer_runs")
    finally:
        for name, page in (("viewer", viewer), ("engineer", engineer)):   # the last state, for the artifacts
            try:
                shot(page, f"last_roles_{name}")
            except Exception:
                pass
        stop_file.unlink(missing_ok=True)
        viewer.context.close()
        engineer.context.close()
        server.stop()
