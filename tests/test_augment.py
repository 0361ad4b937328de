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


def test_augment_setting_is_validated_and_the_seed_preset_stays_the_study():
    assert resolve_settings("seed")["augment"] == "none"
    assert resolve_settings("default", augment="line")["augment"] == "line"
    with pytest.raises(SettingsError, match="augment"):
        resolve_settings("default", augment="fog")
    with pytest.raises(ValueError, match="unknown augmentation"):
        augment.augment("fog", np.zeros((1, 4, 4), np.uint8), np.random.default_rng(0))
    x = np.ones((2, 4, 4), np.uint8)
    assert augment.augment("none", x, np.random.default_rng(0)) is x
