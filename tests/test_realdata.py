"""The real-photo benchmark sets (snw_core.realdata): determinism, labels, defects inside their cell, schema."""
from __future__ import annotations

import numpy as np
import pytest

from snw_core import realdata
from snw_core.realdata import RealDataError, cell_box, generate

N = 80       # 26 goods and 4-5 items per address: enough to meet every defect kind


@pytest.fixture(scope="module", params=[("texture", "moderate"), ("texture", "strong"), ("connector", "strong")])
def made(request):
    kind, difficulty = request.param
    return (kind, difficulty) + generate(kind, difficulty, n=N, seed=3)


def test_shapes_labels_and_determinism(made):
    kind, difficulty, images, labels, dirnames, info = made
    assert images.dtype == np.uint8 and images.shape == ((N,) + (realdata.TEXTURE_SHAPE if kind == "texture" else (26, 36)))
    assert sorted(set(labels.tolist()), key=int) == [str(k) for k in range(13)]
    assert ((labels == "0") == (dirnames == "OK")).all()
    again = generate(kind, difficulty, n=N, seed=3)
    np.testing.assert_array_equal(again[0], images)
    assert again[3]["box"] == info["box"]
    other = generate(kind, difficulty, n=N, seed=4)[0]
    assert not np.array_equal(other, images)


def test_every_defect_is_planted_inside_its_cell(made):
    kind, difficulty, images, labels, _, info = made
    box, peak = np.array(info["box"]), np.array(info["peak"])
    good = labels == "0"
    assert (box[good] == -1).all() and (peak[good] == 0).all()
    # a defect changes pixels by far more than the sensor noise (texture: clearly, see the sample sheets)
    assert peak[~good].min() >= {"texture": {"moderate": 35, "strong": 60}, "connector": {"strong": 15}}[kind][difficulty]
    tol = 0 if kind == "texture" else 2        # connector: a pin bent by 3 px on a part shifted by 1 px
    for i in np.flatnonzero(~good):
        y0, y1, x0, x1 = cell_box(labels[i], images.shape[1:], info["grid"], info["bounds"])
        b = box[i]
        assert b[0] >= y0 - tol and b[1] <= y1 + tol and b[2] >= x0 - tol and b[3] <= x1 + tol, (i, labels[i], b)
    if kind == "texture":
        assert set(info["defect"]) == {"none", *realdata.TEXTURE_DEFECTS}


def test_cell_box():
    assert cell_box("1", (36, 48), (3, 4)) == (0, 12, 0, 12)
    assert cell_box("8", (36, 48), (3, 4)) == (12, 24, 36, 48)
    assert cell_box("0", (36, 48), (3, 4)) is None
    assert cell_box("7", (26, 36), (2, 6), bounds=(3.0, 23.0, 2.0, 34.0)) == (13, 23, 2, 8)
    with pytest.raises(ValueError, match="cell address"):
        cell_box("13", (36, 48), (3, 4))


@pytest.mark.parametrize("args, match", [(("wood", "moderate", 50, 0), "kind"), (("texture", "hard", 50, 0), "difficulty"),
                                         (("texture", "moderate", 12, 0), "n must"), (("texture", "moderate", 50, -1), "seed")])
def test_bad_arguments(args, match):
    with pytest.raises(RealDataError, match=match):
        generate(*args)


def test_missing_photograph_package(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "skimage" else real(name, *a))
    with pytest.raises(RealDataError, match="scikit-image"):
        realdata.photo("gravel.png", "skimage")


def test_parquet_loads_like_any_set_and_keeps_the_records(tmp_path):
    import pyarrow.parquet as pq

    from snw_core import data, synthetic

    out = realdata.write_parquet(tmp_path / "t.parquet", "texture", "strong", n=40, seed=1, sheet=tmp_path / "t.png")
    ds = data.load(str(out))
    images, labels, _, info = generate("texture", "strong", n=40, seed=1)
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    assert realdata.read_info(out)["box"] == info["box"]
    ref = synthetic.write_parquet(tmp_path / "s.parquet", n=40, seed=1)
    assert pq.read_schema(out).names == pq.read_schema(ref).names
    assert [f.type for f in pq.read_schema(out)] == [f.type for f in pq.read_schema(ref)]
    from PIL import Image
    with Image.open(tmp_path / "t.png") as im:
        assert im.size[0] > 2 * 6 * 48 and im.mode == "L"


def test_cli_writes_a_set_and_refuses_bad_input(tmp_path, capsys):
    from snw_core.__main__ import main

    assert main(["data", "real", "--kind", "connector", "--n", "30", "--out", str(tmp_path / "c.parquet")]) == 0
    assert (tmp_path / "c.parquet").is_file()
    assert main(["data", "real", "--kind", "wood", "--out", str(tmp_path / "w.parquet")]) == 2
    assert main(["data", "real", "--n", "5", "--out", str(tmp_path / "w.parquet")]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "w.parquet").exists()


def _surface_png(path, size=(300, 400), seed=0):
    """A photograph of a surface of our own: blobs of several sizes (a random texture), saved as PNG."""
    from PIL import Image

    from snw_core.imageops import gaussian_blur
    rng = np.random.default_rng(seed)
    fine, coarse = rng.normal(0, 1, (1,) + size), rng.normal(0, 1, (1,) + size)
    img = 128 + 40 * gaussian_blur(fine, 1.5)[0] / 0.2 + 25 * gaussian_blur(coarse, 6.0)[0] / 0.05
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return path


def test_a_texture_set_from_a_photograph_of_your_own(tmp_path, capsys):
    from snw_core.__main__ import main

    own = _surface_png(tmp_path / "surface.png")
    a = generate("texture", "moderate", n=40, seed=3, photo=str(own))
    b = generate("texture", "moderate", n=40, seed=3, photo=str(own))
    assert np.array_equal(a[0], b[0]) and a[0].shape == (40,) + realdata.TEXTURE_SHAPE
    assert a[3]["photo"] == str(own.resolve())
    brick = generate("texture", "moderate", n=40, seed=3)
    assert brick[3]["photo"] == realdata.texture_photo("moderate") == "skimage:brick.png"
    assert not np.array_equal(a[0], brick[0]) and np.array_equal(a[1], brick[1])     # same labels, other surface
    # a packaged photograph by name; the difficulty keeps its strength range
    grass = generate("texture", "strong", n=40, seed=3, photo="skimage:grass.png")
    assert grass[3]["photo"] == "skimage:grass.png" and grass[3]["difficulty"] == "strong"
    # the command line writes it; bad photographs exit 2 with what to do and write nothing
    out = tmp_path / "own.parquet"
    assert main(["data", "real", "--photo", str(own), "--n", "30", "--out", str(out)]) == 0
    assert realdata.read_info(out)["photo"] == str(own.resolve())
    small = tmp_path / "small.png"
    from PIL import Image
    Image.fromarray(np.full((100, 120), 128, np.uint8)).save(small)
    for photo, says in ((str(small), "at least 384 x 288 px"), (str(tmp_path / "none.png"), "not a file"),
                        ("skimage:nothere.png", "brick.png"), (str(tmp_path / "own.parquet"), "could not be read")):
        assert main(["data", "real", "--photo", photo, "--n", "30", "--out", str(tmp_path / "bad.parquet")]) == 2
        assert says in " ".join(capsys.readouterr().err.split())            # the message is wrapped
    assert main(["data", "real", "--kind", "connector", "--photo", str(own), "--n", "30",
                 "--out", str(tmp_path / "bad.parquet")]) == 2
    assert "texture kind" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "bad.parquet").exists()


def test_fresh_drift_items_come_from_the_sets_own_photograph(tmp_path):
    from snw_core import drift

    own = _surface_png(tmp_path / "surface.png", seed=1)
    src = realdata.write_parquet(tmp_path / "own.parquet", "texture", "moderate", n=40, seed=0, photo=str(own))

    class Run:                       # what fresh_items reads of a run
        def config(self):
            return {"data": {"source": str(src), "good_label": "0"}}

    images, labels, note = drift.fresh_items(Run(), 5, 5, seed=1000)
    assert note == f"realdata texture/moderate ({own.resolve()}), seed 1000"
    expected = generate("texture", "moderate", n=3 * 5 + 13, seed=1000, photo=str(own))[0]
    assert any(np.array_equal(images[0], e) for e in expected)


@pytest.mark.parametrize("kind, shape", [("texture", (60, 80)), ("connector", (52, 72))])
def test_a_set_at_another_size_keeps_its_defects_in_their_cells_and_its_drift_items_their_size(tmp_path, kind, shape):
    """A larger texture is a larger view of the same surface: its defects keep their size in pixels (a camera
    with a wider field, the case a global embedding finds hardest); a larger connector is the part drawn larger.
    The file records the size, and the drift check draws its fresh items at it."""
    from snw_core import drift

    images, labels, _, info = generate(kind, "moderate", n=N, seed=3, shape=shape)
    assert images.shape == (N,) + shape and info["shape"] == list(shape)
    np.testing.assert_array_equal(generate(kind, "moderate", n=N, seed=3, shape=shape)[0], images)
    box = np.array(info["box"])
    good = labels == "0"
    tol = 0 if kind == "texture" else 2
    for i in np.flatnonzero(~good):
        y0, y1, x0, x1 = cell_box(labels[i], shape, info["grid"], info["bounds"])
        b = box[i]
        assert b[0] >= y0 - tol and b[1] <= y1 + tol and b[2] >= x0 - tol and b[3] <= x1 + tol, (i, labels[i], b)
    if kind == "texture":                 # the defects keep their size: as large as at the default size
        base = np.array(generate(kind, "moderate", n=N, seed=3)[3]["box"])
        extent = lambda b: np.maximum(b[:, 1] - b[:, 0], b[:, 3] - b[:, 2])[b[:, 0] >= 0]
        assert extent(box).max() <= 14 and abs(np.median(extent(box)) - np.median(extent(base))) <= 2
    src = realdata.write_parquet(tmp_path / "s.parquet", kind, "moderate", n=40, seed=0, shape=shape)

    class Run:
        def config(self):
            return {"data": {"source": str(src), "good_label": "0"}}

    fresh, _, note = drift.fresh_items(Run(), 5, 5, seed=1000)
    assert fresh.shape[1:] == shape and note == f"realdata {kind}/moderate, seed 1000"


def test_the_size_is_checked_before_anything_is_written(tmp_path, capsys):
    from snw_core.__main__ import main

    out = tmp_path / "t.parquet"
    assert main(["data", "real", "--height", "72", "--width", "96", "--n", "30", "--out", str(out)]) == 0
    assert realdata.read_info(out)["shape"] == [72, 96]
    assert main(["data", "real", "--width", "60", "--n", "30", "--out", str(tmp_path / "w.parquet")]) == 0
    assert realdata.read_info(tmp_path / "w.parquet")["shape"] == [36, 60]        # the other side stays default
    for args, says in ((["--height", "20"], "at least 36 x 48 px"),
                       (["--height", "200", "--width", "200"], "needs at least 800 x 800 px"),
                       (["--height", "1000"], "from 16 to 512"),
                       (["--kind", "connector", "--height", "16", "--width", "16"], "cannot be drawn at 16 x 16"),
                       (["--kind", "connector", "--height", "500"], "at most 427 x 640 px")):
        assert main(["data", "real", *args, "--n", "30", "--out", str(tmp_path / "bad.parquet")]) == 2, args
        assert says in " ".join(capsys.readouterr().err.split()), (args, says)
    assert not (tmp_path / "bad.parquet").exists()
    with pytest.raises(RealDataError, match="two whole numbers"):
        generate("texture", "moderate", n=30, shape=(40.5, 60))


def test_a_texture_set_from_one_half_of_the_photograph_and_its_drift_items_from_the_same_half(tmp_path, capsys):
    """--region upper|lower cuts every crop from that half only (a photograph dark above and bright below shows
    it), records the half, and the drift check draws its fresh items there too; a half too small for the crops,
    an unknown region and a connector with a region are refused before anything is written."""
    from PIL import Image

    from snw_core import drift
    from snw_core.__main__ import main

    rng = np.random.default_rng(0)
    photo = np.where(np.arange(512)[:, None] < 256, 50.0, 200.0) + rng.normal(0, 8, (512, 512))
    path = tmp_path / "halves.png"
    Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(path)
    for region, dark in (("upper", True), ("lower", False)):
        images, labels, _, info = generate("texture", "moderate", n=40, seed=3, photo=str(path), region=region)
        goods = images[labels == "0"].astype(float)
        assert info["region"] == region
        assert (goods.max() < 120) if dark else (goods.min() > 130), region       # not one pixel of the other half
    whole = generate("texture", "moderate", n=40, seed=3, photo=str(path))
    assert "region" not in whole[3] and whole[0].min() < 120 < 130 < whole[0].max()    # both halves, as before
    np.testing.assert_array_equal(whole[0], generate("texture", "moderate", n=40, seed=3, photo=str(path),
                                                     region="all")[0])
    out = tmp_path / "upper.parquet"
    assert main(["data", "real", "--photo", str(path), "--region", "upper", "--n", "40", "--out", str(out)]) == 0
    assert realdata.read_info(out)["region"] == "upper"

    class Run:
        def config(self):
            return {"data": {"source": str(out), "good_label": "0"}}

    fresh, fresh_labels, note = drift.fresh_items(Run(), 5, 5, seed=1000)
    assert note.endswith("upper half, seed 1000") and fresh[fresh_labels == "0"].max() < 120
    for args, says in ((["--region", "upper", "--height", "96", "--width", "128"], "upper half"),
                       (["--region", "middle"], "Unknown region"),
                       (["--region", "lower", "--kind", "connector"], "texture kind")):
        bad = tmp_path / "bad.parquet"
        assert main(["data", "real", "--n", "30", "--out", str(bad)] + args) == 2
        assert says in " ".join(capsys.readouterr().err.split()), args
        assert not bad.exists()


def test_a_disjoint_texture_set_cuts_each_split_from_its_own_band_and_a_run_follows_it(tmp_path, capsys):
    """--disjoint: train, val and test come from the photograph's top 60 %, next 20 % and bottom 20 % (a photograph
    of three grey levels shows that not one pixel crosses), stratified by label; the parquet carries the split,
    data.load returns it, and the drift check cuts its fresh items from the test band. Refused for a connector,
    with a region, and where a band cannot hold the crops, before anything is written."""
    from PIL import Image

    from snw_core import data, drift
    from snw_core.__main__ import main

    rng = np.random.default_rng(0)
    rows = np.arange(512)[:, None]
    photo = np.select([rows < 307, rows < 410], [40.0, 128.0], 215.0) + rng.normal(0, 6, (512, 512))
    path = tmp_path / "bands.png"
    Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(path)
    out = tmp_path / "disjoint.parquet"
    assert main(["data", "real", "--photo", str(path), "--disjoint", "--n", "130", "--seed", "2",
                 "--out", str(out)]) == 0
    ds = data.load(str(out))
    info = realdata.read_info(out)
    assert info["split"] == ds.splits.tolist() and set(info["split_bands"]) == {"train", "val", "test"}
    for name, (lo, hi) in (("train", (0, 85)), ("val", (95, 165)), ("test", (175, 255))):
        goods = ds.images[(ds.splits == name) & (ds.labels == "0")]
        assert goods.size and lo <= goods.min() and goods.max() <= hi, (name, goods.min(), goods.max())
        assert set(ds.labels[ds.splits == name].tolist()) == set(ds.labels.tolist())      # every label in each
    assert abs(int((ds.splits == "train").sum()) - 78) <= 6

    class Run:
        def config(self):
            return {"data": {"source": str(out), "good_label": "0"}}

    fresh, fresh_labels, note = drift.fresh_items(Run(), 5, 5, seed=1000)
    assert "test band" in note and fresh[fresh_labels == "0"].min() >= 175
    for args, says in ((["--kind", "connector"], "for the texture kind"),
                       (["--region", "upper"], "cannot be combined with --region upper"),
                       (["--height", "64", "--width", "64"], "val band of the photograph")):
        bad = tmp_path / "bad.parquet"
        assert main(["data", "real", "--disjoint", "--n", "30", "--out", str(bad)] + args) == 2
        assert says in " ".join(capsys.readouterr().err.split()), args
        assert not bad.exists()
