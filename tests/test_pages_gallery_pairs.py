"""AppTest smoke tests of the Gallery and Pairs pages on a tiny data set (no training: a hand-made run folder)."""
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def page_path(name: str) -> str:
    """The path app.py routes for a page file (e.g. 'pages/pairs.py'), whatever the folder is called."""
    m = re.search(r'st\.Page\(\s*"([^"]*\b' + re.escape(name) + ')"', Path(APP).read_text())
    assert m, f"app.py does not route {name}"
    return m.group(1)


@pytest.fixture()
def env(tmp_path, monkeypatch):
    """Isolated run store and data cache, and a tiny parquet (130 items, 26 x 36)."""
    from snw_core import synthetic
    monkeypatch.setenv("SNW_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SNW_DATA_CACHE", str(tmp_path / "data_cache"))
    path = synthetic.write_parquet(tmp_path / "tiny.parquet", n=130, seed=0)
    return {"parquet": str(path), "runs": tmp_path / "runs", "tmp": tmp_path}


def fake_run(runs_root: Path, ds, content_hash=None, run_id="fake-run", preset="seed"):
    """A finished run without training: config, status, metrics and embeddings that separate labels well."""
    from snw_core.embed import save_embeddings
    from snw_core.presets import resolve_settings
    from snw_core.runs import RunStore
    run = RunStore(runs_root).create(run_id=run_id)
    run.write_config({"run_id": run_id, "preset": preset, "settings": resolve_settings(preset),
                      "data": {"source": ds.source, "content_hash": content_hash or ds.content_hash,
                               "good_label": ds.good_label, "n": ds.n}})
    run.write_status("done")
    run.write_metrics({"pair_accuracy": 0.9, "good_defect_accuracy": 0.95})
    names = ds.label_names
    rng = np.random.default_rng(0)
    emb = np.eye(len(names), dtype=np.float32)[[names.index(x) for x in ds.labels]] * 2.0
    emb += rng.normal(0, 0.05, emb.shape).astype(np.float32)
    save_embeddings(run.file("embeddings.npz"), emb, ds.labels, np.full(ds.n, "train"), np.zeros(ds.n))
    return run


def app(env, page=None, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["data_source"] = env["parquet"]
    for k, v in state.items():
        at.session_state[k] = v
    at.run()          # the default page (Gallery) through the router first
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [e.value for e in at.error] + [w.value for w in at.warning]
    return "\n".join(str(p) for p in parts)


# --------------------------------------------------------------------------- gallery

def test_gallery_renders_summary_label_distribution_and_thumbnails(env):
    at = app(env)
    assert [t.value for t in at.title] == ["Gallery"]
    assert at.metric[0].value == "130"
    assert at.metric[1].value == "26 x 36 px"
    for key in ("gallery_show", "gallery_split", "gallery_page_size", "gallery_scale", "gallery_page"):
        assert at.session_state[key] is not None
    t = texts(at)
    assert "60/20/20 with seed 0" in t
    assert "Items 1-48 of 130" in t
    assert len(at.get("image")) == 1                  # one st.image element holds the page of thumbnails
    # the label distribution: bars in a table at first, no plotly chart (plotly.js slows the first page) ...
    html = "".join(e.proto.body for e in at.get("html"))
    assert "pin 12" in html and "items (all splits)" in html
    assert len(at.get("plotly_chart")) == 0
    # ... the interactive chart in a tab that runs only when opened
    at.session_state["gallery_label_view"] = "Chart (interactive)"
    at.run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 1


def test_gallery_filters_and_paging(env):
    at = app(env)
    at.selectbox(key="gallery_show").set_value("good").run()
    assert "of 43 (good only" in texts(at)
    at.selectbox(key="gallery_split").set_value("test").run()
    assert not at.exception
    t = texts(at)
    assert "good only" in t and "test split" in t
    at.selectbox(key="gallery_show").set_value("all").run()
    at.selectbox(key="gallery_split").set_value("all").run()
    at.selectbox(key="gallery_page_size").set_value(12).run()
    at.number_input(key="gallery_page").set_value(11).run()
    assert not at.exception
    assert "Items 121-130 of 130" in texts(at)
    # a narrower filter leaves fewer pages: the page number is pulled back into range, no exception
    at.selectbox(key="gallery_show").set_value("3").run()
    assert not at.exception
    assert at.number_input(key="gallery_page").value == 1


def test_gallery_bad_source_shows_error_and_keeps_working(env):
    bad = env["tmp"] / "empty.parquet"
    bad.write_bytes(b"")
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["data_source"] = str(bad)
    at.run()
    assert not at.exception
    assert any("empty" in e.value for e in at.error)
    at.session_state["data_source"] = env["parquet"]
    at.run()
    assert not at.exception and at.metric[0].value == "130"


def test_gallery_switching_source_resets_a_missing_filter(env):
    """A folder set with labels OK / NG_1 / NG_2 after the tiny set filtered on pin 12: no exception, filter reset."""
    from conftest import write_png_folder
    rng = np.random.default_rng(0)
    imgs = lambda k: [rng.integers(0, 255, (8, 10), dtype=np.uint8) for _ in range(k)]  # noqa: E731
    folder = write_png_folder(env["tmp"] / "folder", {"OK": imgs(6), "NG_1": imgs(4), "NG_2": imgs(4)})
    at = app(env)
    at.selectbox(key="gallery_show").set_value("12").run()
    at.session_state["data_source"] = str(folder)
    at.session_state["good_label"] = "OK"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.metric[0].value == "14" and at.metric[1].value == "8 x 10 px"
    assert at.selectbox(key="gallery_show").value == "all"
    assert at.selectbox(key="gallery_show").options[:4] == ["all items", "good only (label OK)", "all defects",
                                                              "defects at pin NG_1"]
    at.switch_page(page_path("pairs.py")).run()
    assert not at.exception, [e.message for e in at.exception]


# --------------------------------------------------------------------------- pairs

def test_pairs_seed_preset_without_run(env):
    at = app(env, page_path("pairs.py"))
    assert [t.value for t in at.title] == ["Pairs"]
    for key in ("pairs_preset", "pairs_seed", "pairs_per_image", "pairs_split", "pairs_show", "pairs_page_size",
                "pairs_page"):
        assert at.session_state[key] is not None, key
    t = texts(at)
    assert "seed scheme" in t and "Pick a finished run" in t
    assert "**Positive**" in t and "**Negative**" in t
    at.number_input(key="pairs_per_image").set_value(2).run()
    at.number_input(key="pairs_seed").set_value(3).run()
    at.selectbox(key="pairs_show").set_value("negative").run()
    assert not at.exception
    assert "**Positive**" not in texts(at)


def test_pairs_default_preset_in_batch(env):
    at = app(env, page_path("pairs.py"))
    at.session_state["pairs_preset"] = "default"
    at.run()
    assert not at.exception
    t = texts(at)
    assert "all pairs inside each batch" in t
    bs = at.number_input(key="pairs_batch_size")
    assert bs.value <= 130                 # clamped to the train split of the tiny set
    bs.set_value(39).run()                 # 13 labels -> K = 3 images of each, 39 images
    assert not at.exception
    t = texts(at)
    assert "3 images of each of the 13 labels" in t
    assert "its 741 pairs (39 positive, 702 negative)" in t    # 39 * 38 / 2; 13 labels x 3 same-label pairs
    assert "exactly training's first batch" in t


def test_pairs_with_matching_run_shows_distances(env):
    from snw_core.data import load
    ds = load(env["parquet"])
    fake_run(env["runs"], ds)
    at = app(env, page_path("pairs.py"), run_id="fake-run")
    t = texts(at)
    assert "d = " in t and "judged" in t
    assert at.metric[0].label.startswith("Pair accuracy")
    assert float(at.metric[0].value.rstrip("%")) > 95     # the fake embeddings separate the labels
    assert at.metric[3].value == "90.0%"
    assert len(at.get("plotly_chart")) == 1
    at.selectbox(key="pairs_show").set_value("wrong").run()
    assert not at.exception
    at.session_state["pairs_preset"] = "default"
    at.run()
    assert not at.exception
    assert "trained with the seed preset" in texts(at)


def test_pairs_with_run_on_other_data_says_so(env):
    from snw_core.data import load
    ds = load(env["parquet"])
    fake_run(env["runs"], ds, content_hash="f" * 64)
    at = app(env, page_path("pairs.py"), run_id="fake-run")
    t = texts(at)
    assert "trained on other data" in t
    assert "d = " not in t


def test_gallery_without_a_split_still_shows_labels_and_images(env):
    """Three items cannot fill train, val and test: a warning, the label table without split columns, images."""
    from conftest import write_png_folder
    rng = np.random.default_rng(1)
    folder = write_png_folder(env["tmp"] / "three", {"OK": [rng.integers(0, 255, (8, 10), dtype=np.uint8)] * 2,
                                                     "NG_1": [rng.integers(0, 255, (8, 10), dtype=np.uint8)]})
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["data_source"] = str(folder)
    at.session_state["good_label"] = "OK"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("No train/val/test split" in w.value for w in at.warning)
    html = "".join(e.proto.body for e in at.get("html"))
    assert "pin NG_1" in html and ">train<" not in html
    assert "Items 1-3 of 3" in texts(at)


def test_gallery_and_pairs_say_when_the_data_set_fixes_its_own_split(env, monkeypatch):
    from snw_core import data, synthetic
    ds = data.load(env["parquet"])
    own = np.array(["train", "val", "test", "train", "train"] * (ds.n // 5))
    path = synthetic.write_images_parquet(env["tmp"] / "own.parquet", ds.images, ds.labels, ds.dirnames, splits=own)
    monkeypatch.setenv("SNW_DATA_ROOTS", str(env["tmp"]))
    at = app({**env, "parquet": str(path)})
    t = texts(at)
    assert "the data set's own (its 'split' column)" in t and "60/20/20 with seed 0" not in t
    counts = " / ".join(f"{int((own == s).sum()):,}" for s in ("train", "val", "test"))
    assert at.metric[4].value == counts
    pairs = app({**env, "parquet": str(path)}, page="app_pages/pairs.py")
    assert "fixes its own split" in texts(pairs)
