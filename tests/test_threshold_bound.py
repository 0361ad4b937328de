"""tools/threshold_bound.py: the accuracy at a run's threshold and at the best one for the items themselves."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from trained_run import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import threshold_bound  # noqa: E402


class FakeJudge:
    threshold = 0.5

    def judge(self, images):
        score = np.array([0.1, 0.2, 0.6, 0.7, 0.8, 0.9, 0.3])
        verdict = np.where(score > self.threshold, "DEFECT", "GOOD")
        verdict[6] = "UNKNOWN"                              # a good part the gate rejects whatever its score
        return {"score": score, "verdict": verdict}


def test_the_bound_counts_the_runs_threshold_the_best_one_and_the_forced_rejections():
    labels = np.array(["0", "0", "0", "0", "3", "5", "0"])  # goods scoring 0.6 and 0.7 lie above 0.5
    r = threshold_bound.bound(FakeJudge(), np.zeros((7, 4, 4), np.uint8), labels)
    assert r["run"] == pytest.approx({"threshold": 0.5, "good_defect_accuracy": 4 / 7, "escape_rate": 0.0,
                                      "overkill_rate": 3 / 5})
    best = r["best_for_these_items"]
    assert 0.7 <= best["threshold"] < 0.8 and best["good_defect_accuracy"] == pytest.approx(6 / 7)
    assert best["escape_rate"] == 0.0 and best["overkill_rate"] == pytest.approx(1 / 5)
    assert r["goods_rejected_whatever_the_score"] == pytest.approx(1 / 5)
