"""The command line contract: exit codes, the run id on the last stdout line, the run folder's files."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snw_core.runs import RunStore

ROOT = Path(__file__).resolve().parent.parent
RUN_FILES = ["config.json", "status.json", "progress.jsonl", "history.csv", "metrics.json", "embedder.keras",
             "embeddings.npz", "projection.parquet"]
METRIC_KEYS = ["pair_accuracy", "good_defect_accuracy", "escape_rate", "overkill_rate", "auroc", "threshold",
               "per_label", "pin_accuracy", "n_train", "n_val", "n_test", "train_seconds"]


def cli(*args, runs_dir=None, timeout=600, env=None):
    e = dict(os.environ, **(env or {}))
    if runs_dir:
        e["SNW_RUNS_DIR"] = str(runs_dir)
    return subprocess.run([sys.executable, "-m", "snw_core", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=e)


def test_data_synth_and_check(tmp_path):
    out = tmp_path / "x.parquet"
    r = cli("data", "synth", "--out", out, "--n", 130, "--seed", 1)
    assert r.returncode == 0, r.stderr
    r = cli("data", "check", out)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["n"] == 130 and summary["image_shape"] == [26, 36] and summary["n_good"] == 43


def test_data_synth_other_geometries(tmp_path):
    out = tmp_path / "long.parquet"
    r = cli("data", "synth", "--out", out, "--n", 84, "--height", 32, "--width", 80, "--pin-cols", 10)
    assert r.returncode == 0, r.stderr
    summary = json.loads(cli("data", "check", out).stdout)
    assert summary["image_shape"] == [32, 80] and len(summary["labels"]) == 21     # good + 2 x 10 pins
    r = cli("data", "synth", "--out", tmp_path / "alt.parquet", "--n", 20, "--geometry", "alt")
    assert r.returncode == 2 and "at least 25" in r.stderr and not (tmp_path / "alt.parquet").exists()
    r = cli("data", "synth", "--out", tmp_path / "bad.parquet", "--width", 12, "--pin-cols", 10)
    assert r.returncode == 2 and "Cannot draw" in r.stderr and "Traceback" not in r.stderr
    r = cli("data", "synth", "--out", tmp_path / "bad.parquet", "--geometry", "round")
    assert r.returncode == 2 and "invalid choice" in r.stderr


@pytest.mark.parametrize("args, pattern", [
    (["data", "check", "/no/such.parquet"], "was not found"),
    (["train", "--data", "/no/such.parquet", "--epochs", "1"], "was not found"),
    (["train", "--epochs", "0"], "epochs = 0 is out of range"),
    (["train", "--margin", "-1"], "margin = -1.0 is out of range"),
    (["train", "--split", "0.9,0.1,0.0"], "fractions"),
    (["train", "--preset", "nope"], "Unknown preset"),
    (["stop", "../etc"], "not a valid run id"),
    (["evaluate", "no-such-run"], "There is no run"),
])
def test_bad_input_exits_2_with_one_paragraph(args, pattern, runs_dir):
    r = cli(*args, runs_dir=runs_dir)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert pattern in r.stderr.replace("\n", " ")
    assert "Traceback" not in r.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir()), "bad input wrote to the run store"


def test_batch_larger_than_the_data_is_refused(tiny_parquet, runs_dir):
    r = cli("train", "--data", tiny_parquet, "--preset", "default", "--batch-size", 5000, runs_dir=runs_dir)
    assert r.returncode == 2 and "batch_size = 5000 is larger" in r.stderr.replace("\n", " ")


def test_hub_without_network_exits_2_within_10_s(runs_dir):
    t = time.time()
    r = cli("train", "--data", "hub:YxBxRyXJx/SNWimages_train_1110", "--preset", "seed", "--epochs", "1",
            runs_dir=runs_dir, env={"HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0"})
    assert time.time() - t < 10
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "YxBxRyXJx/SNWimages_train_1110" in r.stderr and "cannot be reached" in r.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


@pytest.mark.slow
def test_train_writes_every_run_file_and_metric(tiny_parquet, runs_dir):
    r = cli("train", "--data", tiny_parquet, "--preset", "seed", "--epochs", 1, runs_dir=runs_dir)
    assert r.returncode == 0, r.stderr
    run_id = r.stdout.strip().splitlines()[-1]
    run = RunStore(runs_dir).get(run_id)
    for f in RUN_FILES:
        assert run.file(f).exists(), f
    m = run.metrics()
    for k in METRIC_KEYS:
        assert k in m, k
    assert 0 <= m["good_defect_accuracy"] <= 1 and m["n_test"] > 0
    assert set(m["per_label"]) == {"0", *map(str, range(1, 13))}
    assert run.state() == "done"
    cfg = run.config()
    assert cfg["settings"]["batch_size"] == 32 and cfg["data"]["content_hash"] and cfg["versions"]["keras"]
    assert m["surface_appearance"]["used"] is False and m["gate"]["appearance_check"] is True   # not a surface
    assert len(run.history()) == 1

    ev = cli("evaluate", run_id, runs_dir=runs_dir)
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["good_defect_accuracy"] == pytest.approx(m["good_defect_accuracy"], abs=1e-6)
    ls = cli("runs", runs_dir=runs_dir)
    assert run_id in ls.stdout and "done" in ls.stdout


def _wait_for_batches(run, timeout=120):
    t = time.time()
    while time.time() - t < timeout:
        if any(e.get("kind") == "batch" for e in run.progress()):
            return
        time.sleep(0.2)
    raise AssertionError("training never reported a batch")


@pytest.mark.slow
def test_stop_ends_the_run_within_one_batch_with_its_model(tiny_parquet, runs_dir):
    proc = subprocess.Popen([sys.executable, "-m", "snw_core", "train", "--data", str(tiny_parquet), "--preset",
                             "seed", "--epochs", "200", "--run-id", "to-stop", "--projection", "pca"],
                            cwd=ROOT, env=dict(os.environ, SNW_RUNS_DIR=str(runs_dir)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    run = RunStore(runs_dir).get("to-stop") if (runs_dir / "to-stop").exists() else None
    t = time.time()
    while run is None and time.time() - t < 60:
        time.sleep(0.2)
        run = RunStore(runs_dir).get("to-stop") if (runs_dir / "to-stop").exists() else None
    _wait_for_batches(run)
    r = cli("stop", "to-stop", runs_dir=runs_dir)
    assert r.returncode == 0, r.stderr
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert out.strip().splitlines()[-1] == "to-stop"
    assert run.state() == "stopped" and run.embedder_path.exists() and run.metrics()["state"] == "stopped"
    assert len(run.history()) < 200
    again = cli("stop", "to-stop", runs_dir=runs_dir)               # a second stop is refused cleanly
    assert again.returncode == 2 and "not running" in again.stderr


@pytest.mark.slow
def test_sigkill_leaves_an_interrupted_run_and_no_half_files(tiny_parquet, runs_dir):
    proc = subprocess.Popen([sys.executable, "-m", "snw_core", "train", "--data", str(tiny_parquet), "--preset",
                             "seed", "--epochs", "200", "--run-id", "to-kill", "--projection", "none"],
                            cwd=ROOT, env=dict(os.environ, SNW_RUNS_DIR=str(runs_dir)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    t = time.time()
    while not (runs_dir / "to-kill" / "progress.jsonl").exists() and time.time() - t < 120:
        time.sleep(0.2)
    run = RunStore(runs_dir).get("to-kill")
    _wait_for_batches(run)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert run.state() == "failed (interrupted)"
    assert not [p.name for p in run.path.iterdir() if ".tmp" in p.name]
    assert json.loads(run.file("config.json").read_text())["run_id"] == "to-kill"
