"""The camera check (snw_core.acquisition): a batch unlike the training images is named, a batch like them is not,
and the line bundle's numpy copy finds the same."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from snw_core import acquisition as A
from snw_core.drift import apply
from trained_run import ROOT


@pytest.fixture(scope="module")
def parts():
    from snw_core import synthetic
    images, labels, _ = synthetic.generate(260, 11)
    return images[:200], images[200:]              # "training" images, and fresh ones of the same camera


def _bundle_module():
    spec = importlib.util.spec_from_file_location("inspect_bundle_camera", ROOT / "snw_core" / "bundle_template"
                                                  / "inspect_bundle.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_profile_is_plain_json_with_three_percentiles_per_measure(parts):
    prof = A.profile(parts[0])
    assert json.loads(json.dumps(prof)) == prof
    assert prof["n"] == 200 and prof["percentiles"] == [1.0, 50.0, 99.0]
    assert set(prof["measures"]) == set(A.MEASURES)
    for lo, mid, hi in prof["measures"].values():
        assert lo <= mid <= hi


def test_a_batch_from_the_same_camera_passes_and_a_drifted_one_is_named(parts):
    train, fresh = parts
    prof = A.profile(train)
    assert A.findings(prof, fresh[:20]) == [] and A.summary([]) == ""

    def named(x):
        return {(f["measure"], f["side"]) for f in A.findings(prof, x)}

    assert ("noise", "high") in named(apply(fresh[:20], "noise", 8.0, seed=1))
    assert ("sharpness", "low") in named(apply(fresh[:20], "blur", 1.0, seed=1))
    assert named(apply(fresh[:20], "contrast", 0.6, seed=1)) == {("contrast", "low")}
    dark = np.clip(fresh[:20] * 0.5, 0, 255).astype(np.uint8)
    assert ("brightness", "low") in named(dark)
    text = A.summary(A.findings(prof, apply(fresh[:20], "noise", 8.0, seed=1)))
    assert text.startswith("Camera check: the images are noisier than the training images") and "gain" in text


def test_small_batches_and_runs_without_a_profile_are_not_checked(parts):
    train, fresh = parts
    noisy = apply(fresh[:20], "noise", 12.0, seed=1)
    assert A.findings(A.profile(train), noisy[:A.MIN_IMAGES - 1]) == []      # one odd image is common
    assert A.findings(A.profile(train), noisy[:A.MIN_IMAGES]) != []
    assert A.findings(None, noisy) == [] and A.findings({}, noisy) == []
    partial = {"measures": {"noise": A.profile(train)["measures"]["noise"]}}     # what a profile holds is checked
    assert [f["measure"] for f in A.findings(partial, noisy)] == ["noise"]


def test_the_bundle_script_finds_what_the_dashboard_finds(parts):
    train, fresh = parts
    prof = A.profile(train)
    mod = _bundle_module()
    for batch in (fresh[:20], apply(fresh[:20], "noise", 8.0, seed=2), apply(fresh[:20], "blur", 1.0, seed=2),
                  np.clip(fresh[:20] * 1.6, 0, 255).astype(np.uint8)):
        want, got = A.findings(prof, batch), mod.camera_findings(prof, batch)
        assert [(f["measure"], f["side"], f["message"]) for f in got] == \
               [(f["measure"], f["side"], f["message"]) for f in want]
        for g, w in zip(got, want):
            assert g["median"] == pytest.approx(w["median"], rel=1e-12)


def test_the_line_monitor_finds_a_drift_in_images_judged_one_at_a_time(parts):
    """A line program judges each part as it comes, so no batch of five ever reaches the camera check: the bundle's
    CameraMonitor keeps the last images' measures and finds the drift once, with the dashboard's findings on the
    same window."""
    mod = _bundle_module()
    train, fresh = parts
    prof = A.profile(train)
    stream = np.concatenate([fresh[:40], apply(fresh[:60], "blur", 1.0, seed=1)])    # the lens softens at image 40
    monitor = mod.CameraMonitor(prof, window=20)
    changes = []
    for i, image in enumerate(stream):
        found = monitor.add(image)
        if monitor.changed:
            changes.append((i, [(f["measure"], f["side"]) for f in found]))
    # said when a finding comes (the softer images first lower the sharpness, then the contrast), not every image
    assert 1 <= len(changes) <= 2 and all(40 < at <= 40 + 20 for at, _ in changes), changes
    at, what = changes[0]
    assert at <= 40 + 20 // 2 + 1 and what == [("sharpness", "low")]
    want = A.findings(prof, stream[-20:])
    assert [(f["measure"], f["side"], f["message"]) for f in monitor.findings] == \
        [(f["measure"], f["side"], f["message"]) for f in want]
    back = mod.CameraMonitor(prof, window=20)
    for image in fresh[:30]:
        assert back.add(image) == []                          # the same camera: nothing, ever
    assert mod.CameraMonitor(None, window=20).add(stream[-20:]) == []
    with pytest.raises(ValueError):
        mod.CameraMonitor(prof, window=3)


def test_the_warning_says_what_the_runs_own_drift_check_measured_under_that_change(parts):
    """A batch softer than the training images: the warning adds how the run held blurred parts in its drift check
    (what to expect), the same words from the dashboard and the line bundle."""
    mod = _bundle_module()
    train, fresh = parts
    prof = A.profile(train)
    found = A.findings(prof, apply(fresh[:20], "blur", 1.0, seed=1))
    assert ("sharpness", "low") in {(f["measure"], f["side"]) for f in found}

    def row(cond, strength, goods, defects):
        return {"condition": cond, "strength": strength, "n_good": 120, "n_defect": 120, "goods_passed_n": goods,
                "defects_caught_n": defects, "goods_passed": goods / 120, "defects_caught": defects / 120}

    check = {"rows": [row("none", 0.0, 120, 120), row("blur", 1.0, 98, 115), row("noise", 8.0, 120, 119)]}
    said = A.drift_evidence(found, check)
    assert said.startswith("this run's drift check, on fresh parts blurred (sigma 1 px), passed 98 of 120 good parts "
                           "and caught 115 of 120 defective ones (expect more good parts rejected)")
    assert mod.drift_evidence(found, check) == said
    text = A.summary(found, check)
    assert text.startswith("Camera check: ") and "the images are softer" in text and text.endswith(said + ".")
    assert "bench --drift" in A.summary(found)                      # a run without the check: the old advice
    noisy = A.findings(prof, apply(fresh[:20], "noise", 12.0, seed=1))
    assert "with noise of sd 8, passed 120 of 120 good parts and caught 119 of 120 defective ones (held)" in \
        A.drift_evidence(noisy, check) == mod.drift_evidence(noisy, check)
    assert A.drift_evidence(found, None) == "" == mod.drift_evidence(found, None)
