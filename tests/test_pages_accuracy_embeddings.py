"""AppTest smoke tests of the Accuracy and Embeddings pages on a hand-made finished run (no training, no UMAP)."""
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from snw_core import review as R

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def page_path(name: str) -> str:
    """The path app.py routes for a page file (e.g. 'pages/accuracy.py')."""
    m = re.search(r'st\.Page\(\s*"([^"]*\b' + re.escape(name) + ')"', Path(APP).read_text())
    assert m, f"app.py does not route {name}"
    return m.group(1)


def make_run(runs_root: Path, parquet: str, run_id: str, projection: bool = True, content_hash=None, unknown_rows=None):
    """A finished run written by hand: config, status, metrics, embeddings.npz (+ projection.parquet).

    unknown_rows : with it, a gate is fitted (gate.npz) and these rows are marked UNKNOWN in embeddings.npz."""
    from snw_core import data
    from snw_core.embed import project_pca, save_embeddings, save_projection
    from snw_core.metrics import evaluate_embeddings
    from snw_core.presets import resolve_settings
    from snw_core.runs import RunStore
    from snw_core.splits import stratified_split

    ds = data.load(parquet)
    settings = resolve_settings("seed")
    split = stratified_split(ds.labels, (0.6, 0.2, 0.2), seed=settings["seed"])
    rng = np.random.default_rng(1)
    names = ds.label_names
    centre = np.zeros((len(names), 8))
    centre[1:, :] = rng.normal(0, 1.0, (len(names) - 1, 8))          # pins away from the goods (label 0 at 0)
    emb = (centre[[names.index(x) for x in ds.labels]] + rng.normal(0, 0.6, (ds.n, 8))).astype(np.float32)
    metrics, scores = evaluate_embeddings(emb, ds.labels, split, good_label="0", k=3)
    pairs = R.pair_review(emb, ds.labels, split, seed=settings["seed"])
    run = RunStore(runs_root).create(run_id=run_id)
    run.write_config({"run_id": run_id, "preset": "seed", "settings": settings, "eval_pairs_per_image": 10,
                      "data": {"source": parquet, "content_hash": content_hash or ds.content_hash, "good_label": "0",
                               "n": ds.n, "image_shape": list(ds.image_shape)}})
    run.write_metrics({"pair_accuracy": pairs["pair_accuracy"], **metrics})
    run.write_status("done")
    extra = {}
    if unknown_rows is not None:
        from snw_core.train import GATE_ITEM_KEYS, fit_gate
        gate, checks = fit_gate(ds.images, ds.labels, split, "0")
        gate.save(run.file("gate.npz"))
        checks["unknown"] = np.zeros(ds.n, bool)
        checks["unknown"][unknown_rows] = True
        checks["local_defect"] = np.zeros(ds.n, bool)
        extra = {k: checks[k] for k in GATE_ITEM_KEYS}
    save_embeddings(run.file("embeddings.npz"), emb, ds.labels, split, scores, **extra)
    if projection:
        save_projection(run.file("projection.parquet"), project_pca(emb) * 3.0, "umap")   # stands in for UMAP
    return run, {"emb": emb, "labels": ds.labels, "split": split, "scores": scores, "metrics": metrics}


@pytest.fixture()
def env(tmp_path, monkeypatch):
    from snw_core import synthetic
    monkeypatch.setenv("SNW_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SNW_DATA_CACHE", str(tmp_path / "data_cache"))
    parquet = str(synthetic.write_parquet(tmp_path / "tiny.parquet", n=130, seed=0))
    return {"parquet": parquet, "runs": tmp_path / "runs"}


def open_page(env, page: str, run_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["data_source"] = env["parquet"]
    at.session_state["run_id"] = run_id
    at.run()
    at.switch_page(page_path(page)).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


def metric_values(at) -> dict:
    return {m.label: m.value for m in at.metric}


# --------------------------------------------------------------------------- accuracy

def test_accuracy_page_shows_the_stored_operating_point(env):
    run, d = make_run(env["runs"], env["parquet"], "acc-run")
    at = open_page(env, "accuracy.py", "acc-run")
    assert [t.value for t in at.title] == ["Accuracy"]
    m = d["metrics"]
    vals = metric_values(at)
    assert vals["Good/defect"] == R.pct(m["good_defect_accuracy"])
    assert vals["Escapes"] == R.pct(m["escape_rate"])
    assert vals["Overkill"] == R.pct(m["overkill_rate"])
    assert vals["Pair accuracy"] == R.pct(run.metrics()["pair_accuracy"])
    op = R.operating_point(d["scores"], d["labels"], d["split"], m["threshold"])
    t = texts(at)
    assert R.escape_sentence(op) in t and R.overkill_sentence(op) in t
    assert "The run's stored threshold" in t and "this is the threshold shown now" in t
    assert at.selectbox(key="accuracy_preset").value == R.PRESET_STORED
    assert len(at.get("plotly_chart")) == 3                          # two confusion matrices and the ROC
    assert "Images unavailable" not in t
    assert op["escapes"] > 0 and op["overkills"] > 0                 # the fake run makes both errors
    assert len(at.get("image")) == 2                                 # one thumbnail grid per tab
    assert "**Where:**" not in t                                     # a run without the measurement says nothing
    run.write_metrics({**run.metrics(), "localisation": {"share": 0.9875, "located": 79, "caught": 80,
                                                         "tolerance_px": 2, "per_label": {}}})
    t = texts(open_page(env, "accuracy.py", "acc-run"))
    assert f"for {R.pct(0.9875)} of the 80 defective test items the run catches" in t, t


def test_accuracy_slider_and_presets_recompute(env):
    _, d = make_run(env["runs"], env["parquet"], "acc-run")
    at = open_page(env, "accuracy.py", "acc-run")
    before = metric_values(at)
    slider = at.slider(key="accuracy_threshold")
    slider.set_value(float(slider.min)).run()                         # below every score: everything is a defect
    assert not at.exception
    after = metric_values(at)
    assert after != before
    assert after["Escapes"] == "0.0 %" and after["Overkill"] == "100.0 %"
    assert at.selectbox(key="accuracy_preset").value == R.PRESET_MANUAL
    assert "No escapes on the test split" in texts(at)

    at.selectbox(key="accuracy_preset").set_value(R.PRESET_ZERO).run()
    expect = R.preset_threshold(R.PRESET_ZERO, d["scores"], d["labels"], d["split"])
    assert at.slider(key="accuracy_threshold").value == pytest.approx(expect)

    at.number_input(key="accuracy_max_escape").set_value(50.0).run()   # editing X selects that preset
    assert not at.exception
    assert at.selectbox(key="accuracy_preset").value == R.PRESET_MAX_ESCAPE
    expect = R.preset_threshold(R.PRESET_MAX_ESCAPE, d["scores"], d["labels"], d["split"], max_escape=0.5)
    assert at.slider(key="accuracy_threshold").value == pytest.approx(expect)
    op = R.operating_point(d["scores"], d["labels"], d["split"], expect)
    assert metric_values(at)["Escapes"] == R.pct(op["escape_rate"])


def test_accuracy_images_unavailable_when_data_changed(env):
    make_run(env["runs"], env["parquet"], "acc-run", content_hash="f" * 64)
    at = open_page(env, "accuracy.py", "acc-run")
    assert "Images unavailable" in texts(at)
    assert len(at.metric) == 5                                       # the numbers still show


def test_accuracy_without_a_run_says_so(env):
    at = open_page(env, "accuracy.py", None)
    assert "No run selected" in texts(at)


# --------------------------------------------------------------------------- embeddings

def test_embeddings_page_shows_the_stored_projection(env):
    make_run(env["runs"], env["parquet"], "emb-run")
    at = open_page(env, "embeddings.py", "emb-run")
    assert [t.value for t in at.title] == ["Embeddings"]
    t = texts(at)
    assert "UMAP of 8-d embeddings · 130 items" in t
    assert len(at.get("plotly_chart")) == 1
    assert "No selection yet" in t
    assert not [b for b in at.button if b.key == "embeddings_compute_umap"]
    at.session_state["embeddings_split"] = "test"
    at.run()
    assert not at.exception
    n_test = int(np.sum(np.load(Path(env["runs"]) / "emb-run" / "embeddings.npz")["split"] == "test"))
    assert f"{n_test} items (test split)" in texts(at)
    at.radio(key="embeddings_method").set_value("PCA").run()
    assert not at.exception and "PCA of 8-d embeddings" in texts(at)


def test_embeddings_without_projection_offers_pca_and_umap_button(env):
    make_run(env["runs"], env["parquet"], "noproj", projection=False)
    at = open_page(env, "embeddings.py", "noproj")
    t = texts(at)
    assert "no stored UMAP projection" in t and "PCA of 8-d embeddings" in t
    assert at.button(key="embeddings_compute_umap") is not None
    assert len(at.get("plotly_chart")) == 1


def test_accuracy_offers_the_checks_to_a_run_trained_before_them(env, monkeypatch):
    """A run without the drift and not-a-part checks: the page says so and offers an engineer the button; the job
    runs in the background and a failure is shown with the child's last line."""
    import io

    from snw_core import actions
    make_run(env["runs"], env["parquet"], "old-run")
    started = []

    class Failed:
        returncode = 2

        def poll(self):
            return self.returncode

    def fake_start(run, actor, store=None, stderr=None):
        started.append((run.id, actor.name))
        stderr.write(b"some warning first\nerror: Run 'old-run' cannot be checked: its data source\nhas changed\n")
        return Failed()

    monkeypatch.setattr(actions, "start_checks", fake_start)
    at = open_page(env, "accuracy.py", "old-run")
    assert "trained before every training ended with the camera-drift check" in texts(at)
    at.button(key="accuracy_run_checks").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert started == [("old-run", "local")]
    assert "The checks failed: Run 'old-run' cannot be checked: its data source has changed" in texts(at)


def test_a_viewer_is_not_offered_the_checks(env, monkeypatch):
    monkeypatch.setenv("SNW_VIEWER_ONLY", "1")
    make_run(env["runs"], env["parquet"], "old-run")
    at = open_page(env, "accuracy.py", "old-run")
    assert "Running and storing the checks is for engineers" in texts(at)
    assert not [b for b in at.button if b.key == "accuracy_run_checks"]


def test_accuracy_counts_unknown_goods_as_overkill_and_unknown_defects_as_caught(env):
    from snw_core import data
    from snw_core.splits import stratified_split
    ds = data.load(env["parquet"])
    split = stratified_split(ds.labels, (0.6, 0.2, 0.2), seed=0)
    te_good = np.flatnonzero((split == "test") & (ds.labels == "0"))[:2]
    te_def = np.flatnonzero((split == "test") & (ds.labels != "0"))[:1]
    run, d = make_run(env["runs"], env["parquet"], "acc-unknown", unknown_rows=np.concatenate([te_good, te_def]))
    at = open_page(env, "accuracy.py", "acc-unknown")
    thr = at.slider(key="accuracy_threshold").value
    plain = R.operating_point(d["scores"], d["labels"], d["split"], thr, "0")
    forced = np.zeros(len(d["scores"]), bool)
    forced[np.concatenate([te_good, te_def])] = True
    from snw_core.metrics import effective_scores
    want = R.operating_point(effective_scores(d["scores"], forced), d["labels"], d["split"], thr, "0")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Overkill"] == R.pct(want["overkill_rate"])
    assert metrics["Escapes"] == R.pct(want["escape_rate"])
    assert want["overkills"] >= 2 and want["overkills"] >= plain["overkills"]
    n_test = int((d["split"] == "test").sum())
    assert metrics["UNKNOWN"] == R.pct(3 / n_test)
    at.toggle(key="accuracy_heatmaps").set_value(True).run()
    assert not at.exception, [e.message for e in at.exception]


def test_a_run_that_rejects_every_good_part_is_marked_unusable(env):
    run, _ = make_run(env["runs"], env["parquet"], "bad-run")
    run.write_metrics({**run.metrics(), "overkill_rate": 1.0, "escape_rate": 0.0})   # a collapsed twin's result
    at = open_page(env, "accuracy.py", "bad-run")
    errors = "\n".join(e.value for e in at.error)
    assert "cannot tell good parts from defective ones" in errors and "rejects 100% of the good test items" in errors
    from snw_core import ui
    assert ui.run_label(run).startswith("UNUSABLE · bad-run")
    good, _ = make_run(env["runs"], env["parquet"], "good-run")
    at = open_page(env, "accuracy.py", "good-run")
    assert not [e.value for e in at.error if "cannot tell" in e.value]
    assert not [w.value for w in at.warning if "worse than chance" in w.value]
    assert "UNUSABLE" not in ui.run_label(good)
    inverted, _ = make_run(env["runs"], env["parquet"], "inverted-twin")
    inverted.write_metrics({**inverted.metrics(), "auroc": 0.17})     # judged by the gate's evidence alone
    at = open_page(env, "accuracy.py", "inverted-twin")
    assert [w.value for w in at.warning if "worse than chance (AUROC 0.17)" in w.value]
    assert not [e.value for e in at.error if "cannot tell" in e.value]
    assert not [i.value for i in at.info if "left them out" in i.value]
    assert not [w.value for w in at.warning if "epoch budget ran out" in w.value]
    short, _ = make_run(env["runs"], env["parquet"], "short-budget")     # stopped by its budget while improving
    short.write_metrics({**short.metrics(), "auroc": 0.946, "best_epoch": 11, "epochs_run": 11,
                         "best_weights_restored": True})
    at = open_page(env, "accuracy.py", "short-budget")
    assert [w.value for w in at.warning if "epoch budget ran out" in w.value and "AUROC 0.946" in w.value]
    faulty, _ = make_run(env["runs"], env["parquet"], "faulty-data")       # the gate left junk out of its limits
    m = faulty.metrics()
    faulty.write_metrics({**m, "gate": {**m.get("gate", {}), "images_set_aside": 3, "local_set_aside": 1}})
    at = open_page(env, "accuracy.py", "faulty-data")
    info = "\n".join(i.value for i in at.info)
    assert "3 images far from every other image" in info and "1 val item filed as good" in info
    assert "audit faulty-data" in info
