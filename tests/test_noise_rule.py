"""The noise rule: an image noisier than the run's own keeps a DEFECT by its score only above a higher twin score,
unless the good-parts model sees a local difference; learned on noisy val copies, the same in dashboard and bundle."""
from __future__ import annotations

import numpy as np
import pytest

from snw_core.gate import relative_noise
from snw_core.judge import NOISE_RULE_NOTE, Judge, apply_noise_rule, records
from snw_core.train import NOISE_RULE_SD, fit_noise_rule

from test_export import template_module
from test_focus_guard import Embedder, stub_twin


def test_the_rule_scales_only_noisy_scores_without_local_evidence():
    rule = {"used": True, "min_noise": 0.2, "twin": 0.6, "local": 0.5}
    checks = {"noise": np.array([0.1, 0.3, 0.3, 0.3]), "local": np.array([0.1, 0.1, 0.9, 0.4])}
    scores, scaled = apply_noise_rule([0.4, 0.4, 0.4, 0.7], 0.3, checks, rule)
    assert list(scaled) == [False, True, False, True]
    assert scores == pytest.approx([0.4, 0.2, 0.4, 0.35])
    # so: clean 0.4 > 0.3 DEFECT; noisy 0.4 without local evidence GOOD; with it DEFECT; noisy 0.7 > 0.6 DEFECT
    assert list(scores > 0.3) == [True, False, True, True]
    assert apply_noise_rule([0.4], 0.3, {"local": np.array([0.1])}, rule)[1].tolist() == [False]   # no measure
    # noisier than any copy the rule was learned on: the plain threshold again (heavy noise is not leniency's case)
    capped = {**rule, "max_noise": 0.35}
    checks = {"noise": np.array([0.3, 0.35, 0.9]), "local": np.array([0.1, 0.1, 0.1])}
    assert apply_noise_rule([0.4, 0.4, 0.4], 0.3, checks, capped)[1].tolist() == [True, True, False]


class StubGate:
    """The gate's interface as the rule uses it: the relative noise, and a local evidence that sees the defect (a
    bright square in the middle) but not the noise."""

    def check(self, images, filled=None):
        x = np.asarray(images, np.float64)
        centre = x[:, 8:12, 8:12].mean(axis=(1, 2)) - x[:, 4:16, 4:16].mean(axis=(1, 2))
        n = len(x)
        return {"noise": relative_noise(x), "local": np.clip(centre / 60.0, 0, None), "unknown": np.zeros(n, bool),
                "local_defect": np.zeros(n, bool)}


def data(n=600, seed=0, noise=3.0):
    rng = np.random.default_rng(seed)
    xx = np.arange(20)[None, :]
    images = 110 + 50 * np.cos(2 * np.pi * xx / 40.0) + np.zeros((n, 20, 20)) + rng.normal(0, noise, (n, 20, 20))
    labels = np.where(np.arange(n) % 2 == 0, "0", "1")
    images[labels == "1", 8:12, 8:12] += 45
    split = np.array(["train", "val", "test"] * (n // 3))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels, split


def test_a_rule_is_learned_on_noisy_val_copies_and_passes_noisy_goods_but_not_noisy_defects():
    images, labels, split = data()
    twin = Embedder("std")
    refs, threshold = stub_twin(twin, images, labels, split)
    rule = fit_noise_rule(StubGate(), twin, None, images, images, labels, split, "0", refs, 1, threshold, seed=1)
    assert rule["used"], rule
    assert rule["sd"] == list(NOISE_RULE_SD) and rule["val_accuracy"] > rule["val_accuracy_plain"]
    assert rule["twin"] > threshold and 0.0 <= rule["local"] <= 1.0
    fresh, flab, _ = data(seed=7, noise=12.0)                       # a noisier camera than the data's
    e = Embedder("std").predict_on_batch(fresh)
    s = np.abs(e - refs.mean())[:, 0]
    c = StubGate().check(fresh)
    plain = s > threshold
    ruled, _ = apply_noise_rule(s, threshold, c, rule)
    good = flab == "0"
    assert plain[good].mean() > 0.5                                # the plain threshold rejects noisy goods
    assert (ruled > threshold)[good].mean() < 0.1                  # the rule passes them
    assert (ruled > threshold)[~good].mean() >= 0.95               # and still rejects the noisy defects


def test_no_rule_where_the_plain_threshold_is_as_good():
    images, labels, split = data()
    images[labels == "1", 8:12, 8:12] = 255                         # defects so bright that noise changes nothing
    emb = Embedder("std").predict_on_batch(images)
    refs = emb[(split == "train") & (labels == "0")]

    class Blind(StubGate):
        def check(self, images, filled=None):
            c = super().check(images)
            c["unknown"] = np.asarray(images)[:, 8:12, 8:12].mean(axis=(1, 2)) > 200     # the gate rejects them
            return c

    rule = fit_noise_rule(Blind(), Embedder("std"), None, images, images, labels, split, "0", refs, 1, 10.0, seed=1)
    assert not rule["used"] and "beats" in rule["reason"]


def test_dashboard_and_bundle_apply_the_same_rule():
    rng = np.random.default_rng(5)
    d, n = 8, 40
    good = rng.normal(0, 1, (40, d)).astype(np.float32)
    defect = rng.normal(2.0, 1, (50, d)).astype(np.float32)
    labels = np.array([str(1 + i % 5) for i in range(50)])
    q = np.concatenate([rng.normal(0, 1.6, (n // 2, d)), rng.normal(2.0, 1, (n // 2, d))]).astype(np.float32)
    checks = {"unknown": np.zeros(n, bool), "flat": np.zeros(n, bool), "appearance": np.full(n, 0.3),
              "local": rng.uniform(0, 1, n), "local_defect": np.zeros(n, bool), "noise": rng.uniform(0.1, 0.4, n),
              "defect_y": np.zeros(n, np.int64), "defect_x": np.zeros(n, np.int64),
              "heatmap": np.zeros((n, 4, 4), np.float32)}
    rule = {"used": True, "min_noise": 0.2, "max_noise": 0.35, "twin": 4.5, "local": 0.5}

    from trained_run import FixedGate

    judge = Judge(None, good, np.arange(40), defect, labels, np.arange(50) + 40, threshold=3.0, k=3, pin_k=5,
                  gate=FixedGate(checks), noise_rule=rule)
    out = judge.judge_embeddings(q, images=np.zeros((n, 4, 4), np.uint8))
    plain = Judge(None, good, np.arange(40), defect, labels, np.arange(50) + 40, threshold=3.0, k=3, pin_k=5,
                  gate=FixedGate(checks)).judge_embeddings(q, images=np.zeros((n, 4, 4), np.uint8))
    changed = out["verdict"] != plain["verdict"]
    assert changed.any() and (out["verdict"][changed] == "GOOD").all()       # the rule only ever passes more
    assert all(NOISE_RULE_NOTE in r for r in out["reason"][changed])
    refs = template_module().References(good, np.arange(40), defect, labels, np.arange(50) + 40, threshold=3.0,
                                        k=3, pin_k=5, noise_rule=rule)
    for w, g in zip(records(out), refs.judge_embeddings(q, None, checks)):
        assert g["verdict"] == w["verdict"] and g["reason"] == w["reason"]
        assert g["score"] == pytest.approx(w["score"], rel=1e-5)
    unused = Judge(None, good, np.arange(40), defect, labels, np.arange(50) + 40, threshold=3.0, k=3, pin_k=5,
                   gate=FixedGate(checks), noise_rule={**rule, "used": False})
    assert unused.noise_rule is None
