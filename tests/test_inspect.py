"""Judging new images: reading and refusing files, the record fields, the Inspect page's pure helpers, and
the ``inspect`` command (one JSON line per image, exit 2 on bad input)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from snw_core import drift
from snw_core import inspect_view as IV
from snw_core.data import DataError
from snw_core.judge import RECORD_FIELDS, Judge, read_images, records, resize_is_safe
from trained_run import ROOT, trained_run, write_pngs

SHAPE = (26, 36)


def png(arr, mode=None) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(arr) if mode is None else Image.fromarray(arr, mode)
    im.save(buf, format="PNG")
    return buf.getvalue()


def gray(h=26, w=36, v=100):
    return np.full((h, w), v, np.uint8)


# ------------------------------------------------------------------ reading images

@pytest.mark.parametrize("size, ok", [((52, 72), True), ((13, 18), True), ((26, 36), True), ((100, 138), True),
                                      ((30, 30), False), ((36, 26), False), ((26, 40), False)])
def test_resize_is_safe_only_for_the_same_aspect_ratio(size, ok):
    assert resize_is_safe(size, SHAPE) is ok


def test_read_images_accepts_the_runs_size_and_converts_colour():
    rgb = np.stack([gray(v=10), gray(v=200), gray(v=30)], axis=-1)
    got = read_images([("a.png", png(gray())), ("b.png", png(rgb))], SHAPE)
    assert got.images.shape == (2, 26, 36) and got.images.dtype == np.uint8
    assert got.names == ["a.png", "b.png"] and got.notes[0] == "" and "RGB converted to grayscale" in got.notes[1]
    assert got.images[0, 0, 0] == 100 and got.problems == []


def test_read_images_resizes_only_when_asked_and_safe():
    big = np.repeat(np.repeat(np.arange(26 * 36, dtype=np.uint8).reshape(SHAPE), 2, 0), 2, 1)
    with pytest.raises(DataError, match="same aspect ratio, so it can be resized safely"):
        read_images([("big.png", png(big))], SHAPE)
    got = read_images([("big.png", png(big))], SHAPE, resize=True)
    assert got.images.shape == (1, 26, 36) and "resized from 52 x 72 px" in got.notes[0]
    np.testing.assert_array_equal(got.images[0], np.arange(26 * 36, dtype=np.uint8).reshape(SHAPE))  # 2x2 blocks
    with pytest.raises(DataError, match="aspect ratio .* differs"):
        read_images([("sq.png", png(gray(30, 30)))], SHAPE, resize=True)


def test_read_images_lists_every_refused_file_in_one_message(tmp_path):
    (tmp_path / "t.png").write_text("not an image")
    sixteen = png(np.full(SHAPE, 40000, np.uint16))
    items = [("ok.png", png(gray())), ("sq.png", png(gray(30, 30))), str(tmp_path / "t.png"),
             str(tmp_path / "missing.png"), ("deep.png", sixteen), ("trunc.png", png(gray())[:60])]
    with pytest.raises(DataError) as e:
        read_images(items, SHAPE)
    lines = str(e.value).splitlines()
    assert lines[0] == "5 of 6 images cannot be judged:" and len(lines) == 6
    text = str(e.value)
    for words in ("'sq.png' is 30 x 30 px", "t.png' is not an image", "missing.png' does not exist",
                  "'deep.png' is a 16/32-bit image", "'trunc.png'"):
        assert words in text, words
    got = read_images(items, SHAPE, on_error="collect")
    assert got.names == ["ok.png"] and len(got.problems) == 5
    assert [p["resizable"] for p in got.problems] == [False] * 5


def test_huge_images_are_refused_from_the_header_before_decoding(monkeypatch):
    from snw_core import data

    def never(*a, **k):
        raise AssertionError("pixels decoded")
    monkeypatch.setattr(data, "decode_images", never)
    got = read_images([("huge.png", png(np.zeros((1100, 1500), np.uint8)))], SHAPE, on_error="collect")
    assert "larger than 1024 px per side" in got.problems[0]["message"] and len(got.names) == 0


def test_read_images_rejects_an_unknown_on_error():
    with pytest.raises(ValueError):
        read_images([], SHAPE, on_error="ignore")


# ------------------------------------------------------------------ judge and records

def fake_run_parts(d=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.array(["0"] * 20 + ["3"] * 10 + ["7"] * 10)
    split = np.array((["train"] * 12 + ["test"] * 8) + (["train"] * 6 + ["test"] * 4) * 2)
    emb = rng.normal(0, 0.1, (40, d)).astype(np.float32)
    emb[labels != "0"] += 3
    cfg = {"settings": {"k": 3}, "data": {"good_label": "0", "image_shape": [26, 36]}}
    return cfg, {"threshold": 2.5}, {"embeddings": emb, "labels": labels, "split": split}


def test_judge_from_parts_takes_train_references_and_records_have_the_contract_fields():
    cfg, m, e = fake_run_parts()
    j = Judge.from_parts(cfg, m, e)
    assert j.embedder is None and j.k == 3 and j.pin_k == 5 and j.image_shape == SHAPE
    assert j.ref_good_idx.tolist() == list(range(12))
    assert set(j.ref_defect_labels) == {"3", "7"} and len(j.ref_defect) == 12
    rows = records(j.judge_embeddings(e["embeddings"][e["split"] == "test"]), names=[f"x{i}" for i in range(16)])
    assert all(tuple(r) == RECORD_FIELDS for r in rows)
    assert json.loads(json.dumps(rows)) == rows                      # JSON-friendly, no numpy types
    assert [r["verdict"] for r in rows[:8]] == ["GOOD"] * 8 and [r["verdict"] for r in rows[8:]] == ["DEFECT"] * 8
    assert {r["pin"] for r in rows[8:12]} == {"3"} and rows[0]["nearest_good"] in range(12)
    with pytest.raises(ValueError):
        Judge.from_parts(cfg, {}, e)


# ------------------------------------------------------------------ the page's helpers

def test_a_few_images_are_judged_with_one_blas_thread_and_the_setting_comes_back():
    from threadpoolctl import threadpool_info

    from snw_core import judge as judge_module

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    assert before
    with judge_module._few_images():
        assert set(blas_threads()) == {1}
    assert blas_threads() == before


def test_a_few_rows_run_through_the_models_traced_graph_with_the_same_result():
    import gc

    from snw_core import embed as E
    from snw_core.model import build_embedder
    from snw_core.presets import resolve_settings

    model = build_embedder(resolve_settings("default"), (26, 36))
    x = np.random.default_rng(0).integers(0, 256, (12, 26, 36)).astype(np.float32)
    few = E.predict(model, x[:3])
    assert id(model) in E._GRAPHS and E._GRAPHS[id(model)] is not None      # traced once, kept for the model
    np.testing.assert_allclose(few, np.asarray(model.predict_on_batch(x[:3])), atol=1e-6)
    np.testing.assert_allclose(E.predict(model, x), np.asarray(model.predict_on_batch(x)), atol=1e-6)   # many rows
    model.set_weights([w * 0.5 for w in model.get_weights()])                # the graph reads the weights as they are
    np.testing.assert_allclose(E.predict(model, x[:1]), np.asarray(model.predict_on_batch(x[:1])), atol=1e-6)
    key = id(model)
    del model
    gc.collect()
    assert key not in E._GRAPHS                                                # dropped with its model


def test_predict_passes_large_images_a_few_at_a_time(monkeypatch):
    """Large images pass through the model in pieces bounded in pixels, with the numbers of one whole pass."""
    from snw_core import embed as E
    from snw_core.model import build_embedder
    from snw_core.presets import resolve_settings

    model = build_embedder(resolve_settings("default"), (26, 36))
    x = np.random.default_rng(1).integers(0, 256, (11, 26, 36)).astype(np.float32)
    whole = E.predict(model, x)
    sizes = []
    fn = E._graph(model)
    monkeypatch.setitem(E._GRAPHS, id(model), lambda t: sizes.append(int(t.shape[0])) or fn(t))
    monkeypatch.setattr(E, "PASS_PIXELS", 3 * 26 * 36)                     # three images a pass
    np.testing.assert_allclose(E.predict(model, x), whole, atol=1e-6)
    assert sizes == [3, 3, 3, 2]
    np.testing.assert_allclose(E.embed_images(model, x.astype(np.uint8)), whole, atol=1e-6)
    assert E.pass_rows((26, 36)) == 3 and E.pass_rows((100, 100)) == 1


def test_default_and_random_picks_come_from_the_test_split():
    labels = np.array(["0", "1", "0", "2", "1", "3", "0", "2"])
    split = np.array(["train", "test", "test", "test", "test", "test", "test", "train"])
    assert IV.default_picks(labels, split, "0") == [2, 1, 3]
    picks = IV.random_picks(labels, split, "0", n_good=2, n_defect=2, seed=1)
    assert len(picks) == 4 and all(split[i] == "test" for i in picks) and picks == sorted(picks)
    assert sum(labels[i] == "0" for i in picks) == 2
    assert IV.pick_name(7, "12") == "#7 · pin 12" and IV.pick_name(3, "0") == "#3 · good"


@pytest.mark.parametrize("verdict, true, pin, word", [
    ("GOOD", "0", "3", "correct"), ("GOOD", "4", "4", "ESCAPE"), ("DEFECT", "0", "4", "OVERKILL"),
    ("DEFECT", "4", "4", "correct (pin 4)"), ("DEFECT", "4", "5", "caught, pin guessed 5 (true 4)")])
def test_outcome_in_the_trades_words(verdict, true, pin, word):
    assert IV.outcome(verdict, true, pin, "0") == word


def test_score_figure_and_results_table():
    rows = [{"file": "a", "verdict": "GOOD", "defect": False, "score": 0.1, "threshold": 0.2, "pin": "3",
             "pin_confidence": 0.5, "nearest_good": 1, "nearest_good_distance": 0.05, "nearest_defect": 9,
             "nearest_defect_label": "3", "nearest_defect_distance": 0.3},
            {"file": "b", "verdict": "DEFECT", "defect": True, "score": 0.4, "threshold": 0.2, "pin": "7",
             "pin_confidence": 0.9, "nearest_good": 2, "nearest_good_distance": 0.3, "nearest_defect": 8,
             "nearest_defect_label": "7", "nearest_defect_distance": 0.01}]
    fig = IV.score_figure(["a", "b"], [0.1, 0.4], ["GOOD", "DEFECT"], 0.2, 3)
    assert list(fig.data[0].x) == [0.1, 0.4] and fig.data[0].marker.color == (IV.GOOD_COLOR, IV.DEFECT_COLOR)
    assert fig.layout.shapes[0].x0 == 0.2 and "score" in fig.layout.xaxis.title.text
    df = IV.results_table(rows, "0", true_labels=["0", "7"], notes=["", "resized"])
    assert df["pin"].isna().tolist() == [True, False] and df["pin"].iloc[1] == "7"     # no pin claimed for GOOD
    assert df["pin_confidence"].isna().tolist() == [True, False]
    assert df["outcome"].tolist() == ["correct", "correct (pin 7)"]
    assert df["margin"].round(6).tolist() == [-0.1, 0.2]


# ------------------------------------------------------------------ the command (a trained run)

def cli(*args, runs_dir, timeout=600):
    return subprocess.run([sys.executable, "-m", "snw_core", "inspect", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, SNW_RUNS_DIR=str(runs_dir)))


@pytest.fixture(scope="module")
def trained(tiny_parquet):
    return trained_run(tiny_parquet)


@pytest.mark.slow
def test_inspect_prints_one_json_line_per_image(trained, tiny_dataset, tmp_path):
    from snw_core.runs import RunStore
    runs, rid = trained
    paths = write_pngs(tiny_dataset.images[:5], tmp_path, [f"i{i}.png" for i in range(5)])
    r = cli(rid, *paths, runs_dir=runs)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 5 and all(tuple(row) == RECORD_FIELDS for row in rows)
    assert [row["file"] for row in rows] == paths
    want = records(Judge.from_run(RunStore(runs).get(rid)).judge(tiny_dataset.images[:5]), paths)
    for g, w in zip(rows, want):
        assert g["verdict"] == w["verdict"] and g["pin"] == w["pin"]
        assert g["score"] == pytest.approx(w["score"], rel=1e-6)
    big = np.repeat(np.repeat(tiny_dataset.images[0], 2, 0), 2, 1)
    Image.fromarray(big).save(tmp_path / "big.png")
    r = cli(rid, tmp_path / "big.png", "--resize", runs_dir=runs)
    assert r.returncode == 0 and "resized from 52 x 72 px" in r.stderr
    assert json.loads(r.stdout)["score"] == pytest.approx(rows[0]["score"], rel=1e-3)
    r = cli(rid, tmp_path / "big.png", runs_dir=runs)                   # no --resize: refused, one paragraph
    assert r.returncode == 2 and r.stdout == "" and "--resize" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_inspect_judges_a_folder_a_block_at_a_time_and_names_the_block_that_drifted(trained, tiny_dataset, tmp_path,
                                                                                   capsys, monkeypatch):
    """An archive: a folder argument, judged and printed INSPECT_BLOCK images at a time, the same verdicts as
    judging all at once; the camera check speaks of each block, so a drift in the second half is not averaged
    away by the first."""
    import snw_core.__main__ as cli_main
    from snw_core.drift import apply
    from snw_core.runs import RunStore
    runs, rid = trained
    images = np.concatenate([tiny_dataset.images[:6], apply(tiny_dataset.images[6:12], "noise", 12.0, seed=3)])
    paths = write_pngs(images, tmp_path / "archive" / "day1", [f"{i}.png" for i in range(12)])
    monkeypatch.setattr(cli_main, "INSPECT_BLOCK", 6)
    assert cli_main.main(["inspect", rid, str(tmp_path / "archive"), "--runs-dir", str(runs)]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [row["file"] for row in rows] == paths                      # 0, 1, ..., 10, 11: natural order
    want = records(Judge.from_run(RunStore(runs).get(rid)).judge(images), paths)
    assert [(r["verdict"], r["pin"]) for r in rows] == [(w["verdict"], w["pin"]) for w in want]
    np.testing.assert_allclose([r["score"] for r in rows], [w["score"] for w in want], rtol=1e-6)
    warnings = [line for line in captured.err.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and warnings[0].startswith(f"WARNING: images 7-12 of 12 ({paths[6]} to {paths[11]}): "
                                                         "Camera check: the images are noisier")
    assert cli_main.main(["inspect", rid, str(tmp_path / "archive" / "none"), "--runs-dir", str(runs)]) == 2
    (tmp_path / "empty").mkdir()
    assert cli_main.main(["inspect", rid, str(tmp_path / "empty"), "--runs-dir", str(runs)]) == 2
    assert "holds no image files" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_checks_gives_a_run_trained_before_them_the_trainings_own_checks(trained, tmp_path, capsys):
    """`evaluate RUN_ID --checks` on a run without the drift and not-a-part checks: the same numbers its training
    would have stored (the same items, seeds and files), written into its metrics.json."""
    import shutil

    from snw_core.__main__ import main
    from snw_core.runs import RunStore
    runs, rid = trained
    shutil.copytree(os.path.join(str(runs), rid), tmp_path / "runs" / rid)
    run = RunStore(tmp_path / "runs").get(rid)
    m = run.metrics()
    run.write_metrics({k: v for k, v in m.items() if k not in ("drift_check", "not_a_part_check")})
    assert main(["evaluate", rid, "--checks", "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr()
    again = run.metrics()
    assert again["drift_check"] == m["drift_check"] and again["not_a_part_check"] == m["not_a_part_check"]
    assert json.loads(out.out)["drift_check"]["held"] == m["drift_check"]["held"]
    assert out.err.splitlines()[-2].startswith("camera drift: ") and "not the part: " in out.err
    half = RunStore(tmp_path / "runs").create(run_id="halfway")
    half.write_config({"run_id": "halfway", "settings": {}, "data": {"source": "default", "good_label": "0"}})
    assert main(["evaluate", "halfway", "--checks", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "no results yet" in capsys.readouterr().err.replace("\n", " ")


@pytest.mark.slow
def test_the_dashboards_check_action_stores_the_same_checks_in_the_background(trained, tmp_path):
    """The Accuracy page's "Run the checks" (``actions.start_checks``): a viewer is refused before anything starts;
    for an engineer a separate process stores the checks the training stored, and the action log names who."""
    import shutil

    from snw_core import actions
    from snw_core.roles import LOCAL, VIEWER, AccessError, Actor
    from snw_core.runs import RunStore
    runs, rid = trained
    shutil.copytree(os.path.join(str(runs), rid), tmp_path / "runs" / rid)
    store = RunStore(tmp_path / "runs")
    run = store.get(rid)
    m = run.metrics()
    run.write_metrics({k: v for k, v in m.items() if k not in ("drift_check", "not_a_part_check")})
    with pytest.raises(AccessError):
        actions.start_checks(run, Actor("guest", VIEWER, "not signed in"), store)
    assert actions.read_log(store) == [] and "drift_check" not in run.metrics()
    with open(tmp_path / "err.txt", "w+b") as err:
        proc = actions.start_checks(run, LOCAL, store, stderr=err)
        assert proc.wait(timeout=300) == 0, (err.seek(0), err.read().decode()[-2000:])
    again = run.metrics()
    assert again["drift_check"] == m["drift_check"] and again["not_a_part_check"] == m["not_a_part_check"]
    assert [(e["user"], e["action"], e["run_id"]) for e in actions.read_log(store)] == [("local", "checks", rid)]


@pytest.mark.slow
def test_inspect_warns_about_a_run_that_cannot_tell_good_from_defective(trained, tiny_dataset, tmp_path, capsys,
                                                                         monkeypatch):
    import shutil

    from snw_core.__main__ import main
    from snw_core.runs import RunStore
    runs, rid = trained
    shutil.copytree(os.path.join(str(runs), rid), tmp_path / "runs" / rid)          # the shared run stays as it is
    run = RunStore(tmp_path / "runs").get(rid)
    paths = write_pngs(tiny_dataset.images[:2], tmp_path, ["a.png", "b.png"])
    monkeypatch.setenv("SNW_RUNS_DIR", str(tmp_path / "runs"))
    assert main(["inspect", rid, *paths]) == 0
    assert "WARNING" not in capsys.readouterr().err
    run.write_metrics({**run.metrics(), "overkill_rate": 1.0})
    assert main(["inspect", rid, *paths]) == 0
    captured = capsys.readouterr()
    assert "WARNING: This run cannot tell good parts from defective ones: it rejects 100% of the good test items" \
        in captured.err
    assert len(captured.out.splitlines()) == 2                                          # it still judges


@pytest.mark.slow
def test_inspect_says_unknown_for_what_is_not_the_part_and_writes_heat_maps(trained, tiny_dataset, tmp_path):
    from snw_core import notapart
    runs, rid = trained
    x, kinds = notapart.not_a_part((26, 36), tiny_dataset.images[:4], n_per_kind=1, seed=2,
                                   kinds=("noise_uniform", "flat", "texture", "inverted"))
    imgs = np.concatenate([x, tiny_dataset.images[:2]])
    names = [f"{k}.png" for k in kinds] + ["part0.png", "part1.png"]
    paths = write_pngs(imgs, tmp_path / "in", names)
    r = cli(rid, *paths, "--heatmap", tmp_path / "maps", runs_dir=runs)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    for row in rows[:4]:
        assert row["verdict"] == "UNKNOWN" and row["defect"] and "check" in row["reason"], row
    assert "flat frame" in rows[1]["reason"]
    for row in rows:
        assert 0 <= row["defect_y"] < 26 and 0 <= row["defect_x"] < 36
        png = Image.open(row["heatmap_file"])
        assert png.size == (36 * 6, 26 * 6) and png.mode == "RGB"
    assert all(row["verdict"] != "UNKNOWN" for row in rows[4:])         # the parts themselves are known
    from snw_core.runs import RunStore
    m = RunStore(runs).get(rid).metrics()
    assert {"unknown_rate", "unknown_rate_good", "unknown_rate_defect", "gate"} <= set(m)
    check = m["drift_check"]                                  # every training ends with the drift check
    assert [r["condition"] for r in check["rows"]] == [c for c, _ in drift.CONDITIONS]
    assert check["held"] == sum(r["held"] for r in check["rows"]) and check["seed"] == 1000
    assert check["items"] == "generated connector (26 x 36 px, 2 x 6 pins), seed 1000"   # the file records it
    nap = m["not_a_part_check"]                               # and with the not-a-part check
    assert nap["n"] == 20 * len(notapart.KINDS) and nap["held_out_n"] == 20 * len(notapart.HELD_OUT_KINDS)
    assert nap["good"] == nap["kinds"]["all"]["GOOD"] and nap["left_out"] == []
    assert 0 <= m["score_only_good_defect_accuracy"] <= 1 and m["gate"]["components"] >= 1


@pytest.mark.slow
@pytest.mark.parametrize("case, words", [("square", "30 x 30 px"), ("text", "is not an image"),
                                         ("missing", "does not exist"), ("norun", "There is no run")])
def test_inspect_bad_input_exits_2_with_a_message(trained, tiny_dataset, tmp_path, case, words, capsys):
    """In-process (the refusal comes before any model is loaded); the real process is tested above."""
    from snw_core.__main__ import main
    runs, rid = trained
    ok = write_pngs(tiny_dataset.images[:1], tmp_path, ["ok.png"])[0]
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "square.png")
    (tmp_path / "text.png").write_text("hello")
    args = {"square": (rid, ok, tmp_path / "square.png"), "text": (rid, ok, tmp_path / "text.png"),
            "missing": (rid, tmp_path / "missing.png"), "norun": ("no-such-run", ok)}[case]
    assert main(["inspect", *map(str, args), "--runs-dir", str(runs)]) == 2
    out = capsys.readouterr()
    assert out.out == "" and words in out.err.replace("\n", " ")


def test_inspect_a_run_without_results_exits_2(runs_dir, tmp_path, capsys):
    from snw_core.__main__ import main
    from snw_core.runs import RunStore
    run = RunStore(runs_dir).create(run_id="halfway")
    run.write_config({"run_id": "halfway", "settings": {}, "data": {"source": "default", "good_label": "0"}})
    run.write_status("stopped")
    Image.fromarray(gray()).save(tmp_path / "a.png")
    assert main(["inspect", "halfway", str(tmp_path / "a.png")]) == 2
    out = capsys.readouterr()
    assert "no results yet" in out.err.replace("\n", " ") and out.out == ""


def test_judge_embeddings_searches_each_reference_set_once_with_the_same_answers():
    """The score, the nearest references and the pin vote come from one neighbour search per reference set: they
    equal the separate functions (knn_scores, guess_labels, the nearest row by distance)."""
    from snw_core.metrics import guess_labels, knn_scores
    rng = np.random.default_rng(3)
    good, defect = rng.normal(0, 1, (30, 8)), rng.normal(2, 1, (20, 8))
    labels = np.array([str(i % 4 + 1) for i in range(20)])
    q = rng.normal(1, 1.5, (9, 8))
    j = Judge(None, good, np.arange(30) + 100, defect, labels, np.arange(20) + 500, threshold=3.0, k=3, pin_k=5)
    out = j.judge_embeddings(q)
    np.testing.assert_allclose(out["score"], knn_scores(good, q, k=3), rtol=1e-12)
    pins, conf = guess_labels(defect, labels, q, k=5)
    assert out["pin"].tolist() == pins.tolist()
    np.testing.assert_allclose(out["pin_confidence"], conf, rtol=1e-12)
    dg = np.linalg.norm(q[:, None] - good[None], axis=2)
    dd = np.linalg.norm(q[:, None] - defect[None], axis=2)
    assert out["nearest_good"].tolist() == (dg.argmin(1) + 100).tolist()
    np.testing.assert_allclose(out["nearest_good_distance"], dg.min(1), rtol=1e-9)
    assert out["nearest_defect"].tolist() == (dd.argmin(1) + 500).tolist()
    assert out["nearest_defect_label"].tolist() == labels[dd.argmin(1)].tolist()
    np.testing.assert_allclose(out["nearest_defect_distance"], dd.min(1), rtol=1e-9)


@pytest.mark.slow
def test_inspect_warns_when_a_batch_is_noisier_than_the_training_images(trained, tiny_dataset, tmp_path, capsys,
                                                                         monkeypatch):
    from snw_core.__main__ import main
    from snw_core.drift import apply
    from snw_core.runs import RunStore
    runs, rid = trained
    prof = RunStore(runs).get(rid).metrics()["acquisition"]            # training records how its images were taken
    assert prof["n"] > 0 and set(prof["measures"]) == {"brightness", "contrast", "sharpness", "noise"}
    monkeypatch.setenv("SNW_RUNS_DIR", str(runs))
    clean = write_pngs(tiny_dataset.images[:6], tmp_path / "clean", [f"c{i}.png" for i in range(6)])
    assert main(["inspect", rid, *clean]) == 0
    assert "Camera check" not in capsys.readouterr().err
    noisy = write_pngs(apply(tiny_dataset.images[:6], "noise", 12.0, seed=3), tmp_path / "noisy",
                       [f"n{i}.png" for i in range(6)])
    assert main(["inspect", rid, *noisy]) == 0
    captured = capsys.readouterr()
    assert "WARNING: Camera check: the images are noisier than the training images" in captured.err
    assert len(captured.out.splitlines()) == 6                                          # every image still judged


@pytest.mark.slow
def test_evaluate_on_another_data_set_gives_the_verdicts_inspect_gives(trained, tmp_path, capsys):
    """`evaluate RUN_ID --data OTHER` on a run without registration: every item judged as `inspect` judges it, the
    rates counted from those verdicts; a set of another image size is refused with a message (exit 2)."""
    from snw_core import synthetic
    from snw_core.__main__ import main
    from snw_core.data import load
    from snw_core.runs import RunStore
    runs, rid = trained
    other = synthetic.write_parquet(tmp_path / "other.parquet", n=65, seed=3)
    assert main(["evaluate", rid, "--data", str(other), "--runs-dir", str(runs)]) == 0
    got = json.loads(capsys.readouterr().out)
    ds = load(str(other))
    out = Judge.from_run(RunStore(runs).get(rid)).judge(ds.images)
    good, passed = ds.labels == "0", out["verdict"] == "GOOD"
    assert got["evaluated_on"] == "all items (other data set)" and got["n"] == 65
    assert got["overkill_rate"] == pytest.approx(1 - passed[good].mean())
    assert got["escape_rate"] == pytest.approx(passed[~good].mean())
    assert got["good_defect_accuracy"] == pytest.approx(np.mean(passed == good))
    assert got["per_label"]["0"] == pytest.approx(passed[good].mean())
    bigger = synthetic.write_parquet(tmp_path / "bigger.parquet", n=13, seed=3,
                                     spec=synthetic.ConnectorSpec(height=52, width=72))
    assert main(["evaluate", rid, "--data", str(bigger), "--runs-dir", str(runs)]) == 2
    assert "52" in capsys.readouterr().err
