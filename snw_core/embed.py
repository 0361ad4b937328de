"""Embeddings and 2-D projections (UMAP, PCA), stored in the run folder.

>>> emb = embed_images(embedder, ds.images)          # doctest: +SKIP
>>> xy = project_pca(emb)                             # instant preview
>>> xy = project_umap(emb, seed=0)                    # seconds (first call compiles with numba)
"""
from __future__ import annotations

import io
import sys
import threading
import warnings

import numpy as np

from .fsutil import atomic_write_bytes

__all__ = ["embed_images", "predict", "pass_rows", "PASS_PIXELS", "project_pca", "project_umap", "exact_knn", "UMAP_EPOCHS", "save_embeddings", "load_embeddings",
           "save_projection", "load_projection", "ensure_projection"]


_GRAPHS: dict = {}


def _graph(model):
    """The model's inference graph, traced once per model object for float32 input of any batch size; None where
    it cannot be traced (then :func:`predict` falls back to ``predict_on_batch``)."""
    key = id(model)
    if key not in _GRAPHS:
        try:
            import weakref

            import tensorflow as tf
            ref = weakref.ref(model)                 # the graph holds the variables, not the model object
            spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32)
            fn = tf.function(lambda t: ref()(t, training=False), input_signature=[spec]).get_concrete_function()
            weakref.finalize(model, _GRAPHS.pop, key, None)
        except Exception:                            # noqa: BLE001 - another backend, or a model it cannot trace
            fn = None
        _GRAPHS[key] = fn
    return _GRAPHS[key]


#: one forward pass takes at most this many input pixels (images x height x width): the full-resolution
#: convolutions hold 16 float32 channels of every pixel, so 512 images of 256 x 256 px took 5 GB at once. Small
#: images (the embedded set: 4,481 of 26 x 36 px) pass whole, as before.
PASS_PIXELS = 1 << 22


def pass_rows(image_shape) -> int:
    """Images per forward pass for images of ``image_shape`` (h, w, ...): :data:`PASS_PIXELS` over their pixels.

    >>> pass_rows((26, 36)), pass_rows((256, 256)), pass_rows((4096, 4096))
    (4481, 64, 1)
    """
    return max(1, PASS_PIXELS // max(1, int(np.prod(image_shape[:2]))))


def predict(model, x: np.ndarray) -> np.ndarray:
    """``model(x)`` in inference mode for a float32 batch -> numpy, through the model's traced graph (any batch
    size, traced once): ``predict_on_batch`` runs the same graph but adds 0.3-0.6 ms of Keras bookkeeping to every
    call, a tenth of judging one image, and traces it again for every new batch size (TensorFlow warns about the
    retracing once that happens often, as when a run judges sets of many sizes). The same numbers, to the bit, and
    the same speed for large batches (3,600 images: 0.31 s against 0.30 s). Large images pass
    :func:`pass_rows` at a time (the same speed per image: 256 x 256 px, 7.0 ms an image in passes of 512, 6.7 in
    passes of 64)."""
    x = np.asarray(x, np.float32)
    rows = pass_rows(x.shape[1:]) if x.ndim >= 3 else len(x)
    if len(x) > rows:
        return np.concatenate([predict(model, x[i:i + rows]) for i in range(0, len(x), rows)])
    fn = _graph(model)
    if fn is not None:
        import tensorflow as tf
        out = fn(tf.constant(x))
        return out.numpy() if hasattr(out, "numpy") else np.asarray(out)
    # predict_on_batch runs a compiled predict function: an eager call costs 10-25 ms even for one image
    return np.asarray(model.predict_on_batch(x))


def embed_images(embedder, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Embeddings of ``images`` (uint8, shape (n, h, w)) -> float32 (n, d), in inference mode."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    out = []
    for i in range(0, images.shape[0], batch_size):
        out.append(predict(embedder, images[i:i + batch_size]))
    if not out:
        return np.zeros((0, embedder.output_shape[-1]), np.float32)
    return np.concatenate(out).astype(np.float32)


_FEATURE_MODELS: dict = {}


def _feature_model(embedder, layer: str):
    """The model from the embedder's input to its layer ``layer``, built once per embedder object and layer: a new
    model per call traced its predict function again every time (about 50 ms, and TensorFlow's retracing warnings
    in the training log)."""
    key = (id(embedder), layer)
    if key not in _FEATURE_MODELS:
        import weakref

        import keras
        _FEATURE_MODELS[key] = keras.Model(embedder.input, embedder.get_layer(layer).output)
        weakref.finalize(embedder, _FEATURE_MODELS.pop, key, None)
    return _FEATURE_MODELS[key]


def feature_maps(embedder, images: np.ndarray, layer: str, batch_size: int = 512) -> np.ndarray:
    """The output of the embedder's layer ``layer`` for uint8 images (n, h, w) -> float32 (n, fh, fw, c)."""
    model = _feature_model(embedder, layer)
    out = [predict(model, images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0,), np.float32)


def project_pca(emb: np.ndarray) -> np.ndarray:
    """First two principal components of ``emb`` (n, d) -> float32 (n, 2). Deterministic (sign fixed)."""
    x = np.asarray(emb, np.float64)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    v = vt[:2]
    v *= np.sign(v[np.arange(v.shape[0]), np.abs(v).argmax(axis=1)])[:, None]
    xy = x @ v.T
    if xy.shape[1] < 2:
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    return xy.astype(np.float32)


#: optimisation epochs of the UMAP layout (umap-learn's own default for large data; it uses 500 below 10,000
#: points, which costs 2.5x the time for no visible gain on these embeddings, see project_umap)
UMAP_EPOCHS = 200
_UMAP_LOCK = threading.Lock()
_UMAP_READY = False


def _import_umap():
    """``import umap`` without TensorFlow, and with numba's disk cache for the layout kernels.

    * ``umap/__init__`` imports ``umap.parametric_umap``, which imports TensorFlow (seconds) for a class we never
      use; blocking that one submodule makes umap fall back to its placeholder (TensorFlow itself stays importable).
    * umap's numba kernels are compiled anew in every process (7-8 s of CPU); with the disk cache a fresh
      process (the trainer, the dashboard's projection child) reuses the machine code. Best effort: without a
      writable cache location numba simply compiles.
    """
    global _UMAP_READY
    with _UMAP_LOCK:
        if _UMAP_READY:
            import umap
            return umap
        blocked = "umap" not in sys.modules and "umap.parametric_umap" not in sys.modules
        if blocked:
            sys.modules["umap.parametric_umap"] = None
        try:
            import umap
            import umap.layouts
            import umap.umap_
        finally:
            if blocked:
                sys.modules.pop("umap.parametric_umap", None)
        for disp in (getattr(umap.umap_, "smooth_knn_dist", None),
                     getattr(umap.umap_, "compute_membership_strengths", None),
                     getattr(umap.layouts, "_nb_optimize_layout_euclidean_single_epoch", None)):
            try:
                if disp is not None and not disp.signatures:
                    disp.enable_caching()
            except Exception:            # no writable cache location, or numba internals changed: just compile
                pass
        # expected with a seed and a precomputed neighbour graph; not worth a line in every log
        warnings.filterwarnings("ignore", message=r"n_jobs value .* overridden", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)
        _UMAP_READY = True
        return umap


def exact_knn(emb: np.ndarray, n_neighbors: int):
    """Exact Euclidean k nearest neighbours in umap's ``precomputed_knn`` layout: each row starts with the item
    itself at distance exactly 0. Returns ``(indices int64 (n, k), distances float32 (n, k))``.

    scikit-learn's BLAS search takes a fraction of a second for thousands of points; umap's own exact path for
    small data (< 4,096 points) calls a numba metric once per pair from Python (about 6 million calls for 3,600
    points, 20+ s). The self distance must be exactly 0: umap takes the first non-zero distance as each point's
    local scale, and BLAS distances leave a 1e-8 residue.
    """
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(emb, np.float32)
    n = x.shape[0]
    dist, idx = NearestNeighbors(n_neighbors=n_neighbors - 1).fit(x).kneighbors(None)   # skips each row itself
    idx = np.hstack([np.arange(n, dtype=np.int64)[:, None], idx.astype(np.int64)])
    dist = np.hstack([np.zeros((n, 1), np.float32), dist.astype(np.float32)])
    return idx, dist


def project_umap(emb: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1,
                 n_epochs: int = UMAP_EPOCHS) -> np.ndarray:
    """UMAP of ``emb`` (n, d) -> float32 (n, 2); repeatable for a seed. Imports umap lazily (seconds).

    The neighbour graph is exact (:func:`exact_knn`, the same graph umap builds itself for small data) and the
    layout runs ``n_epochs`` epochs single-threaded (seeded, so deterministic). 3,600 x 64 on two cores: about
    3 s of CPU once compiled (was 25-35 s); a fresh process adds about 3 s of import and, on the very first use
    on a machine, 7 s of numba compilation (cached on disk afterwards).
    """
    n = emb.shape[0]
    if n < 4:
        return project_pca(emb)
    umap = _import_umap()
    k = min(n_neighbors, n - 1)
    x = np.asarray(emb, np.float32)
    idx, dist = exact_knn(x, k)
    reducer = umap.UMAP(n_neighbors=k, min_dist=min_dist, random_state=seed, n_components=2, n_epochs=n_epochs,
                        init="spectral" if n > 10 else "random", precomputed_knn=(idx, dist, None))
    return reducer.fit_transform(x).astype(np.float32)


def save_embeddings(path, emb, labels, split, scores, **extra) -> None:
    """embeddings.npz: embeddings (n, d) float32, labels (n,) str, split (n,) str, scores (n,) float32, and any
    ``extra`` per-item arrays (e.g. the gate's ``unknown``, ``local_defect``, ``defect_y``). No pickles."""
    buf = io.BytesIO()
    np.savez_compressed(buf, embeddings=np.asarray(emb, np.float32), labels=np.asarray(labels).astype(str),
                        split=np.asarray(split).astype(str), scores=np.asarray(scores, np.float32),
                        **{k: np.asarray(v) for k, v in extra.items()})
    atomic_write_bytes(path, buf.getvalue())


def load_embeddings(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def save_projection(path, xy: np.ndarray, method: str) -> None:
    import pandas as pd
    df = pd.DataFrame({"x": xy[:, 0].astype(np.float32), "y": xy[:, 1].astype(np.float32)})
    df["method"] = method
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


def load_projection(path):
    import pandas as pd
    return pd.read_parquet(path)


def ensure_projection(run, seed: int | None = None):
    """The run's UMAP projection, computed from embeddings.npz and stored on first use."""
    p = run.file("projection.parquet")
    if p.exists():
        return load_projection(p)
    data = load_embeddings(run.file("embeddings.npz"))
    seed = run.config().get("settings", {}).get("seed", 0) if seed is None else seed
    save_projection(p, project_umap(data["embeddings"], seed=seed), "umap")
    return load_projection(p)
