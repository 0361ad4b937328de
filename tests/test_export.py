"""The line bundle: export command, files, the standalone script against the dashboard's judgement, the zip.

Agreement, stated: the bundle runs the LiteRT model and numpy, the dashboard TensorFlow and scikit-learn, so
scores agree within SCORE_RTOL (relative; measured about 2e-5 on the 3,600 embedded items) and pin confidences
within CONF_ATOL. Verdicts, pin guesses and nearest references must be identical, except for an item whose
score lies within SCORE_RTOL of the threshold (none in practice; such an item is skipped, not failed).
"""
from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from trained_run import ROOT, trained_run, write_pngs

TEMPLATE = ROOT / "snw_core" / "bundle_template" / "inspect_bundle.py"
SCORE_RTOL = 1e-4
CONF_ATOL = 1e-3
BUNDLE_FILES = {"embedder.tflite", "references.npz", "bundle.json", "check.npz", "gate.npz", "inspect_bundle.py",
                "requirements.txt", "README.txt"}


def template_module():
    spec = importlib.util.spec_from_file_location("inspect_bundle_under_test", TEMPLATE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def no_project_env(extra_path=None) -> dict:
    """The environment of a small computer: no PYTHONPATH to the project (snw_core cannot be imported)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if extra_path:
        env["PYTHONPATH"] = str(extra_path)
    return env


def run_bundle(bundle: Path, *args, cwd: Path, env=None, timeout=300):
    return subprocess.run([sys.executable, str(bundle / "inspect_bundle.py"), *map(str, args)], cwd=cwd,
                          env=env or no_project_env(), capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------ fast: the script's numpy judgement

def test_template_imports_only_numpy_and_the_standard_library_at_top_level():
    tree = ast.parse(TEMPLATE.read_text())
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            top.add(node.module.split(".")[0])
    assert top <= {"__future__", "argparse", "io", "json", "os", "sys", "time", "numpy"}, top
    everywhere = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    everywhere |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "snw_core" not in everywhere and "keras" not in everywhere


def test_bundle_references_judge_exactly_like_the_dashboard():
    """Random embeddings: the template's numpy judgement equals Judge.judge_embeddings (no TF needed)."""
    from snw_core.judge import Judge, records
    rng = np.random.default_rng(3)
    d = 16
    good = rng.normal(0, 1, (40, d)).astype(np.float32)
    defect = rng.normal(0.8, 1, (60, d)).astype(np.float32)
    labels = np.array([str(1 + i % 7) for i in range(60)])
    judge = Judge(None, good, np.arange(40) * 2, defect, labels, np.arange(60) * 2 + 1, threshold=3.9, k=3, pin_k=5)
    refs = template_module().References(**{"good": good, "good_idx": np.arange(40) * 2, "defect": defect,
                                          "defect_labels": labels, "defect_idx": np.arange(60) * 2 + 1},
                                       threshold=3.9, k=3, pin_k=5)
    q = np.concatenate([rng.normal(0, 1, (30, d)), rng.normal(0.8, 1, (30, d))]).astype(np.float32)
    want = records(judge.judge_embeddings(q))
    got = refs.judge_embeddings(q)
    assert {r["verdict"] for r in want} == {"GOOD", "DEFECT"}
    for w, g in zip(want, got):
        assert list(g) == list(w)
        assert g["score"] == pytest.approx(w["score"], rel=1e-5)
        assert g["pin_confidence"] == pytest.approx(w["pin_confidence"], abs=1e-6)
        for key in ("verdict", "defect", "pin", "nearest_good", "nearest_defect", "nearest_defect_label"):
            assert g[key] == w[key], key
        assert g["nearest_good_distance"] == pytest.approx(w["nearest_good_distance"], rel=1e-5)


def test_a_defect_only_the_local_evidence_saw_gets_the_pin_where_the_evidence_is():
    """The twin scored it among the goods, so its defective neighbours in the embedding say little; the pin comes
    from the place of its strongest evidence among the defective train items' places, in the dashboard and in the
    bundle alike. With no train defect near that place, the embedding's vote stays."""
    from snw_core.judge import Judge, place_vote, records
    rng = np.random.default_rng(4)
    d = 8
    good = rng.normal(0, 1, (40, d)).astype(np.float32)
    defect = rng.normal(3.0, 1, (70, d)).astype(np.float32)
    labels = np.array([str(1 + i % 7) for i in range(70)])
    centre = {str(p): (5.0, 4.0 * p) for p in range(1, 8)}                     # pin p's evidence lies at (5, 4p)
    yx = np.array([centre[lab] for lab in labels]) + rng.integers(-1, 2, (70, 2))
    n = 12
    q = rng.normal(0, 1, (n, d)).astype(np.float32)                            # all score like goods
    truth = [str(1 + i % 7) for i in range(n)]
    dy = np.array([centre[t][0] for t in truth]) + rng.integers(-1, 2, n)
    dx = np.array([centre[t][1] for t in truth]) + rng.integers(-1, 2, n)
    dx[-1] = 80                                                                # nowhere near a train defect
    checks = {"unknown": np.zeros(n, bool), "flat": np.zeros(n, bool), "appearance": np.full(n, 0.3),
              "local": np.full(n, 2.0), "local_defect": np.ones(n, bool), "defect_y": dy.astype(np.int64),
              "defect_x": dx.astype(np.int64), "heatmap": np.zeros((n, 10, 90), np.float32)}

    from trained_run import FixedGate

    judge = Judge(None, good, np.arange(40), defect, labels, np.arange(70) + 40, threshold=6.0, k=3, pin_k=5,
                  gate=FixedGate(checks), ref_defect_yx=yx)
    out = judge.judge_embeddings(q, images=np.zeros((n, 10, 90), np.uint8))
    assert (out["verdict"] == "DEFECT").all() and (out["score"] <= 6.0).all()
    assert list(out["pin"][:-1]) == truth[:-1]
    plain = Judge(None, good, np.arange(40), defect, labels, np.arange(70) + 40, threshold=6.0, k=3, pin_k=5)
    assert out["pin"][-1] == plain.judge_embeddings(q)["pin"][-1]             # no train defect there: unchanged
    assert place_vote([5], [80], yx, *np.unique(labels, return_inverse=True))[1][0] == 0.0
    refs = template_module().References(good, np.arange(40), defect, labels, np.arange(70) + 40, threshold=6.0,
                                        k=3, pin_k=5, defect_yx=yx)
    got = refs.judge_embeddings(q, None, checks)
    for w, g in zip(records(out), got):
        assert g["pin"] == w["pin"] and g["pin_confidence"] == pytest.approx(w["pin_confidence"], abs=1e-9)
    assert judge.references()["defect_yx"].shape == (70, 2)


def test_bundle_references_without_defects_give_no_pin():
    refs = template_module().References(np.eye(3), [0, 1, 2], np.zeros((0, 3)), [], [], threshold=0.5, k=2)
    row = refs.judge_embeddings(np.array([[1.0, 0, 0]]))[0]
    assert row["pin"] is None and row["nearest_defect"] is None and row["score"] == pytest.approx(np.sqrt(2) / 2)


# ------------------------------------------------------------------ slow: a trained run, exported

@pytest.fixture(scope="module")
def trained(tiny_parquet):
    return trained_run(tiny_parquet)


@pytest.fixture(scope="module")
def run(trained):
    from snw_core.runs import RunStore
    return RunStore(trained[0]).get(trained[1])


@pytest.fixture(scope="module")
def bundle(trained, tmp_path_factory) -> Path:
    runs, rid = trained
    out = tmp_path_factory.mktemp("export") / "bundle"
    r = subprocess.run([sys.executable, "-m", "snw_core", "export", rid, "--out", str(out), "--runs-dir", str(runs)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert Path(r.stdout.strip().splitlines()[-1]) == out
    return out


def test_a_folder_stands_for_its_image_files_in_the_same_order_in_the_bundle_and_the_dashboard(tmp_path):
    from snw_core.data import DataError
    from snw_core.judge import expand_paths
    mod = template_module()
    root = tmp_path / "archive"
    for rel in ("day2/10.png", "day2/9.png", "day10/1.png", "day2/notes.txt", ".hidden/x.png", "day2/.x.png",
                "b.JPG", "a.npy"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    single = tmp_path / "one.png"
    want = [str(single)] + [str(root / r) for r in ("a.npy", "b.JPG", "day2/9.png", "day2/10.png", "day10/1.png")]
    assert mod.expand_paths([str(single), str(root)]) == want          # files as given, then the folder's
    assert expand_paths([single, root]) == [w for w in want if not w.endswith(".npy")]   # no .npy in the dashboard
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no image files"):
        expand_paths([tmp_path / "empty"])
    with pytest.raises(mod.BadInput, match="holds no image files"):
        mod.expand_paths([str(tmp_path / "empty")])


@pytest.fixture(scope="module")
def test_images(run, tiny_dataset, tmp_path_factory):
    """PNG files of the run's test items and a few train items, with their row indices."""
    split = np.load(run.file("embeddings.npz"), allow_pickle=False)["split"]
    rows = np.concatenate([np.flatnonzero(split == "test"), np.flatnonzero(split == "train")[:4]])
    names = [f"row{i}_label{tiny_dataset.labels[i]}.png" for i in rows]
    return rows, write_pngs(tiny_dataset.images[rows], tmp_path_factory.mktemp("pngs"), names)


@pytest.mark.slow
def test_export_writes_a_self_contained_bundle(bundle, run):
    registered = run.file("register.npz").exists()
    assert {p.name for p in bundle.iterdir()} == BUNDLE_FILES | ({"register.npz"} if registered else set())
    meta = json.loads((bundle / "bundle.json").read_text())
    cfg, m = run.config(), run.metrics()
    assert (meta["registration"] is not None) == registered
    assert meta["run_id"] == run.id and meta["format"] == 2
    assert meta["threshold"] == pytest.approx(m["threshold"])
    assert meta["k"] == cfg["settings"]["k"] and meta["pin_k"] == 5 and meta["good_label"] == "0"
    assert meta["image_shape"] == [26, 36]
    assert meta["data"]["content_hash"] == cfg["data"]["content_hash"]
    assert {"numpy", "keras", "ai-edge-litert"} <= set(meta["versions"])
    assert {"tensorflow", "tensorflow-cpu"} & set(meta["versions"])
    assert meta["conversion_check"]["max_relative_difference"] <= meta["conversion_check"]["tolerance"]
    with np.load(bundle / "references.npz", allow_pickle=False) as z:      # no pickles: loads without them
        assert z["good"].dtype == np.float32 and z["defect_labels"].dtype.kind == "U"
        assert len(z["good"]) == meta["n_good_references"] and len(z["defect"]) == meta["n_defect_references"]
    assert (bundle / "inspect_bundle.py").read_bytes() == TEMPLATE.read_bytes()
    assert "ai-edge-litert==2.3.0" in (bundle / "requirements.txt").read_text()


@pytest.mark.slow
def test_bundle_script_gives_the_dashboards_verdicts(bundle, run, test_images, tmp_path):
    """The script runs as on a small computer (no PYTHONPATH, so no snw_core) and agrees with Judge."""
    from snw_core.judge import Judge, read_images, records
    guard = subprocess.run([sys.executable, "-c", "import snw_core"], cwd=tmp_path, env=no_project_env(),
                           capture_output=True, text=True)
    assert guard.returncode != 0, "snw_core must not be importable where the bundle script runs"

    rows, paths = test_images
    r = run_bundle(bundle, *paths, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in r.stdout.splitlines()]
    want = records(Judge.from_run(run).judge(read_images(paths, (26, 36)).images), paths)
    assert len(got) == len(want) == len(paths)
    thr = want[0]["threshold"]
    compared = 0
    for g, w in zip(got, want):
        assert list(g) == list(w) and g["file"] == w["file"]
        assert g["score"] == pytest.approx(w["score"], rel=SCORE_RTOL)
        if abs(w["score"] - thr) <= SCORE_RTOL * thr:
            continue
        compared += 1
        for key in ("verdict", "reason", "defect", "pin", "nearest_good", "nearest_defect", "nearest_defect_label",
                    "defect_y", "defect_x"):
            assert g[key] == w[key], (g["file"], key)
        assert g["appearance"] == pytest.approx(w["appearance"], rel=1e-9)
        assert g["local"] == pytest.approx(w["local"], rel=1e-9)
        assert g["pin_confidence"] == pytest.approx(w["pin_confidence"], abs=CONF_ATOL)
        assert g["nearest_good_distance"] == pytest.approx(w["nearest_good_distance"], rel=SCORE_RTOL, abs=1e-5)
    assert compared >= len(got) - 1


@pytest.mark.slow
def test_bundle_script_warns_when_a_batch_is_noisier_than_the_training_images(bundle, run, tiny_dataset, tmp_path):
    from snw_core.drift import apply
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["acquisition"] == run.metrics()["acquisition"] and meta["drift_check"] == run.metrics()["drift_check"]
    clean = write_pngs(tiny_dataset.images[:6], tmp_path / "clean", [f"c{i}.png" for i in range(6)])
    r = run_bundle(bundle, *clean, cwd=tmp_path)
    assert r.returncode == 0 and "Camera check" not in r.stderr
    noisy = write_pngs(apply(tiny_dataset.images[:6], "noise", 12.0, seed=3), tmp_path / "noisy",
                       [f"n{i}.png" for i in range(6)])
    r = run_bundle(bundle, *noisy, cwd=tmp_path)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 6
    assert "WARNING: Camera check: the images are noisier than the training images" in r.stderr
    # an archive: a folder, judged a block at a time; the check names the block that drifted
    (tmp_path / "archive").mkdir()
    for i, path in enumerate(clean + noisy):
        shutil.copy(path, tmp_path / "archive" / f"{i:02d}.png")
    r = run_bundle(bundle, tmp_path / "archive", cwd=tmp_path)
    whole = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 0 and [row["file"] for row in whole] == [str(tmp_path / "archive" / f"{i:02d}.png")
                                                                     for i in range(12)]
    mod = template_module()
    mod.BLOCK = 6
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert mod.main([str(tmp_path / "archive"), "--bundle", str(bundle)]) == 0
    blocks = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(b["file"], b["verdict"], b["pin"]) for b in blocks] == [(w["file"], w["verdict"], w["pin"]) for w in whole]
    for b, w in zip(blocks, whole):
        assert b["score"] == pytest.approx(w["score"], rel=SCORE_RTOL)
    assert err.getvalue().count("WARNING") == 1
    assert f"WARNING: images 7-12 of 12 ({tmp_path / 'archive' / '06.png'} to" in err.getvalue()


@pytest.mark.slow
def test_bundle_self_test_and_runtime_fallback(bundle, tmp_path):
    r = run_bundle(bundle, "--self-test", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["ok"] and res["runtime"] == "ai_edge_litert"
    blocker = tmp_path / "block"          # ai_edge_litert missing: tflite_runtime (absent here), then tensorflow
    (blocker / "ai_edge_litert").mkdir(parents=True)
    (blocker / "ai_edge_litert" / "__init__.py").write_text("raise ImportError('blocked for the test')\n")
    r = run_bundle(bundle, "--self-test", cwd=tmp_path, env=no_project_env(blocker))
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.splitlines()[-1])["runtime"] in ("tflite_runtime", "tensorflow")


@pytest.mark.slow
def test_bundle_script_refuses_bad_input_with_exit_2(bundle, tiny_dataset, tmp_path):
    from PIL import Image
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "square.png")
    (tmp_path / "text.png").write_text("not an image")
    good = write_pngs(tiny_dataset.images[:1], tmp_path, ["ok.png"])[0]
    for bad, words in (("square.png", "30 x 30 px"), ("text.png", "not an image"), ("missing.png", "does not exist")):
        r = run_bundle(bundle, good, tmp_path / bad, cwd=tmp_path)
        assert r.returncode == 2, (bad, r.stdout, r.stderr)
        assert r.stdout == "" and words in r.stderr and "Traceback" not in r.stderr
    Image.fromarray(np.repeat(np.repeat(tiny_dataset.images[0], 2, 0), 2, 1)).save(tmp_path / "big.png")
    r = run_bundle(bundle, tmp_path / "big.png", cwd=tmp_path)
    assert r.returncode == 2 and "--resize" in r.stderr
    r = run_bundle(bundle, "--resize", tmp_path / "big.png", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["verdict"] in ("GOOD", "DEFECT", "UNKNOWN")
    np.save(tmp_path / "item.npy", tiny_dataset.images[:2])      # without Pillow: uint8 arrays
    r = run_bundle(bundle, tmp_path / "item.npy", cwd=tmp_path)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2


@pytest.mark.slow
def test_export_refuses_a_foreign_folder_and_replaces_an_old_bundle(trained, run, bundle, tmp_path, capsys):
    from snw_core.__main__ import main
    from snw_core.export import export_bundle
    runs, rid = trained
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_text("x")
    assert main(["export", rid, "--runs-dir", str(runs), "--out", str(foreign)]) == 2
    assert "not an empty folder or an earlier bundle" in capsys.readouterr().err.replace("\n", " ")
    assert [p.name for p in foreign.iterdir()] == ["holiday.jpg"]
    assert main(["export", "no-such-run", "--runs-dir", str(runs), "--out", str(tmp_path / "c")]) == 2
    assert "no run" in capsys.readouterr().err.lower() and not (tmp_path / "c").exists()
    out = tmp_path / "b"
    out.mkdir()
    for f in bundle.iterdir():           # an earlier bundle (plus a stray file) is replaced whole
        (out / f.name).write_bytes(f.read_bytes())
    (out / "stray.txt").write_text("old")
    export_bundle(run, out)
    assert {p.name for p in out.iterdir()} == BUNDLE_FILES | ({"register.npz"} if run.file("register.npz").exists()
                                                              else set())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folders left behind"


@pytest.mark.slow
def test_bundle_zip_is_cached_and_rebuilt_when_the_run_changes(run):
    from snw_core import export
    p = export.bundle_zip(run)
    assert p == run.file("bundle.zip") and export.bundle_zip_ready(run) == p
    top = f"snw-bundle-{run.id}"
    assert {n.split("/", 1)[1] for n in zipfile.ZipFile(p).namelist()} == BUNDLE_FILES
    assert all(n.startswith(top + "/") for n in zipfile.ZipFile(p).namelist())
    mtime = p.stat().st_mtime_ns
    assert export.bundle_zip(run).stat().st_mtime_ns == mtime            # cached
    run.write_metrics(run.metrics())                                      # the run changed
    assert export.bundle_zip_ready(run) is None
    assert export.bundle_zip(run).stat().st_mtime_ns != mtime


def test_export_refuses_a_run_without_results(runs_dir, tmp_path, capsys):
    from snw_core.__main__ import main
    from snw_core.runs import RunStore
    run = RunStore(runs_dir).create(run_id="unfinished")
    run.write_config({"run_id": "unfinished", "settings": {}, "data": {"source": "default", "good_label": "0"}})
    run.write_status("failed")
    assert main(["export", "unfinished", "--out", str(tmp_path / "b")]) == 2
    assert "no results yet" in capsys.readouterr().err.replace("\n", " ")
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_a_conv_twin_bundle_carries_the_patch_bank_and_judges_like_the_dashboard(tiny_parquet, tiny_dataset, tmp_path):
    """The default preset (conv twin): the bundle's model also outputs the patch features, patches.npz rides
    along, and the script's verdicts, reasons, locations and patch scores equal the dashboard's."""
    from snw_core.judge import Judge, read_images, records
    from snw_core.runs import RunStore
    from snw_core.embed import feature_maps, load_embeddings
    from snw_core.model import load_embedder
    from snw_core.patches import PATCH_LAYER, PatchBank
    shared, rid = trained_run(tiny_parquet, preset="default")
    runs = tmp_path / "runs"                     # a copy: the bank planted below must not reach other tests' run
    shutil.copytree(shared / rid, runs / rid)
    run = RunStore(runs).get(rid)
    if not run.file("patches.npz").exists():
        # the run's val split chose no patch evidence (one epoch, 26 val items): give it a bank with a threshold
        # that flags some items, so that both sides of the threshold are compared below
        e = load_embeddings(run.file("embeddings.npz"))
        feats = feature_maps(load_embedder(run.embedder_path), tiny_dataset.images, PATCH_LAYER)
        bank = PatchBank.fit(feats[(e["split"] == "train") & (e["labels"] == "0")])
        bank.threshold = float(np.median(bank.score(feats)[0]))
        bank.save(run.file("patches.npz"))
    out = tmp_path / "bundle"
    r = subprocess.run([sys.executable, "-m", "snw_core", "export", rid, "--out", str(out), "--runs-dir", str(runs)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {p.name for p in out.iterdir()} == BUNDLE_FILES | {"patches.npz"} | (
        {"register.npz"} if run.file("register.npz").exists() else set())
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["patch"]["grid"] and meta["patch"]["channels"] == 32
    spoiled = tiny_dataset.images[:6].copy()
    spoiled[3, 10:14, 16:20] = 255                                      # a bright blot: local evidence
    paths = write_pngs(np.concatenate([tiny_dataset.images[:6], spoiled[3:4]]), tmp_path / "png",
                       [f"i{i}.png" for i in range(7)])
    r = run_bundle(out, *paths, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in r.stdout.splitlines()]
    want = records(Judge.from_run(run).judge(read_images(paths, (26, 36)).images), paths)
    located = 0
    for g, w in zip(got, want):
        assert list(g) == list(w)
        assert g["patch"] == pytest.approx(w["patch"], rel=1e-3, abs=1e-3)    # in units of its threshold
        if abs(w["score"] - w["threshold"]) <= SCORE_RTOL * w["threshold"] or abs(w["patch"] - 1) < 1e-3:
            continue
        for key in ("verdict", "reason", "nearest_good"):
            assert g[key] == w[key], (g["file"], key)
        # a location is compared where a map has a clear peak and which map gives it is not a near tie
        if max(w["patch"], w["local"]) >= 0.5 and abs(w["patch"] - w["local"]) > 0.05:
            assert (g["defect_y"], g["defect_x"]) == (w["defect_y"], w["defect_x"]), g["file"]
            located += 1
    assert located >= 1                                     # at least the blotted item
    r = run_bundle(out, "--self-test", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"], r.stdout + r.stderr
