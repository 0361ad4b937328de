"""End to end: the Audit page in the real app (`streamlit run`, headless Chromium): a decision chosen with the
mouse is saved to the corrections file, and the page shows it after a reload."""
import os

import numpy as np
import pytest

from browser import CHROMIUM, CHROMIUM_ARGS, AppServer, shot, wait_for, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_decision_made_in_the_browser_lands_in_the_corrections_file(tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    from test_audit import cluster_embeddings, fake_run

    from snw_core import data, synthetic
    from snw_core.corrections import read_corrections
    from snw_core.plant import plant, write_planted
    images, labels, dirnames = synthetic.generate(130, seed=0)
    parquet, truth_csv = write_planted(tmp_path / "planted.parquet",
                                       plant(images, labels, dirnames, outliers=1, seed=3))
    ds = data.load(str(parquet))
    run = fake_run(tmp_path / "runs", parquet, ds, cluster_embeddings(ds.labels))
    run.write_metrics({"good_defect_accuracy": 0.9})
    outlier = int(np.flatnonzero(np.any(images != ds.images, axis=(1, 2)))[0])
    server = AppServer({"SNW_RUNS_DIR": str(tmp_path / "runs"), "SNW_DATA_SOURCE": str(parquet)},
                       tmp_path / "streamlit.log")
    try:
        server.wait_healthy()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{server.url}/audit")
            wait_idle(page, timeout=120)
            assert page.locator("[data-testid='stException']").count() == 0
            page.locator(f".st-key-audit_decision_{outlier}").click()
            page.get_by_role("option", name="exclude", exact=True).click()
            page.get_by_role("button", name="Save decisions of this page").click()
            wait_for(lambda: page.get_by_text("Saved 1 decision(s)", exact=False).count() > 0, timeout=60,
                     what="the saved message")
            shot(page, "audit_saved")
            files = list((tmp_path / "runs" / ".corrections").glob("*.csv"))
            _, entries = read_corrections(files[0])
            assert [(e["row"], e["new_label"]) for e in entries] == [(outlier, "exclude")]
            page.reload()
            wait_idle(page, timeout=120)
            assert page.get_by_text("decisions: 1 in", exact=False).count() == 1
            browser.close()
    finally:
        server.stop()
