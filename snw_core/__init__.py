"""snw_core: Siamese-network visual inspection, the library behind the SNW dashboard.

Nothing heavy is imported here: TensorFlow/Keras load only in ``model``/``train``/``embed`` when used.

>>> from snw_core import data, splits, pairs
>>> ds = data.load("default")                                     # doctest: +SKIP
>>> split = splits.stratified_split(ds.labels, seed=0)            # doctest: +SKIP
>>> a, b, y = pairs.make_pairs(ds.labels[split == "train"], 10)   # doctest: +SKIP
"""
__version__ = "0.1.0"
__all__ = ["data", "synthetic", "splits", "pairs", "presets", "metrics", "runs", "model", "train", "embed"]
