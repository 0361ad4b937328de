"""Judge items with a trained run: good/defect verdict, score, pin-address guess, nearest references.

>>> j = Judge.from_run(run)                 # doctest: +SKIP
>>> out = j.judge(images)                   # doctest: +SKIP
>>> out["verdict"][0], out["score"][0]      # doctest: +SKIP
('GOOD', 0.21)
"""
from __future__ import annotations

import numpy as np

from .metrics import guess_labels, knn_scores

__all__ = ["Judge", "evaluate_run"]


class Judge:
    """Everything needed to judge an image, taken from a finished run.

    ref_good : float32 (m, d), embeddings of the good train items (the reference set)
    ref_defect, ref_defect_labels : embeddings and labels of the defective train items (pin guesses)
    threshold : score above which an item is a defect; k : neighbours averaged into the score
    """

    def __init__(self, embedder, ref_good, ref_good_idx, ref_defect, ref_defect_labels, ref_defect_idx,
                 threshold, k=3, pin_k=5, good_label="0", image_shape=None):
        self.embedder = embedder
        self.ref_good, self.ref_good_idx = ref_good, ref_good_idx
        self.ref_defect, self.ref_defect_labels, self.ref_defect_idx = ref_defect, ref_defect_labels, ref_defect_idx
        self.threshold, self.k, self.pin_k = float(threshold), int(k), int(pin_k)
        self.good_label = good_label
        self.image_shape = tuple(image_shape) if image_shape is not None else None

    @classmethod
    def from_run(cls, run, embedder=None):
        from .embed import load_embeddings
        cfg, m = run.config(), run.metrics()
        if not m or m.get("threshold") is None:
            raise ValueError(f"Run '{run.id}' has no metrics yet (state: {run.state()}).")
        if embedder is None:
            from .model import load_embedder
            embedder = load_embedder(run.embedder_path)
        e = load_embeddings(run.file("embeddings.npz"))
        good_label = cfg["data"]["good_label"]
        tr = e["split"] == "train"
        g = np.flatnonzero(tr & (e["labels"] == good_label))
        d = np.flatnonzero(tr & (e["labels"] != good_label))
        return cls(embedder, e["embeddings"][g], g, e["embeddings"][d], e["labels"][d], d, m["threshold"],
                   k=cfg["settings"].get("k", 3), good_label=good_label, image_shape=cfg["data"]["image_shape"])

    def check_images(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        if self.image_shape and tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"images are {images.shape[1]} x {images.shape[2]} px but this model was trained on "
                             f"{self.image_shape[0]} x {self.image_shape[1]} px")
        return images

    def embed(self, images):
        from .embed import embed_images
        return embed_images(self.embedder, self.check_images(images))

    def judge_embeddings(self, emb: np.ndarray) -> dict:
        """Verdicts for embeddings (n, d): score, verdict, pin guess + confidence, nearest good/defect refs."""
        scores = knn_scores(self.ref_good, emb, k=self.k)
        defect = scores > self.threshold
        pins, conf = (guess_labels(self.ref_defect, self.ref_defect_labels, emb, k=self.pin_k)
                      if len(self.ref_defect) else (np.full(len(emb), ""), np.zeros(len(emb))))
        dg = np.linalg.norm(emb[:, None, :] - self.ref_good[None], axis=2)
        dd = np.linalg.norm(emb[:, None, :] - self.ref_defect[None], axis=2) if len(self.ref_defect) else None
        out = {"score": scores, "threshold": self.threshold, "defect": defect,
               "verdict": np.where(defect, "DEFECT", "GOOD"), "pin": pins, "pin_confidence": conf,
               "nearest_good": self.ref_good_idx[dg.argmin(1)], "nearest_good_distance": dg.min(1)}
        if dd is not None:
            out["nearest_defect"] = self.ref_defect_idx[dd.argmin(1)]
            out["nearest_defect_distance"] = dd.min(1)
            out["nearest_defect_label"] = self.ref_defect_labels[dd.argmin(1)]
        return out

    def judge(self, images) -> dict:
        return self.judge_embeddings(self.embed(images))


def evaluate_run(run, source: str | None = None) -> dict:
    """Recompute a run's metrics from its saved embedder.

    With no ``source`` (or the run's own data): re-embed the training data and evaluate on the run's split.
    With another data set: judge every item with the run's references and threshold, report the rates.
    """
    from .data import load
    from .embed import embed_images, load_embeddings
    from .metrics import auroc, evaluate_embeddings, per_label_rates, pin_accuracy, rates
    from .model import load_embedder

    cfg = run.config()
    if not cfg:
        raise ValueError(f"Run '{run.id}' has no config.json.")
    good_label = cfg["data"]["good_label"]
    ds = load(source or cfg["data"]["source"], good_label=good_label)
    embedder = load_embedder(run.embedder_path)
    emb = embed_images(embedder, ds.images)
    if ds.content_hash == cfg["data"]["content_hash"]:
        split = load_embeddings(run.file("embeddings.npz"))["split"]
        s = cfg["settings"]
        m, _ = evaluate_embeddings(emb, ds.labels, split, good_label=good_label, k=s["k"],
                                   threshold_method=s["threshold_method"], max_escape=s["max_escape"])
        return {"run_id": run.id, "data": ds.source, "evaluated_on": "test split", **m}
    j = Judge.from_run(run, embedder=embedder)
    out = j.judge_embeddings(emb)
    is_def = ds.labels != good_label
    return {"run_id": run.id, "data": ds.source, "evaluated_on": "all items (other data set)", "n": ds.n,
            **rates(out["score"], is_def, j.threshold), "auroc": auroc(out["score"], is_def),
            "threshold": j.threshold, "per_label": per_label_rates(ds.labels, out["defect"], good_label),
            "pin_accuracy": pin_accuracy(ds.labels, out["pin"], good_label)}
