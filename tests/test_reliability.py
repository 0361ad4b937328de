"""Crashes, disk errors, concurrent trainings, and paths from users (reliability and security)."""
import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from snw_core import data
from snw_core.data import DataError
from snw_core.runs import RunStore

ROOT = Path(__file__).resolve().parent.parent


def test_user_paths_outside_the_allowed_roots_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SNW_DATA_ROOTS", str(tmp_path / "allowed"))
    (tmp_path / "allowed" / "set").mkdir(parents=True)
    assert data.check_user_path(str(tmp_path / "allowed" / "set")) == str((tmp_path / "allowed" / "set").resolve())
    for bad in ["/etc", str(tmp_path / "allowed" / ".." / "other"), "../../etc/passwd"]:
        with pytest.raises(DataError, match="outside the folders"):
            data.check_user_path(bad)
    (tmp_path / "allowed" / "link").symlink_to("/etc")
    with pytest.raises(DataError, match="outside the folders"):
        data.check_user_path(str(tmp_path / "allowed" / "link"))


def test_a_run_store_that_cannot_be_written_gives_a_clear_error(tiny_parquet, tmp_path):
    blocker = tmp_path / "runs_is_a_file"
    blocker.write_text("not a folder")
    r = subprocess.run([sys.executable, "-m", "snw_core", "train", "--data", str(tiny_parquet), "--preset", "seed",
                        "--epochs", "1", "--runs-dir", str(blocker)], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1 and "could not read or write" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_disk_full_while_saving_results_fails_the_run_cleanly(tiny_parquet, runs_dir, monkeypatch):
    from snw_core import embed, train

    def full(path, data_):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(embed, "atomic_write_bytes", full)
    with pytest.raises(OSError):
        train.train(str(tiny_parquet), preset="seed", epochs=1, projection="none", quiet=True, run_id="disk-full")
    run = RunStore(runs_dir).get("disk-full")
    assert run.state() == "failed" and "No space left" in run.status()["error"]
    assert not run.file("embeddings.npz").exists()
    assert not [p.name for p in run.path.iterdir() if ".tmp" in p.name]
    assert run.config()["run_id"] == "disk-full"                       # what was written is whole


@pytest.mark.slow
def test_two_trainings_at_once_finish_with_separate_results(tiny_parquet, runs_dir):
    env = dict(os.environ, SNW_RUNS_DIR=str(runs_dir))
    procs = [subprocess.Popen([sys.executable, "-m", "snw_core", "train", "--data", str(tiny_parquet), "--preset",
                               "seed", "--epochs", "2", "--seed", str(seed), "--run-id", f"twin-{seed}",
                               "--projection", "pca"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    store = RunStore(runs_dir)
    a, b = store.get("twin-1"), store.get("twin-2")
    assert a.state() == b.state() == "done"
    assert a.config()["settings"]["seed"] == 1 and b.config()["settings"]["seed"] == 2
    ea = np.load(a.file("embeddings.npz"))["embeddings"]
    eb = np.load(b.file("embeddings.npz"))["embeddings"]
    assert not np.allclose(ea, eb)                                     # two different models, not one shared
    assert len(a.history()) == len(b.history()) == 2


@pytest.mark.slow
@pytest.mark.parametrize("where", ["first", "last"])
def test_stop_in_the_first_or_last_epoch_ends_cleanly_even_when_pressed_twice(tiny_parquet, runs_dir, monkeypatch,
                                                                              where):
    """The stop request arrives (twice, as from a double click) in the middle of epoch 1 or of the last epoch."""
    from snw_core import runs as R, train

    epochs = 3
    calls = {"n": 0, "steps": None}
    real = R.Run.stop_requested

    def stop_requested(self):
        calls["n"] += 1                      # called once per training batch
        if calls["steps"] is None:
            calls["steps"] = next(e["batches"] for e in self.progress() if e.get("phase") == "training")
        at = calls["steps"] // 2 + (0 if where == "first" else (epochs - 1) * calls["steps"])
        if calls["n"] == at:
            self.request_stop()
            self.request_stop()
        return real(self)

    monkeypatch.setattr(R.Run, "stop_requested", stop_requested)
    run_id = f"stop-{where}"
    run, state = train.train(str(tiny_parquet), preset="seed", epochs=epochs, projection="pca", quiet=True,
                             run_id=run_id)
    assert state == "stopped" and run.state() == "stopped"
    assert calls["steps"] > 4
    # it stopped within one batch of the request, inside the intended epoch
    assert calls["n"] == calls["steps"] // 2 + (0 if where == "first" else (epochs - 1) * calls["steps"])
    hist = run.history()
    assert len(hist) == (1 if where == "first" else epochs)      # the partial epoch is recorded, no more
    m = run.metrics()
    assert m["state"] == "stopped" and m["epochs_run"] == len(hist)
    assert 0.0 <= m["good_defect_accuracy"] <= 1.0
    emb = np.load(run.file("embeddings.npz"), allow_pickle=False)
    assert emb["embeddings"].shape[0] == 130
    assert run.embedder_path.exists() and run.file("projection.parquet").exists()
    assert not [p.name for p in run.path.iterdir() if ".tmp" in p.name]
    again = RunStore(runs_dir).get(run_id)
    assert again.state() == "stopped"                            # what the dashboard and `runs` read back
