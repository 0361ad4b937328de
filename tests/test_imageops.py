"""The matrix forms of the small filters (snw_core.imageops) equal the padded, tap-by-tap filters."""
import numpy as np
import pytest

from snw_core.imageops import bilinear_sample, blur_matrix, box3, cubic_sample, gaussian_blur


def _padded_box3(m):
    h, w = m.shape[1:]
    p = np.pad(m, ((0, 0), (1, 1), (1, 1)), mode="edge")
    return sum(p[:, i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9.0


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_blur_matrix_is_the_gaussian_blur(sigma):
    x = np.random.default_rng(0).uniform(0, 255, (3, 7, 11))      # narrower than the kernel in one case
    got = blur_matrix(7, sigma) @ x @ blur_matrix(11, sigma).T
    np.testing.assert_allclose(got, gaussian_blur(x, sigma), rtol=0, atol=1e-9)


def test_box3_is_the_mean_over_3x3_with_edges_repeated_and_keeps_float32():
    x = np.random.default_rng(1).uniform(0, 1, (2, 5, 9))
    np.testing.assert_allclose(box3(x), _padded_box3(x), rtol=0, atol=1e-12)
    assert box3(x.astype(np.float32)).dtype == np.float32
    counts = np.zeros((1, 4, 4), np.int64)
    counts[0, 0, 0] = 9                                            # integer input: float64, mass kept at the edge
    out = box3(counts)
    assert out.dtype == np.float64 and out[0, 0, 0] == pytest.approx(4.0) and out[0, 2, 2] == 0.0


def test_the_matrices_are_cached_and_read_only():
    assert blur_matrix(9, 0.5) is blur_matrix(9, 0.5)
    with pytest.raises(ValueError):
        blur_matrix(9, 0.5)[0, 0] = 1.0


def test_cubic_sampling_keeps_pixels_and_quadratic_ramps_and_is_sharper_than_bilinear():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 255, (2, 12, 16))
    yy, xx = np.mgrid[0:12, 0:16].astype(np.float64)
    grid = (np.repeat(yy[None], 2, 0), np.repeat(xx[None], 2, 0))
    np.testing.assert_allclose(cubic_sample(x, *grid), x, rtol=0, atol=1e-9)       # on the pixels: the pixels
    ramp = (0.5 * yy ** 2 - 2.0 * yy * xx + 3.0 * xx + 7.0)[None]                  # exact up to second order
    sy, sx = rng.uniform(1, 10, (1, 12, 16)), rng.uniform(1, 14, (1, 12, 16))       # taps inside the image
    np.testing.assert_allclose(cubic_sample(ramp, sy, sx), 0.5 * sy ** 2 - 2.0 * sy * sx + 3.0 * sx + 7.0,
                               rtol=0, atol=1e-9)
    assert np.abs(bilinear_sample(ramp, sy, sx) - (0.5 * sy ** 2 - 2.0 * sy * sx + 3.0 * sx + 7.0)).max() > 0.05
    # half a pixel over a one-pixel stripe pattern: bilinear averages it flat, cubic keeps some of it
    stripes = np.tile(np.array([0.0, 100.0]), 8)[None, None, :].repeat(12, 1)
    half = (grid[0][:1], np.clip(grid[1][:1] + 0.25, 0, 15))
    assert cubic_sample(stripes, *half)[0, :, 2:-2].std() > 1.2 * bilinear_sample(stripes, *half)[0, :, 2:-2].std()
    # outside the image: the edge repeated
    np.testing.assert_allclose(cubic_sample(x, np.full((2, 1, 1), -3.0), np.full((2, 1, 1), 40.0))[:, 0, 0],
                               x[:, 0, -1], rtol=0, atol=1e-9)


def test_cubic_sample_of_many_images_is_made_in_pieces_with_the_same_pixels(monkeypatch):
    """Sixteen taps of every pixel of a large set at once took gigabytes; in pieces the result is the same."""
    from snw_core import imageops
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, (7, 9, 11))
    sy = rng.uniform(-1, 9, x.shape)
    sx = rng.uniform(-1, 11, x.shape)
    whole = cubic_sample(x, sy, sx)
    monkeypatch.setattr(imageops, "SAMPLE_PIXELS", 2 * 9 * 11)             # two images at a time
    np.testing.assert_array_equal(cubic_sample(x, sy, sx), whole)
