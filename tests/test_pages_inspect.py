"""AppTest smoke tests of the Inspect page: no run, a run without results, and a trained run (slow).

AppTest has no file upload, so uploads are covered by tests/test_inspect.py (read_images) and by the browser
check; here the test-split picker, the verdict cards, the score chart and the bundle download are checked.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from trained_run import trained_run

APP = Path(__file__).resolve().parent.parent / "app.py"
PAGE = "app_pages/inspect.py"


def open_page(run_id=None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=180)
    if run_id:
        at.session_state["run_id"] = run_id     # the sidebar's run picker
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def by_key(at, kind: str, key: str):
    """Elements of a kind AppTest has no accessor for, found by their key (it ends the element id)."""
    return [e for e in at.get(kind) if str(getattr(e.proto, "id", "")).endswith("-" + key)]


def test_without_runs_the_page_says_so(runs_dir):
    at = open_page()
    assert any("No run selected" in i.value for i in at.info)


def test_a_run_without_results_is_not_judged(runs_dir):
    from snw_core.runs import RunStore
    run = RunStore(runs_dir).create(run_id="half")
    run.write_config({"run_id": "half", "settings": {}, "data": {"source": "default", "good_label": "0"}})
    run.write_status("stopped")
    at = open_page("half")
    assert any("has no results yet" in i.value for i in at.info)


@pytest.fixture(scope="module")
def trained(tiny_parquet):
    return trained_run(tiny_parquet)


@pytest.mark.slow
def test_inspect_page_judges_test_items_and_offers_the_bundle(trained, monkeypatch):
    runs, rid = trained
    monkeypatch.setenv("SNW_RUNS_DIR", str(runs))
    at = open_page(rid)
    picks = at.multiselect(key="inspect_pick")
    assert len(picks.value) == 3                                  # one good, two pin addresses from the test split
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Judged"] == "3" and int(metrics["GOOD"]) + int(metrics["DEFECT"]) == 3
    assert "Test picks: verdict right" in metrics
    assert by_key(at, "plotly_chart", "inspect_scores") and at.dataframe
    badges = [m.value for m in at.markdown if "-badge[" in m.value]
    assert len(badges) == 3 and int(metrics["DEFECT"]) == sum("DEFECT" in b for b in badges)
    assert sum("vs threshold" in m.value for m in at.markdown) == 3
    assert len(at.get("image")) == 9                              # each item, its nearest good and nearest defect
    assert by_key(at, "download_button", "inspect_bundle_download")
    assert by_key(at, "download_button", "inspect_results_csv")
    assert by_key(at, "file_uploader", "inspect_upload")

    at.button(key="inspect_random").click().run()
    assert not at.exception, at.exception
    assert len(at.multiselect(key="inspect_pick").value) == 4
    assert {m.label: m.value for m in at.metric}["Judged"] == "4"

    at.multiselect(key="inspect_pick").set_value([]).run()
    assert not at.exception
    assert any("Upload images or pick test items" in i.value for i in at.info)


@pytest.mark.slow
def test_stored_test_embeddings_are_what_the_saved_model_computes(trained, tiny_parquet):
    """The Inspect page judges picked test items with the embeddings stored in embeddings.npz (no TensorFlow on a
    first visit); that is only right if the saved embedder reproduces them."""
    import numpy as np

    from snw_core.data import load
    from snw_core.embed import embed_images, load_embeddings
    from snw_core.judge import Judge
    from snw_core.model import load_embedder
    from snw_core.runs import RunStore
    runs, rid = trained
    run = RunStore(runs).get(rid)
    stored = load_embeddings(run.file("embeddings.npz"))
    test = np.flatnonzero(stored["split"] == "test")
    fresh = embed_images(load_embedder(run.embedder_path), load(str(tiny_parquet)).images[test])
    np.testing.assert_allclose(fresh, stored["embeddings"][test], atol=1e-5)
    judge = Judge.from_parts(run.config(), run.metrics(), stored)
    a, b = judge.judge_embeddings(fresh), judge.judge_embeddings(stored["embeddings"][test])
    assert (a["defect"] == b["defect"]).all()
    np.testing.assert_allclose(a["score"], b["score"], atol=1e-5)
