"""Loss on hand-computed values, the distance layer, and a safe save -> load round trip."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from snw_core import model as M  # noqa: E402
from snw_core.presets import resolve_settings  # noqa: E402


def test_contrastive_loss_on_known_distances():
    y = np.array([0, 0, 1, 1, 1], np.float32)          # 0 = same, 1 = different
    d = np.array([0.0, 0.5, 0.2, 1.0, 1.5], np.float32)
    # same: d^2 / 2 -> 0, 0.125; different: max(0, 1 - d)^2 / 2 -> 0.32, 0, 0
    expected = [0.0, 0.125, 0.32, 0.0, 0.0]
    np.testing.assert_allclose(np.asarray(M.contrastive_loss(y, d, margin=1.0)), expected, atol=1e-6)
    np.testing.assert_allclose(float(M.ContrastiveLoss(margin=1.0)(y, d)), np.mean(expected), atol=1e-6)
    # margin 2: the far pair at 1.5 now costs (2 - 1.5)^2 / 2 = 0.125
    np.testing.assert_allclose(np.asarray(M.contrastive_loss(y, d, margin=2.0))[4], 0.125, atol=1e-6)


def test_euclidean_distance_layer():
    a = np.array([[0.0, 0.0], [1.0, 1.0]], np.float32)
    b = np.array([[3.0, 4.0], [1.0, 1.0]], np.float32)
    np.testing.assert_allclose(np.asarray(M.EuclideanDistance()(a, b)), [5.0, 0.0], atol=1e-5)


def test_in_batch_loss_on_a_hand_made_batch():
    # three embeddings on a line: 0 and 1 share a label at distance 0.4; label 2 sits 0.6 and 1.0 away
    e = np.array([[0.0], [0.4], [1.0]], np.float32)
    y = np.array([0, 0, 1])
    # positives (ordered pairs 0-1, 1-0): 0.4^2/2 = 0.08; negatives: (1-1.0)^2/2 = 0, (1-0.6)^2/2 = 0.08 -> mean 0.04
    loss = float(M.InBatchContrastiveLoss(margin=1.0)(y, e))
    assert loss == pytest.approx(0.08 + 0.04, abs=1e-4)


@pytest.mark.parametrize("preset", ["seed", "default"])
def test_embedder_round_trip_with_safe_mode(tmp_path, preset):
    emb = M.build_embedder(resolve_settings(preset, embedding_dim=8), (26, 36))
    x = np.random.default_rng(0).integers(0, 255, (4, 26, 36)).astype(np.float32)
    before = np.asarray(emb(x, training=False))
    assert before.shape == (4, 8)
    path = tmp_path / "embedder.keras"
    M.save_embedder(emb, path)
    loaded = M.load_embedder(path)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), before, rtol=1e-5, atol=1e-5)
    assert not any(type(layer).__name__ == "Lambda" for layer in loaded.layers)


def test_a_trained_embedder_is_saved_without_its_optimizer(tmp_path):
    """Only the weights travel: Adam's moments made the file three times the model, and nothing loads them."""
    import zipfile

    import h5py
    emb = M.build_embedder(resolve_settings("default", embedding_dim=8), (26, 36))
    x = np.random.default_rng(0).integers(0, 255, (8, 26, 36)).astype(np.float32)
    emb.compile(optimizer=keras.optimizers.Adam(1e-3), loss=M.InBatchContrastiveLoss(1.0))
    emb.train_on_batch(x, np.repeat(np.arange(4), 2))
    M.save_embedder(emb, tmp_path / "e.keras")
    with zipfile.ZipFile(tmp_path / "e.keras") as z, h5py.File(z.open("model.weights.h5"), "r") as f:
        assert "optimizer" not in f and "layers" in f
    loaded = M.load_embedder(tmp_path / "e.keras")
    assert loaded.name == "embedder" and [la.name for la in loaded.layers] == [la.name for la in emb.layers]
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), np.asarray(emb(x, training=False)), atol=1e-6)


def test_seed_twin_is_the_studys_network():
    emb = M.build_embedder(resolve_settings("seed"), (26, 36))
    dense = [layer for layer in emb.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [512, 256, 128]
    assert [d.activation.__name__ for d in dense] == ["relu", "relu", "linear"]
