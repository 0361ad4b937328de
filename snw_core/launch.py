"""Start the command-line trainer as a child process (the dashboard never trains in its own threads).

>>> run_id = start_training("default", "seed", {"epochs": 1})     # doctest: +SKIP
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading

from .fsutil import project_root
from .runs import RunStore, _proc_start, now_iso

__all__ = ["start_training", "train_command"]

_FLAGS = {"epochs": "--epochs", "seed": "--seed", "batch_size": "--batch-size", "pairs_per_image": "--pairs-per-image",
          "margin": "--margin", "learning_rate": "--learning-rate", "embedding_dim": "--embedding-dim", "k": "--k",
          "early_stopping_patience": "--early-stopping-patience", "plateau_epochs": "--plateau-epochs", "stretch_epochs": "--stretch-epochs",
          "work_side": "--work-side", "grid_pool": "--grid-pool",
          "max_escape": "--max-escape",
          "threshold_method": "--threshold-method", "augment": "--augment",
          "ema": "--ema", "augment_noise": "--augment-noise"}


def train_command(source: str, preset: str, overrides: dict, good_label: str = "0", name: str | None = None,
                  run_id: str | None = None, runs_dir=None, projection: str = "umap",
                  corrections: str | None = None) -> list[str]:
    """The argv of ``python -m snw_core train`` for these settings."""
    cmd = [sys.executable, "-m", "snw_core", "train", "--data", source, "--preset", preset, "--good-label", good_label,
           "--projection", projection]
    for k, v in overrides.items():
        if v is None:
            continue
        if k == "split":
            cmd += ["--split", ",".join(str(float(x)) for x in v)]
        elif k in _FLAGS:
            cmd += [_FLAGS[k], str(v)]
        else:
            raise ValueError(f"unknown setting {k!r}")
    if name:
        cmd += ["--name", name]
    if run_id:
        cmd += ["--run-id", run_id]
    if runs_dir:
        cmd += ["--runs-dir", str(runs_dir)]
    if corrections:
        cmd += ["--corrections", str(corrections)]
    return cmd


def start_training(source: str, preset: str, overrides: dict, good_label: str = "0", name: str | None = None,
                   runs_dir=None, projection: str = "umap", corrections: str | None = None) -> str:
    """Validate, then start a detached trainer for a new run; return its run id at once.

    Bad input raises DataError/SettingsError here (nothing is started, nothing written). The child's
    output goes to ``train.log`` in the run folder; status.json names the child's pid from the start, so
    a trainer that dies early shows as ``failed (interrupted)``.
    """
    from .train import prepare
    prep = prepare(source, preset, good_label, **overrides)   # fail fast, in the caller, on bad input
    if corrections:                                           # a corrections file that does not fit: the same
        from .corrections import prepare_corrected
        prepare_corrected(prep, corrections)
    store = RunStore(runs_dir)
    run = store.create(name=name or preset)
    cmd = train_command(source, preset, overrides, good_label, name, run.id, store.root, projection, corrections)
    log = open(run.file("train.log"), "ab")
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(cmd, cwd=project_root(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, start_new_session=True)
    log.close()
    run.write_status("running", pid=proc.pid, pid_start=_proc_start(proc.pid), started=now_iso())
    threading.Thread(target=proc.wait, daemon=True).start()   # reap the child when it ends
    return run.id
