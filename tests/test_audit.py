"""The data audit: each kind of flag, the CLI contract (row = index in data.load order), corrections files.

Fast tests build a finished-looking run by hand (config.json + embeddings.npz from made-up embeddings that put
each label in its own cluster), so no model is trained; the slow ones train on the tiny data set.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from snw_core import data
from snw_core.__main__ import main
from snw_core.audit import AuditError, AuditSettings, audit_arrays, audit_run, cached_audit
from snw_core.corrections import (CorrectionsError, apply_corrections, read_corrections, run_rows,
                                  write_corrections)
from snw_core.embed import save_embeddings
from snw_core.plant import plant, read_truth
from snw_core.runs import RunStore
from snw_core.splits import stratified_split

ROOT = Path(__file__).resolve().parent.parent


def cluster_embeddings(true_labels, seed=0, spread=0.05):
    """One tight cluster per label (label i at 3 * e_i): where a perfect twin would put every item."""
    names = sorted(set(true_labels.tolist()))
    rng = np.random.default_rng(seed)
    e = np.zeros((true_labels.size, len(names)), np.float32)
    e[np.arange(true_labels.size), np.searchsorted(names, true_labels)] = 3.0
    return e + rng.normal(0, spread, e.shape).astype(np.float32)


def fake_run(store_dir, source, ds, emb, labels=None, split=None, extra_config=None):
    """A finished-looking run of ``ds``: config.json and embeddings.npz (and nothing a model would write)."""
    store = RunStore(store_dir)
    run = store.create(name="fake")
    labels = ds.labels if labels is None else labels
    split = stratified_split(labels, (0.6, 0.2, 0.2), seed=0) if split is None else split
    run.write_config({"run_id": run.id, "settings": {"seed": 0},
                      "data": {"source": str(source), "content_hash": ds.content_hash, "good_label": "0", "n": ds.n},
                      **(extra_config or {})})
    run.write_status("done")
    save_embeddings(run.file("embeddings.npz"), emb, labels, split, np.zeros(len(labels)))
    return run


@pytest.fixture(scope="module")
def planted_parquet(tmp_path_factory):
    """The tiny generator set (130 items) with 4 wrong labels, 2 duplicate pairs and 1 outlier."""
    from snw_core import synthetic
    from snw_core.plant import write_planted
    images, labels, dirnames = synthetic.generate(130, seed=0)
    got = plant(images, labels, dirnames, label_noise=0.03, duplicates=2, outliers=1, seed=3)
    out, _ = write_planted(tmp_path_factory.mktemp("planted") / "planted.parquet", got)
    return out


def _truth(path):
    return read_truth(Path(str(path) + ".truth.csv"))


# ------------------------------------------------------------------ plant

def test_plant_changes_exactly_the_recorded_rows_and_is_repeatable():
    from snw_core import synthetic
    images, labels, dirnames = synthetic.generate(130, seed=0)
    a = plant(images, labels, dirnames, label_noise=0.05, duplicates=2, outliers=2, seed=7)
    b = plant(images, labels, dirnames, label_noise=0.05, duplicates=2, outliers=2, seed=7)
    assert a.truth == b.truth and np.array_equal(a.images, b.images)
    wrong = [t for t in a.truth if t["kind"] == "label"]
    assert len(wrong) == round(0.05 * 130)
    assert sorted(np.flatnonzero(a.labels != labels).tolist()) == sorted(t["row"] for t in wrong)
    assert all(labels[t["row"]] == t["true_label"] != t["given_label"] for t in wrong)
    for t in (t for t in a.truth if t["kind"] == "duplicate"):
        diff = np.abs(a.images[t["row"]].astype(int) - a.images[t["of_row"]].astype(int))
        assert diff.max() <= 1 and a.labels[t["row"]] == a.labels[t["of_row"]]
    with pytest.raises(ValueError, match="label_noise"):
        plant(images, labels, dirnames, label_noise=0.9)


def test_data_synth_writes_the_truth_beside_the_file(tmp_path):
    out = tmp_path / "noisy.parquet"
    assert main(["data", "synth", "--out", str(out), "--n", "130", "--label-noise", "0.05", "--duplicates", "1"]) == 0
    truth = _truth(out)
    ds = data.load(str(out))
    assert len([t for t in truth if t["kind"] == "label"]) == 6
    assert all(ds.labels[t["row"]] == t["given_label"] for t in truth)


# ------------------------------------------------------------------ the audit on arrays

def test_each_kind_is_found_on_planted_faults(planted_parquet):
    ds = data.load(str(planted_parquet))
    truth = _truth(planted_parquet)
    true = ds.labels.copy()
    for t in truth:
        true[t["row"]] = t["true_label"]
    split = stratified_split(ds.labels, (0.6, 0.2, 0.2), seed=0)
    res = audit_arrays(cluster_embeddings(true), ds.labels, split, ds.images)
    flags = res["flags"]
    got = {k: {f["row"] for f in flags if f["kind"] == k} for k in ("label", "duplicate", "leak", "outlier")}
    wrong = {t["row"]: t["true_label"] for t in truth if t["kind"] == "label"}
    assert got["label"] == set(wrong)
    assert all(f["suggested_label"] == wrong[f["row"]] for f in flags if f["kind"] == "label")
    dup_rows = {r for t in truth if t["kind"] == "duplicate" for r in (t["row"], t["of_row"])}
    assert got["duplicate"] == dup_rows
    expected_leaks = {r for t in truth if t["kind"] == "duplicate" for r, o in ((t["row"], t["of_row"]), (t["of_row"], t["row"]))
                      if split[r] != "train" and split[o] == "train"}
    assert expected_leaks and got["leak"] == expected_leaks
    assert got["outlier"] == {t["row"] for t in truth if t["kind"] == "outlier"}
    assert res["summary"]["counts"] == {k: len([f for f in flags if f["kind"] == k]) for k in got}
    assert [f["score"] for f in flags] == sorted((f["score"] for f in flags), reverse=True)


def test_large_sets_compare_pixels_with_a_sample_and_still_find_every_planted_fault(planted_parquet, monkeypatch):
    import snw_core.audit as A
    ds = data.load(str(planted_parquet))
    truth = _truth(planted_parquet)
    true = ds.labels.copy()
    for t in truth:
        true[t["row"]] = t["true_label"]
    split = stratified_split(ds.labels, (0.6, 0.2, 0.2), seed=0)
    full = audit_arrays(cluster_embeddings(true), ds.labels, split, ds.images)
    monkeypatch.setattr(A, "MAX_PIXEL_REFS", 90)            # 130 items against a sample of 90
    sampled = audit_arrays(cluster_embeddings(true), ds.labels, split, ds.images)
    kinds = lambda r: {(f["row"], f["kind"]) for f in r["flags"]}      # noqa: E731
    assert kinds(sampled) == kinds(full)
    assert sampled["summary"]["median_nn_rms"] >= full["summary"]["median_nn_rms"]


def test_clean_data_gets_no_duplicates_leaks_or_outliers(tiny_dataset):
    ds = tiny_dataset
    split = stratified_split(ds.labels, (0.6, 0.2, 0.2), seed=0)
    res = audit_arrays(cluster_embeddings(ds.labels), ds.labels, split, ds.images)
    assert res["flags"] == []


def test_few_defects_among_many_goods_are_not_outliers_but_a_wrong_part_and_an_empty_fixture_are():
    """A line's data holds few defects: each differs from its nearest pictures (goods) at its pin, and untrimmed
    the rarest were far from everything (flagged as a wrong part, and left out of the gate's limits). The outlier
    statistic leaves out each comparison's most different pixels; what is not the part differs everywhere."""
    from snw_core import audit as A
    from snw_core import notapart, synthetic
    images, labels, _ = synthetic.generate(1200, seed=5)
    keep = np.concatenate([np.flatnonzero(labels == "0")]
                          + [np.flatnonzero(labels == str(k))[:3] for k in range(1, 13)])    # 400 goods, 36 defects
    imgs, labs = images[keep].copy(), labels[keep]
    z = A.pixel_outlier_z(imgs)
    assert (z < A.OUTLIER_Z).all() and z[labs != "0"].max() < 0.5 * A.OUTLIER_Z
    junk = notapart.not_a_part(imgs.shape[1:], imgs[labs == "0"], n_per_kind=1, seed=2, kinds=["other_part"])[0]
    imgs[[10, 20]] = junk[0], 40 + np.random.default_rng(0).integers(0, 3, imgs.shape[1:])   # a lamp that is off
    z = A.pixel_outlier_z(imgs)
    assert np.flatnonzero(z >= A.OUTLIER_Z).tolist() == [10, 20]


def test_a_leak_needs_a_train_copy_and_a_duplicate_cannot_vouch_for_its_twins_label(tiny_dataset):
    ds = tiny_dataset
    images, labels = ds.images.copy(), ds.labels.copy()
    goods = np.flatnonzero(labels == "0")
    a, b, c = goods[:3]
    images[b] = images[a]                       # a and b: the same picture, both filed wrongly as pin 5
    labels[a] = labels[b] = "5"
    images[c] = images[goods[3]]                # c and goods[3]: a duplicate pair, both in test
    split = np.array(["train"] * labels.size, dtype="<U5")
    split[[b, c, goods[3]]] = "test"
    true = ds.labels                            # the embedding follows the picture, not the label
    res = audit_arrays(cluster_embeddings(true), labels, split, images, settings=AuditSettings(k=3))
    label_rows = {f["row"]: f["suggested_label"] for f in res["flags"] if f["kind"] == "label"}
    assert label_rows.get(a) == "0" and label_rows.get(b) == "0"
    assert {f["row"] for f in res["flags"] if f["kind"] == "leak"} == {b}
    assert {f["row"] for f in res["flags"] if f["kind"] == "duplicate"} == {a, b, c, goods[3]}


@pytest.mark.parametrize("kw, match", [({"k": 0}, "k must"), ({"min_share": 0}, "min_share"),
                                       ({"dup_ratio": 1.5}, "dup_ratio"), ({"outlier_z": -1}, "outlier_z"),
                                       ({"clean_share": 0}, "clean_share"), ({"clean_z": 5, "defect_z": 4}, "clean_z")])
def test_bad_settings_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        AuditSettings(**kw)


# ------------------------------------------------------------------ runs and the CLI contract

def test_cli_json_rows_index_the_load_order_and_the_result_is_cached(planted_parquet, tmp_path, capsys):
    ds = data.load(str(planted_parquet))
    true = ds.labels.copy()
    for t in _truth(planted_parquet):
        true[t["row"]] = t["true_label"]
    run = fake_run(tmp_path / "runs", planted_parquet, ds, cluster_embeddings(true))
    out = tmp_path / "fix.csv"
    assert main(["audit", run.id, "--runs-dir", str(tmp_path / "runs"), "--json", "--corrections-out", str(out)]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(x) for x in captured.out.splitlines()]
    assert "label evidence: neighbours and pixels" in captured.err
    assert lines and {x["kind"] for x in lines} == {"label", "duplicate", "leak", "outlier"}
    for x in lines:
        assert isinstance(x["row"], int) and isinstance(x["score"], float)
        assert x["label"] == ds.labels[x["row"]]
        assert x["suggested_label"] is None or isinstance(x["suggested_label"], str)
    assert cached_audit(run) is not None
    meta, entries = read_corrections(out)
    assert meta["content_hash"] == ds.content_hash
    assert {e["row"] for e in entries} == {x["row"] for x in lines if x["kind"] == "label"}
    assert all(e["given_label"] == ds.labels[e["row"]] for e in entries)


def test_cli_refuses_a_run_whose_data_changed_since(planted_parquet, tiny_parquet, tmp_path, capsys):
    ds = data.load(str(planted_parquet))
    other = data.load(str(tiny_parquet))               # same size, other content
    run = fake_run(tmp_path / "runs", tiny_parquet, ds, cluster_embeddings(ds.labels))
    assert other.n == ds.n and other.content_hash != ds.content_hash
    assert main(["audit", run.id, "--runs-dir", str(tmp_path / "runs"), "--json"]) == 2
    assert "changed since" in capsys.readouterr().err
    assert not run.file("audit.json").exists()


def test_cli_unknown_run_or_run_without_embeddings_exits_2(tmp_path, capsys, tiny_parquet):
    runs = tmp_path / "runs"
    assert main(["audit", "nope", "--runs-dir", str(runs)]) == 2
    run = RunStore(runs).create(name="empty")
    run.write_config({"data": {"source": str(tiny_parquet)}})
    assert main(["audit", run.id, "--runs-dir", str(runs), "--json"]) == 2
    err = capsys.readouterr().err
    assert "no embeddings" in err and "Traceback" not in err
    assert not run.file("audit.json").exists()


# ------------------------------------------------------------------ corrections

def test_corrections_round_trip(tiny_dataset, tmp_path):
    ds = tiny_dataset
    good, pin = int(np.flatnonzero(ds.labels == "0")[0]), int(np.flatnonzero(ds.labels == "3")[0])
    path = write_corrections(tmp_path / "c.csv", [
        {"row": pin, "given_label": "3", "new_label": "exclude", "note": "empty fixture"},
        {"row": good, "given_label": "0", "new_label": "7", "note": "a note, with a comma"},
        {"row": 5, "given_label": ds.labels[5], "new_label": ds.labels[5], "note": "kept"}], ds.source, ds.content_hash)
    meta, entries = read_corrections(path)
    assert meta == {"content_hash": ds.content_hash}
    import csv
    with open(path, newline="") as f:                  # plain CSV: any reader gets the header and the rows
        plain = list(csv.DictReader(f))
    assert [r["row"] for r in plain] == [str(r) for r in sorted([pin, good, 5])] and plain[0]["content_hash"] == ds.content_hash
    assert [e["row"] for e in entries] == sorted([pin, good, 5]) and entries[[e["row"] for e in entries].index(good)]["note"] == "a note, with a comma"
    new, rec = apply_corrections(ds, path)
    assert new.n == ds.n - 1 and rec["excluded_rows"] == [pin] and rec["relabels"] == {str(good): "7"}
    rows = run_rows({"corrections": rec}, ds)
    assert pin not in rows and rows.size == new.n
    assert new.labels[np.searchsorted(rows, good)] == "7"
    assert np.array_equal(new.images, ds.images[rows]) and new.content_hash != ds.content_hash
    assert np.array_equal(ds.labels, data.load(ds.source).labels)          # the source is untouched


@pytest.mark.parametrize("body, match", [
    ("row,given_label,new_label\n99999,0,3\n", "do not exist"),
    ("row,given_label,new_label\n{r0},0,banana\n", "not labels of this data set"),
    ("row,given_label,new_label\n{r0},5,3\n", "given label differs"),
    ("row,given_label,new_label\n{r0},0,3\n{r0},0,4\n", "more than once"),
    ("row,label\n1,0\n", "lacks the column"),
    ("row,given_label,new_label\nx,0,3\n", "not whole numbers"),
    ("# snw corrections; source=other.parquet; content_hash=abc123\nrow,given_label,new_label\n{r0},0,3\n",
     "another data set"),
    ("row,given_label,new_label,note,content_hash\n{r0},0,3,,abc123\n", "another data set"),
])
def test_bad_corrections_files_are_refused(tiny_dataset, tmp_path, body, match):
    r0 = int(np.flatnonzero(tiny_dataset.labels == "0")[0])
    p = tmp_path / "bad.csv"
    p.write_text(body.format(r0=r0))
    with pytest.raises(CorrectionsError, match=match):
        apply_corrections(tiny_dataset, p)


def test_a_hand_written_file_with_other_column_names_is_read(tiny_dataset, tmp_path):
    r0 = int(np.flatnonzero(tiny_dataset.labels == "0")[0])
    p = tmp_path / "by_hand.csv"
    p.write_text(f"row,label,new\n{r0},0,4\n")
    new, rec = apply_corrections(tiny_dataset, p)
    assert rec["relabels"] == {str(r0): "4"} and new.labels[r0] == "4"


def test_train_with_a_bad_corrections_file_exits_2_and_writes_nothing(tiny_parquet, tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("row,given_label,new_label\n99999,0,3\n")
    runs = tmp_path / "runs"
    assert main(["train", "--data", str(tiny_parquet), "--corrections", str(p), "--runs-dir", str(runs), "--epochs", "1"]) == 2
    assert "do not exist" in capsys.readouterr().err
    assert not runs.exists() or not any(runs.iterdir())
    assert main(["train", "--data", str(tiny_parquet), "--corrections", str(tmp_path / "missing.csv"),
                 "--runs-dir", str(runs)]) == 2
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.slow
def test_train_with_corrections_records_them_and_the_audit_keeps_source_rows(planted_parquet, tmp_path):
    ds = data.load(str(planted_parquet))
    truth = _truth(planted_parquet)
    wrong = [t for t in truth if t["kind"] == "label"]
    outlier = [t for t in truth if t["kind"] == "outlier"][0]["row"]
    corr = write_corrections(tmp_path / "c.csv", [{"row": t["row"], "given_label": t["given_label"],
                                                   "new_label": t["true_label"], "note": ""} for t in wrong]
                             + [{"row": outlier, "given_label": ds.labels[outlier], "new_label": "exclude", "note": ""}],
                             ds.source, ds.content_hash)
    runs = tmp_path / "runs"
    r = subprocess.run([sys.executable, "-m", "snw_core", "train", "--data", str(planted_parquet), "--corrections",
                        str(corr), "--preset", "seed", "--epochs", "1", "--projection", "none", "--quiet",
                        "--runs-dir", str(runs)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    run = RunStore(runs).get(r.stdout.strip().splitlines()[-1])
    rec = run.config()["corrections"]
    assert rec["file"] == str(corr) and len(rec["sha256"]) == 64 and rec["source_content_hash"] == ds.content_hash
    assert rec["excluded_rows"] == [outlier] and rec["relabelled"] == len(wrong)
    z = np.load(run.file("embeddings.npz"))
    assert z["labels"].size == ds.n - 1
    res = audit_run(run)
    rows = {f["row"] for f in res["flags"]}
    assert outlier not in rows
    fixed = {t["row"]: t["true_label"] for t in wrong}
    for f in res["flags"]:                      # labels are the corrected ones, rows the source's
        assert f["label"] == fixed.get(f["row"], ds.labels[f["row"]])


def test_the_dashboard_trainer_gets_the_file_and_checks_it_before_starting(tiny_parquet, tmp_path):
    from snw_core import launch
    from snw_core.corrections import files_for
    cmd = launch.train_command(str(tiny_parquet), "seed", {"epochs": 1}, corrections="c.csv")
    assert cmd[cmd.index("--corrections") + 1] == "c.csv"
    bad = tmp_path / "bad.csv"
    bad.write_text("row,given_label,new_label\n99999,0,3\n")
    runs = tmp_path / "runs"
    with pytest.raises(CorrectionsError):
        launch.start_training(str(tiny_parquet), "seed", {"epochs": 1}, runs_dir=runs, corrections=str(bad))
    assert not runs.exists() or not any(p for p in runs.iterdir() if not p.name.startswith("."))
    ds = data.load(str(tiny_parquet))
    entry = [{"row": 0, "given_label": ds.labels[0], "new_label": "exclude", "note": ""}]
    mine = write_corrections(runs / ".corrections" / "mine.csv", entry, ds.source, ds.content_hash)
    write_corrections(runs / ".corrections" / "other.csv", entry, "other", "0" * 64)
    assert files_for(ds, runs) == [mine]


def test_the_memorisation_note_appears_only_when_train_agrees_much_more_than_held_out():
    from snw_core.audit import _memorisation_note
    assert _memorisation_note({"train": 0.0, "held_out": 0.03}, 2160, 1440) is not None     # 43 held-out disagree
    assert _memorisation_note({"train": 0.03, "held_out": 0.03}, 2160, 1440) is None
    assert _memorisation_note({"train": 0.0, "held_out": 0.004}, 2160, 1440) is None        # 5.8: too few to tell
    assert _memorisation_note({"train": None, "held_out": 0.03}, 0, 1440) is None


# ------------------------------------------------------------------ pixel evidence for labels

@pytest.fixture(scope="module")
def six_hundred():
    """600 generator items (about 200 goods, 33 per pin), their split and the defect kind of each."""
    from snw_core import synthetic
    images, labels, _ = synthetic.generate(600, seed=0)
    kind = synthetic.sample_params(600, seed=0)["kind"]
    return images, labels, stratified_split(labels, (0.6, 0.2, 0.2), seed=0), kind


def _missing_pin(labels, split, kind, label, nth=0):
    """A train item of ``label`` whose pin is missing: a clear defect in pixels."""
    return int(np.flatnonzero((labels == label) & (split == "train") & (kind == 3))[nth])


def _label_flags(res):
    return {f["row"]: f for f in res["flags"] if f["kind"] == "label"}


def test_a_clear_defect_filed_as_good_is_found_from_its_picture_even_when_the_twin_learnt_the_wrong_label(six_hundred):
    images, true, split, kind = six_hundred
    images, labels = images.copy(), true.copy()
    i = _missing_pin(true, split, kind, "4")
    j = int(np.flatnonzero((true == "0") & (split == "train"))[0])
    images[j] = images[i]                       # a copy of it, also filed as good: it must not serve as i's reference
    labels[[i, j]] = "0"
    emb = cluster_embeddings(labels)            # a twin that memorised every label: the neighbours agree with them
    res = audit_arrays(emb, labels, split, images)
    got = _label_flags(res)
    assert i in got and got[i]["suggested_label"] == "4" and j in got and got[j]["suggested_label"] == "4"
    assert got[i]["pixels"]["z"] >= AuditSettings().defect_z and "where label '4' defects are" in got[i]["reason"]
    assert res["summary"]["label_evidence"] == "neighbours and pixels" and "4" in res["summary"]["pixels"]["places"]
    assert set(got) == {i, j}                   # no good of the clean rest is taken for a defect
    assert _label_flags(audit_arrays(emb, labels, split, images, settings=AuditSettings(pixels=False))) == {}


def test_a_clear_defect_filed_as_another_pin_is_found_from_its_picture(six_hundred):
    images, true, split, kind = six_hundred
    labels = true.copy()
    i = _missing_pin(true, split, kind, "2")
    labels[i] = "11"
    got = _label_flags(audit_arrays(cluster_embeddings(labels), labels, split, images))
    assert set(got) == {i} and got[i]["suggested_label"] == "2" and got[i]["pixels"]["own_place_z"] < 2.5


def test_a_defect_at_its_own_labels_place_keeps_its_label_when_the_neighbours_say_good(six_hundred):
    images, true, split, kind = six_hundred
    i = _missing_pin(true, split, kind, "9")
    seen = true.copy()
    seen[i] = "0"                               # a twin that cannot tell this defect from the goods
    emb = cluster_embeddings(seen)
    assert _label_flags(audit_arrays(emb, true, split, images, settings=AuditSettings(pixels=False)))[i]["suggested_label"] == "0"
    res = audit_arrays(emb, true, split, images)
    assert i not in _label_flags(res) and res["summary"]["pixels"]["vetoed"] == 1


def test_a_clear_local_defect_is_not_called_good_even_away_from_every_labels_place(six_hundred):
    """A label with few items has a narrow place (a smudge lower on the pin peaks outside it): an item filed as a
    defect whose picture shows a clear local difference anywhere is no good part, whatever its neighbours say;
    where that difference sits at another label's place, that label is suggested."""
    images, true, split, kind = six_hundred
    images, labels = images.copy(), true.copy()
    i = int(np.flatnonzero((true == "0") & (split == "train"))[3])
    images[i, 12:15, 0:3] = 0                    # a dark blot at the body's left end, between the pin rows
    labels[i] = "5"                              # filed as pin 5; the twin puts it among the goods
    seen = labels.copy()
    seen[i] = "0"
    emb = cluster_embeddings(seen)
    assert _label_flags(audit_arrays(emb, labels, split, images, settings=AuditSettings(pixels=False)))[i][
        "suggested_label"] == "0"
    res = audit_arrays(emb, labels, split, images)
    assert i not in _label_flags(res) and res["summary"]["pixels"]["vetoed"] >= 1
    j = _missing_pin(true, split, kind, "2")     # a clear pin-2 defect filed as pin 9, among the goods for the twin
    labels, seen = true.copy(), true.copy()
    labels[j], seen[j] = "9", "0"
    got = _label_flags(audit_arrays(cluster_embeddings(seen), labels, split, six_hundred[0]))
    assert set(got) == {j} and got[j]["suggested_label"] == "2"


def test_a_clean_picture_filed_as_a_defect_needs_fewer_good_neighbours(six_hundred):
    images, true, split, kind = six_hundred
    labels = true.copy()
    i = int(np.flatnonzero((true == "0") & (split == "val"))[0])
    labels[i] = "7"                             # a good filed as pin 7
    emb = cluster_embeddings(true)
    pins = np.flatnonzero((true == "7") & (kind != 3))[:3]
    emb[pins] = emb[i] + 1e-4 * np.arange(1, 4)[:, None]   # 3 of its 10 nearest items are pin-7 items: 70 % good
    assert i not in _label_flags(audit_arrays(emb, labels, split, images, settings=AuditSettings(pixels=False)))
    got = _label_flags(audit_arrays(emb, labels, split, images))
    assert got[i]["suggested_label"] == "0" and got[i]["score"] == pytest.approx(0.7)
    assert "no more than good parts do" in got[i]["reason"]


def test_without_a_good_label_the_audit_says_it_uses_neighbours_only(six_hundred):
    images, true, split, _ = six_hundred
    labels = true.copy()
    labels[:5] = np.roll(labels[:5], 1)
    emb = cluster_embeddings(true)
    res = audit_arrays(emb, labels, split, images, good_label="none-such")
    assert res["summary"]["label_evidence"].startswith("neighbours only") and res["summary"]["pixels"] is None
    plain = audit_arrays(emb, labels, split, images, settings=AuditSettings(pixels=False))
    assert [(f["row"], f["suggested_label"]) for f in res["flags"]] == [(f["row"], f["suggested_label"]) for f in plain["flags"]]
