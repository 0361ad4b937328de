"""Embeddings and 2-D projections (UMAP, PCA), stored in the run folder.

>>> emb = embed_images(embedder, ds.images)          # doctest: +SKIP
>>> xy = project_pca(emb)                             # instant preview
>>> xy = project_umap(emb, seed=0)                    # seconds (first call compiles with numba)
"""
from __future__ import annotations

import io

import numpy as np

from .fsutil import atomic_write_bytes

__all__ = ["embed_images", "project_pca", "project_umap", "save_embeddings", "load_embeddings",
           "save_projection", "load_projection", "ensure_projection"]


def embed_images(embedder, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Embeddings of ``images`` (uint8, shape (n, h, w)) -> float32 (n, d), in inference mode."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    out = []
    for i in range(0, images.shape[0], batch_size):
        out.append(np.asarray(embedder(images[i:i + batch_size].astype(np.float32), training=False)))
    if not out:
        return np.zeros((0, embedder.output_shape[-1]), np.float32)
    return np.concatenate(out).astype(np.float32)


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


def project_umap(emb: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """UMAP of ``emb`` (n, d) -> float32 (n, 2); repeatable for a seed. Imports umap lazily (seconds)."""
    import umap  # slow import: only here

    n = emb.shape[0]
    if n < 4:
        return project_pca(emb)
    reducer = umap.UMAP(n_neighbors=min(n_neighbors, n - 1), min_dist=min_dist, random_state=seed,
                        n_components=2, init="spectral" if n > 10 else "random")
    return reducer.fit_transform(np.asarray(emb, np.float32)).astype(np.float32)


def save_embeddings(path, emb, labels, split, scores) -> None:
    """embeddings.npz: embeddings (n, d) float32, labels (n,) str, split (n,) str, scores (n,) float32. No pickles."""
    buf = io.BytesIO()
    np.savez_compressed(buf, embeddings=np.asarray(emb, np.float32), labels=np.asarray(labels).astype(str),
                        split=np.asarray(split).astype(str), scores=np.asarray(scores, np.float32))
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
