"""Sweeps: the request (grid, random draws, validation), the sweep record, stop and resume, and the command line
on Ray (one local node, and two nodes writing to one run store).

The fast tests need no Ray. The slow ones train on the tiny data set for a few epochs.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snw_core import sweep as S
from snw_core.runs import Run, RunStore, _proc_start
from test_cli import cli

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ the request

def test_parse_grid_and_random():
    assert S.parse_grid(["learning-rate=0.001,0.01", "preset=seed,default", "embedding_dim=32,64"]) == {
        "learning_rate": [0.001, 0.01], "preset": ["seed", "default"], "embedding_dim": [32, 64]}
    assert S.parse_random(["margin=0.5:2", "learning_rate=1e-4:1e-2:log"]) == {
        "margin": [0.5, 2.0, "uniform"], "learning_rate": [1e-4, 1e-2, "log"]}


@pytest.mark.parametrize("grid, message", [
    (["lr=0.1"], "unknown setting"),
    (["split=0.6"], "unknown setting"),
    (["margin"], "KEY=V1,V2"),
    (["margin=0.5,,1"], "empty value"),
    (["epochs=1.5"], "not an integer"),
    (["learning_rate=fast"], "not a number"),
    (["margin=1,1"], "listed twice"),
    (["margin=1", "margin=2"], "given twice"),
])
def test_parse_grid_refuses(grid, message):
    with pytest.raises(S.SweepError, match=message):
        S.parse_grid(grid)


@pytest.mark.parametrize("rnd, message", [
    (["margin=2:1"], "LO must be below HI"),
    (["margin=1"], "LO:HI"),
    (["learning_rate=0:1:log"], "LO > 0"),
    (["preset=a:b"], "only numeric"),
])
def test_parse_random_refuses(rnd, message):
    with pytest.raises(S.SweepError, match=message):
        S.parse_random(rnd)


def test_expand_grid_product_in_order():
    t = S.expand_trials("seed", {"margin": [0.5, 1.0], "preset": ["seed", "default"]}, {}, base={"seed": 3})
    assert [(x["trial"], x["preset"], x["overrides"]["margin"]) for x in t] == [
        (0, "seed", 0.5), (1, "default", 0.5), (2, "seed", 1.0), (3, "default", 1.0)]
    assert all(x["overrides"]["seed"] == 3 and "preset" not in x["overrides"] for x in t)


def test_expand_random_draws_are_seeded_and_in_range():
    a = S.expand_trials("seed", {}, {"learning_rate": [1e-4, 1e-2, "log"], "embedding_dim": [8, 64, "uniform"]},
                        trials=6, seed=5)
    b = S.expand_trials("seed", {}, {"learning_rate": [1e-4, 1e-2, "log"], "embedding_dim": [8, 64, "uniform"]},
                        trials=6, seed=5)
    c = S.expand_trials("seed", {}, {"learning_rate": [1e-4, 1e-2, "log"], "embedding_dim": [8, 64, "uniform"]},
                        trials=6, seed=6)
    assert a == b and a != c
    lrs = [x["overrides"]["learning_rate"] for x in a]
    dims = [x["overrides"]["embedding_dim"] for x in a]
    assert all(1e-4 <= v <= 1e-2 for v in lrs) and len(set(lrs)) == 6
    assert all(isinstance(d, int) and 8 <= d <= 64 for d in dims)


def test_expand_repeats_without_random_vary_the_seed():
    t = S.expand_trials("seed", {"margin": [1.0]}, {}, trials=3, seed=10, base={"seed": 10})
    assert [x["overrides"]["seed"] for x in t] == [10, 11, 12]


def test_expand_refuses_clash_and_too_many():
    with pytest.raises(S.SweepError, match="both in --grid and --random"):
        S.expand_trials("seed", {"margin": [1.0]}, {"margin": [0.5, 2.0, "uniform"]})
    with pytest.raises(S.SweepError, match="at most"):
        S.expand_trials("seed", {"seed": list(range(40)), "k": list(range(1, 41))}, {})
    with pytest.raises(S.SweepError, match="--trials"):
        S.expand_trials("seed", {"margin": [1.0]}, {}, trials=0)


def test_plan_validates_every_trial_before_anything(tiny_dataset):
    plan = S.plan_sweep(preset="seed", grid=["margin=0.5,1"], epochs=1, dataset=tiny_dataset)
    assert [t["overrides"] for t in plan["trials"]] == [{"seed": 0, "epochs": 1, "margin": 0.5},
                                                        {"seed": 0, "epochs": 1, "margin": 1.0}]
    assert plan["data"]["content_hash"] == tiny_dataset.content_hash
    with pytest.raises(S.SweepError, match=r"Trial 1 \(preset=seed, seed=0, margin=-1.0\).*out of range"):
        S.plan_sweep(preset="seed", grid=["margin=1,-1"], dataset=tiny_dataset)
    with pytest.raises(S.SweepError, match="larger than one epoch"):         # needs the data: Prepared checks it
        S.plan_sweep(preset="default", grid=["batch_size=52,4000"], dataset=tiny_dataset)
    with pytest.raises(S.SweepError, match="something to vary"):
        S.plan_sweep(preset="seed", dataset=tiny_dataset)


@pytest.mark.parametrize("args, message", [
    (["--grid", "lr=0.1"], "unknown setting"),
    (["--grid", "margin=1,-1"], "out of range"),
    (["--grid", "margin=1", "--concurrency", "0"], "--concurrency"),
    (["--grid", "margin=1", "--data", "/no/such.parquet"], "was not found"),
    (["--resume", "no-such-sweep"], "no sweep"),
    (["--grid", "margin=1", "--address", "127.0.0.1:9"], "Cannot reach the Ray cluster"),
])
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, args, message):
    runs = tmp_path / "runs"
    r = cli("sweep", "--preset", "seed", *args, runs_dir=runs)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == "" and not runs.exists()


def test_stop_of_unknown_or_finished_sweep(runs_dir, tiny_dataset):
    r = cli("stop", "no-such-run-or-sweep", runs_dir=runs_dir)
    assert r.returncode == 2 and "no run" in r.stderr
    sw, spec = S.create_sweep(S.plan_sweep(preset="seed", grid=["margin=1,2"], dataset=tiny_dataset))
    sw.write_status("done", pid=1, host="elsewhere")
    r = cli("stop", sw.id, runs_dir=runs_dir)
    assert r.returncode == 2 and "not running" in r.stderr and not sw.stop_requested()


# ------------------------------------------------------------------ the record, stop and resume without Ray

def _trial_run(sw, i, state, **status):
    run = RunStore().create(run_id=S.trial_run_id(sw.id, i))
    run.write_config({"run_id": run.id, "sweep": {"id": sw.id, "trial": i}})
    run.write_status(state, **status)
    return run


def test_stop_sweep_asks_running_trials_and_the_driver(runs_dir, tiny_dataset):
    sw, spec = S.create_sweep(S.plan_sweep(preset="seed", grid=["margin=1,2,3"], dataset=tiny_dataset))
    me = {"pid": os.getpid(), "pid_start": _proc_start(os.getpid())}
    sw.write_status("running", **me)
    live = _trial_run(sw, 0, "running", **me)
    done = _trial_run(sw, 1, "done")
    assert S.stop_sweep(sw.id) == [live.id]
    assert live.stop_requested() and not done.stop_requested() and sw.stop_requested()
    assert S.sweep_of(live.config()) == (sw.id, 0)


def test_resume_refuses_while_running_and_when_data_changed(runs_dir, tiny_dataset, tmp_path):
    sw, spec = S.create_sweep(S.plan_sweep(preset="seed", grid=["margin=1,2"], dataset=tiny_dataset))
    me = {"pid": os.getpid(), "pid_start": _proc_start(os.getpid())}
    sw.write_status("running", pid=os.getppid(), pid_start=_proc_start(os.getppid()))    # another live process
    with pytest.raises(S.SweepError, match="still running"):
        S.prepare_resume(sw.id)
    sw.write_status("failed", pid=2**22 + 7)
    _trial_run(sw, 0, "running", **me)
    with pytest.raises(S.SweepError, match=r"Trial\(s\) 0 .* still running"):
        S.prepare_resume(sw.id)
    Run(RunStore().root, S.trial_run_id(sw.id, 0)).write_status("stopped")
    from snw_core import data, synthetic
    other = data.load(str(synthetic.write_parquet(tmp_path / "other.parquet", n=130, seed=1)))
    with pytest.raises(S.SweepError, match="has changed"):
        S.prepare_resume(sw.id, dataset=other)
    # nothing moved by the refusals
    assert Run(RunStore().root, S.trial_run_id(sw.id, 0)).path.is_dir()


def test_resume_moves_unfinished_trials_aside_and_keeps_done_ones(runs_dir, tiny_dataset):
    sw, spec = S.create_sweep(S.plan_sweep(preset="seed", grid=["margin=1,2,3"], dataset=tiny_dataset))
    sw.write_status("failed", pid=2**22 + 7)
    sw.request_stop()
    _trial_run(sw, 0, "done")
    _trial_run(sw, 1, "running", pid=2**22 + 7)           # its process is gone: failed (interrupted)
    sw2, spec2, ds, todo = S.prepare_resume(sw.id, dataset=tiny_dataset)
    assert todo == [1, 2]
    assert Run(RunStore().root, S.trial_run_id(sw.id, 0)).path.is_dir()
    assert not Run(RunStore().root, S.trial_run_id(sw.id, 1)).path.exists()
    assert (sw.path / "replaced" / f"{S.trial_run_id(sw.id, 1)}.1" / "config.json").exists()
    assert not sw.stop_requested()


def test_resume_by_the_driver_the_dashboard_started(runs_dir, tiny_dataset):
    """The dashboard records a sweep, names its child driver in status.json, and the child runs --resume."""
    sw, spec = S.create_sweep(S.plan_sweep(preset="seed", grid=["margin=1,2"], dataset=tiny_dataset))
    sw.write_status("running", pid=os.getpid(), pid_start=_proc_start(os.getpid()))      # this process is the child
    assert S.prepare_resume(sw.id, dataset=tiny_dataset)[3] == [0, 1]


def test_sweep_applies_a_corrections_file_and_resume_checks_it(runs_dir, tiny_dataset, tmp_path):
    from snw_core.corrections import write_corrections
    labels = tiny_dataset.labels
    other = next(lab for lab in tiny_dataset.label_names if lab != labels[0])
    path = write_corrections(tmp_path / "fix.csv", [{"row": 0, "given_label": labels[0], "new_label": other}],
                             tiny_dataset.source, tiny_dataset.content_hash)
    plan = S.plan_sweep(preset="seed", grid=["margin=1,2"], dataset=tiny_dataset, corrections=str(path))
    assert plan["_ds"].labels[0] == other and tiny_dataset.labels[0] == labels[0]      # the source is untouched
    assert plan["corrections"]["relabelled"] == 1
    assert plan["data"]["content_hash"] == tiny_dataset.content_hash != plan["data"]["trained_hash"]
    sw, spec = S.create_sweep(plan)
    sw.write_status("stopped", pid=2**22 + 7)
    assert S.prepare_resume(sw.id, dataset=tiny_dataset)[2].labels[0] == other
    path.write_text(path.read_text() + "\n")                       # the file changed: the trials would not compare
    with pytest.raises(S.SweepError, match="corrections file .* has changed"):
        S.prepare_resume(sw.id, dataset=tiny_dataset)


def test_sweep_does_not_load_ray_for_train_or_the_dashboard():
    code = ("import sys\n"
            "import snw_core.__main__ as m, snw_core.train, snw_core.launch, snw_core.sweep\n"
            "m._parser()\n"
            "from streamlit.testing.v1 import AppTest\n"
            f"at = AppTest.from_file({str(ROOT / 'app.py')!r}, default_timeout=60)\n"
            "at.run()\n"
            "assert not at.exception, at.exception\n"
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


# ------------------------------------------------------------------ on Ray

def _wait_for(pred, timeout=180, what="condition"):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = pred()
        if v:
            return v
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _training(runs, run_id):
    p = runs / run_id / "progress.jsonl"
    return p.exists() and '"batch"' in p.read_text()


def _start(args, runs):
    env = dict(os.environ, SNW_RUNS_DIR=str(runs))
    return subprocess.Popen([sys.executable, "-m", "snw_core", "sweep", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _sweep_id(runs):
    ids = _wait_for(lambda: [p.name for p in (runs / S.SWEEPS_FOLDER).glob("*") if (p / "sweep.json").exists()]
                    if (runs / S.SWEEPS_FOLDER).is_dir() else None, what="the sweep record")
    return ids[0]


def _no_half_written_files(folder: Path):
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp" + p.suffix)]
    for name in ("config.json", "status.json", "metrics.json"):
        if (folder / name).exists():
            json.loads((folder / name).read_text())


@pytest.mark.slow
def test_sweep_killed_stopped_and_resumed(tmp_path, tiny_parquet):
    """Killed driver -> its trial 'failed (interrupted)' (or finished, if it was that fast), never half-written;
    resume; stop -> 130, the running trial 'stopped', the next not started; resume -> every trial done."""
    runs = tmp_path / "runs"
    epochs = 10
    args = ["--data", tiny_parquet, "--preset", "seed", "--grid", "margin=0.5,1", "--epochs", epochs,
            "--concurrency", 1, "--projection", "none"]
    p = _start(args, runs)
    sid = _sweep_id(runs)
    t0, t1 = S.trial_run_id(sid, 0), S.trial_run_id(sid, 1)
    _wait_for(lambda: _training(runs, t0), what="trial 0 training")
    p.kill()                                               # SIGKILL: no clean-up in the driver
    p.wait(timeout=30)
    run0 = Run(runs, t0)
    first = _wait_for(lambda: run0.state() if run0.state() not in ("running", "starting") else None, timeout=60,
                      what="trial 0 to end with its driver")
    assert first in ("failed (interrupted)", "done")
    _no_half_written_files(run0.path)
    assert not (runs / t1).exists()

    target, other = (t0, t1) if first != "done" else (t1, None)    # the trial the resumed driver runs first
    p = _start(["--resume", sid, "--concurrency", 1], runs)        # resume, then stop it
    _wait_for(lambda: S.Sweep(RunStore(runs), sid).status().get("pid") == p.pid, what="the resumed driver")
    _wait_for(lambda: _training(runs, target), what="the resumed trial training")
    r = cli("stop", sid, runs_dir=runs)
    assert r.returncode == 0 and "stop requested" in r.stdout, r.stderr
    out, err = p.communicate(timeout=300)
    assert p.returncode == 130, err
    assert out.strip().splitlines()[-1] == sid
    assert Run(runs, target).state() == "stopped" and Run(runs, target).embedder_path.exists()
    if other:
        assert not (runs / other).exists()                    # never started: resume runs it
        assert (runs / S.SWEEPS_FOLDER / sid / "replaced" / f"{t0}.1").is_dir()

    r = cli("sweep", "--resume", sid, runs_dir=runs, timeout=600)   # what is left, one CPU each
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == sid
    for i, rid in enumerate((t0, t1)):
        run = Run(runs, rid)
        assert run.state() == "done"
        cfg, st = run.config(), run.status()
        assert cfg["sweep"]["id"] == sid and cfg["sweep"]["trial"] == i
        assert cfg["settings"]["margin"] == [0.5, 1.0][i] and cfg["settings"]["epochs"] == epochs
        assert st["started"] <= st["ended"]
        assert set(run.metrics()) >= {"good_defect_accuracy", "escape_rate", "pair_accuracy"}
        _no_half_written_files(run.path)
    assert S.find_sweep(sid, runs).state() == "done"
    r = cli("sweep", "--resume", sid, runs_dir=runs)               # nothing left to do
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == sid and "nothing to resume" in r.stderr


@pytest.mark.slow
def test_sweep_on_two_ray_nodes_writes_one_run_store(tmp_path, tiny_parquet):
    """A head and a second node (both on 127.0.0.1, one CPU each): two trials at once land on both nodes."""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster
    runs = tmp_path / "runs"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        r = cli("sweep", "--data", tiny_parquet, "--preset", "seed", "--grid", "margin=0.5,1", "--epochs", 1,
                "--projection", "none", "--address", cluster.address, runs_dir=runs, timeout=600)
        assert r.returncode == 0, r.stderr
        sid = r.stdout.strip().splitlines()[-1]
        assert "2 CPUs on 2 node(s)" in r.stderr
        nodes = set()
        for i in range(2):
            run = Run(runs, S.trial_run_id(sid, i))
            assert run.state() == "done"
            nodes.add(run.config()["sweep"]["node"])
        assert len(nodes) == 2, "both trials ran on the same node"
    finally:
        cluster.shutdown()
