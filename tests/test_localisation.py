"""Where a verdict says the defect is (snw_core.localisation): the cells of each kind of data set, the tolerance,
and the measurement on a trained run."""
from __future__ import annotations

import numpy as np
import pytest

from snw_core import localisation as L
from snw_core import synthetic


def test_cells_come_from_the_generator_or_the_files_metadata(tmp_path, tiny_parquet):
    default = L.cells({"data": {"source": "default"}})
    assert default == (synthetic.pin_cells()["grid"], synthetic.pin_cells()["bounds"]) and default[0] == [2, 6]
    assert L.cells({"data": {"source": str(tiny_parquet)}}) == default             # written by data synth
    alt = synthetic.ConnectorSpec(height=40, width=64, pin_rows=3, pin_cols=8)
    path = synthetic.write_parquet(tmp_path / "alt.parquet", n=30, seed=2, spec=alt)
    assert L.cells({"data": {"source": str(path)}})[0] == [3, 8]
    from snw_core import realdata
    tex = realdata.write_parquet(tmp_path / "tex.parquet", "texture", "moderate", n=30, seed=1)
    assert L.cells({"data": {"source": str(tex)}}) == ([3, 4], [0.0, 36.0, 0.0, 48.0])
    images, labels, dirnames = synthetic.generate(20, 3)
    plain = synthetic.write_images_parquet(tmp_path / "plain.parquet", images, labels, dirnames)
    assert L.cells({"data": {"source": str(plain)}}) is None                    # nothing says where its cells are
    assert L.cells({"data": {"source": str(tmp_path)}}) is None                 # an image folder


def test_a_pixel_counts_inside_its_cell_widened_by_the_tolerance():
    grid = (3, 4)                                   # 36 x 48 px: cells of 12 x 12
    labels = ["1", "1", "1", "8", "8", "8"]
    ys = [5, 13, 14, 11, 9, 23]
    xs = [5, 5, 5, 40, 40, 49]                      # cell 1: rows 0-11, cols 0-11; cell 8: rows 12-23, cols 36-47
    got = L.located(labels, ys, xs, (36, 48), grid)
    assert got.tolist() == [True, True, False, True, False, True]
    assert L.located(labels, ys, xs, (36, 48), grid, tolerance=0).tolist() == [True, False, False, False, False,
                                                                               False]


@pytest.mark.slow
def test_the_measurement_judges_the_test_split_as_the_dashboard_does(tiny_parquet, tiny_dataset, tmp_path):
    from snw_core.embed import load_embeddings
    from snw_core.judge import Judge
    from snw_core.runs import RunStore
    from trained_run import trained_run
    runs, rid = trained_run(tiny_parquet, preset="default")
    run = RunStore(runs).get(rid)
    from snw_core.judge import load_patches
    bank, decided = load_patches(run), run.metrics()["patch_location"]     # kept where used, or for the location
    assert (bank is not None) == decided["kept"], (decided, sorted(p.name for p in run.path.iterdir()))
    assert 0.0 <= decided["val_defects_with_pixel_evidence"] <= 1.0
    assert bank is None or (np.isfinite(bank.location_unit()) and bank.location_unit() > 0)    # it can place
    got = L.evaluate(run)
    e = load_embeddings(run.file("embeddings.npz"))
    test = np.flatnonzero((e["split"] == "test") & (e["labels"] != "0"))
    r = Judge.from_run(run).judge(tiny_dataset.images[test])
    caught = np.asarray(r["verdict"]) != "GOOD"
    ok = L.located(e["labels"][test][caught], r["defect_y"][caught], r["defect_x"][caught], (26, 36),
                   *L.cells(run.config()))
    assert got["caught"] == int(caught.sum()) > 0 and got["located"] == int(ok.sum())
    assert got["share"] == pytest.approx(ok.mean()) and got["tolerance_px"] == 2
    assert run.metrics()["localisation"] == got                    # training recorded the same measurement
    assert set(got["per_label"]) == set(e["labels"][test][caught].tolist())
    # the pixel comparison with the most similar good parts finds a pin defect on its pin, even after one epoch
    assert got["share"] >= 0.8, got
    # a file whose cells do not hold the labels (a 1 x 2 grid for 12 pins): no measurement rather than a crash
    import json
    import shutil
    odd = synthetic.write_images_parquet(tmp_path / "odd.parquet", tiny_dataset.images[:2],
                                         tiny_dataset.labels[:2], tiny_dataset.dirnames[:2],
                                         metadata={synthetic.CELLS_KEY: {"grid": [1, 2], "bounds": None}})
    copy = tmp_path / "runs" / rid
    shutil.copytree(runs / rid, copy)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["data"]["source"] = str(odd)
    (copy / "config.json").write_text(json.dumps(cfg))
    assert L.evaluate(RunStore(copy.parent).get(rid), images=tiny_dataset.images) is None


def test_the_bank_is_kept_where_its_threshold_is_used_or_the_pixel_evidence_misses_defects():
    from snw_core.patches import PatchBank
    from snw_core.train import LOCATION_PIXEL_SHARE, patch_location
    labels = np.array(["0"] * 10 + ["3"] * 10)
    split = np.array(["val"] * 20)
    strong = np.r_[np.full(10, 0.4), np.full(10, 2.0)]              # every val defect shows pixel evidence
    weak = np.r_[np.full(10, 0.4), np.full(9, 0.5), [2.0]]          # one of ten does (a texture)
    unused = {"bank": PatchBank(np.zeros((2, 2)), np.inf, (1, 1))}
    used = {"bank": PatchBank(np.zeros((2, 2)), 0.3, (1, 1))}
    assert not patch_location(unused, strong, labels, split, "0")["kept"]
    got = patch_location(unused, weak, labels, split, "0")
    assert got["kept"] and not got["threshold_used"] and got["val_defects_with_pixel_evidence"] == 0.1
    assert got["val_defects_with_pixel_evidence"] < LOCATION_PIXEL_SHARE and "kept" in got["reason"]
    assert got["places_weak"] and "places every verdict whose pixel evidence" in got["reason"]
    assert patch_location(used, strong, labels, split, "0")["kept"]
    both = patch_location(used, weak, labels, split, "0")       # a threshold as well: the bank still places the weak
    assert both["threshold_used"] and both["places_weak"] and "places every verdict" in both["reason"]
    assert not patch_location(used, strong, labels, split, "0")["places_weak"]    # the pixel map sees: it competes
    some = np.r_[np.full(10, 0.4), np.full(3, 0.5), np.full(7, 2.0)]       # seven of ten: the pixel map mostly sees
    got = patch_location(unused, some, labels, split, "0")
    assert got["kept"] and not got["places_weak"]
