"""The patch memory bank (snw_core.patches): the coreset, the scores, the threshold choice."""
from __future__ import annotations

import numpy as np

from snw_core.patches import PatchBank, choose_patch_threshold, coreset


def _cover(x, chosen):
    """The largest distance of a row of x to its nearest chosen row."""
    d2 = np.sum(x ** 2, 1)[:, None] + np.sum(x[chosen] ** 2, 1)[None] - 2 * x @ x[chosen].T
    return float(np.sqrt(np.maximum(d2.min(1), 0)).max())


def test_the_coreset_covers_every_row_better_than_a_random_share():
    rng = np.random.default_rng(0)
    # clustered features with a few rare ones: a random share misses the rare ones, the coreset keeps them
    x = np.concatenate([rng.normal(0, 0.3, (2000, 8)), rng.normal(5, 0.3, (10, 8))]).astype(np.float32)
    chosen = coreset(x, 100, np.random.default_rng(1))
    assert len(np.unique(chosen)) == 100
    random = np.random.default_rng(1).choice(len(x), 100, replace=False)
    assert _cover(x, chosen) < 0.6 * _cover(x, random)
    assert (chosen >= 2000).any()                                  # a rare row is in the bank
    assert np.array_equal(chosen, coreset(x, 100, np.random.default_rng(1)))    # seeded
    assert np.array_equal(coreset(x[:50], 100, np.random.default_rng(1)), np.arange(50))


def test_bank_fit_and_score():
    rng = np.random.default_rng(2)
    goods = rng.normal(0, 1, (40, 3, 4, 6)).astype(np.float32)
    bank = PatchBank.fit(goods, seed=0, size=200)
    assert bank.bank.shape == (200, 6) and bank.grid == (3, 4) and not np.isfinite(bank.threshold)
    again = PatchBank.fit(goods, seed=0, size=200)
    assert np.array_equal(bank.bank, again.bank)
    probe = goods[:5].copy()
    probe[2, 1, 2] += 8.0                                           # one neighbourhood unlike any good one
    s, maps = bank.score(probe)
    assert s.shape == (5,) and maps.shape == (5, 3, 4)
    assert int(np.argmax(s)) == 2 and np.unravel_index(np.argmax(maps[2]), (3, 4)) == (1, 2)
    # every map value is the distance to the nearest bank vector, as a plain search finds it
    plain = np.linalg.norm(probe.reshape(-1, 1, 6).astype(np.float64) - bank.bank[None], axis=2).min(1)
    np.testing.assert_allclose(maps.ravel(), plain, rtol=1e-4, atol=3e-3)    # float32: sqrt of a cancelled 0


def test_patch_threshold_is_used_only_where_it_helps():
    rng = np.random.default_rng(3)
    d = np.r_[np.zeros(100, bool), np.ones(100, bool)]
    forced = np.zeros(200, bool)
    twin_perfect = np.r_[rng.uniform(0, 1, 100), rng.uniform(2, 3, 100)]
    patch_noise = rng.uniform(0, 1, 200)
    tp, _, acc = choose_patch_threshold(patch_noise, twin_perfect, d, forced)
    assert tp == np.inf and acc == 1.0
    twin_blind = rng.uniform(0, 1, 200)
    patch_good = np.r_[rng.uniform(0, 1, 100), rng.uniform(1.5, 2, 100)]
    tp, _, acc = choose_patch_threshold(patch_good, twin_blind, d, forced)
    assert np.isfinite(tp) and acc >= 0.95


def test_fit_patches_again_reuses_the_bank_and_its_scores_and_chooses_the_threshold_anew(tiny_dataset, monkeypatch):
    from snw_core import patches as P
    from snw_core import train as T
    from snw_core.embed import embed_images
    from snw_core.model import build_embedder
    from snw_core.presets import resolve_settings
    from snw_core.splits import stratified_split

    settings = resolve_settings("default")
    ds = tiny_dataset
    split = stratified_split(ds.labels, (0.6, 0.2, 0.2), seed=0)
    embedder = build_embedder(settings, ds.image_shape)
    emb = embed_images(embedder, ds.images)
    none = np.zeros(ds.n, bool)
    first = T.fit_patches(embedder, ds.images, ds.labels, split, "0", emb, {"unknown": none, "local_defect": none},
                          settings)
    assert first and len(first["scores"]) == ds.n

    def no_refit(*a, **kw):
        raise AssertionError("the bank was fitted again")

    monkeypatch.setattr(P.PatchBank, "fit", no_refit)
    rejected = split == "val"                         # the gate now rejects every val item: another threshold input
    seen = []
    real = P.choose_patch_threshold
    monkeypatch.setattr(P, "choose_patch_threshold", lambda *a, **kw: seen.append(a[3].copy()) or real(*a, **kw))
    again = T.fit_patches(embedder, ds.images, ds.labels, split, "0", emb,
                          {"unknown": rejected, "local_defect": none}, settings,
                          fitted=(first["bank"], first["scores"]))
    assert again["bank"] is first["bank"] and again["scores"] is first["scores"]
    assert seen and seen[0].all()                     # the threshold was chosen with the checks as they are now


def _checks(n=3, shape=(26, 36), local=0.5):
    """Pixel evidence that points at the top left corner, weakly (local below its threshold)."""
    heat = np.zeros((n,) + shape, np.float32)
    heat[:, 0, 0] = 1.0
    return {"heatmap": heat, "local": np.full(n, local), "defect_y": np.zeros(n, np.int64),
            "defect_x": np.zeros(n, np.int64)}


def test_a_bank_without_a_threshold_still_places_the_heat_map_at_the_centre_of_its_strongest_block(tmp_path):
    from snw_core.judge import add_patch_evidence
    from snw_core.patches import location_scale
    bank = PatchBank(np.zeros((4, 2), np.float32), np.inf, (7, 9), scale=location_scale(np.full(50, 1.0)))
    assert bank.scale == 1.2 and bank.location_unit() == 1.2
    maps = np.full((3, 7, 9), 0.5)
    maps[0, 3, 5] = 3.0                 # a clear peak at block (3, 5): pixels 12-15 x 20-23
    maps[1, 6, 8] = 3.0                 # in the last block, which the 26 x 36 image crops
    maps[2, 2, 2] = 0.55                # no clear peak: the pixel evidence keeps the location
    out = add_patch_evidence(_checks(), maps.reshape(3, -1).max(1), bank, maps)
    assert not out["patch_defect"].any() and (out["patch"] == 0).all()      # no threshold: no verdict changes
    assert (out["defect_y"][0], out["defect_x"][0]) == (14, 22)
    assert (out["defect_y"][1], out["defect_x"][1]) == (25, 34)
    assert (out["defect_y"][2], out["defect_x"][2]) == (0, 0) and out["heatmap"][2, 0, 0] == 1.0
    again = PatchBank.from_arrays(bank.arrays())
    assert again.scale == bank.scale and not np.isfinite(again.threshold)
    old = {k: v for k, v in bank.arrays().items() if k != "scale"}                 # a bank saved before
    assert np.isnan(PatchBank.from_arrays(old).location_unit())
    assert add_patch_evidence(_checks(), maps.reshape(3, -1).max(1), PatchBank.from_arrays(old), maps)[
        "defect_y"].tolist() == [0, 0, 0]


def test_where_the_pixel_comparison_is_blind_the_patch_map_places_every_verdict_with_weak_pixel_evidence():
    """A bank with ``places_weak`` (kept because the pixel comparison shows evidence on few val defects): a verdict
    whose pixel evidence stays within the good parts' (local <= 1) is placed by the patch map even where the patch
    peak is the lower one; clear pixel evidence (local > 1) keeps its place. Without the flag, the higher peak
    decides, as before; the flag survives a save and is False for a bank saved before it."""
    from snw_core.judge import add_patch_evidence
    maps = np.full((3, 7, 9), 0.1)
    maps[:, 3, 5] = 0.4                 # a weak patch peak (0.4 / 0.8 = 0.5 of its unit) at block (3, 5)
    checks = _checks(3, local=0.9)
    checks["local"] = np.array([0.9, 1.0, 1.4])
    patch = maps.reshape(3, -1).max(1)
    plain = PatchBank(np.zeros((4, 2), np.float32), np.inf, (7, 9), scale=0.8)
    out = add_patch_evidence(checks, patch, plain, maps)
    assert out["defect_y"].tolist() == [0, 0, 0]                      # the pixel peak is the higher everywhere
    weak = PatchBank.from_arrays(PatchBank(plain.bank, np.inf, (7, 9), scale=0.8, places_weak=True).arrays())
    assert weak.places_weak
    out = add_patch_evidence(checks, patch, weak, maps)
    assert list(zip(out["defect_y"].tolist(), out["defect_x"].tolist())) == [(14, 22), (14, 22), (0, 0)]
    old = {k: v for k, v in weak.arrays().items() if k != "places_weak"}
    assert not PatchBank.from_arrays(old).places_weak


def test_the_bundle_places_the_patch_evidence_as_the_dashboard_does(tmp_path):
    import importlib.util

    from snw_core.judge import add_patch_evidence
    from trained_run import ROOT
    spec = importlib.util.spec_from_file_location("bundle_patches", ROOT / "snw_core" / "bundle_template"
                                                  / "inspect_bundle.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rng = np.random.default_rng(4)
    for threshold, scale, weak in ((np.inf, 0.8, False), (0.9, 0.8, False), (np.inf, np.nan, False),
                                   (np.inf, 0.8, True)):
        bank = PatchBank(rng.normal(size=(20, 3)).astype(np.float32), threshold, (7, 9), scale=scale,
                         places_weak=weak)
        np.savez(tmp_path / "patches.npz", **bank.arrays())
        theirs = mod.Patches(str(tmp_path))
        maps = rng.uniform(0, 1.5, (6, 7, 9))
        patch = maps.reshape(6, -1).max(1)
        want = add_patch_evidence(_checks(6, local=0.9), patch, bank, maps)
        got = theirs.add_evidence(_checks(6, local=0.9), patch, maps)
        for key in ("defect_y", "defect_x", "patch_defect"):
            assert np.array_equal(np.asarray(got[key]), np.asarray(want[key])), (threshold, scale, weak, key)
        np.testing.assert_allclose(got["heatmap"], want["heatmap"], rtol=1e-6)


def test_gate_checks_place_the_heat_map_as_the_verdict_does_when_a_bank_is_kept(tiny_dataset):
    """What the Accuracy page's heat maps use: the gate's checks with the patch map beside the pixel comparison."""
    from snw_core.gate import Gate
    from snw_core.judge import add_patch_evidence, gate_checks
    from snw_core.splits import stratified_split
    split = stratified_split(tiny_dataset.labels, (0.6, 0.2, 0.2), seed=0)
    gate = Gate.fit(tiny_dataset.images, tiny_dataset.labels, split, good_label="0")
    images = tiny_dataset.images[split == "test"][:6]
    maps = np.full((6, 7, 9), 0.1)
    maps[:, 1, 7] = 50.0                                  # far above any pixel evidence: the patch map places them
    bank = PatchBank(np.zeros((2, 4), np.float32), np.inf, (7, 9), scale=1.0)
    seen = []

    def scores(x):
        seen.append(x)
        return maps.reshape(6, -1).max(1), maps

    got = gate_checks(gate, None, images, bank, scores)
    assert len(seen) == 1 and np.array_equal(seen[0], images)
    assert got["defect_y"].tolist() == [6] * 6 and got["defect_x"].tolist() == [30] * 6
    want = add_patch_evidence(gate.check(images), maps.reshape(6, -1).max(1), bank, maps)
    np.testing.assert_array_equal(got["heatmap"], want["heatmap"])
    plain = gate_checks(gate, None, images)                                  # no bank: the pixel comparison alone
    np.testing.assert_array_equal(plain["defect_y"], gate.check(images)["defect_y"])


def test_a_bank_for_the_location_alone_is_a_smaller_coreset_with_its_own_scale():
    from snw_core.patches import LOCATION_BANK_SIZE, location_scale
    rng = np.random.default_rng(5)
    goods = rng.normal(0, 1, (200, 3, 4, 6)).astype(np.float32)
    big = PatchBank.fit(goods, seed=0, size=3000)
    small = big.for_location(goods[:40], seed=0)
    assert len(small.bank) == LOCATION_BANK_SIZE and not np.isfinite(small.threshold) and small.grid == big.grid
    assert np.isin(small.bank.view([("", small.bank.dtype)] * 6), big.bank.view([("", big.bank.dtype)] * 6)).all()
    assert small.scale == location_scale(small.score(goods[:40])[0]) and small.location_unit() == small.scale
    again = big.for_location(goods[:40], seed=0)
    assert np.array_equal(again.bank, small.bank)                                      # seeded


def test_large_feature_maps_are_scored_a_few_positions_at_a_time(monkeypatch):
    from snw_core import patches as P
    rng = np.random.default_rng(4)
    bank = PatchBank(rng.normal(size=(50, 8)).astype(np.float32), 1.0, (6, 5))
    feats = rng.normal(size=(9, 6, 5, 8)).astype(np.float32)
    s, maps = bank.score(feats)
    monkeypatch.setattr(P, "SCORE_ROWS", 2 * 6 * 5)                         # two images at a time
    s2, maps2 = bank.score(feats)
    np.testing.assert_array_equal(maps2, maps)
    np.testing.assert_array_equal(s2, s)
