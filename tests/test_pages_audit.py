"""AppTest smoke tests of the Audit page on a hand-made finished run of a data set with planted faults."""
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from snw_core import data
from snw_core.corrections import read_corrections
from snw_core.plant import read_truth
from test_audit import cluster_embeddings, fake_run
from test_pages_accuracy_embeddings import page_path, texts

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture()
def env(tmp_path, monkeypatch):
    from snw_core import synthetic
    from snw_core.plant import plant, write_planted
    monkeypatch.setenv("SNW_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SNW_DATA_CACHE", str(tmp_path / "data_cache"))
    images, labels, dirnames = synthetic.generate(130, seed=0)
    got = plant(images, labels, dirnames, label_noise=0.03, duplicates=2, outliers=1, seed=3)
    parquet, truth_csv = write_planted(tmp_path / "planted.parquet", got)
    ds = data.load(str(parquet))
    true = ds.labels.copy()
    truth = read_truth(truth_csv)
    for t in truth:
        true[t["row"]] = t["true_label"]
    run = fake_run(tmp_path / "runs", parquet, ds, cluster_embeddings(true))
    run.write_metrics({"good_defect_accuracy": 0.9})
    return {"parquet": str(parquet), "run": run, "ds": ds, "truth": truth, "runs": tmp_path / "runs"}


def open_audit(env, run_id) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["data_source"] = env["parquet"]
    at.session_state["run_id"] = run_id
    at.run()
    at.switch_page(page_path("audit.py")).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_audit_page_counts_lists_and_saves_a_decision(env):
    at = open_audit(env, env["run"].id)
    assert [t.value for t in at.title] == ["Audit"]
    n_wrong = sum(t["kind"] == "label" for t in env["truth"])
    counts = {m.label: m.value for m in at.metric}
    assert counts["Wrong label?"] == str(n_wrong) and counts["Outlier"] == "1"
    assert env["run"].file("audit.json").exists()                # cached for the next visit
    wrong = {t["row"]: t["true_label"] for t in env["truth"] if t["kind"] == "label"}
    row = next(iter(wrong))
    box = at.selectbox(key=f"audit_decision_{row}")
    box.set_value(f"relabel to {wrong[row]}")
    at.button(key="audit_save").click().run()
    assert not at.exception
    files = list((env["runs"] / ".corrections").glob("*.csv"))
    assert len(files) == 1
    meta, entries = read_corrections(files[0])
    assert meta["content_hash"] == env["ds"].content_hash
    assert entries == [{"row": row, "given_label": env["ds"].labels[row], "new_label": wrong[row],
                        "note": entries[0]["note"]}]
    assert "decisions: 1 in" in texts(at)
    at.button(key="audit_accept_all").click().run()
    _, entries = read_corrections(files[0])
    assert {e["row"]: e["new_label"] for e in entries} == wrong


def test_audit_page_filters_by_kind(env):
    at = open_audit(env, env["run"].id)
    at.multiselect(key="audit_kinds").set_value(["outlier"]).run()
    outlier = [t["row"] for t in env["truth"] if t["kind"] == "outlier"]
    boxes = [b.key for b in at.selectbox if b.key.startswith("audit_decision_")]
    assert boxes == [f"audit_decision_{r}" for r in outlier]


def test_audit_page_without_a_run_says_so(env):
    import shutil
    shutil.rmtree(env["run"].path)
    at = open_audit(env, None)
    assert "No run selected" in texts(at)


def test_gallery_filters_flagged_and_embeddings_rings_them(env):
    from snw_core.audit import audit_run
    flags = audit_run(env["run"])["flags"]
    flagged = sorted({f["row"] for f in flags})
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["data_source"] = env["parquet"]
    at.session_state["run_id"] = env["run"].id
    at.run()
    assert not at.exception
    at.session_state["gallery_page_size"] = 60
    at.toggle(key="gallery_flagged").set_value(True).run()
    assert not at.exception
    assert f"Items 1-{len(flagged)} of {len(flagged)} " in "\n".join(c.value for c in at.caption)
    captions = [i.caption for i in at.get("image")[0].proto.imgs]
    assert sorted(int(c.split(" ")[0][1:]) for c in captions) == flagged
    at.switch_page(page_path("embeddings.py")).run()
    assert not at.exception
    at.toggle(key="embeddings_flagged").set_value(True).run()
    assert not at.exception
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    ring = [t for t in fig["data"] if t.get("name") == "flagged by the audit"]
    assert len(ring) == 1 and len(ring[0]["text"]) == len(flagged)


def test_train_page_offers_the_data_sets_corrections_files_and_passes_the_chosen_one(env, monkeypatch):
    from snw_core import launch
    from snw_core.corrections import write_corrections
    ds = env["ds"]
    path = write_corrections(env["runs"] / ".corrections" / "fix.csv",
                             [{"row": 0, "given_label": ds.labels[0], "new_label": "exclude", "note": ""}],
                             ds.source, ds.content_hash)
    calls = []
    monkeypatch.setattr(launch, "start_training", lambda source, preset, overrides, **kw:
                        calls.append(kw) or env["run"].id)
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["data_source"] = env["parquet"]
    at.run()
    at.switch_page(page_path("train.py")).run()
    box = at.selectbox(key="train_corrections")
    assert box.options == ["none", str(path)]
    box.set_value(str(path))
    at.button(key="train_start").click().run()
    assert not at.exception
    assert calls and calls[0]["corrections"] == str(path)


def test_a_viewer_sees_the_audit_but_cannot_save(env, monkeypatch):
    at = open_audit(env, env["run"].id)                        # drawn for an engineer ...
    monkeypatch.setenv("SNW_VIEWER_ONLY", "1")                 # ... then the dashboard turns viewer-only
    at.button(key="audit_accept_all").click().run()            # the click comes back to a viewer's page
    assert not list((env["runs"] / ".corrections").glob("*.csv"))
    assert at.button(key="audit_save").disabled and at.button(key="audit_accept_all").disabled
    assert all(b.disabled for b in at.selectbox if b.key.startswith("audit_decision_"))
    assert "Saving decisions is for engineers" in texts(at)
