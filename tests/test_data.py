"""Data sources and bad input (design.md 'Data sources')."""
import time

import numpy as np
import pytest

from conftest import png_bytes, write_parquet_rows, write_png_folder
from snw_core import data
from snw_core.data import DataError


def test_default_source_matches_the_seed_schema():
    ds = data.load("default")
    assert ds.images.shape == (3600, 26, 36) and ds.images.dtype == np.uint8
    assert ds.counts() == {"0": 1200, **{str(p): 200 for p in range(1, 13)}}
    assert ds.label_names[:3] == ["0", "1", "2"] and ds.label_names[-1] == "12"   # natural order
    assert set(ds.dirnames[ds.labels == "7"]) == {"NG_07"}
    assert ds.source == "default" and len(ds.content_hash) == 64


def test_decoded_arrays_are_cached_by_content(tiny_parquet):
    first = data.load(str(tiny_parquet))
    cached = list((data.data_cache_dir() / "decoded").glob("pq-*.npz"))
    assert cached, "decoded arrays were not cached"
    again = data.load(str(tiny_parquet))
    np.testing.assert_array_equal(first.images, again.images)
    assert first.content_hash == again.content_hash


def test_parquet_and_folder_of_the_same_images_agree(tmp_path, tiny_dataset):
    imgs = {lab: tiny_dataset.images[tiny_dataset.labels == lab] for lab in tiny_dataset.label_names}
    folder = write_png_folder(tmp_path / "imgs", imgs)
    ds = data.load(str(folder))
    assert ds.counts() == tiny_dataset.counts()
    for lab in tiny_dataset.label_names:
        got = ds.images[ds.labels == lab]
        np.testing.assert_array_equal(np.sort(got.reshape(len(got), -1), axis=0),
                                      np.sort(imgs[lab].reshape(len(got), -1), axis=0))


def test_colour_images_become_grayscale(tmp_path):
    from PIL import Image
    rgb = np.zeros((26, 36, 3), np.uint8)
    rgb[..., 0] = 200
    blobs = []
    for arr in (rgb, rgb):
        import io
        b = io.BytesIO()
        Image.fromarray(arr).save(b, format="PNG")
        blobs.append(b.getvalue())
    p = write_parquet_rows(tmp_path / "rgb.parquet", ["0", "3"], blobs)
    ds = data.load(str(p))
    assert ds.images.shape == (2, 26, 36)
    assert ds.images[0, 0, 0] == round(200 * 299 / 1000)   # ITU-R 601-2 luma of pure red


def test_images_deeper_than_8_bits_are_refused_not_clipped(tmp_path):
    """A 12-bit camera's pictures saved as 16-bit PNG: converted to 8-bit grayscale every value above 255 became
    white (a whole data set of white frames, trained on without a word)."""
    import io

    from PIL import Image
    deep = []
    for v in (1000, 3000, 4000):
        b = io.BytesIO()
        Image.fromarray(np.full((26, 36), v, np.uint16)).save(b, format="PNG")
        deep.append(b.getvalue())
    p = write_parquet_rows(tmp_path / "deep.parquet", ["0", "3", "0", "5"], [png_bytes(np.zeros((26, 36)))] + deep)
    with pytest.raises(DataError, match=r"3 image\(s\) in .* more than 8 bits per pixel .*mode I;16.*rows 1, 2, 3\.$"):
        data.load(str(p))
    root = tmp_path / "folder"
    for i in range(12):
        (root / "0").mkdir(parents=True, exist_ok=True)
        (root / "0" / f"{i:02d}.png").write_bytes(deep[0])
    (root / "4").mkdir()
    (root / "4" / "a.png").write_bytes(png_bytes(np.zeros((26, 36))))
    with pytest.raises(DataError, match=r"files 0/00.png, 0/01.png, .*0/07.png and 4 more\.$"):
        data.load(str(root))


def test_text_labels_with_good_label(tmp_path):
    blobs = [png_bytes(np.full((8, 8), i * 10)) for i in range(16)]
    labels = ["good"] * 8 + ["pin-A"] * 4 + ["pin-B"] * 4
    p = write_parquet_rows(tmp_path / "text.parquet", labels, blobs)
    ds = data.load(str(p), good_label="good")
    data.check_trainable(ds)
    assert ds.label_names == ["good", "pin-A", "pin-B"]
    assert int(ds.is_defect.sum()) == 8
    # without --good-label there is no '0' label: no good items, said plainly
    with pytest.raises(DataError, match="no good items.*--good-label"):
        data.check_trainable(data.load(str(p)))


@pytest.mark.parametrize("case, pattern", [
    ("missing_image", r"lacks the column\(s\) image"),
    ("missing_label", r"lacks the column\(s\) label"),
    ("empty_file", "is empty"),
    ("not_parquet", "could not be read as parquet"),
    ("corrupt_rows", r"could not be read \(corrupt or not an image\): rows 1, 3"),
    ("mixed_sizes", r"2 sizes: 8 x 8 px .* 10 x 12 px"),
    ("one_label", "only one label"),
    ("huge_image", "too large"),
])
def test_bad_parquet_gets_one_clear_paragraph(tmp_path, case, pattern):
    import pyarrow as pa
    import pyarrow.parquet as pq
    ok = png_bytes(np.zeros((8, 8)))
    p = tmp_path / f"{case}.parquet"
    if case == "missing_image":
        pq.write_table(pa.table({"label": ["0", "1"]}), p)
    elif case == "missing_label":
        write_parquet_rows(p, ["0", "1"], [ok, ok])
        pq.write_table(pq.read_table(p).drop_columns(["label"]), p)
    elif case == "empty_file":
        p.write_bytes(b"")
    elif case == "not_parquet":
        p.write_text("label,image\n0,abc\n")
    elif case == "corrupt_rows":
        write_parquet_rows(p, ["0", "1", "0", "1"], [ok, b"\x89PNG garbage", ok, b"not an image"])
    elif case == "mixed_sizes":
        write_parquet_rows(p, ["0", "1", "1"], [ok, ok, png_bytes(np.zeros((10, 12)))])
    elif case == "one_label":
        write_parquet_rows(p, ["0", "0"], [ok, ok])
    elif case == "huge_image":   # a decompression bomb: 6000 x 6000 px of zeros is a few kB of PNG
        from PIL import Image
        import io
        b = io.BytesIO()
        Image.new("L", (6000, 6000)).save(b, format="PNG")
        assert len(b.getvalue()) < 100_000
        write_parquet_rows(p, ["0", "1"], [ok, b.getvalue()])
    with pytest.raises(DataError, match=pattern) as e:
        data.load(str(p))
    assert "Traceback" not in str(e.value) and "\n" not in str(e.value)


def test_no_defects_or_no_goods_say_what_is_missing(tmp_path):
    ok = png_bytes(np.zeros((8, 8)))
    p = write_parquet_rows(tmp_path / "pins.parquet", ["3", "4"] * 8, [ok] * 16)
    with pytest.raises(DataError, match="no good items"):
        data.check_trainable(data.load(str(p)))


def test_folder_bad_cases(tmp_path):
    img = np.zeros((8, 8))
    root = write_png_folder(tmp_path / "ok", {"0": [img] * 3, "5": [img] * 3})
    (root / "5" / "notes.txt").write_text("hello")
    (root / "7").mkdir()                                   # an empty label folder
    ds = data.load(str(root))
    assert ds.counts() == {"0": 3, "5": 3}
    assert any("notes.txt" in w for w in ds.warnings) and any("'7/'" in w for w in ds.warnings)

    nested = write_png_folder(tmp_path / "nested", {"0": [img], "1": [img]})
    (nested / "1" / "deeper").mkdir()
    with pytest.raises(DataError, match="sub-folders"):
        data.load(str(nested))

    with pytest.raises(DataError, match="no sub-folders"):
        (tmp_path / "flat").mkdir()
        data.load(str(tmp_path / "flat"))

    bad = write_png_folder(tmp_path / "bad", {"0": [img], "1": [img]})
    (bad / "1" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="files 1/broken.png"):
        data.load(str(bad))

    sizes = write_png_folder(tmp_path / "sizes", {"0": [img] * 3, "1": [img, np.zeros((10, 12))]})
    with pytest.raises(DataError, match=r"8 x 8 px \(height x width\) in 4 images, e.g\. files 0/.*\.png, 0/.*; "
                                        r"10 x 12 px \(height x width\) in 1 image, files 1/1\.png\. Resize"):
        data.load(str(sizes))


def test_unknown_source():
    with pytest.raises(DataError, match="neither"):
        data.load("/no/such/thing.parquet")


def test_hub_offline_fails_fast_with_a_clear_message():
    t = time.time()
    with pytest.raises(DataError) as e:
        data.load("hub:YxBxRyXJx/SNWimages_train_1110")
    assert time.time() - t < 10
    msg = str(e.value)
    assert "YxBxRyXJx/SNWimages_train_1110" in msg and "cannot be reached" in msg and "parquet" in msg


def test_hub_probe_gives_up_quickly_on_an_unresolvable_host(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    t = time.time()
    assert data._hub_reachable(host="hub.invalid", timeout=3) is False
    assert time.time() - t < 5


def test_bad_hub_id_is_refused():
    with pytest.raises(DataError, match="not a Hugging Face data set id"):
        data.load("hub:../../etc")


@pytest.mark.slow
def test_hub_loader_runs_the_real_datasets_code_on_a_local_copy(tmp_path, tiny_parquet, tiny_dataset):
    """The Hub path (datasets.load_dataset -> our parquet cache -> Dataset), fed a local folder instead of the Hub."""
    repo = tmp_path / "fake_hub_repo"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "train-00000-of-00001.parquet").write_bytes(tiny_parquet.read_bytes())
    ds = data._load_hub("someone/snw_copy", "hub:someone/snw_copy", reachable=True, hub_path=str(repo))
    assert ds.n == tiny_dataset.n and ds.content_hash == tiny_dataset.content_hash
    assert data.hub_cache_file("someone/snw_copy").exists()
    # the second time it loads from data_cache/ without the network
    again = data.load("hub:someone/snw_copy")
    assert again.content_hash == ds.content_hash


def test_labels_with_too_few_items_are_named(tmp_path):
    """A label of one or two items cannot be in train, val and test: data check and the Gallery say which."""
    ok = png_bytes(np.zeros((8, 8)))
    p = write_parquet_rows(tmp_path / "few.parquet", ["0"] * 8 + ["3"] * 3 + ["10"] * 2 + ["7"], [ok] * 14)
    ds = data.load(str(p))
    (w,) = ds.warnings
    assert w.startswith("2 label(s) with fewer than 3 items: '7' (1), '10' (2).")
    assert data.summary(ds)["warnings"] == [w]
    assert data.few_items_warnings(["0"] * 3 + ["1"] * 3) == []


def test_a_data_set_may_fix_its_own_split_and_a_run_follows_it(tmp_path, tiny_dataset):
    """A 'split' column (train / val or validation / test) is read, kept through the decode cache, changes the
    content hash, and is the split a run prepares (and the one the pages show); the same images without the column
    hash as before and get a drawn split."""
    from snw_core import synthetic, train, ui
    ds = tiny_dataset
    own = np.where(np.arange(ds.n) % 5 == 0, "test", np.where(np.arange(ds.n) % 5 == 1, "validation", "train"))
    path = tmp_path / "own.parquet"
    synthetic.write_images_parquet(path, ds.images, ds.labels, ds.dirnames, splits=own)
    want = np.where(own == "validation", "val", own)
    for _ in range(2):                                           # decoded, then from the cache
        got = data.load(str(path))
        np.testing.assert_array_equal(got.splits, want)
    plain = tmp_path / "plain.parquet"
    synthetic.write_images_parquet(plain, ds.images, ds.labels, ds.dirnames)
    assert data.load(str(plain)).splits is None and data.load(str(plain)).content_hash == ds.content_hash
    assert got.content_hash != ds.content_hash
    assert data.summary(got)["own_split"] == {s: int((want == s).sum()) for s in ("train", "val", "test")}
    prep = train.prepare(str(path), "default")
    np.testing.assert_array_equal(prep.split, want)
    np.testing.assert_array_equal(ui.split_for(got, seed=7), want)
    drawn = train.prepare(str(plain), "default").split
    assert not np.array_equal(drawn, want) and set(drawn.tolist()) == {"train", "val", "test"}
    sub = data.subset(got, np.arange(10, 40))
    np.testing.assert_array_equal(sub.splits, want[10:40])


def test_a_bad_split_column_is_refused_with_what_to_fix(tmp_path, tiny_dataset):
    from snw_core import synthetic
    ds = tiny_dataset
    cases = ((np.where(np.arange(ds.n) % 3 == 0, "holdout", "train"), "values other than train"),
             (np.where(np.arange(ds.n) % 3 == 0, "val", "train"), "without test items"))
    for own, says in cases:
        path = tmp_path / "bad.parquet"
        synthetic.write_images_parquet(path, ds.images, ds.labels, ds.dirnames, splits=own)
        with pytest.raises(DataError, match=says):
            data.load(str(path))
    good = ds.labels == "0"                       # val without a good item: the threshold cannot be chosen
    own = np.where(np.arange(ds.n) % 4 == 0, "test", "train")
    own[~good & (np.arange(ds.n) % 4 == 1)] = "val"
    path = tmp_path / "nogoodval.parquet"
    synthetic.write_images_parquet(path, ds.images, ds.labels, ds.dirnames, splits=own)
    with pytest.raises(DataError, match="val has no good items"):
        data.check_trainable(data.load(str(path)))
