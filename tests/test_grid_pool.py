"""The grid pool: on a surface without a layout the twin max-pools its last feature map by regions."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_factor_and_the_presets():
    from snw_core.model import grid_pool_factor
    from snw_core.presets import resolve_settings
    assert grid_pool_factor(12, (7, 9)) == 1 and grid_pool_factor(12, (9, 12)) == 1      # the small sets: untouched
    assert grid_pool_factor(12, (24, 32)) == 3 and grid_pool_factor(12, (13, 5)) == 2
    assert grid_pool_factor(0, (64, 64)) == 1
    assert resolve_settings("seed")["grid_pool"] == 0
    assert all(resolve_settings(p)["grid_pool"] == 12 for p in ("default", "camera", "classifier"))


def test_only_a_conv_twin_on_a_surface_without_a_layout_is_pooled():
    from snw_core.presets import resolve_settings
    from snw_core.train import twin_pool_side
    default = resolve_settings("default")
    assert twin_pool_side(default, None) == 12                                # register auto, nothing to align to
    assert twin_pool_side(default, object()) == 0                             # a part with a layout
    assert twin_pool_side(resolve_settings("default", register="off"), None) == 0
    assert twin_pool_side(resolve_settings("default", grid_pool=0), None) == 0
    assert twin_pool_side(resolve_settings("seed", register="auto"), None) == 0      # the dense twin of the study


def test_a_surface_without_a_layout_trains_its_whole_budget():
    """Early stopping on the val pair loss is off where the verdict rests on the patch bank (a conv twin, nothing to
    align to); a part with a layout, the dense twin of the study and a preset without it keep the preset's."""
    from snw_core.presets import resolve_settings
    from snw_core.train import early_stopping
    default = resolve_settings("default")
    surface = early_stopping(default, None)
    assert surface["used"] is False and surface["patience"] == 0 and "patch bank" in surface["reason"]
    part = early_stopping(default, object())
    assert part["used"] is True and part["patience"] == default["early_stopping_patience"] == 5
    assert early_stopping(resolve_settings("default", register="off"), None)["patience"] == 5
    assert early_stopping(resolve_settings("seed", register="auto", early_stopping_patience=3), None)["patience"] == 3
    assert early_stopping(resolve_settings("default", early_stopping_patience=0), object())["used"] is False


def test_the_pooled_twin_takes_each_regions_strongest_response():
    import keras

    from snw_core.model import build_embedder, build_classifier
    from snw_core.presets import resolve_settings
    s = resolve_settings("default")
    small = build_embedder(s, (36, 48), pool_side=12)                        # a 9 x 12 map: no pool
    assert "grid_pool" not in {layer.name for layer in small.layers}
    assert small.count_params() == build_embedder(s, (36, 48)).count_params()
    emb = build_embedder(s, (40, 60), pool_side=4)                            # a 10 x 15 map, by 4: 3 x 4 cells
    pool = emb.get_layer("grid_pool")
    assert tuple(pool.output.shape[1:3]) == (3, 4)
    x = np.random.default_rng(0).integers(0, 256, (2, 40, 60)).astype(np.float32)
    fmap = np.asarray(keras.Model(emb.input, pool.input)(x))
    pooled = np.asarray(keras.Model(emb.input, pool.output)(x))
    # SAME padding: the 10 rows in blocks of 4 overhang by 1 at the bottom... (the pad splits evenly, then the end)
    def block(b, n, f=4):
        before = ((-(-n // f) - 1) * f + f - n) // 2
        return slice(max(0, f * b - before), f * b - before + f)
    for by, bx in ((0, 0), (1, 2), (2, 3), (2, 0)):
        np.testing.assert_allclose(pooled[:, by, bx], fmap[:, block(by, 10), block(bx, 15)].max(axis=(1, 2)), atol=1e-6)
    clf = build_classifier(s, (40, 60), 13, pool_side=4)
    assert tuple(clf.get_layer("grid_pool").output.shape[1:3]) == (3, 4)


def test_the_line_bundle_model_pools_like_keras():
    from snw_core.embed import predict
    from snw_core.export import _run_tflite, to_tflite, with_patch_features
    from snw_core.model import build_embedder
    from snw_core.presets import resolve_settings
    model = with_patch_features(build_embedder(resolve_settings("default"), (40, 60), pool_side=4))
    x = np.random.default_rng(1).integers(0, 256, (5, 40, 60)).astype(np.uint8)
    np.testing.assert_allclose(_run_tflite(to_tflite(model), x), predict(model, x), atol=2e-4)


@pytest.mark.slow
def test_a_texture_run_pools_says_so_and_judges(tmp_path):
    from snw_core import realdata
    src = realdata.write_parquet(tmp_path / "tex.parquet", "texture", "moderate", n=130, seed=2, shape=(36, 64))
    env = dict(os.environ, SNW_RUNS_DIR=str(tmp_path / "runs"))
    r = subprocess.run([sys.executable, "-m", "snw_core", "train", "--data", str(src), "--epochs", "1",
                        "--grid-pool", "6", "--projection", "none"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "grid pool: a surface without a layout: the twin max-pools its 9 x 16 feature map by 3 to 3 x 6 cells" \
        in r.stdout + r.stderr
    rid = (r.stdout.strip().splitlines() or [""])[-1].split("/")[-1]
    run = tmp_path / "runs" / rid
    assert json.loads((run / "config.json").read_text())["settings"]["grid_pool"] == 6
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["grid_pool"] == {"used": True, "pool_side": 6, "factor": 3, "map": [9, 16], "pooled": [3, 6]}
    # a surface: its appearance check was decided on the not-a-part design kinds, said, and recorded as decided
    surface = metrics["surface_appearance"]
    assert surface["n"] == 220 and f"appearance check: {surface['reason']}" in r.stdout + r.stderr
    assert metrics["gate"]["appearance_check"] is not surface["used"]
    assert metrics["early_stopping"]["used"] is False and "early stopping: off (a surface" in r.stdout + r.stderr
    location = metrics["patch_location"]
    if location["kept"]:                          # the bank file places weak verdicts as the run decided
        from snw_core.patches import PatchBank
        assert PatchBank.load(run / "patches.npz").places_weak is location["places_weak"]
    from snw_core.judge import Judge
    from snw_core.runs import RunStore
    judge = Judge.from_run(RunStore(tmp_path / "runs").get(rid))
    assert "grid_pool" in {layer.name for layer in judge.embedder.layers}
    out = judge.judge(realdata.generate("texture", "moderate", 20, seed=5, shape=(36, 64))[0][:4])
    assert len(out["verdict"]) == 4 and np.isfinite(out["score"]).all()
    assert bool(np.isinf(judge.gate.t_app)) is surface["used"]
