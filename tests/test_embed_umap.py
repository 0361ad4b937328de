"""snw_core.embed UMAP path: exact neighbour graph, determinism, and no TensorFlow import for UMAP."""
import subprocess
import sys
from pathlib import Path

import numpy as np

from snw_core.embed import exact_knn, project_pca, project_umap

ROOT = Path(__file__).resolve().parent.parent


def test_exact_knn_starts_with_self_at_zero_and_matches_brute_force():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    idx, dist = exact_knn(x, 6)
    assert idx.shape == dist.shape == (60, 6)
    assert (idx[:, 0] == np.arange(60)).all() and (dist[:, 0] == 0).all()   # exactly 0: umap's local scale needs it
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.fill_diagonal(d, np.inf)
    brute = np.sort(d, axis=1)[:, :5]
    np.testing.assert_allclose(dist[:, 1:], brute, rtol=1e-5, atol=1e-6)
    assert (np.diff(dist, axis=1) >= 0).all()


def test_project_umap_is_deterministic_and_small_inputs_fall_back():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, (40, 6)), rng.normal(6, 1, (40, 6))]).astype(np.float32)
    a, b = project_umap(x, seed=3), project_umap(x, seed=3)
    assert a.shape == (80, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    # the two blobs stay apart: every point's nearest 2-D neighbour is from its own blob
    d = np.linalg.norm(a[:, None] - a[None], axis=2)
    np.fill_diagonal(d, np.inf)
    assert ((d.argmin(axis=1) < 40) == (np.arange(80) < 40)).all()
    np.testing.assert_array_equal(project_umap(x[:3]), project_pca(x[:3]))


def test_umap_projection_does_not_import_tensorflow():
    code = ("import sys, numpy as np\n"
            "from snw_core.embed import project_umap\n"
            "project_umap(np.random.default_rng(0).normal(size=(30, 4)).astype('float32'))\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False False"
