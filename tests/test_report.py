"""snw_core.report: the management report of a finished run (hand-made runs, no training), its command line,
the Accuracy page's download button, and the file in headless Chromium with no network."""
import contextlib
import html
import os
import re
from pathlib import Path

import numpy as np
import pytest

from snw_core import report
from snw_core import review as R
from snw_core.__main__ import main
from snw_core.runs import RunStore


@contextlib.contextmanager
def metrics_with(run, **keys):
    """The shared run's metrics.json with ``keys`` added for the block, as it was afterwards."""
    before = run.metrics()
    run.write_metrics({**before, **keys})
    try:
        yield
    finally:
        run.write_metrics(before)
from test_pages_accuracy_embeddings import APP, make_run, page_path

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def env(tmp_path, monkeypatch):
    from snw_core import synthetic
    monkeypatch.setenv("SNW_RUNS_DIR", str(tmp_path / "runs"))
    parquet = str(synthetic.write_parquet(tmp_path / "tiny.parquet", n=130, seed=0))
    run, arrays = make_run(tmp_path / "runs", parquet, "r1", projection=False)
    return {"parquet": parquet, "runs": tmp_path / "runs", "run": run, **arrays}


def text_of(page: str) -> str:
    return html.unescape(page)


def test_headline_counts_are_those_of_the_test_split_at_the_stored_threshold(env):
    page = text_of(report.build_report(env["run"]))
    t = env["metrics"]["threshold"]
    op = R.operating_point(env["scores"], env["labels"], env["split"], t)
    assert R.escape_sentence(op) in page and R.overkill_sentence(op) in page
    assert f"{op['detected'] + op['passed']:,} of {op['n']:,} test items judged right" in page
    assert R.pct(op["accuracy"]) in page and "the run's stored threshold" in page
    pairs = R.pair_review(env["emb"], env["labels"], env["split"], seed=0)
    assert f"{R.pct(pairs['pair_accuracy'])}" in page
    assert page.count('class="plotly-graph-div"') == 3           # two confusion matrices and the ROC
    escapes = R.error_items(env["scores"], env["labels"], env["split"], t, "escape")
    overkills = R.error_items(env["scores"], env["labels"], env["split"], t, "overkill")
    assert page.count('<figure class="thumb">') == min(escapes.size, report.MAX_THUMBS) + min(overkills.size,
                                                                                                report.MAX_THUMBS)
    assert env["run"].config()["data"]["content_hash"] in page   # provenance
    assert "<script src=" not in page and "<link" not in page     # nothing fetched


def test_another_threshold_changes_the_numbers_and_says_where_it_came_from(env):
    t = float(np.quantile(env["scores"], 0.9))
    page = text_of(report.build_report(env["run"], threshold=t))
    op = R.operating_point(env["scores"], env["labels"], env["split"], t)
    assert R.escape_sentence(op) in page and "given for this report" in page
    ref = R.operating_point(env["scores"], env["labels"], env["split"], env["metrics"]["threshold"])
    assert f"At the run's stored threshold" in page and R.pct(ref["escape_rate"]) in page


def test_a_threshold_that_rejects_every_good_part_is_flagged_at_the_top(env):
    assert "cannot tell good parts" not in text_of(report.build_report(env["run"]))    # the stored threshold judges
    low = float(env["scores"].min()) - 1.0                                              # every item "defective"
    page = text_of(report.build_report(env["run"], threshold=low))
    assert '<p class="alarm">This run cannot tell good parts from defective ones: it rejects 100% of the good ' \
           'test items' in page
    assert page.index('class="alarm"') < page.index("Headline (test split)")


def test_what_the_pages_say_about_the_run_itself_is_in_the_report_too(env):
    """A weak twin, a budget that cut training short, faulty training data: the boxes the pages show above every
    run are notes at the top of the report, before the headline; a run without them has none."""
    assert 'class="note"' not in text_of(report.build_report(env["run"]).split("Headline (test split)")[0])
    with metrics_with(env["run"], auroc=0.946, best_epoch=11, epochs_run=11, best_weights_restored=True,
                      gate={"images_set_aside": 2, "local_set_aside": 0}):
        page = text_of(report.build_report(env["run"]))
    top = page.split("Headline (test split)")[0]
    assert '<p class="note">The twin was still improving when its epoch budget ran out' in top
    assert "AUROC 0.946" in top and "2 images far from every other image" in top and "audit r1" in top
    with metrics_with(env["run"], auroc=0.17):
        assert "worse than chance (AUROC 0.17)" in text_of(report.build_report(env["run"])).split("Headline")[0]


def test_metrics_keys_it_does_not_know_are_listed_too(env):
    run = env["run"]
    run.write_metrics({**run.metrics(), "unknown_rate": 0.0125, "heatmap_hit_rate": 0.5, "extra": {"x": 1}})
    page = text_of(report.build_report(run))
    assert "UNKNOWN rate (not recognised as this part)" in page and "1.2 % of test items were judged UNKNOWN" in page
    assert "heatmap_hit_rate" in page and "50.00 %" in page


def test_items_the_gate_rejects_count_as_rejected_as_in_metrics_json(env):
    """A run with the gate's per-item verdicts: the report's numbers at the stored threshold are metrics.json's."""
    from snw_core.embed import save_embeddings
    from snw_core.metrics import evaluate_embeddings
    run, labels, split, emb = env["run"], env["labels"], env["split"], env["emb"]
    rng = np.random.default_rng(3)
    unknown = rng.random(labels.size) < 0.08
    local = ~unknown & (rng.random(labels.size) < 0.08)
    patch = ~unknown & ~local & (rng.random(labels.size) < 0.08)      # kept apart in embeddings.npz, as training does
    metrics, scores = evaluate_embeddings(emb, labels, split, good_label="0", k=3, unknown=unknown,
                                          local_defect=local | patch)
    run.write_metrics({**run.metrics(), **metrics})
    save_embeddings(run.file("embeddings.npz"), emb, labels, split, scores, unknown=unknown, local_defect=local,
                    patch_defect=patch)
    page = text_of(report.build_report(run))
    n_test = int((split == "test").sum())
    right = round(metrics["good_defect_accuracy"] * n_test)
    assert f"{right:,} of {n_test:,} test items judged right" in page
    n_unknown = int((unknown & (split == "test")).sum())
    assert f"{n_unknown:,} of {n_test:,} test items" in page and "judged UNKNOWN" in page
    assert ("UNKNOWN · row" in page) == bool(n_unknown and (unknown & (split == "test") & (labels == "0")).any())


def test_images_left_out_with_the_reason_when_the_data_changed(tmp_path, env):
    run, _ = make_run(env["runs"], env["parquet"], "changed", projection=False, content_hash="0" * 64)
    page = text_of(report.build_report(run))
    assert "Images unavailable" in page and "has changed since training" in page
    assert '<figure class="thumb">' not in page


def test_comparison_with_another_run(env):
    other, _ = make_run(env["runs"], env["parquet"], "r2", projection=False)
    m = other.metrics()
    other.write_metrics({**m, "good_defect_accuracy": m["good_defect_accuracy"] - 0.1})
    page = text_of(report.build_report(env["run"], compare=[other]))
    assert "Compared with other runs" in page and "r2" in page and "-10.0 pp" in page


def test_cli_writes_the_report_and_refuses_bad_input_with_exit_2(env, tmp_path, capsys):
    out = tmp_path / "out" / "report.html"
    assert main(["report", "r1", "--out", str(out), "--threshold", "0.3"]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>") and capsys.readouterr().out.strip() == str(out)
    assert main(["report", "r1", "--out", str(tmp_path / "x.html"), "--threshold", "nan"]) == 2
    assert main(["report", "r1", "--out", str(tmp_path)]) == 2                       # a folder
    assert main(["report", "nope", "--out", str(tmp_path / "y.html")]) == 2
    assert main(["report", "../r1", "--out", str(tmp_path / "y.html")]) == 2
    empty = RunStore(env["runs"]).create(run_id="empty")
    empty.write_status("running", pid=os.getpid())
    assert main(["report", "empty", "--out", str(tmp_path / "z.html")]) == 2
    assert main(["report", "r1", "--compare", "empty", "--out", str(tmp_path / "z.html")]) == 2
    err = capsys.readouterr().err
    assert "finite number" in err and "is a folder" in err and "no results yet" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".html") == []   # nothing written


def test_accuracy_page_offers_the_report_at_the_threshold_shown(env):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["run_id"] = "r1"
    at.switch_page(page_path("accuracy.py"))
    at.run()
    assert not at.exception
    buttons = [e for e in at.get("download_button") if getattr(e, "proto", None) is not None
               and "Download report" in str(e.proto)]
    assert buttons, "no 'Download report' button on the Accuracy page"


@pytest.mark.slow
@pytest.mark.e2e
def test_report_from_the_accuracy_page_opens_offline_in_chromium_without_failed_requests_or_errors(env, tmp_path):
    """The dashboard's button gives the file (at the threshold shown); the file opened with the network off
    requests nothing but itself, logs no console error, draws its three charts and its images, and fits A4."""
    from playwright.sync_api import sync_playwright
    from browser import CHROMIUM, CHROMIUM_ARGS, AppServer, shot, wait_idle
    server = AppServer({"SNW_RUNS_DIR": str(env["runs"]), "SNW_DATA_SOURCE": env["parquet"],
                        "SNW_DATA_ROOTS": str(tmp_path)}, tmp_path / "streamlit.log")
    try:
        server.wait_healthy()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.goto(f"{server.url}/accuracy")
            wait_idle(page, timeout=120)
            assert page.locator("[data-testid='stException']").count() == 0
            with page.expect_download(timeout=60000) as dl:
                page.locator(".st-key-accuracy_report_download").get_by_role("button", name="Download report").click()
            out = tmp_path / "downloaded.html"
            dl.value.save_as(out)
            assert dl.value.suggested_filename == "snw-report-r1.html"
            assert "the run's stored threshold" in text_of(out.read_text())     # the threshold the page shows

            ctx = browser.new_context(offline=True, viewport={"width": 1000, "height": 900})
            page = ctx.new_page()
            problems, requests = [], []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda q: problems.append(f"failed request: {q.url}"))
            page.on("request", lambda q: requests.append(q.url))
            page.goto(out.as_uri(), wait_until="load")
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3",
                                   timeout=30000)
            page.wait_for_timeout(1000)                                # plotly's automargin settles
            shot(page, "report")
            assert problems == []
            assert requests == [out.as_uri()]                          # the file itself, nothing else
            assert page.locator(".thumb img").count() > 0
            assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
            # print: A4 with 12 mm margins leaves 703 CSS px; nothing may stick out to the right
            page.emulate_media(media="print")
            page.set_viewport_size({"width": 703, "height": 1000})
            assert page.evaluate("document.documentElement.scrollWidth") <= 703
            pdf = page.pdf(format="A4")
            assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 2
            browser.close()
    finally:
        server.stop()


def test_where_the_defects_are_shown_is_reported_when_the_run_measured_it(env):
    run = env["run"]
    assert "<b>Where:</b>" not in text_of(report.build_report(run))
    with metrics_with(run, localisation={"share": 0.99, "located": 99, "caught": 100, "tolerance_px": 2,
                                         "per_label": {}}):
        page = text_of(report.build_report(run))
        assert "<b>Where:</b> for 99.0 % of the 100 defective test items the run catches" in page


def test_how_the_run_holds_under_camera_drift_is_on_the_accuracy_page_and_in_the_report(env):
    from test_pages_accuracy_embeddings import open_page, texts
    run = env["run"]
    assert "When the camera drifts" not in text_of(report.build_report(run))
    rows = [{"condition": c, "strength": s, "unit": "", "n_good": 20, "n_defect": 20, "goods_passed_n": 20 - i,
             "defects_caught_n": 20, "goods_passed": (20 - i) / 20, "defects_caught": 1.0, "held": i == 0}
            for i, (c, s) in enumerate((("none", 0.0), ("blur", 1.0)))]
    check = {"run_id": run.id, "items": "the run's test split", "rows": rows, "held": 1, "seed": 1000,
             "targets": {"goods_passed": 0.98, "defects_caught": 0.95, "defects_caught_blur": 0.9}}
    with metrics_with(run, drift_check=check):
        page = text_of(report.build_report(run))
        assert "When the camera drifts" in page and "19 of 20 (95.0 %)" in page and "blurred (sigma 1 px)" in page
        assert "1 of 2 conditions held" in page
        env_ = {"parquet": env["parquet"], "runs": env["runs"]}
        at = open_page(env_, "accuracy.py", run.id)
        [table] = [d.value for d in at.dataframe if "change" in d.value.columns]
        assert table["change"].tolist() == ["as taken", "blurred (sigma 1 px)"]
        assert table["held"].tolist() == ["yes", "no"]
        assert "1 of 2 conditions held" in texts(at)
        assert RunStore(env["runs"]).get(run.id).summary()["drift_held"] == 1


def test_what_the_run_does_with_inputs_that_are_not_the_part_is_on_the_accuracy_page_and_in_the_report(env):
    from test_pages_accuracy_embeddings import open_page, texts
    run = env["run"]
    assert "Inputs that are not the part" not in text_of(report.build_report(run))
    check = {"kinds": {"flat": {"n": 20, "GOOD": 0, "UNKNOWN": 20, "DEFECT": 0},
                       "all": {"n": 20, "GOOD": 0, "UNKNOWN": 20, "DEFECT": 0}},
             "held_out": {"half_covered": {"n": 20, "GOOD": 5, "UNKNOWN": 10, "DEFECT": 5},
                          "all": {"n": 20, "GOOD": 5, "UNKNOWN": 10, "DEFECT": 5}},
             "left_out": ["upside_down"], "good": 0, "n": 20, "held_out_good": 5, "held_out_n": 20}
    rows = R.not_a_part_rows(check)
    assert [(r["input"], r["designed on"], r["GOOD"]) for r in rows] == [
        ("flat frame (lamp off, lens cap)", True, 0), ("half covered", False, 5)]
    said = R.not_a_part_sentence(check)
    assert said.startswith("0 of 20 inputs that are not the part") and "Judged GOOD: half covered 5 of 20" in said
    assert "the part upside down" in said
    with metrics_with(run, not_a_part_check=check):
        page = text_of(report.build_report(run))
        assert "Inputs that are not the part" in page and "Judged GOOD: half covered 5 of 20" in page
        at = open_page({"parquet": env["parquet"], "runs": env["runs"]}, "accuracy.py", run.id)
        assert "Judged GOOD: half covered 5 of 20" in "\n".join(str(w.value) for w in at.warning)
        [table] = [d.value for d in at.dataframe if "designed on" in d.value.columns]
        assert table["GOOD"].tolist() == [0, 5]
