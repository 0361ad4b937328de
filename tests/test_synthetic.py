"""Tests of the embedded default data set generator (snw_core.synthetic)."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest

from snw_core import synthetic as syn
from snw_core.synthetic import ConnectorSpec, encode_png, generate, sample_sheet, write_parquet


@pytest.fixture(scope="module")
def default_set():
    return generate(3600, seed=0)


def test_shape_and_dtype(default_set):
    images, labels, dirnames = default_set
    assert images.shape == (3600, 26, 36)
    assert images.dtype == np.uint8
    assert labels.shape == (3600,) and dirnames.shape == (3600,)
    assert labels.dtype.kind == "U" and dirnames.dtype.kind == "U"


def test_label_counts_default(default_set):
    _, labels, _ = default_set
    values, counts = np.unique(labels, return_counts=True)
    got = dict(zip(values.tolist(), counts.tolist()))
    assert got == {"0": 1200, **{str(p): 200 for p in range(1, 13)}}


def test_rows_are_shuffled(default_set):
    _, labels, _ = default_set
    # Not sorted by label: the first 100 rows hold several labels.
    assert len(set(labels[:100].tolist())) > 5


def test_dirnames(default_set):
    _, labels, dirnames = default_set
    for lab, d in zip(labels.tolist(), dirnames.tolist()):
        if lab == "0":
            assert d == "OK"
        else:
            assert re.fullmatch(r"NG_\d{2}", d), d
            assert int(d[3:]) == int(lab)
    assert "NG_07" in set(dirnames.tolist())


def test_determinism():
    a = generate(200, seed=7)
    b = generate(200, seed=7)
    c = generate(200, seed=8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_good_items_differ(default_set):
    images, labels, _ = default_set
    goods = images[labels == "0"][:50].astype(np.int16)
    assert len({g.tobytes() for g in goods}) == len(goods)
    # Differences between goods are more than noise: nuisances (shift, brightness, gradient).
    diffs = [np.abs(goods[i] - goods[i + 1]).mean() for i in range(len(goods) - 1)]
    assert np.median(diffs) > 3.0


def test_images_look_like_a_connector(default_set):
    images, labels, _ = default_set
    mean_good = images[labels == "0"].astype(np.float64).mean(axis=0)
    geo = syn._geometry(ConnectorSpec())
    border = np.concatenate([mean_good[0], mean_good[-1], mean_good[:, 0], mean_good[:, -1]])
    centre_body = mean_good[12:14, 4:32].mean()  # between the two pin rows
    assert border.mean() < centre_body - 40  # dark background, brighter body
    # Pins are brighter than the body around them (bright_pins polarity).
    (by, bx), (ty, tx) = geo.base[0], geo.tip[0]
    pin_px = mean_good[int((by + ty) / 2), int(bx)]
    assert pin_px > centre_body + 40


def test_label_counts_small_and_rounding():
    assert syn.label_counts(3600, 12).tolist() == [1200] + [200] * 12
    c = syn.label_counts(39, 12)
    assert c.sum() == 39 and (c >= 1).all()
    assert c.tolist() == [13, 3, 3] + [2] * 10
    c = syn.label_counts(13, 12)
    assert c.tolist() == [1] * 13
    with pytest.raises(ValueError):
        syn.label_counts(12, 12)
    images, labels, _ = generate(39, seed=1)
    assert images.shape == (39, 26, 36)
    assert set(labels.tolist()) == {str(i) for i in range(13)}


@pytest.mark.parametrize(
    "spec",
    [
        ConnectorSpec(height=40, width=64, pin_rows=3, pin_cols=8),
        ConnectorSpec(polarity="dark_pins"),
        ConnectorSpec(height=20, width=30, pin_rows=1, pin_cols=4),
    ],
)
def test_other_specs(spec):
    n = 3 * spec.n_pins + 10
    images, labels, dirnames = generate(n, seed=3, spec=spec)
    assert images.shape == (n, spec.height, spec.width) and images.dtype == np.uint8
    assert set(labels.tolist()) == {str(i) for i in range(spec.n_pins + 1)}
    assert (dirnames[labels == "0"] == "OK").all()
    assert images.std() > 20


def test_dark_pins_polarity():
    spec = ConnectorSpec(polarity="dark_pins")
    images, labels, _ = generate(100, seed=0, spec=spec)
    mean_good = images[labels == "0"].astype(np.float64).mean(axis=0)
    geo = syn._geometry(spec)
    (by, bx), (ty, tx) = geo.base[0], geo.tip[0]
    centre_body = mean_good[12:14, 4:32].mean()
    assert mean_good[int((by + ty) / 2), int(bx)] < centre_body - 40


def test_bad_spec():
    with pytest.raises(ValueError):
        ConnectorSpec(polarity="purple")
    with pytest.raises(ValueError):
        ConnectorSpec(height=26, width=36, pin_rows=6, pin_cols=20)


@pytest.mark.parametrize("spec", [ConnectorSpec(), ConnectorSpec(height=40, width=64, pin_rows=3, pin_cols=8)])
def test_defect_is_local_to_its_pin(spec):
    """Rendering the same items without their defect changes pixels only near the labelled pin."""
    params = syn.sample_params(600, seed=5, spec=spec)
    with_def = syn.render(params, spec).astype(np.int16)
    without = syn.render(params, spec, defects=False).astype(np.int16)
    label = params["label"]
    good = label == 0
    np.testing.assert_array_equal(with_def[good], without[good])
    geo = syn._geometry(spec)
    yy, xx = np.mgrid[0 : spec.height, 0 : spec.width] + 0.5
    n_checked = 0
    for i in np.nonzero(~good)[0]:
        diff = np.abs(with_def[i] - without[i]).astype(np.float64)
        assert diff.sum() > 0, f"defect of item {i} (kind {params['kind'][i]}) left no trace"
        j = label[i] - 1
        cy = (geo.base[j, 0] + geo.tip[j, 0]) / 2 + params["shift_y"][i]
        cx = geo.base[j, 1] + params["shift_x"][i]
        near = (np.abs(yy - cy) <= geo.pin_len / 2 + 4) & (np.abs(xx - cx) <= 6)
        assert diff[near].sum() >= 0.97 * diff.sum()
        # Nothing changes at the other pins' centres farther away.
        far = ~((np.abs(yy - cy) <= geo.pin_len / 2 + 6) & (np.abs(xx - cx) <= 8))
        assert diff[far].max() <= 1
        n_checked += 1
    assert n_checked > 300


def test_defects_are_mostly_visible():
    """Subtle defects exist, but (almost) none is invisible against the sensor noise."""
    params = syn.sample_params(1200, seed=2)
    a = syn.render(params).astype(np.int16)
    b = syn.render(params, defects=False).astype(np.int16)
    d = ~(params["label"] == 0)
    peak = np.abs(a[d] - b[d]).reshape(d.sum(), -1).max(axis=1)
    assert (peak < 15).mean() < 0.01
    assert (peak < 50).mean() > 0.05  # and some are subtle
    kinds = set(params["kind"][d].tolist())
    assert kinds == {1, 2, 3, 4, 5}


def test_encode_png_roundtrip():
    from PIL import Image

    images, _, _ = generate(20, seed=0)
    pngs = encode_png(images)
    assert len(pngs) == 20 and all(p[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    for im, p in zip(images, pngs):
        dec = Image.open(io.BytesIO(p))
        assert dec.mode == "L"
        np.testing.assert_array_equal(np.asarray(dec), im)


def test_parquet_roundtrip_pyarrow(tmp_path):
    import pyarrow.parquet as pq
    from PIL import Image

    out = write_parquet(tmp_path / "sub" / "synth.parquet", n=120, seed=4)
    assert out == tmp_path / "sub" / "synth.parquet" and out.exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["synth.parquet"]  # no temp file left
    table = pq.read_table(out)
    assert table.column_names == ["dirname", "label", "image"]
    assert str(table.schema.field("image").type) == "struct<bytes: binary, path: string>"
    meta = json.loads(table.schema.metadata[b"huggingface"])
    assert meta["info"]["features"]["image"] == {"_type": "Image"}
    assert meta["info"]["features"]["label"] == {"dtype": "string", "_type": "Value"}
    images, labels, dirnames = generate(120, seed=4)
    assert table.column("label").to_pylist() == labels.tolist()
    assert table.column("dirname").to_pylist() == dirnames.tolist()
    decoded = np.stack([np.asarray(Image.open(io.BytesIO(r["bytes"]))) for r in table.column("image").to_pylist()])
    np.testing.assert_array_equal(decoded, images)


def test_parquet_atomic_write(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    target = tmp_path / "x.parquet"
    write_parquet(target, n=30, seed=0)
    before = target.read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(RuntimeError):
        write_parquet(target, n=30, seed=1)
    assert target.read_bytes() == before  # old file untouched
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]  # temp file cleaned up


@pytest.mark.slow
def test_parquet_loads_with_datasets(tmp_path):
    """The written file loads with HF `datasets` exactly like the Hub set (takes a few seconds)."""
    datasets = pytest.importorskip("datasets")
    out = write_parquet(tmp_path / "synth.parquet", n=60, seed=9)
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert isinstance(ds.features["image"], datasets.Image)
    assert ds.features["label"] == datasets.Value("string")
    images, labels, dirnames = generate(60, seed=9)
    decoded = np.stack([np.asarray(im) for im in ds["image"]])
    np.testing.assert_array_equal(decoded, images)
    assert list(ds["label"]) == labels.tolist()
    assert list(ds["dirname"]) == dirnames.tolist()


def test_sample_sheet(default_set):
    images, labels, _ = default_set
    scale, per, gap = 3, 4, 2
    sheet = sample_sheet(images, labels, per_label=per, scale=scale, annotate=False)
    assert sheet.dtype == np.uint8
    assert sheet.shape == (gap + 13 * (26 * scale + gap), gap + per * (36 * scale + gap))
    # First row holds goods, pixel-exact upscaled; row 11 holds label "10" (natural sort).
    first_good = images[np.nonzero(labels == "0")[0][0]]
    tile = sheet[gap : gap + 26 * scale, gap : gap + 36 * scale]
    np.testing.assert_array_equal(tile[::scale, ::scale], first_good)
    np.testing.assert_array_equal(tile, np.kron(first_good, np.ones((scale, scale), np.uint8)))
    y0 = gap + 10 * (26 * scale + gap)
    first_10 = images[np.nonzero(labels == "10")[0][0]]
    np.testing.assert_array_equal(sheet[y0 : y0 + 26 * scale : scale, gap : gap + 36 * scale : scale], first_10)
    annotated = sample_sheet(images, labels, per_label=per, scale=scale)
    assert annotated.shape[0] == sheet.shape[0] and annotated.shape[1] > sheet.shape[1]


def test_no_streamlit_import():
    src = open(syn.__file__, encoding="utf-8").read()
    assert not re.search(r"^\s*(import|from)\s+streamlit", src, re.M)
