"""End to end: the real app under `streamlit run`, driven in Debian's headless Chromium with Playwright.

Opens every page; trains a 1-epoch run from the Train page and watches its live curve get points; stops a
second run and sees it `stopped`; finds both on the Runs page; drags a box over the embeddings scatter with
the mouse and sees the selected images. Screenshots of every step go to artifacts/e2e/.
"""
import os
import shutil
import subprocess
import sys
import time

import pytest

from browser import CHROMIUM, CHROMIUM_ARGS, ROOT, AppServer, shot, wait_for, wait_idle
from snw_core.runs import RunStore

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAGES = ["", "pairs", "train", "accuracy", "embeddings", "runs", "inspect"]


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_parquet):
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium)")
    root = tmp_path_factory.mktemp("e2e")
    data = root / "tiny.parquet"
    shutil.copy(tiny_parquet, data)
    runs = root / "runs"
    e = {"SNW_RUNS_DIR": str(runs), "SNW_DATA_SOURCE": str(data), "SNW_DATA_ROOTS": str(root)}
    # one finished run, so Accuracy, Embeddings and Inspect have something to show from the start
    r = subprocess.run([sys.executable, "-m", "snw_core", "train", "--data", str(data), "--preset", "seed",
                        "--epochs", "1", "--projection", "pca", "--run-id", "e2e-ready"], cwd=ROOT,
                       env=dict(os.environ, **e), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return e


@pytest.fixture(scope="module")
def server(env, tmp_path_factory):
    s = AppServer(env, tmp_path_factory.mktemp("log") / "streamlit.log")
    try:
        s.wait_healthy()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, request):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    yield pg
    try:   # the last state of every test, for the artifacts (a failure's picture above all)
        shot(pg, f"last_{request.node.name}")
    finally:
        ctx.close()


def open_page(page, server, path):
    page.goto(f"{server.url}/{path}")
    wait_idle(page, timeout=120)
    assert page.locator("[data-testid='stException']").count() == 0, page.locator(
        "[data-testid='stException']").first.inner_text()


def test_every_page_renders_even_as_the_first_request(server, page):
    # a deep link first: the router must run for it too (not Streamlit's pages-folder fallback)
    open_page(page, server, "runs")
    sidebar = page.locator("[data-testid='stSidebar']")
    assert sidebar.get_by_text("Good label", exact=True).count() == 1          # the shared sidebar is there
    nav = [t.strip().lower().split("\n")[-1] for t in page.locator("[data-testid='stSidebarNavLink']").all_inner_texts()]
    assert "train" in nav and "app" not in nav                                 # our router, not the folder
    for i, path in enumerate(PAGES):
        open_page(page, server, path)
        shot(page, f"{i:02d}_{path or 'gallery'}")


def _choose(page, key: str, option: str):
    combo = page.locator(f".st-key-{key} input")
    combo.fill(option)
    combo.press("Enter")
    wait_idle(page)


def _start(page, epochs: int):
    _choose(page, "train_preset", "seed")                 # the study's recipe: any batch size fits tiny data
    page.locator(".st-key-train_epochs input").fill(str(epochs))
    page.locator(".st-key-train_epochs input").press("Tab")
    _choose(page, "train_projection", "pca")              # PCA: an instant projection
    page.locator(".st-key-train_start button").click()


def _new_run(runs_dir, known):
    ids = [r.id for r in RunStore(runs_dir).list() if r.id not in known]
    return ids[0] if ids else None


def _curve_points(page) -> int:
    """Data points in the loss chart's traces, read from the plotly figure the browser draws."""
    return page.evaluate("""() => {
        let best = 0;
        for (const el of document.querySelectorAll('.st-key-train_loss_chart .js-plotly-plot')) {
            const traces = el._fullData || [];     // decoded by plotly.js (x may arrive base64-packed)
            best = Math.max(best, traces.reduce((n, t) => n + ((t.x && t.x.length) || 0), 0));
        }
        return best;
    }""")


def test_train_live_curve_then_stop_a_second_run(server, page, env):
    runs_dir = env["SNW_RUNS_DIR"]
    known = {r.id for r in RunStore(runs_dir).list()}
    open_page(page, server, "train")
    _start(page, epochs=3)
    first = wait_for(lambda: _new_run(runs_dir, known), timeout=60, what="a new run folder")
    run = RunStore(runs_dir).get(first)
    wait_for(lambda: any(e.get("kind") == "batch" for e in run.progress()), timeout=180, what="batch progress")
    first_points = wait_for(lambda: _curve_points(page), timeout=60, what="the live curve to get points")
    if run.state() in ("running", "starting"):      # still training: the curve must grow while we watch
        wait_for(lambda: _curve_points(page) > first_points or run.state() not in ("running", "starting"),
                 timeout=60, what="the live curve to grow")
    page.locator(".st-key-train_loss_chart").first.scroll_into_view_if_needed()
    shot(page, "train_live")
    wait_for(lambda: run.state() == "done", timeout=300, what="the first run to finish")
    wait_for(lambda: page.get_by_text("is done", exact=False).count() > 0, timeout=30, what="'done' on the page")
    shot(page, "train_done")

    known.add(first)
    open_page(page, server, "train")
    _start(page, epochs=200)
    second = wait_for(lambda: _new_run(runs_dir, known), timeout=60, what="the second run folder")
    run2 = RunStore(runs_dir).get(second)
    wait_for(lambda: any(e.get("kind") == "batch" for e in run2.progress()), timeout=180, what="batches")
    live_stop = ".st-key-train_stop:not([data-stale='true']) button"      # not a fragment's stale copy
    wait_for(lambda: page.locator(live_stop).count(), timeout=30, what="the Stop button")
    page.locator(live_stop).first.click()
    wait_for(lambda: run2.state() == "stopped", timeout=120, what="the second run to stop")
    wait_for(lambda: page.get_by_text("stopped", exact=False).count() > 0, timeout=30, what="'stopped' on the page")
    shot(page, "train_stopped")
    assert len(run2.history()) < 200

    open_page(page, server, "runs")
    wait_for(lambda: page.get_by_text(first, exact=False).count() > 0 or _grid_has(page, first), timeout=30,
             what="the first run on the Runs page")
    assert page.get_by_text(second, exact=False).count() > 0 or _grid_has(page, second)
    shot(page, "runs")


def _grid_has(page, text) -> bool:
    """st.dataframe draws on a canvas; its accessible table holds the cell text."""
    return page.locator("[data-testid='stDataFrame'] table").get_by_text(text, exact=False).count() > 0


def test_box_select_on_the_embeddings_scatter_shows_the_images(server, page):
    page.goto(f"{server.url}/embeddings")
    wait_idle(page, timeout=120)
    # pick the finished run made by the fixture in the sidebar's run box, whatever ran since
    plot = page.locator(".st-key-embeddings_scatter .nsewdrag").first
    plot.wait_for(timeout=60_000)
    box = plot.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.05, box["y"] + box["height"] * 0.05)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=12)
    page.mouse.move(box["x"] + box["width"] * 0.95, box["y"] + box["height"] * 0.95, steps=12)
    page.mouse.up()
    wait_for(lambda: page.get_by_text("Selection:", exact=False).count() > 0, timeout=60, what="the selection")
    wait_idle(page, timeout=60)
    assert page.locator("[data-testid='stImage']").count() > 0
    shot(page, "embeddings_selection")


def test_inspect_judges_uploads_and_warns_about_a_noisy_camera(server, page, env, tmp_path):
    """Uploads through the page's file box: every image is judged, and a batch noisier than the run's training
    images gets the camera check's warning."""
    import numpy as np
    from PIL import Image

    from snw_core.data import load
    from snw_core.drift import apply
    images = apply(load(env["SNW_DATA_SOURCE"]).images[:6], "noise", 12.0, seed=3)
    paths = []
    for i, img in enumerate(np.asarray(images, np.uint8)):
        paths.append(str(tmp_path / f"noisy{i}.png"))
        Image.fromarray(img).save(paths[-1])
    open_page(page, server, "inspect")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(paths)
    wait_for(lambda: page.get_by_text("Camera check: the images are noisier than the training images",
                                      exact=False).count() > 0, timeout=120, what="the camera check's warning")
    wait_idle(page, timeout=120)
    assert page.locator("[data-testid='stException']").count() == 0
    judged = page.locator("[data-testid='stMetric']").filter(has_text="Judged").first.inner_text()
    assert int(judged.split()[-1]) >= 6, judged                   # the uploads, and the run's test picks
    for i in range(6):
        assert page.get_by_text(f"noisy{i}.png", exact=False).count() > 0
    shot(page, "inspect_uploads_camera_check")
