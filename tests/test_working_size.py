"""The working size: large images reach the twin averaged down by a whole factor, inside the model."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_factor_brings_the_long_side_to_the_working_size():
    from snw_core.model import working_factor
    assert working_factor(128, (26, 36)) == 1 and working_factor(128, (128, 128)) == 1
    assert working_factor(128, (129, 40)) == 2 and working_factor(128, (256, 256)) == 2
    assert working_factor(128, (480, 640)) == 5 and working_factor(128, (1024, 1024)) == 8
    assert working_factor(0, (1024, 1024)) == 1                       # 0: full resolution


def test_presets_small_images_keep_their_model_and_seed_stays_the_study():
    from snw_core.model import build_embedder
    from snw_core.presets import resolve_settings
    assert resolve_settings("seed")["work_side"] == 0
    assert resolve_settings("default")["work_side"] == resolve_settings("camera")["work_side"] == 128
    small = build_embedder(resolve_settings("default"), (26, 36))
    assert "working_resolution" not in {layer.name for layer in small.layers}
    assert small.get_layer("conv1_1").output.shape[1:3] == (26, 36)
    assert small.count_params() == build_embedder(resolve_settings("default", work_side=0), (26, 36)).count_params()


def test_large_images_are_averaged_down_before_the_convolutions():
    import keras

    from snw_core.model import build_embedder
    from snw_core.presets import resolve_settings
    s = resolve_settings("default", work_side=16)
    emb = build_embedder(s, (26, 37))                                 # factor 3: partial blocks at the edges
    assert emb.get_layer("conv1_1").output.shape[1:3] == (9, 13)
    assert emb.count_params() < build_embedder(resolve_settings("default", work_side=0), (26, 37)).count_params() / 3
    x = np.random.default_rng(0).integers(0, 256, (2, 26, 37)).astype(np.float32)
    pooled = np.asarray(keras.Model(emb.input, emb.get_layer("working_resolution").output)(x))[..., 0]
    z = np.asarray(emb.get_layer("normalize")(x))
    # every working pixel is the mean of the image pixels of its block; the blocks overhang the image evenly
    # (26 rows: by 1 at the bottom; 37 columns: by 1 on each side) and an edge block averages its own pixels only
    def block(b, n):
        before = ((-(-n // 3) - 1) * 3 + 3 - n) // 2
        return slice(max(0, 3 * b - before), 3 * b - before + 3)
    for by, bx in ((0, 0), (4, 7), (8, 12), (8, 0), (3, 1)):
        np.testing.assert_allclose(pooled[:, by, bx], z[:, block(by, 26), block(bx, 37)].mean((1, 2)), atol=1e-5)
    dense = build_embedder(resolve_settings("seed", work_side=16), (26, 37))
    assert dense.get_layer("working_resolution").output.shape[1:3] == (9, 13)


def test_the_line_bundle_model_averages_like_keras():
    """LiteRT's average pooling takes the edge blocks' pixels as Keras does: the converted model agrees."""
    from snw_core.export import _run_tflite, to_tflite, with_patch_features
    from snw_core.model import build_embedder
    from snw_core.presets import resolve_settings
    emb = build_embedder(resolve_settings("default", work_side=16), (26, 37))
    model = with_patch_features(emb)
    x = np.random.default_rng(1).integers(0, 256, (5, 26, 37)).astype(np.uint8)
    from snw_core.embed import predict
    np.testing.assert_allclose(_run_tflite(to_tflite(model), x), predict(model, x), atol=2e-4)


@pytest.mark.slow
def test_a_run_at_a_working_size_trains_judges_and_says_so(tiny_parquet, tmp_path):
    env = dict(os.environ, SNW_RUNS_DIR=str(tmp_path / "runs"))
    r = subprocess.run([sys.executable, "-m", "snw_core", "train", "--data", str(tiny_parquet), "--epochs", "1",
                        "--work-side", "16", "--projection", "none"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "the twin sees the 26 x 36 px images averaged down to 9 x 12 px (3 x 3 px a pixel" in r.stdout + r.stderr
    rid = (r.stdout.strip().splitlines() or [""])[-1].split("/")[-1]
    run = tmp_path / "runs" / rid
    assert json.loads((run / "config.json").read_text())["settings"]["work_side"] == 16
    from snw_core import data
    from snw_core.judge import Judge
    from snw_core.runs import RunStore
    out = Judge.from_run(RunStore(tmp_path / "runs").get(rid)).judge(data.load(str(tiny_parquet)).images[:4])
    assert len(out["verdict"]) == 4 and np.isfinite(out["score"]).all()
