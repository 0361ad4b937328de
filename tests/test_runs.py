"""The run store: validated ids, atomic writes, interrupted runs, progress reading."""
import json
import os
import subprocess
import sys

import pytest

from snw_core.fsutil import atomic_write_json, atomic_writer
from snw_core.runs import Run, RunError, RunStore, validate_run_id


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/b", "", "x" * 65, "..", "run id", None, "a\x00b"])
def test_bad_run_ids_are_refused(bad, runs_dir):
    with pytest.raises(RunError):
        validate_run_id(bad)
    with pytest.raises(RunError):
        RunStore(runs_dir).get(bad)


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    p = tmp_path / "m.json"
    atomic_write_json(p, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_writer(p) as tmp:
            tmp.write_text('{"a": 2, "half')
            raise RuntimeError("crash while writing")
    assert json.loads(p.read_text()) == {"a": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["m.json"]      # no temp file left behind


def test_nan_is_written_as_null(tmp_path):
    p = tmp_path / "m.json"
    atomic_write_json(p, {"x": float("nan"), "y": [1.0, float("inf")]})
    assert json.loads(p.read_text()) == {"x": None, "y": [1.0, None]}


def test_lifecycle_and_listing(runs_dir):
    store = RunStore(runs_dir)
    run = store.create(name="my run/../x")
    assert "/" not in run.id and ".." not in run.id
    run.write_config({"preset": "seed", "settings": {"epochs": 1}, "data": {"source": "default"}})
    run.write_status("running", pid=os.getpid())
    assert run.state() == "running"
    run.append_progress({"kind": "batch", "batch": 1})
    with open(run.file("progress.jsonl"), "a") as f:
        f.write('{"kind": "batch", "bat')                       # a writer caught mid-line
    assert run.progress() == [{"kind": "batch", "batch": 1}]
    run.write_history([{"epoch": 1, "loss": 0.5, "val_loss": 0.6, "pair_accuracy": 0.7, "val_pair_accuracy": 0.6,
                        "seconds": 1.0}])
    assert run.history()[0]["val_loss"] == 0.6
    run.write_status("done")
    assert run.state() == "done" and "ended" in run.status()
    assert [r.id for r in store.list()] == [run.id]
    store.delete(run.id)
    assert store.list() == []


def test_a_run_whose_process_is_gone_is_interrupted(runs_dir):
    run = RunStore(runs_dir).create()
    run.write_config({})
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    run.write_status("running", pid=p.pid)
    assert run.state() == "failed (interrupted)"


def test_a_writer_killed_mid_save_leaves_no_temp_file_once_its_run_is_found_interrupted(runs_dir):
    """SIGKILL cannot be cleaned up by the process itself: the run's temp file outlives it, and goes when the run is
    read as interrupted. A live writer's temp file, and a file that only looks like one, stay."""
    import signal
    run = RunStore(runs_dir).create()
    run.write_config({})
    code = ("import sys, time; from snw_core.fsutil import atomic_writer\n"
            f"with atomic_writer({str(run.embedder_path)!r}) as tmp:\n"
            "    tmp.write_bytes(b'half'); print(tmp.name, flush=True); time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    left = p.stdout.readline().strip()
    run.write_status("running", pid=p.pid)
    with atomic_writer(run.file("metrics.json")) as live:           # this process's write, in progress
        assert run.state() == "running" and (run.path / left).exists()
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        (run.path / ".notes.tmp").write_text("a user's own file")
        assert run.state() == "failed (interrupted)"
        assert not (run.path / left).exists() and live.exists() and (run.path / ".notes.tmp").exists()
        live.write_text("{}")
    assert not run.embedder_path.exists() and json.loads(run.file("metrics.json").read_text()) == {}


def test_running_runs_cannot_be_deleted(runs_dir):
    store = RunStore(runs_dir)
    run = store.create()
    run.write_config({})
    run.write_status("running", pid=os.getpid())
    with pytest.raises(RunError, match="still running"):
        store.delete(run.id)


def test_explicit_run_id_must_be_new(runs_dir):
    store = RunStore(runs_dir)
    run = store.create(run_id="fixed-id")
    run.write_config({})
    with pytest.raises(RunError, match="exists"):
        store.create(run_id="fixed-id")


def test_stop_request(runs_dir):
    run = RunStore(runs_dir).create()
    assert not run.stop_requested()
    run.request_stop()
    assert run.stop_requested()


def test_summary_epochs_run_from_metrics_else_from_history(runs_dir):
    run = RunStore(runs_dir).create()
    run.write_config({"preset": "default", "settings": {"epochs": 10}, "data": {"source": "default"}})
    assert run.summary()["epochs_run"] is None                   # nothing trained yet
    row = {"loss": 0.5, "val_loss": 0.6, "pair_accuracy": 0.7, "val_pair_accuracy": 0.6, "seconds": 1.0}
    run.write_history([{"epoch": e, **row} for e in (1, 2, 3)])
    assert run.summary()["epochs_run"] == 3                      # still running, or stopped before its metrics
    run.write_metrics({"epochs_run": 12, "good_defect_accuracy": 0.99})
    s = run.summary()
    assert (s["epochs"], s["epochs_run"]) == (10, 12)            # the take-off budget trained past the setting
