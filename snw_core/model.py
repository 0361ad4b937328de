"""Twin networks, the distance layer and contrastive losses, written with ``keras.ops`` only.

The embedder (the twin) takes raw grayscale images, shape (batch, h, w), values 0..255, and returns
embeddings (batch, d). Its first layer normalises, so exported models need no preprocessing code.

>>> emb = build_embedder(resolve_settings("seed"), (26, 36))     # doctest: +SKIP
>>> siamese = build_siamese(emb)                                  # doctest: +SKIP
"""
from __future__ import annotations

import keras
from keras import layers, ops

from .pairs import PAIR_DIFFERENT, PAIR_SAME

__all__ = ["build_embedder", "working_factor", "grid_pool_factor", "build_classifier", "build_siamese", "EuclideanDistance", "Normalize", "L2Normalize", "ContrastiveLoss",
           "InBatchContrastiveLoss", "PairAccuracy", "contrastive_loss", "load_embedder", "save_embedder"]

PACKAGE = "snw"
#: filters of the conv twin's 3x3 convolutions, one tuple per resolution stage (full, 1/2, 1/4)
CONV_BLOCKS = ((16, 16, 16), (32,), (32,))


def contrastive_loss(y, d, margin: float = 1.0):
    """Per-pair contrastive loss of the seed study: ``(1 - y)/2 * d^2 + y/2 * max(0, m - d)^2``.

    y : pair labels (PAIR_SAME = 0, PAIR_DIFFERENT = 1), shape (batch,)
    d : distances, shape (batch,)
    """
    y = ops.cast(ops.reshape(y, (-1,)), d.dtype) if hasattr(d, "dtype") else y
    d = ops.reshape(d, (-1,))
    same = ops.cast(ops.equal(y, PAIR_SAME), d.dtype)
    diff = ops.cast(ops.equal(y, PAIR_DIFFERENT), d.dtype)
    return same * 0.5 * ops.square(d) + diff * 0.5 * ops.square(ops.maximum(margin - d, 0.0))


@keras.saving.register_keras_serializable(package=PACKAGE)
class ContrastiveLoss(keras.losses.Loss):
    """Mean contrastive loss over pairs; ``y_pred`` is the pair distance."""

    def __init__(self, margin: float = 1.0, name: str = "contrastive", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        return contrastive_loss(ops.cast(y_true, y_pred.dtype), y_pred, self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


def pairwise_distances(e):
    """Euclidean distances between all rows of ``e`` (batch, d) -> (batch, batch), safe gradient at 0."""
    sq = ops.sum(ops.square(e), axis=1)
    d2 = ops.expand_dims(sq, 1) + ops.expand_dims(sq, 0) - 2.0 * ops.matmul(e, ops.transpose(e))
    return ops.sqrt(ops.maximum(d2, 1e-12))


@keras.saving.register_keras_serializable(package=PACKAGE)
class InBatchContrastiveLoss(keras.losses.Loss):
    """Contrastive loss over every pair of items inside a batch of single images.

    ``y_true`` are integer class ids (batch,), ``y_pred`` embeddings (batch, d). Positive (same-label) and
    negative pairs are averaged separately and weighted equally, so the loss does not depend on how
    many goods a batch happens to hold; the per-pair terms are the seed study's.
    """

    def __init__(self, margin: float = 1.0, name: str = "in_batch_contrastive", **kwargs):
        kwargs.pop("reduction", None)       # always "sum" (the loss averages itself); a saved config carries it
        super().__init__(name=name, reduction="sum", **kwargs)
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        y = ops.reshape(y_true, (-1,))
        d = pairwise_distances(y_pred)
        n = ops.shape(d)[0]
        same = ops.cast(ops.equal(ops.expand_dims(y, 1), ops.expand_dims(y, 0)), d.dtype)
        off_diag = 1.0 - ops.eye(n, dtype=d.dtype)
        pos = same * off_diag
        neg = (1.0 - same)
        pos_loss = ops.sum(pos * 0.5 * ops.square(d)) / ops.maximum(ops.sum(pos), 1.0)
        neg_loss = ops.sum(neg * 0.5 * ops.square(ops.maximum(self.margin - d, 0.0))) / ops.maximum(ops.sum(neg), 1.0)
        return pos_loss + neg_loss

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PairAccuracy(keras.metrics.MeanMetricWrapper):
    """Share of pairs judged right: "same" when the distance is below ``cutoff`` (0.5, the seed's metric)."""

    def __init__(self, cutoff: float = 0.5, name: str = "pair_accuracy", dtype=None):
        super().__init__(fn=_pair_correct, name=name, dtype=dtype, cutoff=cutoff)
        self.cutoff = cutoff

    def get_config(self):
        return {"cutoff": self.cutoff, "name": self.name, "dtype": self.dtype}


def _pair_correct(y_true, y_pred, cutoff=0.5):
    pred_diff = ops.cast(ops.reshape(y_pred, (-1,)) >= cutoff, "float32")
    return ops.cast(ops.equal(pred_diff, ops.cast(ops.reshape(y_true, (-1,)), "float32")), "float32")


@keras.saving.register_keras_serializable(package=PACKAGE)
class EuclideanDistance(keras.layers.Layer):
    """Euclidean distance between two embeddings, (batch, d) x (batch, d) -> (batch,)."""

    def call(self, a, b):
        return ops.sqrt(ops.maximum(ops.sum(ops.square(a - b), axis=-1), 1e-12))

    def compute_output_shape(self, a_shape, b_shape=None):
        return (a_shape[0],)


@keras.saving.register_keras_serializable(package=PACKAGE)
class L2Normalize(keras.layers.Layer):
    """Scales every embedding to unit length, (batch, d) -> (batch, d)."""

    def call(self, x):
        return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), 1e-12))


@keras.saving.register_keras_serializable(package=PACKAGE)
class Normalize(keras.layers.Layer):
    """Input normalisation: ``scale`` = pixel / 255 (the seed); ``standardize`` = per image zero mean, unit std.

    Standardising each image removes brightness, contrast and (with a conv twin) most illumination
    differences between cameras, which is what lets one recipe serve other image sets.
    """

    def __init__(self, mode: str = "scale", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("scale", "standardize"):
            raise ValueError(f"unknown normalisation {mode!r}")
        self.mode = mode

    def call(self, x):
        x = ops.cast(x, "float32")
        if self.mode == "scale":
            return x / 255.0
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        std = ops.std(x, axis=(1, 2), keepdims=True)
        return (x - mean) / (std + 1.0)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def working_factor(work_side: int, image_shape) -> int:
    """The whole factor the twin averages images of ``image_shape`` down by: the smallest that brings their long
    side to ``work_side`` px or less (1 where they are that small already, or ``work_side`` is 0).

    >>> working_factor(128, (26, 36)), working_factor(128, (256, 256)), working_factor(128, (480, 640)), working_factor(0, (512, 512))
    (1, 2, 5, 1)
    """
    return _whole_factor(work_side, image_shape)


def _whole_factor(limit: int, shape) -> int:
    """The smallest whole factor that brings the long side of ``shape`` to ``limit`` or less (1 when ``limit`` is 0)."""
    side = max(int(shape[0]), int(shape[1]))
    return 1 if not limit or side <= int(limit) else -(-side // int(limit))


def grid_pool_factor(pool_side: int, map_shape) -> int:
    """The whole factor the conv twin max-pools its last feature map of ``map_shape`` down by before the projection:
    the smallest that brings its long side to ``pool_side`` cells or fewer (1 where it is that small already, or
    ``pool_side`` is 0).

    >>> grid_pool_factor(12, (7, 9)), grid_pool_factor(12, (24, 32)), grid_pool_factor(12, (32, 32)), grid_pool_factor(0, (24, 32))
    (1, 3, 3, 1)
    """
    return _whole_factor(pool_side, map_shape)


def build_embedder(settings: dict, image_shape: tuple[int, int], pool_side: int = 0) -> keras.Model:
    """The twin: raw images (batch, h, w) in 0..255 -> embeddings (batch, embedding_dim).

    ``pool_side`` (conv twin; the trainer passes the ``grid_pool`` setting for a surface without a layout, else 0):
    a last feature map with a longer side is max-pooled down by :func:`grid_pool_factor` (layer ``grid_pool``)
    before the projection. On such a surface the grain lies anywhere; the projection then sees, per region, the
    strongest response of each feature (a defect's) instead of every position of the grain, and a 96 x 128 px view
    left its start-up plateau after 5 epochs instead of 34 (docs/real-data.md, section 29).

    Images larger than the ``work_side`` setting are averaged down by :func:`working_factor` inside the model
    (layer ``working_resolution``), after the normalisation, the presmoothing and the shift augmentation: its
    convolutions and projection then cost what those of a small image cost (a 256 x 256 px image held 16
    channels of 65,536 pixels in each full-resolution convolution, and a projection of 131,072 inputs)."""
    h, w = int(image_shape[0]), int(image_shape[1])
    factor = working_factor(settings.get("work_side", 0), (h, w))
    inp = keras.Input((h, w), name="image")
    x = Normalize(settings["normalize"], name="normalize")(inp)
    dim = int(settings["embedding_dim"])
    if settings["twin"] == "dense":
        if factor > 1:
            x = layers.Reshape((h, w, 1))(x)
            x = layers.AveragePooling2D(factor, padding="same", name="working_resolution")(x)
        x = layers.Flatten()(x)
        x = layers.Dense(512, activation="relu")(x)
        x = layers.Dense(256, activation="relu")(x)
        out = layers.Dense(dim, name="embedding")(x)
    else:
        # the conv twin: three 3x3 convolutions at full resolution (a defect can be one or two pixels: a
        # smudge, a 1-px bend), then two cheaper stages at 1/2 and 1/4 resolution. No BatchNorm: its
        # train/inference gap hurt the k-NN distances, and with per-image standardised input it is not
        # needed. Flatten keeps the spatial layout: where a defect is (its pin address) matters.
        x = layers.Reshape((h, w, 1))(x)
        if float(settings.get("presmooth", 0.0)) > 0:
            # a fixed Gaussian blur before the first convolution: sensor noise and JPEG blocks are finer than
            # any defect, so the twin need not learn to ignore them pixel by pixel
            x = gaussian_layer(float(settings["presmooth"]))(x)
        if settings.get("augment_shift"):
            # training-only: the whole part moves by up to augment_shift px; pins never move relative to
            # each other, so a defect stays a defect
            s = int(settings["augment_shift"])
            x = layers.RandomTranslation(s / h, s / w, fill_mode="nearest", interpolation="nearest",
                                         seed=settings["seed"], name="random_shift")(x)
        if factor > 1:
            x = layers.AveragePooling2D(factor, padding="same", name="working_resolution")(x)
        for i, filters in enumerate(CONV_BLOCKS):
            for j, f in enumerate(filters):
                x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{i + 1}_{j + 1}")(x)
            if i < len(CONV_BLOCKS) - 1:
                x = layers.MaxPooling2D(2, padding="same", name=f"pool{i + 1}")(x)
        g = grid_pool_factor(pool_side, x.shape[1:3])
        if g > 1:
            x = layers.MaxPooling2D(g, padding="same", name="grid_pool")(x)
        x = layers.Flatten()(x)
        x = layers.Dense(dim, name="projection")(x)
        # on the unit sphere: the embedding cannot collapse or grow, distances lie in [0, 2] and the
        # contrastive margin (1) and the pair cutoff (0.5) keep one meaning for every data set
        out = L2Normalize(name="embedding")(x)
    return keras.Model(inp, out, name="embedder")


def build_classifier(settings: dict, image_shape: tuple[int, int], n_classes: int, pool_side: int = 0) -> keras.Model:
    """The ``classifier`` baseline: raw images (batch, h, w) in 0..255 -> class probabilities (batch, n_classes).

    The conv twin's backbone (same normalisation and convolutions), then Dense(embedding_dim, ReLU) and a
    softmax over the labels (class ids: the labels in sorted order). The probability vector doubles as the
    embedding, so a classifier run is judged, saved and exported like any twin.
    """
    twin = build_embedder(dict(settings, twin="conv"), image_shape, pool_side=pool_side)
    x = twin.get_layer("projection").output
    x = layers.Activation("relu", name="projection_relu")(x)
    out = layers.Dense(int(n_classes), activation="softmax", name="probabilities")(x)
    return keras.Model(twin.input, out, name="embedder")


def gaussian_kernel(sigma: float):
    """A normalised 2-D Gaussian kernel (numpy, (2r+1, 2r+1)), r = ceil(2 sigma)."""
    import numpy as np
    r = max(1, int(np.ceil(2 * sigma)))
    t = np.arange(-r, r + 1)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    k = np.outer(g, g)
    return (k / k.sum()).astype("float32")


def gaussian_layer(sigma: float, name: str = "presmooth") -> layers.Conv2D:
    """A non-trainable 3x3/5x5 convolution holding a Gaussian blur of ``sigma`` px (one channel in and out).

    A plain Conv2D (not a custom layer), so it saves, loads with safe_mode and converts to LiteRT as is."""
    k = gaussian_kernel(sigma)
    return layers.Conv2D(1, k.shape[0], padding="same", use_bias=False, trainable=False, name=name,
                         kernel_initializer=keras.initializers.Constant(k[:, :, None, None]))


def build_siamese(embedder: keras.Model) -> keras.Model:
    """Two images -> the distance of their embeddings, with one shared embedder."""
    shape = embedder.input_shape[1:]
    a = keras.Input(shape, name="image_a")
    b = keras.Input(shape, name="image_b")
    d = EuclideanDistance(name="distance")(embedder(a), embedder(b))
    return keras.Model([a, b], d, name="siamese")


def save_embedder(embedder: keras.Model, path) -> None:
    """Save atomically as ``.keras``, without the optimizer's state: a trained twin is only ever loaded to judge
    and export, and Adam's two moments per weight made the file three times the model (300 MB for a projection
    of 256 x 256 px images at full resolution)."""
    from .fsutil import atomic_writer
    if getattr(embedder, "optimizer", None) is not None:
        # the same layers (and weights) in an uncompiled model; clone_model would compile its clone too
        embedder = keras.Model(embedder.input, embedder.output, name=embedder.name)
    with atomic_writer(path, suffix=".keras") as tmp:
        embedder.save(tmp)


def load_embedder(path) -> keras.Model:
    """Load an embedder saved by :func:`save_embedder`, with ``safe_mode=True`` (no code from the file runs)."""
    return keras.saving.load_model(path, safe_mode=True, compile=False)
