"""Training augmentation (a line camera's drift) and the settings and references that come with it."""
from __future__ import annotations

import numpy as np
import pytest

from snw_core import augment
from snw_core.presets import SettingsError, resolve_settings


def test_line_drift_is_seeded_keeps_shape_and_changes_images(tiny_dataset):
    x = tiny_dataset.images[:40]
    a = augment.line_drift(x, np.random.default_rng(1))
    b = augment.line_drift(x, np.random.default_rng(1))
    c = augment.line_drift(x, np.random.default_rng(2))
    assert a.dtype == np.uint8 and a.shape == x.shape
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    changed = np.any(a != x, axis=(1, 2))
    assert 0.5 < changed.mean() < 1.0                  # 0 to 3 changes per image: some stay as they were


def test_affine_shift_by_whole_pixels_moves_the_image():
    x = np.zeros((1, 8, 8))
    x[0, 3, 3] = 100.0
    y = augment._affine(x, [1.0], [2.0], [0.0])
    assert y[0, 4, 5] == pytest.approx(100.0) and y.sum() == pytest.approx(100.0)


def test_camera_changes_the_light_and_sensor_but_never_moves_the_part():
    x = np.full((300, 16, 16), 20, np.uint8)
    x[:, 6:9, 6:9] = 250                                   # a bright 3 x 3 dot
    inside = np.zeros((16, 16), bool)
    inside[6:9, 6:9] = True

    def peaks_inside(y):
        flat = y.reshape(len(y), -1).argmax(1)
        return inside.ravel()[flat]

    cam = augment.augment("camera", x, np.random.default_rng(3))
    line = augment.augment("line", x, np.random.default_rng(3))
    assert np.any(cam != x) and peaks_inside(cam).all()    # brighter, darker, noisier, blurred: still there
    assert not peaks_inside(line).all()                    # the line's drift also moves it
    assert np.array_equal(augment.envelope_copies(x[:5], np.random.default_rng(0), "camera"),
                          augment.envelope_copies(x[:5], np.random.default_rng(0), "camera"))
    with pytest.raises(ValueError, match="unknown changes"):
        augment.line_drift(x[:2], np.random.default_rng(0), names=("fog",))


def test_the_camera_preset_is_the_default_recipe_with_the_camera_augmentation_and_a_longer_budget():
    cam, default = resolve_settings("camera"), resolve_settings("default")
    assert cam["augment"] == "camera" and cam["epochs"] == 30 and default["augment"] == "none"
    assert cam["ema"] == 0.99 and default["ema"] == 0.0             # the averaged weights are saved
    assert cam["augment_noise"] == 0.0 and default["augment_noise"] == 0.0      # a setting to choose, not the preset's
    other = ("augment", "epochs", "ema", "augment_noise", "preset")
    assert {k: v for k, v in cam.items() if k not in other} == {k: v for k, v in default.items() if k not in other}


def test_extra_noise_goes_to_about_that_share_of_the_images_and_nothing_is_drawn_without_it(tiny_dataset):
    x = tiny_dataset.images[:200]
    plain = augment.augment("camera", x, np.random.default_rng(3))
    assert np.array_equal(augment.augment("camera", x, np.random.default_rng(3), 0.0), plain)   # old runs repeat
    noisy = augment.augment("camera", x, np.random.default_rng(3), 0.5)
    assert np.array_equal(noisy, augment.augment("camera", x, np.random.default_rng(3), 0.5))   # seeded
    changed = (noisy != plain).reshape(len(x), -1).mean(1) > 0.2
    assert 0.35 <= changed.mean() <= 0.65
    sd = (noisy.astype(float) - plain)[changed].reshape(changed.sum(), -1).std(1)
    assert sd.max() <= 1.2 * augment.ENVELOPE["noise"] and noisy.dtype == np.uint8


def test_the_gate_of_a_camera_run_sees_copies_under_other_light_only():
    rng = np.random.default_rng(5)
    x = np.clip(rng.normal(120, 20, (200, 16, 16)), 40, 200).astype(np.uint8)
    yy, xx = np.mgrid[0:16, 0:16]

    def residual(y):
        """RMS of what is left of each copy after the best gain, offset and linear light ramp of its original."""
        out = []
        for a, b in zip(x.astype(np.float64), y.astype(np.float64)):
            design = np.stack([a.ravel(), np.ones(a.size), yy.ravel(), xx.ravel()], 1)
            coef, *_ = np.linalg.lstsq(design, b.ravel(), rcond=None)
            out.append(np.sqrt(np.mean((design @ coef - b.ravel()) ** 2)))
        return np.array(out)

    light = augment.envelope_copies(x, np.random.default_rng(0), "camera", names=augment.LIGHT)
    camera = augment.envelope_copies(x, np.random.default_rng(0), "camera")
    assert np.any(light != x)
    assert residual(light).max() < 1.0                       # rounding only: the light changed, nothing else
    assert np.mean(residual(camera) > 2.0) > 0.3              # noise, blur, JPEG change the pixels themselves


def test_augment_setting_is_validated_and_the_seed_preset_stays_the_study():
    assert resolve_settings("seed")["augment"] == "none"
    assert resolve_settings("default", augment="line")["augment"] == "line"
    with pytest.raises(SettingsError, match="augment"):
        resolve_settings("default", augment="fog")
    with pytest.raises(ValueError, match="unknown augmentation"):
        augment.augment("fog", np.zeros((1, 4, 4), np.uint8), np.random.default_rng(0))
    x = np.ones((2, 4, 4), np.uint8)
    assert augment.augment("none", x, np.random.default_rng(0)) is x


def test_extra_references_and_val_items_enter_scores_and_threshold_by_hand():
    from snw_core.metrics import evaluate_embeddings
    emb = np.array([[0.0], [0.1], [0.2], [5.0], [0.05], [2.0], [0.15], [0.9], [6.0]])
    lab = np.array(["0", "0", "0", "3", "0", "3", "0", "0", "3"])
    spl = np.array(["train"] * 4 + ["val"] * 2 + ["test"] * 3)
    plain, s0 = evaluate_embeddings(emb, lab, spl, k=1, pin_k=1)
    # a drifted copy of a train good at 0.85 joins the references: the test good at 0.9 is now near one
    m, s = evaluate_embeddings(emb, lab, spl, k=1, pin_k=1, ref_extra=np.array([[0.85]]))
    assert s0[7] == pytest.approx(0.7) and s[7] == pytest.approx(0.05) and s[5] == pytest.approx(1.15)
    # a drifted val good far from everything (score 1.0) joins the val split: the threshold moves above it
    m2, _ = evaluate_embeddings(emb, lab, spl, k=1, pin_k=1, ref_extra=np.array([[0.85]]),
                                val_extra={"emb": np.array([[-1.0]]),
                                           "is_defect": np.array([False]), "forced": np.array([False])})
    assert m["threshold"] < 1.0 <= m2["threshold"] < 1.15


def test_judge_takes_the_drifted_references_of_a_run():
    from snw_core.judge import Judge
    e = {"embeddings": np.array([[0.0], [0.1], [5.0], [0.2]], np.float32), "labels": np.array(["0", "0", "3", "0"]),
         "split": np.array(["train", "train", "train", "test"]), "ref_extra": np.array([[0.7]], np.float32),
         "ref_extra_rows": np.array([1])}
    cfg = {"data": {"good_label": "0", "image_shape": [1, 1]}, "settings": {"k": 1}}
    j = Judge.from_parts(cfg, {"threshold": 0.3}, e)
    assert j.ref_good.ravel().tolist() == pytest.approx([0.0, 0.1, 0.7]) and j.ref_good_idx.tolist() == [0, 1, 1]
    out = j.judge_embeddings(np.array([[0.75]], np.float32))
    assert out["verdict"][0] == "GOOD" and out["nearest_good"][0] == 1
