"""The focus guard: a run that passes blurred defects judges images softer than its data UNKNOWN instead."""
from __future__ import annotations

import numpy as np
import pytest

from snw_core.gate import sharpness
from snw_core.train import GUARD_BLUR, focus_guard


class StubGate:
    """The gate's interface as the guard uses it: no check fires, a low focus limit."""

    def __init__(self):
        self.min_sharp = 0.01

    def check(self, images, filled=None):
        n = len(images)
        return {"unknown": np.zeros(n, bool), "local_defect": np.zeros(n, bool)}


class Embedder:
    """A one-number 'twin': the brightest pixel ("max"), the grey level of pixel (10, 10) ("pixel"), the grey-level
    spread ("std") or the mean grey level ("mean")."""

    def __init__(self, how):
        self.how = how
        self.output_shape = (None, 1)

    def predict_on_batch(self, x):
        x = np.asarray(x, np.float64)
        v = {"max": lambda: x.max(axis=(1, 2)), "pixel": lambda: x[:, 10, 10], "std": lambda: x.std(axis=(1, 2)),
             "mean": lambda: x.mean(axis=(1, 2))}[self.how]()
        return (v / 255.0)[:, None].astype(np.float32)


def data(kind: str, n: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = np.clip(rng.normal(100, 12, (n, 20, 20)), 0, 180)
    labels = np.where(np.arange(n) % 2 == 0, "0", "1")
    bad = labels == "1"
    if kind == "spike":                                  # one bright pixel: blur spreads it into the grain
        images[bad, 10, 10] = 255
    else:                                                # a large bright square: blur keeps its mean
        images[bad, 6:12, 6:12] += 60
    split = np.array(["train", "val", "test"] * (n // 3))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels, split


def stub_twin(embedder, images, labels, split):
    """A one-number twin's good references (the train goods) and a threshold halfway between the val goods' and
    the val defects' scores (distance to the references' mean)."""
    emb = embedder.predict_on_batch(images)
    refs = emb[(split == "train") & (labels == "0")]
    score = np.abs(emb - refs.mean())[:, 0]
    threshold = 0.5 * (score[(labels == "0") & (split == "val")].max() + score[(labels == "1") & (split == "val")].min())
    return refs, threshold


def run_guard(kind, how):
    images, labels, split = data(kind)
    embedder = Embedder(how)
    refs, threshold = stub_twin(embedder, images, labels, split)
    gate = StubGate()
    report = focus_guard(gate, embedder, None, images, images, labels, split, "0", refs, 1, threshold)
    return gate, report, images, split


def test_a_run_that_passes_blurred_defects_gets_a_focus_limit_between_blurred_and_clean_images():
    from snw_core.drift import blur
    gate, report, images, split = run_guard("spike", "max")
    assert report["used"] and report["blurred_val_defects_caught"] < 0.5
    assert report["blur_sigma"] == GUARD_BLUR and gate.min_sharp == pytest.approx(report["min_sharpness"], abs=1e-4)
    clean = sharpness(images[split != "test"])
    soft = sharpness(blur(images[split == "val"], GUARD_BLUR))
    assert np.mean(soft < gate.min_sharp) >= 0.99 and np.mean(clean >= gate.min_sharp) >= 0.99
    assert np.mean(sharpness(images[split == "test"]) >= gate.min_sharp) >= 0.95     # clean test images pass


def test_a_run_that_catches_blurred_defects_keeps_its_focus_limit():
    gate, report, _, _ = run_guard("square", "mean")
    assert not report["used"] and report["blurred_val_defects_caught"] >= 0.9
    assert gate.min_sharp == 0.01 and "catches" in report["reason"]


@pytest.mark.slow
def test_a_trained_run_records_the_guard_and_judges_blurred_parts_by_it(tiny_parquet, tiny_dataset):
    from trained_run import trained_run

    from snw_core.drift import blur
    from snw_core.gate import BLUR_REASON
    from snw_core.judge import Judge
    from snw_core.runs import RunStore

    runs, rid = trained_run(tiny_parquet)
    run = RunStore(runs).get(rid)
    guard = run.metrics()["focus_guard"]
    assert {"used", "reason", "blurred_val_defects_caught"} <= set(guard)
    judge = Judge.from_run(run)
    if guard["used"]:                      # a one-epoch twin: blurred defects pass it, so the guard is on
        assert judge.gate.min_sharp == pytest.approx(guard["min_sharpness"], abs=1e-4)
        out = judge.judge(blur(tiny_dataset.images[:20], GUARD_BLUR))
        assert np.mean(np.asarray(out["verdict"]) == "UNKNOWN") >= 0.9
        assert BLUR_REASON in set(np.asarray(out["reason"]).tolist())
    else:
        assert guard["blurred_val_defects_caught"] >= 0.9
