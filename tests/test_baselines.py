"""Baselines (snw_core.baselines, the classifier preset): 1 - p(good) metrics, held-out labels, open-set table."""
from __future__ import annotations

import io

import numpy as np
import pytest

from snw_core.baselines import hold_out, parse_labels, probability_metrics
from snw_core.presets import SettingsError, resolve_settings


def test_probability_metrics_on_hand_made_probabilities():
    # columns: sorted labels "0", "10", "3" -> the good column is the first
    p = np.array([[.9, .05, .05], [.8, .1, .1], [.2, .7, .1],       # train
                  [.95, 0, .05], [.1, .2, .7], [.6, .2, .2],       # val: threshold between 0.05/0.4 and 0.9
                  [.7, .1, .2], [.3, .3, .4], [.55, .0, .45]])      # test: scores 0.3, 0.7, 0.45
    labels = ["0", "0", "3", "0", "3", "0", "0", "10", "3"]
    split = ["train"] * 3 + ["val"] * 3 + ["test"] * 3
    m = probability_metrics(p, labels, split, ["3", "0", "10"])
    assert 0.4 <= m["threshold"] < 0.9
    assert m["auroc"] == 1.0
    caught = np.array([0.3, 0.7, 0.45]) > m["threshold"]
    assert m["escape_rate"] == pytest.approx(1 - caught[1:].mean())
    assert m["overkill_rate"] == float(caught[0])


def test_parse_labels():
    assert parse_labels("11, 12,") == ["11", "12"] and parse_labels(None) == [] and parse_labels("") == []


def test_classifier_preset_is_the_default_backbone_with_a_softmax():
    c, d = resolve_settings("classifier"), resolve_settings("default")
    assert c["pairing"] == "classify" and c["twin"] == d["twin"] == "conv"
    for k in ("normalize", "epochs", "batch_size", "learning_rate", "lr_schedule", "early_stopping_patience",
              "plateau_epochs", "embedding_dim", "split"):
        assert c[k] == d[k], k


def test_hold_out_keeps_the_split_and_the_unseen_test_items(tiny_parquet):
    from snw_core.train import prepare

    prep = prepare(str(tiny_parquet), "default")
    held = hold_out(prep, ["11", "12"])
    unseen = np.isin(prep.ds.labels, ["11", "12"])
    keep = ~(unseen & (prep.split != "test"))
    np.testing.assert_array_equal(held.ds.images, prep.ds.images[keep])
    np.testing.assert_array_equal(held.split, prep.split[keep])           # every other item keeps its split
    lab = held.ds.labels
    assert not np.isin(lab[held.split != "test"], ["11", "12"]).any()
    assert (np.isin(lab[held.split == "test"], ["11", "12"]).sum() == (unseen & (prep.split == "test")).sum() > 0)
    assert held.settings["unseen_labels"] == ["11", "12"] and "unseen_labels" not in prep.settings
    assert held.ds.content_hash != prep.ds.content_hash
    assert sorted(held.idx["train"].tolist()) == np.flatnonzero(held.split == "train").tolist()


@pytest.mark.parametrize("labels, match", [(["0"], "good label"), (["13"], "does not have"),
                                           ([str(k) for k in range(1, 13)], "every defect label")])
def test_hold_out_refuses(tiny_parquet, labels, match):
    from snw_core.train import prepare

    with pytest.raises(SettingsError, match=match):
        hold_out(prepare(str(tiny_parquet), "default"), labels)


def test_classifier_model_outputs_probabilities_and_loads_safely(tmp_path):
    from snw_core import model as M

    net = M.build_classifier(resolve_settings("classifier"), (26, 36), 13)
    x = np.random.default_rng(0).integers(0, 255, (4, 26, 36)).astype(np.float32)
    p = np.asarray(net.predict_on_batch(x))
    assert p.shape == (4, 13) and np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    M.save_embedder(net, tmp_path / "c.keras")
    np.testing.assert_allclose(np.asarray(M.load_embedder(tmp_path / "c.keras").predict_on_batch(x)), p, atol=1e-6)


@pytest.mark.slow
def test_bench_classifier_with_unseen_labels(tiny_parquet, tmp_path):
    from snw_core.bench import run_bench
    from snw_core.runs import RunStore

    out = io.StringIO()
    rows = run_bench(str(tiny_parquet), ["classifier", "default"], epochs=1, runs_dir=tmp_path / "runs",
                     quiet=True, out=out, unseen_labels=["11", "12"])
    assert [r["preset"] for r in rows] == ["classifier", "default"]
    for r in rows:
        o = r["open_set"]
        assert o["labels"] == ["11", "12"] and o["n_defect"] > 0 and 0 <= o["defects_caught"] <= 1
        assert 0 <= o["goods_passed"] <= 1
        run = RunStore(tmp_path / "runs").get(r["run_id"])
        assert run.config()["settings"]["unseen_labels"] == ["11", "12"]
    assert 0 <= rows[0]["open_set"]["p_good_defects_caught"] <= 1 and "p_good_goods_passed" in rows[0]["open_set"]
    assert "p_good_defects_caught" not in rows[1]["open_set"]           # the twin has no softmax
    p_good = RunStore(tmp_path / "runs").get(rows[0]["run_id"]).metrics()["p_good"]
    assert 0 <= p_good["good_defect_accuracy"] <= 1 and "auroc" in p_good
    assert "open set" in out.getvalue() and "classifier, 1 - p(good)" in out.getvalue()


def test_pairs_page_explains_the_classifier_preset(tmp_path, monkeypatch):
    from test_pages_gallery_pairs import app, page_path, texts

    from snw_core import synthetic
    monkeypatch.setenv("SNW_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SNW_DATA_CACHE", str(tmp_path / "data_cache"))
    env = {"parquet": str(synthetic.write_parquet(tmp_path / "tiny.parquet", n=130, seed=0))}
    at = app(env, page_path("pairs.py"))
    at.session_state["pairs_preset"] = "classifier"
    at.run()
    assert not at.exception
    t = texts(at)
    assert "cross-entropy on each image's label" in t and "Batch size (images)" == at.number_input(key="pairs_batch_size").label
