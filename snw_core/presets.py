"""Training presets and their settings (pure Python: the dashboard form reads these without TensorFlow).

>>> s = resolve_settings("seed", epochs=1)
>>> s["epochs"], s["batch_size"], s["twin"]
(1, 32, 'dense')
"""
from __future__ import annotations

from .splits import validate_fractions

__all__ = ["PRESETS", "PRESET_HELP", "SettingsError", "resolve_settings", "SETTING_HELP"]


class SettingsError(ValueError):
    """A setting out of range; the message says which and what is allowed."""


#: The seed study, reproduced exactly (seed-recipe.md), except for the 60/20/20 split with a validation set.
_SEED = {
    "twin": "dense",            # Dense 512 ReLU - 256 ReLU - embedding (linear)
    "pairing": "pairs",         # seed scheme: n positive + n negative pairs per image, shuffled
    "normalize": "scale",       # pixel / 255
    "embedding_dim": 128,
    "epochs": 10,
    "batch_size": 32,
    "pairs_per_image": 10,
    "margin": 1.0,
    "learning_rate": 0.001,     # Adam defaults
    "lr_schedule": "constant",
    "early_stopping_patience": 0,   # 0 = off
    "plateau_epochs": 0,            # 0 = the epoch budget starts with the first batch
    "stretch_epochs": 0,            # 0 = the epoch budget never grows
    "augment_shift": 0,
    "augment": "none",          # training augmentation (snw_core.augment): none, or "line" (a camera's drift)
    "presmooth": 0.0,           # conv twin: a fixed Gaussian blur (sigma, px) before the first convolution; 0 = off
    "ema": 0.0,                 # judge with an exponential moving average of the weights (its momentum); 0 = off
    "augment_noise": 0.0,       # with an augmentation: this share of the training images gets extra sensor noise
    "register": "off",          # align every image to the taught part before judging (snw_core.register): auto, off
    "work_side": 0,             # the twin sees images averaged down to this long side (px); 0 = full resolution
    "grid_pool": 0,             # a surface without a layout: the twin's last feature map max-pooled to this many cells a side; 0 = off
    "split": [0.6, 0.2, 0.2],
    "seed": 0,
    "k": 3,                     # k nearest good references for the good/defect score
    "threshold_method": "best_accuracy",
    "max_escape": 0.0,
}

#: Our recipe: a small convolutional twin (three 3x3 convolutions at full resolution, then 1/2 and 1/4; no
#: BatchNorm) on per-image standardised input, with an L2-normalised embedding; class-balanced batches
#: (batch_size // labels images of every label) trained on all pairs inside each batch (in-batch contrastive
#: loss, margin 1, positives and negatives weighted equally); Adam with cosine learning-rate decay; early
#: stopping on the validation pair loss with the best weights restored (not on a surface without a layout, whose
#: verdict rests on the patch bank: :func:`snw_core.train.early_stopping`). The epoch budget counts from take-off:
#: epochs spent on the start-up plateau (val or train pair accuracy still below 60 %, up to ``plateau_epochs``)
#: do not count, and the learning rate stays at its peak until then. Halfway through the budget a twin that ranks
#: the val items below AUROC 0.95 (a strongly grained surface; never a connector) gets ``stretch_epochs`` more: 20,
#: which took gravel whose val and test are surface the run never saw from 88.9-93.5 % (5 more) to 93.1-95.6 %
#: (docs/real-data.md, section 32).
_DEFAULT = dict(_SEED, **{
    "twin": "conv",
    "pairing": "in_batch",
    "normalize": "standardize",
    "embedding_dim": 64,
    "epochs": 10,
    "batch_size": 52,
    "learning_rate": 0.002,
    "lr_schedule": "cosine",
    "early_stopping_patience": 5,
    "plateau_epochs": 30,
    "stretch_epochs": 20,
    "augment_shift": 0,
    "register": "auto",
    "work_side": 128,
    "grid_pool": 12,
})

#: A baseline, not a recipe: a plain supervised CNN. The conv backbone of the ``default`` twin (same
#: convolutions, input normalisation, class-balanced batches, learning rate, schedule, epoch budget and early
#: stopping), then Dense(embedding_dim, ReLU) and a softmax over the labels, trained with cross-entropy. Its
#: "embedding" is the softmax vector itself, so the judgement is the same rule as for every preset (mean
#: distance to the k nearest good train items, in probability space, where the good items sit near the good
#: label's corner); 1 - p(good) is reported beside it in metrics.json (``p_good``). See baselines.py.
_CLASSIFIER = dict(_DEFAULT, **{
    "twin": "conv",
    "pairing": "classify",
    "normalize": "standardize",
    "augment_shift": 0,
})

#: The ``default`` recipe for a line whose camera drifts: every training image gets 0-3 light and sensor changes
#: afresh (``augment = "camera"``: blur, JPEG, noise, light gradient, brightness, contrast; registration undoes the
#: pose), and 30 epochs instead of 10, which the augmented twin needs. On a real-light connector set it is better
#: than ``default`` in every drift condition and on the clean test split; on the generated connectors it gives up a
#: little clean accuracy; on the moderate texture it held every drift condition, on the strong one (no layout to
#: register, coarse grain) its twin lost accuracy or collapsed (docs/real-data.md, section 7). Trains about four times as
#: long as ``default``. The saved weights are a moving average (``ema`` 0.99): with new light and noise drawn for every
#: batch the weights themselves wander, and over four seeds the average held more drift conditions with the same clean
#: accuracy (section 9). ``augment_noise`` (extra sensor noise on a share of the training images) stays 0 here: 0.5
#: held more drift conditions on the generated connectors (7.8 of nine on the mean of five seeds instead of 6.6) but
#: let more defects of the strong real-light connector pass (section 13); a line whose camera is noisy can set it.
_CAMERA = dict(_DEFAULT, **{
    "augment": "camera",
    "epochs": 30,
    "ema": 0.99,
})

PRESETS = {"seed": _SEED, "default": _DEFAULT, "camera": _CAMERA, "classifier": _CLASSIFIER}
PRESET_HELP = {
    "seed": "The seed study exactly: Dense 512-256-128 twin, 10+10 pairs per image, contrastive loss (margin 1), "
            "Adam, batch 32, 10 epochs.",
    "default": "Small convolutional twin on standardised images, unit-length embedding, class-balanced batches "
               "with all in-batch pairs, cosine learning rate, early stopping on validation loss (best weights restored); "
               "the epoch budget counts from take-off (epochs spent on a start-up plateau do not count) and grows "
               "from 10 to 30 epochs where the model ranks the validation items badly halfway through it (a hard "
               "surface).",
    "camera": "The default recipe trained against a line camera's drift: blur, JPEG, noise and light changes drawn "
              "afresh for every training image, 30 epochs (about four times as long as default), a moving average of "
              "the weights. For parts with a fixed layout (connectors); on a strongly grained surface it did worse "
              "than default, or failed outright: use default there.",
    "classifier": "Baseline: the default twin's convolutional backbone with a softmax over the labels, trained with "
                  "cross-entropy on the same batches and epoch budget; judged by k-NN in its softmax space.",
}
SETTING_HELP = {
    "register": "align every image to the taught part before it is judged (auto: where a known shift of the val "
                "goods is recovered; off: never)",
    "augment": "training augmentation: none; camera = the light and sensor of a line camera drift (blur, JPEG, "
               "noise, light gradient, brightness, contrast), drawn afresh for every image; line = camera plus "
               "small shifts and turns. Needs a longer epoch budget (about 30)",
    "augment_noise": "with an augmentation: this share of the training images, drawn afresh, also gets sensor noise "
                     "(sd up to 9 grey levels) whatever else was drawn for it; a line camera's noise is the drift "
                     "the twin holds worst",
    "ema": "average of the weights kept during training (exponential, this momentum per batch; 0 = off): "
           "validation, early stopping and the saved model use the average, which moves less from batch to batch "
           "than the weights themselves",
    "epochs": "passes over the training data (with a plateau allowance: counted from take-off)",
    "batch_size": "pairs per batch (seed scheme) or images per batch (in-batch pairing: batch_size // labels "
                  "images of every label, at least 2)",
    "pairs_per_image": "positive pairs per image, and as many negative pairs (seed scheme)",
    "margin": "contrastive margin: different-label pairs are pushed at least this far apart",
    "learning_rate": "Adam learning rate",
    "embedding_dim": "size of the embedding vector",
    "split": "train / val / test fractions",
    "seed": "seed of the split, the pairs, the weights and the shuffles",
    "k": "nearest good references averaged into the good/defect score",
    "early_stopping_patience": "epochs without a better val loss before training stops (0 = off)",
    "plateau_epochs": "extra epochs allowed on the start-up plateau (val or train pair accuracy below 60 %) "
                      "before the epoch budget starts counting (0 = off; an explicit epoch count without it means "
                      "exactly that many epochs)",
    "stretch_epochs": "extra epochs for a hard surface: where the model, halfway through its epoch budget, ranks the "
                      "validation items below AUROC 0.95, the budget grows by this many (0 = off; an explicit epoch "
                      "count without it means exactly that many epochs)",
    "work_side": "the twin sees images whose long side is larger averaged down by a whole factor to at most this "
                 "many pixels (0 = full resolution); registration, the pixel checks and the heat maps keep the full "
                 "resolution",
    "grid_pool": "on a surface without a layout (registration auto finds none to align to), the twin max-pools its "
                 "last feature map down by a whole factor to at most this many cells a side before its projection, so "
                 "that a small defect anywhere in a large view is not lost among the grain (0 = never; a part with a "
                 "layout is never pooled, nor a map that small already: with 12, images up to 48 px)",
}

_RANGES = {
    "epochs": (int, 1, 1000),
    "batch_size": (int, 2, 8192),
    "pairs_per_image": (int, 1, 100),
    "margin": (float, 1e-6, 100.0),
    "learning_rate": (float, 1e-7, 1.0),
    "embedding_dim": (int, 2, 1024),
    "early_stopping_patience": (int, 0, 1000),
    "plateau_epochs": (int, 0, 1000),
    "stretch_epochs": (int, 0, 1000),
    "work_side": (int, 0, 4096),
    "grid_pool": (int, 0, 256),
    "augment_shift": (int, 0, 4),
    "presmooth": (float, 0.0, 3.0),
    "ema": (float, 0.0, 0.9999),
    "augment_noise": (float, 0.0, 1.0),
    "seed": (int, 0, 2**31 - 1),
    "k": (int, 1, 100),
    "max_escape": (float, 0.0, 1.0),
}
_CHOICES = {
    "twin": ("dense", "conv"),
    "pairing": ("pairs", "in_batch", "classify"),
    "normalize": ("scale", "standardize"),
    "lr_schedule": ("constant", "cosine"),
    "threshold_method": ("best_accuracy", "zero_escape", "max_escape"),
    "augment": ("none", "line", "camera"),
    "register": ("auto", "off"),
}


def resolve_settings(preset: str = "default", **overrides) -> dict:
    """The preset's settings with ``overrides`` applied (``None`` values ignored), validated.

    An ``epochs`` override without a ``plateau_epochs`` (``stretch_epochs``) override sets ``plateau_epochs``
    (``stretch_epochs``) to 0: exactly that many epochs are trained.

    Raises :class:`SettingsError` for an unknown preset, an unknown setting or a value out of range.
    """
    if preset not in PRESETS:
        raise SettingsError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    s = dict(PRESETS[preset])
    s["split"] = list(s["split"])
    for k, v in overrides.items():
        if v is None:
            continue
        if k not in s:
            raise SettingsError(f"Unknown setting {k!r}; known settings: {', '.join(sorted(s))}.")
        s[k] = v
    if overrides.get("epochs") is not None and overrides.get("plateau_epochs") is None:
        # an explicit epoch count is taken literally (``--epochs 1`` trains one epoch); the plateau allowance
        # is the preset's own policy and applies when the epochs come from the preset, or when asked for
        s["plateau_epochs"] = 0
    if overrides.get("epochs") is not None and overrides.get("stretch_epochs") is None:
        s["stretch_epochs"] = 0                 # the same for the stretch of a hard surface
    for k, (typ, lo, hi) in _RANGES.items():
        try:
            v = typ(s[k])
            if typ is int and float(s[k]) != v:
                raise ValueError
        except (TypeError, ValueError):
            raise SettingsError(f"Setting {k} must be {'an integer' if typ is int else 'a number'}; got {s[k]!r}.") from None
        if not (lo <= v <= hi):
            raise SettingsError(f"Setting {k} = {v} is out of range: it must be between {lo} and {hi}"
                                + (f" ({SETTING_HELP[k]})." if k in SETTING_HELP else "."))
        s[k] = v
    for k, choices in _CHOICES.items():
        if s[k] not in choices:
            raise SettingsError(f"Setting {k} = {s[k]!r} is not one of {', '.join(choices)}.")
    try:
        s["split"] = list(validate_fractions(s["split"]))
    except ValueError as e:
        raise SettingsError(str(e)) from None
    s["preset"] = preset
    return s
