"""The noise guard: a run whose defects drown in sensor noise judges images that noisy UNKNOWN ("too noisy")."""
from __future__ import annotations

import numpy as np
import pytest

from snw_core.gate import NOISE_REASON, Gate, relative_noise
from snw_core.judge import combine
from snw_core.train import GUARD_CAUGHT, NOISE_LADDER, noise_guard

from test_focus_guard import Embedder, StubGate, stub_twin
from test_gate import bundle_script


def data(kind: str, n: int = 300, seed: int = 0):
    """A smooth part (a slow cosine, which the noise estimate cancels) with a little sensor noise; the defect is
    the centre pixel 40 grey levels brighter ("pixel": noise hides it) or a bright 8 x 8 square ("square")."""
    rng = np.random.default_rng(seed)
    xx = np.arange(20)[None, :]
    images = 110 + 50 * np.cos(2 * np.pi * xx / 40.0) + np.zeros((n, 20, 20)) + rng.normal(0, 3, (n, 20, 20))
    labels = np.where(np.arange(n) % 2 == 0, "0", "1")
    bad = labels == "1"
    if kind == "pixel":
        images[bad, 10, 10] += 40
    else:
        images[bad, 6:14, 6:14] += 120
    split = np.array(["train", "val", "test"] * (n // 3))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels, split


def run_guard(kind, how):
    images, labels, split = data(kind)
    embedder = Embedder(how)
    refs, threshold = stub_twin(embedder, images, labels, split)
    gate = StubGate()
    gate.max_noise = 0.0
    report = noise_guard(gate, embedder, None, images, images, labels, split, "0", refs, 1, threshold, seed=3)
    return gate, report, images, split


def test_a_run_whose_defects_drown_in_noise_gets_a_noise_limit_between_clean_and_noisy_images():
    from snw_core.drift import apply
    gate, report, images, split = run_guard("pixel", "pixel")
    assert report["used"] and gate.max_noise == pytest.approx(report["max_noise"], abs=1e-4)
    failed = report["failed_sd"]
    assert report["caught"][f"{failed:g}"] < GUARD_CAUGHT
    assert all(v >= GUARD_CAUGHT for sd, v in report["caught"].items() if float(sd) < failed)
    clean = relative_noise(images[split == "test"])
    assert np.mean(clean <= gate.max_noise) >= 0.99                  # clean parts are still judged
    worse = [sd for sd in NOISE_LADDER if sd > failed] or [failed]
    noisy = relative_noise(apply(images[split == "test"], "noise", worse[0], seed=11))
    assert np.mean(noisy > gate.max_noise) >= 0.95                   # noisier than the failing level: UNKNOWN
    assert "too noisy" in report["reason"]


def test_a_run_that_catches_noisy_defects_keeps_no_noise_limit():
    gate, report, _, _ = run_guard("square", "mean")
    assert not report["used"] and gate.max_noise == 0.0
    assert list(report["caught"]) == [f"{sd:g}" for sd in NOISE_LADDER]
    assert min(report["caught"].values()) >= GUARD_CAUGHT and "catches at least" in report["reason"]


def test_without_its_appearance_check_a_run_that_rejects_its_noisy_goods_gets_a_noise_limit():
    """A twin that reads noise as a defect (the grey-level spread) catches every noisy defect but rejects the noisy
    goods. With the appearance check (which sees heavy noise) the guard keeps no limit, as before; where the run has
    switched the check off (a surface), the level at which fewer than half of the goods pass sets the limit."""
    from snw_core.train import GUARD_GOODS
    images, labels, split = data("square")
    embedder = Embedder("std")
    refs, threshold = stub_twin(embedder, images, labels, split)
    reports = {}
    for t_app in (1.0, float("inf")):
        gate = StubGate()
        gate.max_noise, gate.t_app = 0.0, t_app
        reports[t_app] = noise_guard(gate, embedder, None, images, images, labels, split, "0", refs, 1, threshold,
                                     seed=3), gate
    with_check, gate = reports[1.0]
    assert not with_check["used"] and gate.max_noise == 0.0 and "goods_passed" not in with_check
    assert min(with_check["caught"].values()) >= GUARD_CAUGHT
    without, gate = reports[float("inf")]
    failed = without["failed_sd"]
    assert without["used"] and gate.max_noise == pytest.approx(without["max_noise"], abs=1e-4)
    assert without["goods_passed"][f"{failed:g}"] < GUARD_GOODS <= min(
        v for sd, v in without["goods_passed"].items() if float(sd) < failed)
    assert without["caught"][f"{failed:g}"] >= GUARD_CAUGHT and "passes only" in without["reason"]
    clean = relative_noise(images[split == "test"])
    assert np.mean(clean <= gate.max_noise) >= 0.99                  # clean parts are still judged


@pytest.fixture(scope="module")
def fitted(tiny_dataset):
    from snw_core.splits import stratified_split
    split = stratified_split(tiny_dataset.labels, (0.6, 0.2, 0.2), 0)
    return Gate.fit(tiny_dataset.images, tiny_dataset.labels, split, "0"), split


def test_the_gate_calls_images_above_its_noise_limit_unknown_and_the_bundle_agrees(fitted, tiny_dataset, tmp_path):
    from snw_core.drift import apply
    gate, split = fitted
    parts = tiny_dataset.images[split == "test"]
    assert gate.max_noise == 0.0 and not gate.check(apply(parts, "noise", 40, seed=1))["noisy"].any()   # off
    clean = relative_noise(tiny_dataset.images[split != "test"])
    gate.max_noise = float(clean.max()) * 1.5
    heavy = apply(parts, "noise", 40, seed=1)
    assert relative_noise(heavy).min() > gate.max_noise
    c, plain = gate.check(heavy), gate.check(parts)
    assert c["noisy"].all() and c["unknown"].all() and not plain["noisy"].any()
    verdict, reason = combine(np.zeros(len(heavy)), 1.0, c)
    assert set(verdict) == {"UNKNOWN"} and set(reason) == {NOISE_REASON}
    gate.save(tmp_path / "gate.npz")
    assert Gate.load(tmp_path / "gate.npz").max_noise == gate.max_noise
    script = bundle_script().Gate(str(tmp_path))
    x = np.concatenate([heavy, parts])
    assert np.array_equal(script.check(x)["noisy"], gate.check(x)["noisy"])
    assert bundle_script().NOISE_REASON == NOISE_REASON
    a = gate.arrays()                     # a gate saved before the noise check (five scalars): not checked
    a["scalars"] = a["scalars"][:5]
    assert Gate.from_arrays(a).max_noise == 0.0 and not Gate.from_arrays(a).check(heavy)["noisy"].any()
    gate.max_noise = 0.0


@pytest.mark.slow
def test_a_trained_run_records_the_noise_guard_and_judges_by_it(tiny_parquet, tiny_dataset):
    from trained_run import trained_run

    from snw_core.drift import apply
    from snw_core.judge import Judge
    from snw_core.runs import RunStore

    runs, rid = trained_run(tiny_parquet)
    run = RunStore(runs).get(rid)
    guard = run.metrics()["noise_guard"]
    assert {"used", "reason", "caught", "ladder"} <= set(guard) and guard["ladder"] == list(NOISE_LADDER)
    assert run.metrics()["gate"]["max_noise"] == pytest.approx(guard["max_noise"] if guard["used"] else 0.0, abs=1e-4)
    judge = Judge.from_run(run)
    if guard["used"]:
        assert judge.gate.max_noise == pytest.approx(guard["max_noise"], abs=1e-4)
        assert guard["caught"][f"{guard['failed_sd']:g}"] < GUARD_CAUGHT
        out = judge.judge(apply(tiny_dataset.images[:20], "noise", 2 * guard["failed_sd"], seed=5))
        assert np.all(np.asarray(out["verdict"]) == "UNKNOWN")
        assert NOISE_REASON in set(np.asarray(out["reason"]).tolist())
    else:
        assert judge.gate.max_noise == 0.0 and min(guard["caught"].values()) >= GUARD_CAUGHT


def test_the_boundary_tells_two_samples_apart_with_the_fewest_on_the_wrong_side():
    from snw_core.train import _boundary
    assert 2.0 < _boundary([0.0, 1.0, 2.0], [3.0, 4.0]) < 3.0
    rng = np.random.default_rng(0)
    low, high = rng.normal(0.0, 1.0, 2000), rng.normal(3.0, 1.0, 2000)
    low[:40] = 10.0                                   # a few outliers far into the other side do not drag it there
    b = _boundary(low, high)
    assert 1.2 < b < 1.8                               # near the midpoint of two equal spreads
