"""The not-a-part check (UNKNOWN), the local evidence and heat map, and the not-a-part benchmark inputs."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from snw_core import notapart
from snw_core.gate import UNKNOWN_REASON, Gate, standardize
from snw_core.judge import combine
from snw_core.metrics import evaluate_embeddings, effective_scores, unknown_rates

from trained_run import ROOT


def bundle_script():
    """The line bundle's script as a module (numpy only), to compare its gate with the dashboard's."""
    spec = importlib.util.spec_from_file_location("bundle_gate", ROOT / "snw_core" / "bundle_template" / "inspect_bundle.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def fitted(tiny_dataset):
    from snw_core.splits import stratified_split
    split = stratified_split(tiny_dataset.labels, (0.6, 0.2, 0.2), 0)
    return Gate.fit(tiny_dataset.images, tiny_dataset.labels, split, "0"), split


def test_standardize_matches_the_twins_normalisation():
    x = np.array([[[0, 10], [20, 30]]], np.uint8)
    z = standardize(x)[0]
    assert z == pytest.approx((np.array([0, 10, 20, 30]) - 15) / (np.std([0, 10, 20, 30]) + 1))


def test_not_a_part_makes_every_kind_deterministically(tiny_dataset):
    goods = tiny_dataset.images[tiny_dataset.labels == "0"]
    a, ka = notapart.not_a_part((26, 36), goods, n_per_kind=3, seed=5)
    b, kb = notapart.not_a_part((26, 36), goods, n_per_kind=3, seed=5)
    assert a.dtype == np.uint8 and a.shape == (3 * len(notapart.KINDS), 26, 36)
    assert np.array_equal(a, b) and list(ka) == list(kb)
    assert set(ka) == set(notapart.KINDS)
    c, _ = notapart.not_a_part((26, 36), goods, n_per_kind=3, seed=6)
    assert not np.array_equal(a, c)
    none, kinds = notapart.not_a_part((26, 36), None, n_per_kind=2, seed=0)
    assert set(kinds) == set(notapart.KINDS) - set(notapart.GOOD_BASED_KINDS)
    with pytest.raises(ValueError, match="unknown not-a-part kinds"):
        notapart.not_a_part((26, 36), None, kinds=["fog"])


def test_the_held_out_kinds_are_made_deterministically_and_need_goods_but_two(tiny_dataset):
    goods = tiny_dataset.images[tiny_dataset.labels == "0"]
    held = notapart.HELD_OUT_KINDS
    a, ka = notapart.not_a_part((26, 36), goods, n_per_kind=2, seed=4, kinds=held)
    b, _ = notapart.not_a_part((26, 36), goods, n_per_kind=2, seed=4, kinds=held)
    assert a.shape == (2 * len(held), 26, 36) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert list(dict.fromkeys(ka)) == list(held) and not set(held) & set(notapart.KINDS)
    assert set(notapart.LAYOUT_KINDS) < set(held)
    _, kinds = notapart.not_a_part((26, 36), None, n_per_kind=2, seed=4, kinds=held)
    assert set(kinds) == {"checkerboard", "stripes"}
    x = {k: a[ka == k].astype(float) for k in held}
    g = goods.astype(float)
    assert (x["overexposed"] == 255).mean() > (g == 255).mean() + 0.2          # clipped at white
    assert (x["line_dropout"] == 0).mean() >= 0.3 and (x["glare"] == 255).mean() >= 0.1
    assert x["heavy_noise"].std() > g.std()


def test_a_gate_fitted_on_generated_parts_rejects_the_held_out_kinds():
    """Kinds nobody looked at while the gate was designed: the gate alone (no twin) calls every one of them
    UNKNOWN or a local defect, but for a few double exposures (two parts in one frame, their pins interleaved);
    the test parts stay in."""
    from snw_core import synthetic as S
    from snw_core.splits import stratified_split
    imgs, labels, _ = S.generate(1200, seed=0)
    split = stratified_split(labels, (0.6, 0.2, 0.2), 0)
    gate = Gate.fit(imgs, labels, split, "0")
    x, kinds = notapart.not_a_part((26, 36), imgs[(labels == "0") & (split == "test")], n_per_kind=20, seed=1,
                                   kinds=notapart.HELD_OUT_KINDS)
    c = gate.check(x)
    rejected = c["unknown"] | c["local_defect"]
    for kind in notapart.HELD_OUT_KINDS:
        assert rejected[kinds == kind].mean() >= (0.7 if kind == "double_exposure" else 1.0), kind
    assert gate.check(imgs[split == "test"])["unknown"].mean() <= 0.01


def test_trimmed_energy_leaves_out_the_largest_squares():
    from snw_core.gate import trimmed_energy
    r = np.array([[1.0, -3.0, 2.0, 0.5], [0.0, 0.0, 0.0, 4.0]])
    assert trimmed_energy(r, 0.0).tolist() == [14.25, 16.0]
    assert trimmed_energy(r, 0.25).tolist() == [5.25, 0.0]         # ceil(0.25 * 4) = 1 square left out
    assert trimmed_energy(r, 0.3).tolist() == [1.25, 0.0]          # ceil(1.2) = 2


def test_another_pin_grid_is_unknown_but_a_defect_is_not_and_an_older_gate_file_is_untrimmed(tmp_path):
    """Connectors with a third row of pins (the same body, size and light) passed the appearance check when the
    val defects set its threshold; its residual now leaves out the worst-explained 5 % of the pixels, where a
    defect's difference lies, so the threshold comes down to the parts and the other grid stands out."""
    from snw_core import synthetic as S
    from snw_core.gate import APPEARANCE_TRIM, GATE_FILE
    from snw_core.splits import stratified_split
    imgs, labels, _ = S.generate(1200, seed=0)
    split = stratified_split(labels, (0.6, 0.2, 0.2), 0)
    gate = Gate.fit(imgs, labels, split, "0")
    assert gate.trim == APPEARANCE_TRIM == gate.thresholds()["appearance_trim"]
    spec = S.ConnectorSpec(height=26, width=36, pin_rows=3, pin_cols=6)
    other, other_labels, _ = S.generate(200, seed=4242, spec=spec)
    assert gate.check(other[other_labels == "0"][:40])["unknown"].all()
    test = gate.check(imgs[split == "test"])
    defects = labels[split == "test"] != "0"
    assert test["unknown"][~defects].mean() == 0.0 and test["unknown"][defects].mean() <= 0.01
    # the same gate as an older file (nine scalars, no trim): loaded untrimmed, by the bundle too
    gate.save(tmp_path / GATE_FILE)
    with np.load(tmp_path / GATE_FILE) as z:
        arrays = {k: z[k] for k in z.files}
    assert len(arrays["scalars"]) == 13
    arrays["scalars"] = arrays["scalars"][:9]
    np.savez(tmp_path / GATE_FILE, **arrays)
    old = Gate.load(tmp_path / GATE_FILE)
    assert old.trim == 0.0
    x = other[:10]
    untrimmed = 0.5 * ((((standardize(x) - old.mean) @ old.components.T) ** 2 / old.eigvals).mean(1)
                       + np.sum((standardize(x) - old.mean - ((standardize(x) - old.mean) @ old.components.T)
                                 @ old.components) ** 2, 1) / old.resid_var) / old.t_app
    assert old.check(x)["appearance"] == pytest.approx(untrimmed)
    assert bundle_script().Gate(str(tmp_path)).check(x)["appearance"] == pytest.approx(untrimmed)


def test_gate_calls_not_a_part_inputs_unknown_and_keeps_the_parts(fitted, tiny_dataset):
    gate, split = fitted
    goods = tiny_dataset.images[(tiny_dataset.labels == "0") & (split == "test")]
    x, kinds = notapart.not_a_part((26, 36), goods, n_per_kind=5, seed=1,
                                   kinds=("noise_uniform", "noise_gaussian", "flat", "empty_fixture", "texture",
                                          "digits", "inverted"))
    c = gate.check(x)
    assert c["unknown"].all(), sorted(set(kinds[~c["unknown"]]))
    assert c["flat"][kinds == "flat"].all()
    parts = gate.check(tiny_dataset.images[split == "test"])
    assert parts["unknown"].mean() <= 0.1          # thresholds from val: in-distribution items rarely UNKNOWN


def test_local_evidence_points_at_a_planted_defect(fitted, tiny_dataset):
    gate, split = fitted
    good = tiny_dataset.images[(tiny_dataset.labels == "0") & (split == "test")][0].astype(np.int16)
    bad = good.copy()
    bad[11:14, 20:23] = 255 - bad[11:14, 20:23]            # a 3 x 3 px spot, inverted
    c = gate.check(np.stack([good, bad]).clip(0, 255).astype(np.uint8))
    assert not c["local_defect"][0] and c["local_defect"][1]
    assert abs(c["defect_y"][1] - 12) <= 2 and abs(c["defect_x"][1] - 21) <= 2
    assert c["heatmap"].shape == (2, 26, 36) and c["heatmap"][1].max() > c["heatmap"][0].max()


def test_gate_round_trip_and_the_bundle_script_compute_the_same(fitted, tiny_dataset, tmp_path):
    gate, _ = fitted
    gate.save(tmp_path / "gate.npz")
    back = Gate.load(tmp_path / "gate.npz")
    mod = bundle_script()
    script = mod.Gate(str(tmp_path))
    x, _ = notapart.not_a_part((26, 36), tiny_dataset.images[:10], n_per_kind=2, seed=3)
    x = np.concatenate([x, tiny_dataset.images[:20]])
    want, again, got = gate.check(x), back.check(x), script.check(x)
    for key in ("appearance", "texture", "local", "unknown", "flat", "blurred", "local_defect", "defect_y", "defect_x",
                "heatmap"):
        assert np.allclose(again[key], want[key], rtol=1e-12, atol=0), key
        tol = 1e-6 if key == "heatmap" else 1e-9          # the dashboard keeps heat maps as float32
        assert np.allclose(got[key], want[key], rtol=tol, atol=1e-12), key


def test_the_local_evidence_leaves_out_the_pixels_registration_filled(fitted, tiny_dataset, tmp_path):
    """The strip a shift brings in is filled from another good part: pixels of no part at the line. A fill unlike the
    goods there (here the pins' columns at the border) must not make a good part DEFECT or draw the heat map, while a
    defect elsewhere in the same image is still caught and placed. The bundle does the same; an older gate file
    counts the strip."""
    gate, split = fitted
    assert gate.mask_filled and gate.thresholds()["local_masks_filled"]
    goods = tiny_dataset.images[(tiny_dataset.labels == "0") & (split == "test")][:6]
    barred = goods.copy()
    barred[:, :, -2:] = goods[:, :, 12:14]                    # the two right columns: a fill no good part has
    defect = barred[:2].copy()
    defect[:, 11:14, 14:17] = 255 - defect[:, 11:14, 14:17]    # and a 3 x 3 px defect in the middle
    x = np.concatenate([barred, defect])
    filled = np.zeros(x.shape, bool)
    filled[:, :, -2:] = True
    counted, masked = gate.check(x), gate.check(x, filled=filled)
    assert counted["local_defect"][:6].all() and (counted["defect_x"][:6] >= 32).all()   # the bar, counted
    assert not masked["local_defect"][:6].any()
    assert (masked["heatmap"][:, :, -2:] == 0).all() and (masked["defect_x"] < 34).all()
    assert masked["local_defect"][6:].all()
    assert (np.abs(masked["defect_y"][6:] - 12) <= 2).all() and (np.abs(masked["defect_x"][6:] - 15) <= 2).all()
    # the other checks do not look at the mask
    for key in ("appearance", "unknown", "blurred", "noise"):
        assert np.array_equal(masked[key], counted[key]), key
    gate.save(tmp_path / "gate.npz")
    script = bundle_script().Gate(str(tmp_path))
    got = script.check(x, filled)
    for key in ("local", "local_defect", "defect_y", "defect_x"):
        assert np.allclose(got[key], masked[key], rtol=1e-9, atol=1e-12), key
    assert np.allclose(got["heatmap"], masked["heatmap"], rtol=1e-6, atol=1e-12)
    # an older gate file (ten scalars): fitted with the strip counted, it keeps counting it
    with np.load(tmp_path / "gate.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["scalars"] = arrays["scalars"][:10]
    np.savez(tmp_path / "gate.npz", **arrays)
    old = Gate.load(tmp_path / "gate.npz")
    assert not old.mask_filled
    assert np.array_equal(old.check(x, filled=filled)["local"], old.check(x)["local"])
    assert np.allclose(bundle_script().Gate(str(tmp_path)).check(x, filled)["local"], old.check(x)["local"],
                       rtol=1e-9, atol=0)


def test_a_brighter_lamp_that_clips_the_body_is_not_a_defect_but_a_bright_spot_is(tmp_path):
    """Dark pins on a bright body: under 30 % more light the body clips at white. A clipped pixel only says "at
    least this bright", so where the goods model expects it brighter still its residual is 0: counted both ways the
    pins' edges read as a defect. A spot brighter than the model expects still counts, clipped or not."""
    from snw_core import synthetic
    spec = synthetic.ConnectorSpec(height=36, width=40, pin_rows=3, pin_cols=5, polarity="dark_pins")
    images, labels, _ = synthetic.generate(600, seed=5, spec=spec)
    labels = np.asarray(labels).astype(str)
    rng = np.random.default_rng(0)
    split = np.where(rng.random(600) < 0.6, "train", np.where(rng.random(600) < 0.5, "val", "test"))
    gate = Gate.fit(images, labels, split, "0")
    assert gate.censor_clipped and gate.thresholds()["local_censors_clipped"]
    goods = images[(split == "test") & (labels == "0")]
    bright = np.clip(np.rint(goods * 1.3), 0, 255).astype(np.uint8)
    assert (bright >= 250).mean() > 0.05 and not (goods >= 250).any()
    assert not gate.check(goods)["local_defect"].any()
    assert not gate.check(bright)["local_defect"].any()
    gate.censor_clipped = False                                   # the same gate, clipped pixels counted both ways
    assert gate.check(bright)["local_defect"].sum() >= 3
    gate.censor_clipped = True
    # a white spot over a dark pin, in the brightened parts
    mean = images[(split == "train") & (labels == "0")].mean(0)
    y, x = np.unravel_index(np.argmin(mean[5:-5, 5:-5]), (26, 30))
    y, x = y + 5, x + 5
    spot = bright.copy()
    spot[:, y - 1:y + 2, x - 1:x + 2] = 255
    c = gate.check(spot)
    assert c["local_defect"].all()
    assert (np.abs(c["defect_y"] - y) <= 2).all() and (np.abs(c["defect_x"] - x) <= 2).all()
    # the bundle censors alike; an older gate file (eleven scalars) counts clipped pixels both ways
    gate.save(tmp_path / "gate.npz")
    x_all = np.concatenate([bright, spot])
    want, got = gate.check(x_all), bundle_script().Gate(str(tmp_path)).check(x_all)
    assert np.allclose(got["local"], want["local"], rtol=1e-9, atol=1e-12)
    assert np.array_equal(got["defect_y"], want["defect_y"]) and np.array_equal(got["defect_x"], want["defect_x"])
    a = gate.arrays()
    a["scalars"] = a["scalars"][:11]
    old = Gate.from_arrays(a)
    assert old.mask_filled and not old.censor_clipped and old.app_sigma == 0.0


def test_the_appearance_check_ignores_the_camera_but_not_another_pin_grid(monkeypatch, tmp_path):
    """Dark pins, 3 x 5: on the standardised images a 1 px blur, noise of sd 8, a light gradient of +-30 and JPEG
    50 made 4-33 % of the good parts "not recognised"; blurred by 0.7 px and without their light ramp, none. Another
    pin grid of the same connector (3 x 4, 2 x 5) stays UNKNOWN either way, and the bundle computes the same."""
    from snw_core import drift, synthetic
    from snw_core import gate as G
    spec = synthetic.ConnectorSpec(height=36, width=40, pin_rows=3, pin_cols=5, polarity="dark_pins")
    images, labels, _ = synthetic.generate(600, seed=5, spec=spec)
    labels = np.asarray(labels).astype(str)
    rng = np.random.default_rng(0)
    split = np.where(rng.random(600) < 0.6, "train", np.where(rng.random(600) < 0.5, "val", "test"))
    goods = images[(split == "test") & (labels == "0")]
    others = [synthetic.generate(60, seed=1, spec=synthetic.ConnectorSpec(height=36, width=40, pin_rows=r,
                                                                         pin_cols=c, polarity="dark_pins"))[0]
              for r, c in ((3, 4), (2, 5))]
    changes = (("blur", 1.0), ("noise", 8.0), ("gradient", 30.0), ("jpeg", 50.0))
    gate = Gate.fit(images, labels, split, "0")
    assert gate.app_sigma == G.APPEARANCE_SIGMA > 0 and gate.thresholds()["appearance_sigma"] == gate.app_sigma
    for name, strength in changes:
        assert not gate.check(drift.apply(goods, name, strength, seed=3))["unknown"].any(), name
    for other in others:
        assert gate.check(other)["unknown"].all()
    gate.save(tmp_path / "gate.npz")
    x = np.concatenate([drift.apply(goods, "gradient", 30.0, seed=3), others[0][:10]])
    assert np.allclose(bundle_script().Gate(str(tmp_path)).check(x)["appearance"], gate.check(x)["appearance"],
                       rtol=1e-9, atol=1e-12)
    monkeypatch.setattr(G, "APPEARANCE_SIGMA", 0.0)                 # as before: the standardised images
    before = Gate.fit(images, labels, split, "0")
    assert before.app_sigma == 0.0
    shares = [before.check(drift.apply(goods, n, s, seed=3))["unknown"].mean() for n, s in changes]
    assert sum(shares) >= 0.3 and max(shares) >= 0.2, shares
    for other in others:
        assert before.check(other)["unknown"].all()


def test_combine_orders_unknown_over_defect_over_good():
    checks = {"unknown": np.array([True, False, False, False]), "flat": np.array([True, False, False, False]),
              "local_defect": np.array([False, True, False, False])}
    verdict, reason = combine([0.1, 0.1, 0.9, 0.1], 0.5, checks)
    assert list(verdict) == ["UNKNOWN", "DEFECT", "DEFECT", "GOOD"]
    assert "flat" in reason[0] and "local" in reason[1] and "above" in reason[2]
    assert list(combine([0.1, 0.9], 0.5)[0]) == ["GOOD", "DEFECT"]


def test_unknown_goods_are_overkill_and_unknown_defects_are_not_escapes():
    emb = np.array([[0.0], [0.1], [0.2], [5.0], [0.05], [5.0], [0.15], [0.12], [6.0], [0.11]])
    lab = np.array(["0", "0", "0", "3", "0", "3", "0", "0", "3", "3"])
    spl = np.array(["train"] * 4 + ["val"] * 2 + ["test"] * 4)
    # test: good 0.15 (passes), good 0.12 (UNKNOWN), defect 6.0 (caught), defect 0.11 (UNKNOWN, scores like a good)
    unknown = np.array([False] * 7 + [True, False, True])
    m, _ = evaluate_embeddings(emb, lab, spl, k=1, pin_k=1, unknown=unknown, local_defect=np.zeros(10, bool))
    assert m["overkill_rate"] == 0.5 and m["escape_rate"] == 0.0 and m["good_defect_accuracy"] == 0.75
    assert m["unknown_rate"] == 0.5 and m["unknown_rate_good"] == 0.5 and m["unknown_rate_defect"] == 0.5
    plain, _ = evaluate_embeddings(emb, lab, spl, k=1, pin_k=1)
    assert plain["escape_rate"] == 0.5 and "unknown_rate" not in plain


def test_effective_scores_and_unknown_rates_by_hand():
    assert list(effective_scores([0.2, 0.4], [False, True])) == [0.2, 1.4]
    assert unknown_rates([True, False, False, True], [False, False, True, True]) == {
        "unknown_rate": 0.5, "unknown_rate_good": 0.5, "unknown_rate_defect": 0.5}


def test_a_blurred_lens_is_unknown_and_a_slight_blur_is_not(fitted, tiny_dataset, tmp_path):
    from snw_core import drift
    from snw_core.gate import BLUR_REASON, sharpness
    from snw_core.imageops import gaussian_blur
    gate, split = fitted
    assert gate.min_sharp > 0 and gate.min_sharp <= 0.25 * float(sharpness(tiny_dataset.images[split == "train"]).min()) + 1e-12
    parts = tiny_dataset.images[split == "test"]
    lens = np.clip(np.rint(gaussian_blur(parts, 3.0)), 0, 255).astype(np.uint8)
    c = gate.check(lens)
    assert c["blurred"].all() and c["unknown"].all()
    verdict, reason = combine(np.zeros(len(lens)), 1.0, c)
    assert set(verdict) == {"UNKNOWN"} and set(reason) == {BLUR_REASON}
    assert not gate.check(drift.blur(parts, 1.0))["blurred"].any()      # the drift benchmark's blur: not a lens
    assert not gate.check(parts)["blurred"].any()
    # a gate saved before the sharpness check (four scalars) loads and checks nothing for focus
    a = gate.arrays()
    a["scalars"] = a["scalars"][:4]
    old = Gate.from_arrays(a)
    assert old.min_sharp == 0.0 and not old.check(lens)["blurred"].any()


def _surface_crops(n, seed, h=36, w=48):
    """Random crops of one grainy surface (blurred noise with a faint ramp), as a texture set is."""
    from snw_core.imageops import gaussian_blur
    rng = np.random.default_rng(0)                                  # the same surface for every call
    surface = gaussian_blur(rng.normal(0, 1, (1, 160, 200)), 0.8)[0] * 40 + 120
    pick = np.random.default_rng(seed)
    ys, xs = pick.integers(0, 160 - h, n), pick.integers(0, 200 - w, n)
    return np.stack([surface[y:y + h, x:x + w] for y, x in zip(ys, xs)]).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def surface_gate():
    imgs = _surface_crops(300, 1)
    labels = np.full(300, "0")
    split = np.array(["train"] * 200 + ["val"] * 100)
    return Gate.fit(imgs, labels, split, "0")


def test_texture_check_ignores_a_local_defect_and_sees_a_foreign_surface(surface_gate):
    from snw_core.imageops import gaussian_blur
    gate = surface_gate
    goods = _surface_crops(20, 2)
    assert gate.texture is not None and np.all(gate.check(goods)["texture"] < 1)
    # a defect inside one cell of a 3 x 4 grid (12 x 12 px), as the texture sets plant them
    stained = goods.astype(np.float64)
    stained[:, 16:22, 16:22] = 20                                   # a dark stain inside the cell
    scratched = goods.astype(np.float64)
    scratched[:, np.arange(1, 11), np.arange(25, 35)] = 255          # a bright diagonal scratch
    for bad in (stained, scratched):
        t = gate.check(bad.astype(np.uint8))["texture"]
        assert np.all(t < 1), t.max()
    from snw_core import drift                                      # the camera drift the line allows
    for changed in (drift.blur(goods, 1.0), drift.noise(goods, 8.0), drift.gradient(goods, 30.0)):
        assert np.all(gate.check(changed)["texture"] < 1)
    rng = np.random.default_rng(3)
    foreign = {"white noise": rng.normal(120, 30, (10, 36, 48)),
               "coarse blobs": gaussian_blur(rng.normal(0, 1, (10, 36, 48)), 3.0) * 400 + 120,
               "stripes": 120 + 60 * np.sin(np.arange(48) / 2.0)[None, None, :] + rng.normal(0, 2, (10, 36, 48))}
    for kind, x in foreign.items():
        c = gate.check(np.clip(x, 0, 255).astype(np.uint8))
        assert np.all(c["texture"] > 1) and c["unknown"].all(), kind
        plain = ~c["blurred"] & ~c["flat"]                          # (coarse blobs are also out of focus)
        assert set(combine(np.zeros(len(x)), 1.0, c)[1][plain]) <= {UNKNOWN_REASON}


def test_texture_check_bundle_equals_dashboard_and_an_old_gate_file_loads_without_it(surface_gate, tmp_path):
    gate = surface_gate
    gate.save(tmp_path / "gate.npz")
    mod = bundle_script()
    x = np.concatenate([_surface_crops(10, 5), np.random.default_rng(4).integers(0, 256, (5, 36, 48), dtype=np.uint8)])
    want, got = gate.check(x), mod.Gate(str(tmp_path)).check(x)
    assert np.allclose(got["texture"], want["texture"], rtol=1e-9, atol=1e-12)
    assert (want["texture"][10:] > 1).all() and np.array_equal(got["unknown"], want["unknown"])
    assert Gate.load(tmp_path / "gate.npz").check(x)["texture"] == pytest.approx(want["texture"], rel=1e-12)
    # a gate file written before the texture check: it loads, in both, with the check off
    old = {k: v for k, v in gate.arrays().items() if not k.startswith("texture")}
    np.savez(tmp_path / "old" / "gate.npz" if (tmp_path / "old").mkdir() is None else None, **old)
    back, script = Gate.load(tmp_path / "old" / "gate.npz"), mod.Gate(str(tmp_path / "old"))
    assert back.texture is None and script.texture is None and back.thresholds()["texture"] is None
    assert not back.check(x)["texture"].any() and not script.check(x)["texture"].any()
    assert np.array_equal(back.check(x)["unknown"], script.check(x)["unknown"])


def test_the_goods_model_catches_a_kind_of_defect_no_item_showed(monkeypatch):
    """Fitted on generated connectors without a single smudge, the local evidence (residual outside the goods'
    principal components, per pixel over the goods' own) still calls fresh smudged pins defective: a kind nobody
    labelled. The goods stay GOOD; the reported pixel is in the smudged pin's cell."""
    from snw_core import synthetic as S
    from snw_core.localisation import located
    from snw_core.splits import stratified_split
    p = S.sample_params(1200, seed=3)
    keep = p["kind"] != 5                                      # 5 = dirty: none in the fitted data
    lab = p["label"][keep].astype(str)
    gate = Gate.fit(S.render(p)[keep], lab, stratified_split(lab, (0.6, 0.2, 0.2), 0), "0")
    f = S.sample_params(1500, seed=11)
    c = gate.check(S.render(f))
    good, dirty = f["label"] == 0, f["kind"] == 5
    assert c["local_defect"][good].mean() <= 0.01
    assert c["local_defect"][dirty].mean() >= 0.95
    cells = S.pin_cells()
    hit = c["local_defect"] & dirty
    where = located(f["label"][hit].astype(str), c["defect_y"][hit], c["defect_x"][hit], (26, 36), cells["grid"],
                    cells["bounds"])
    assert where.mean() >= 0.95
    # the nearest-goods comparison of older runs, fitted on the same items, misses far more of them
    import snw_core.gate as G
    monkeypatch.setattr(G, "fit_local_model", lambda goods: None)
    old = Gate.fit(S.render(p)[keep], lab, stratified_split(lab, (0.6, 0.2, 0.2), 0), "0")
    assert old.local_model is None
    assert old.check(S.render(f))["local_defect"][dirty].mean() <= 0.8


def test_a_gate_file_without_the_goods_model_loads_with_the_nearest_goods_and_the_bundle_agrees(
        fitted, tiny_dataset, tmp_path):
    """Runs trained before the goods model keep their local evidence (the most similar train goods, 3 x 3 mean);
    the line bundle's script computes it the same way for such a file."""
    from snw_core.gate import LOCAL_KEYS
    from snw_core.imageops import box3
    gate, _ = fitted
    arrays = {k: v for k, v in gate.arrays().items() if k not in LOCAL_KEYS}
    np.savez(tmp_path / "gate.npz", **arrays)
    old = Gate.load(tmp_path / "gate.npz")
    assert old.local_model is None and gate.local_model is not None
    x = tiny_dataset.images[:12]
    z, gz = standardize(x), standardize(old.good_images)
    d2 = ((z[:, None, :] - gz[None]) ** 2).sum(-1)
    nn = np.argsort(d2, axis=1)[:, :3]
    heat = box3(np.abs(z[:, None, :] - gz[nn]).min(1).reshape(-1, 26, 36)).reshape(len(x), -1)
    want = heat.max(1) / (np.quantile(heat, 0.75, axis=1) + 0.05) / old.t_local
    got = old.check(x)
    assert np.allclose(got["local"], want, rtol=1e-9)
    mod = bundle_script()
    script = mod.Gate(str(tmp_path))
    assert script.local is None
    assert np.allclose(script.check(x)["local"], got["local"], rtol=1e-9)
    assert not np.allclose(gate.check(x)["local"], got["local"])     # the goods model is another measure


def test_a_negative_image_of_a_surface_with_skewed_grey_levels_is_unknown(tmp_path):
    """The moderate real-photo texture has bright specks on a darker ground; its negative (grey levels inverted, a
    wrong pixel format) has the mirror asymmetry, which the texture check cannot see. Drifted parts keep their
    side; a connector whose grey levels are near symmetric is not checked; the bundle's script agrees."""
    from snw_core import drift, realdata
    from snw_core.gate import INVERTED_REASON, grey_skew
    images, labels, _, _ = realdata.generate("texture", "moderate", 300, 0)
    labels = np.asarray(labels).astype(str)
    split = np.where(np.arange(300) % 5 < 3, "train", np.where(np.arange(300) % 5 == 3, "val", "test"))
    gate = Gate.fit(images, labels, split, "0", augment="camera")
    assert gate.polarity[0] == 1.0 and gate.polarity[1] < 0
    goods = images[(split == "test") & (labels == "0")]
    neg = gate.check(255 - goods)
    assert neg["inverted"].all() and neg["unknown"].all()
    assert np.allclose(grey_skew(255 - goods), -grey_skew(goods))
    verdict, reason = combine(np.zeros(len(goods)), 0.5, neg)
    assert set(verdict) == {"UNKNOWN"} and set(reason) == {INVERTED_REASON}
    for i, (cond, strength) in enumerate(drift.CONDITIONS):
        assert not gate.check(drift.apply(goods, cond, strength, seed=i))["inverted"].any(), cond
    gate.save(tmp_path / "gate.npz")
    mod = bundle_script()
    x = np.concatenate([goods, 255 - goods])
    assert np.array_equal(mod.Gate(str(tmp_path)).check(x)["inverted"], gate.check(x)["inverted"])
    # an older gate file without the check loads with it off
    np.savez(tmp_path / "old.npz", **{k: v for k, v in gate.arrays().items() if k != "polarity"})
    assert Gate.load(tmp_path / "old.npz").polarity == (0.0, 0.0)


def test_the_generated_connector_is_checked_for_polarity_on_its_detail(fitted, tiny_dataset, tmp_path):
    """Its grey levels as a whole are near symmetric (the first polarity check is off), but the edges of its bright
    pins are skewed: the detail's check is on, holds under every drift condition, and the bundle's script agrees."""
    from snw_core import drift
    gate, split = fitted
    assert gate.polarity == (0.0, 0.0)
    assert gate.detail_polarity[0] == 1.0 and gate.detail_polarity[1] < 0
    goods = tiny_dataset.images[(split == "test") & (tiny_dataset.labels == "0")]
    assert gate.check(255 - goods)["inverted"].all()
    for i, (cond, strength) in enumerate(drift.CONDITIONS):
        assert not gate.check(drift.apply(goods, cond, strength, seed=i))["inverted"].any(), cond
    gate.save(tmp_path / "gate.npz")
    x = np.concatenate([goods, 255 - goods, tiny_dataset.images[split == "test"]])
    assert np.array_equal(bundle_script().Gate(str(tmp_path)).check(x)["inverted"], gate.check(x)["inverted"])
    # a gate file of two polarity values (older runs) loads with the detail's check off
    np.savez(tmp_path / "old.npz", **dict(gate.arrays(), polarity=np.asarray(gate.polarity)))
    old = Gate.load(tmp_path / "old.npz")
    assert old.detail_polarity == (0.0, 0.0, 0.0) and not old.check(255 - goods)["inverted"].any()


def test_one_blurred_copy_that_loses_its_detail_does_not_switch_the_detail_check_off(monkeypatch):
    """Gravel whose val and test are new surface: one blurred copy of 400 lost its detail (skew 0.000) and switched
    the check off, so negatives reached the twin. Now the check reads only images sharper than that copy: every
    negative is still called so, and no drifted good part."""
    from snw_core import augment, drift, realdata
    from snw_core.gate import fit_detail_polarity, sharpness
    images, labels, _, _ = realdata.generate("texture", "strong", 300, 0)
    train, goods = images[:180], images[240:][np.asarray(labels)[240:] == "0"]
    plain = fit_detail_polarity(train)
    assert plain[0] == -1.0
    real = augment.line_drift

    def one_faded(x, rng, **kw):
        out = real(x, rng, **kw)
        if kw.get("names") == ("blur",):
            out = out.copy()
            out[0] = 128                                     # a copy whose detail is gone: skew 0, sharpness 0
        return out

    monkeypatch.setattr(augment, "line_drift", one_faded)
    sign, limit, min_sharp = fit_detail_polarity(train)
    assert sign == -1.0 and 0 < min_sharp < float(np.median(sharpness(train)))
    monkeypatch.setattr(augment, "line_drift", real)
    split = np.where(np.arange(300) < 180, "train", np.where(np.arange(300) < 240, "val", "test"))
    gate = Gate.fit(images, np.asarray(labels).astype(str), split, "0")
    gate.detail_polarity = (sign, limit, min_sharp)
    assert gate.check(255 - goods)["inverted"].all()
    for i, (cond, strength) in enumerate(drift.CONDITIONS):
        assert not gate.check(drift.apply(goods, cond, strength, seed=i))["inverted"].any(), cond


def test_a_negative_of_a_grained_surface_is_unknown_though_its_grey_levels_are_near_symmetric(tmp_path):
    """The strongly grained real-photo surface: the skew of its grey levels as a whole spans values too near 0 for
    the first polarity check, so its negative passed it. Its fine detail (dark pits) is skewed one way under every
    drift condition: the detail's check calls every negative UNKNOWN and no drifted good part, and it does not
    read the detail of an image out of focus."""
    from snw_core import drift, realdata
    from snw_core.gate import BLUR_REASON, INVERTED_REASON
    from snw_core.imageops import gaussian_blur
    images, labels, _, _ = realdata.generate("texture", "strong", 300, 0)
    labels = np.asarray(labels).astype(str)
    split = np.where(np.arange(300) % 5 < 3, "train", np.where(np.arange(300) % 5 == 3, "val", "test"))
    gate = Gate.fit(images, labels, split, "0")
    assert gate.polarity == (0.0, 0.0) and gate.detail_polarity[0] == -1.0
    goods = images[(split == "test") & (labels == "0")]
    neg = gate.check(255 - goods)
    assert neg["inverted"].all()
    assert set(combine(np.zeros(len(goods)), 0.5, neg)[1]) == {INVERTED_REASON}
    for i, (cond, strength) in enumerate(drift.CONDITIONS):
        assert not gate.check(drift.apply(goods, cond, strength, seed=i))["inverted"].any(), cond
    # blurred beyond the envelope's 1 px a good part's detail fades towards symmetric: not read, not "inverted"
    softer = gate.check(np.clip(np.rint(gaussian_blur(goods, 1.5)), 0, 255).astype(np.uint8))
    assert not softer["inverted"].any()
    lens = gate.check(np.clip(np.rint(gaussian_blur(255 - goods, 3.0)), 0, 255).astype(np.uint8))
    assert lens["blurred"].all() and not lens["inverted"].any()
    assert set(combine(np.zeros(len(goods)), 0.5, lens)[1]) == {BLUR_REASON}
    gate.save(tmp_path / "gate.npz")
    x = np.concatenate([goods, 255 - goods, np.clip(np.rint(gaussian_blur(goods, 1.5)), 0, 255).astype(np.uint8)])
    assert np.array_equal(bundle_script().Gate(str(tmp_path)).check(x)["inverted"], gate.check(x)["inverted"])


def test_a_frame_far_darker_or_brighter_than_the_training_images_is_unknown(fitted, tiny_dataset, tmp_path):
    from snw_core.drift import apply
    from snw_core.gate import EXPOSURE_HIGH, EXPOSURE_LOW, EXPOSURE_REASON, fit_exposure
    gate, split = fitted
    level = tiny_dataset.images[split != "test"].reshape(int((split != "test").sum()), -1).mean(1)
    lo, hi = gate.exposure
    assert lo == pytest.approx(EXPOSURE_LOW * np.quantile(level, 0.001))
    assert hi == pytest.approx(EXPOSURE_HIGH * np.quantile(level, 0.999)) and 0 < lo < hi < 255
    parts = tiny_dataset.images[split == "test"]
    dark = np.clip(np.rint(parts * 0.3), 0, 255).astype(np.uint8)              # a lamp far too weak
    c = gate.check(dark)
    assert c["exposure"].all() and c["unknown"].all()
    verdict, reason = combine(np.zeros(len(dark)), 1.0, c)
    assert set(verdict) == {"UNKNOWN"} and set(reason) == {EXPOSURE_REASON}
    for gain in (0.7, 1.3):                    # the light drift a line has (bench --drift: +-30 %) stays judged
        x = np.clip(np.rint(parts * gain), 0, 255).astype(np.uint8)
        assert not gate.check(x)["exposure"].any()
    assert not gate.check(apply(parts, "brightness", 30, seed=0))["exposure"].any()
    assert not gate.check(parts)["exposure"].any()
    # the bundle's script judges alike; a gate file from before the check (six scalars) checks nothing
    gate.save(tmp_path / "gate.npz")
    script = bundle_script()
    x = np.concatenate([dark, parts])
    assert np.array_equal(script.Gate(str(tmp_path)).check(x)["exposure"], gate.check(x)["exposure"])
    assert script.EXPOSURE_REASON == EXPOSURE_REASON
    a = gate.arrays()
    a["scalars"] = a["scalars"][:6]
    assert Gate.from_arrays(a).exposure == (0.0, 0.0) and not Gate.from_arrays(a).check(dark)["exposure"].any()
    # a set as bright as white allows: no upper limit, the lower one stays
    assert fit_exposure(np.full((5, 4, 4), 200, np.uint8)) == (100.0, 0.0) and fit_exposure(np.zeros((0, 4, 4))) == (0.0, 0.0)


def test_clipped_highlights_glare_are_unknown_but_a_brighter_lamp_is_not(fitted, tiny_dataset, tmp_path):
    from snw_core.gate import CLIP_LEVEL, CLIP_MARGIN, GLARE_REASON, LIGHT_DRIFT, fit_highlights
    gate, split = fitted
    seen = tiny_dataset.images[split != "test"].astype(np.float64)
    share = (np.rint(seen * LIGHT_DRIFT) >= CLIP_LEVEL).reshape(len(seen), -1).mean(1)
    assert gate.max_clipped == pytest.approx(share.max() + CLIP_MARGIN)
    parts = tiny_dataset.images[split == "test"]
    glare, kinds = notapart.not_a_part(parts.shape[1:], parts, n_per_kind=10, seed=2, kinds=("glare",))
    c = gate.check(glare)
    assert c["clipped"].all() and c["unknown"].all() and (c["clipped_share"] > gate.max_clipped).all()
    verdict, reason = combine(np.zeros(len(glare)), 1.0, c)
    assert set(verdict) == {"UNKNOWN"} and GLARE_REASON in set(reason)
    brighter = np.clip(np.rint(parts * LIGHT_DRIFT), 0, 255).astype(np.uint8)
    assert not gate.check(brighter)["clipped"].any() and not gate.check(parts)["clipped"].any()
    gate.save(tmp_path / "gate.npz")
    script = bundle_script()
    x = np.concatenate([glare, parts, brighter])
    assert np.array_equal(script.Gate(str(tmp_path)).check(x)["clipped"], gate.check(x)["clipped"])
    assert script.GLARE_REASON == GLARE_REASON
    a = gate.arrays()                          # a gate file from before the check (eight scalars): not checked
    a["scalars"] = a["scalars"][:8]
    assert Gate.from_arrays(a).max_clipped == 0.0 and not Gate.from_arrays(a).check(glare)["clipped"].any()
    assert fit_highlights(np.zeros((0, 4, 4), np.uint8)) == 0.0
    assert fit_highlights(np.full((3, 4, 4), 200, np.uint8)) == pytest.approx(1.0 + CLIP_MARGIN)   # 200 x 1.3 clips


def test_a_few_defects_filed_as_good_do_not_set_the_local_threshold(monkeypatch):
    """With a few hundred val goods the 99.9th percentile is their largest value: one defect filed as good would set
    the local threshold far above every good part. Clear outliers among the val goods are left out of it."""
    from snw_core import gate as G
    from snw_core import synthetic
    from snw_core.splits import stratified_split
    images, labels, _ = synthetic.generate(400, seed=3)
    split = stratified_split(labels, (0.6, 0.2, 0.2), 0)
    clean = Gate.fit(images, labels, split, "0")
    assert clean.local_set_aside == 0 and clean.thresholds()["local_set_aside"] == 0

    faulty = images.copy()
    val_goods = np.flatnonzero((labels == "0") & (split == "val"))[:3]
    for i, r in enumerate(val_goods):                 # a clear spot on three val parts that stay filed as good
        y, x = 9 + 3 * i, 12 + 4 * i
        faulty[r, y:y + 3, x:x + 3] = 255 - faulty[r, y:y + 3, x:x + 3]
    kept = Gate.fit(faulty, labels, split, "0")
    assert kept.local_set_aside == 3
    assert Gate.fit(faulty, labels, split, "0", augment="camera").local_set_aside == 3   # items, not their copies
    assert kept.t_local == pytest.approx(clean.t_local, rel=0.02)   # the same val goods set it (n differs)
    monkeypatch.setattr(G, "CLEAR_OUTLIER_Z", float("inf"))        # as before: every item filed as good counts
    naive = Gate.fit(faulty, labels, split, "0")
    assert naive.local_set_aside == 0 and naive.t_local > 2 * clean.t_local
    # the spotted parts themselves: local defects under the kept threshold, passed under the naive one
    assert kept.check(faulty[val_goods])["local_defect"].all()
    assert not naive.check(faulty[val_goods])["local_defect"].any()
    # below the clear cut, a val good is left out only where the twin too places it among the defects
    doubt = np.zeros(len(labels), bool)
    doubt[val_goods] = True
    assert Gate.fit(faulty, labels, split, "0", doubtful=doubt).local_set_aside == 3
    plain = np.flatnonzero((labels == "0") & (split == "val"))[5:8]      # ordinary goods the twin doubted
    doubt[:] = False
    doubt[plain] = True
    assert Gate.fit(faulty, labels, split, "0", doubtful=doubt).local_set_aside == 0


def test_a_wrong_part_or_an_empty_frame_among_the_training_images_does_not_widen_the_limits(monkeypatch):
    """A flat frame, a glaring frame and a wrong part filed among the parts used to set the flat-frame, highlights and
    appearance limits (their minimum, maximum and 99.9th percentile); they are left out of every limit now."""
    from snw_core import synthetic
    from snw_core.splits import stratified_split
    images, labels, _ = synthetic.generate(400, seed=4)
    split = stratified_split(labels, (0.6, 0.2, 0.2), 0)
    clean = Gate.fit(images, labels, split, "0")
    assert clean.images_set_aside == 0

    junk = images.copy()
    rng = np.random.default_rng(0)
    tr, va = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    junk[tr[0]] = 40 + rng.integers(0, 3, junk.shape[1:])                              # a lamp that is off
    junk[tr[1]] = np.where(rng.random(junk.shape[1:]) < 0.6, 255, 120)                # glare
    junk[va[0]] = notapart.not_a_part((26, 36), None, n_per_kind=1, seed=2, kinds=["other_part"])[0][0]
    junk[va[1]] = notapart.not_a_part((26, 36), None, n_per_kind=1, seed=3, kinds=["digits"])[0][0]
    fitted = Gate.fit(junk, labels, split, "0")
    assert fitted.images_set_aside == 4 and fitted.thresholds()["images_set_aside"] == 4
    assert sorted(np.flatnonzero(fitted.set_aside_mask)) == sorted([tr[0], tr[1], va[0], va[1]])
    assert fitted.min_std == pytest.approx(clean.min_std) and fitted.max_clipped == pytest.approx(clean.max_clipped)
    assert fitted.exposure == pytest.approx(clean.exposure, rel=0.02)     # quantiles of 4 images fewer
    assert fitted.t_app == pytest.approx(clean.t_app, rel=0.1)
    from snw_core import audit as A
    from snw_core import gate as G
    monkeypatch.setattr(G, "IMAGE_OUTLIER_Z", float("inf"))             # as before: every image counts
    monkeypatch.setattr(A, "OUTLIER_Z", float("inf"))
    wide = Gate.fit(junk, labels, split, "0")
    assert wide.images_set_aside == 0
    assert wide.min_std < 0.5 * clean.min_std and wide.max_clipped > 2 * clean.max_clipped


def test_a_flat_frame_among_random_texture_crops_does_not_set_the_flat_frame_limit(surface_gate):
    """Crops of a random surface are all far from each other in pixels, so the pixel statistic cannot single out a
    flat frame among them; its grey-level spread can."""
    from snw_core.gate import image_outliers
    imgs = _surface_crops(300, 1)
    split = np.array(["train"] * 200 + ["val"] * 100)
    assert not image_outliers(imgs, split).any()
    assert surface_gate.images_set_aside == 0
    junk = imgs.copy()
    junk[[3, 250]] = 118 + np.random.default_rng(1).integers(0, 2, (2, 36, 48))   # an empty, evenly lit fixture
    assert np.flatnonzero(image_outliers(junk, split)).tolist() == [3, 250]
    fitted = Gate.fit(junk, np.full(300, "0"), split, "0")
    assert fitted.images_set_aside == 2 and fitted.min_std == pytest.approx(surface_gate.min_std)


def test_a_surface_gate_with_its_appearance_check_off_passes_unseen_surface_and_still_sees_a_foreign_one(tmp_path):
    """Brick goods cut from the lower half of the photograph, judged by a gate fitted on goods of the upper half:
    with the pixel appearance check some are "not recognised"; with it off (t_app infinite, as a surface's run
    switches it) none are by it, the texture check still calls white noise and stripes UNKNOWN, the recorded
    thresholds stay strict JSON, and the gate file and the bundle's gate agree."""
    import json

    from snw_core import realdata
    from snw_core.gate import unknown_of
    upper, labels, _, _ = realdata.generate("texture", "moderate", n=600, seed=0, region="upper")
    lower, lower_labels, _, _ = realdata.generate("texture", "moderate", n=200, seed=1, region="lower")
    goods, unseen = upper[labels == "0"], lower[lower_labels == "0"]
    split = np.array(["train"] * 140 + ["val"] * (len(goods) - 140))
    gate = Gate.fit(goods, np.full(len(goods), "0"), split, "0")
    c_on = gate.check(unseen)
    assert np.array_equal(unknown_of(c_on), c_on["unknown"])
    assert (c_on["appearance"] > 1).mean() > 0.05 and gate.thresholds()["appearance_check"] is True
    gate.t_app = float("inf")
    c_off = gate.check(unseen)
    assert not (c_off["appearance"] > 0).any() and c_off["unknown"].mean() < (c_on["appearance"] > 1).mean()
    assert np.array_equal(c_on["texture"], c_off["texture"])                # the texture check is the same
    rng = np.random.default_rng(3)
    foreign = np.concatenate([rng.normal(120, 30, (5, 36, 48)),
                              120 + 60 * np.sin(np.arange(48) / 2.0)[None, None, :] + rng.normal(0, 2, (5, 36, 48))])
    foreign = np.clip(foreign, 0, 255).astype(np.uint8)
    assert gate.check(foreign)["unknown"].all()
    t = gate.thresholds()
    assert t["appearance"] is None and t["appearance_check"] is False
    json.dumps(t, allow_nan=False)
    gate.save(tmp_path / "gate.npz")
    back, script = Gate.load(tmp_path / "gate.npz"), bundle_script().Gate(str(tmp_path))
    x = np.concatenate([unseen[:10], foreign])
    want = gate.check(x)
    assert np.isinf(back.t_app) and np.array_equal(back.check(x)["unknown"], want["unknown"])
    got = script.check(x)
    assert np.array_equal(got["unknown"], want["unknown"]) and not np.asarray(got["appearance"]).any()
