"""The trash (snw_core.trash), the checked actions and the action log (snw_core.actions), and their CLI."""
import json
import os
import threading

import pytest

from snw_core import actions, trash
from snw_core.__main__ import main
from snw_core.roles import LOCAL, VIEWER, AccessError, Actor
from snw_core.runs import RunError, RunStore, _proc_start

VIEWER_ACTOR = Actor("viewer", VIEWER, "not signed in")


def tree(path) -> dict:
    """Every file under ``path``: relative path -> (bytes, mode)."""
    return {str(p.relative_to(path)): (p.read_bytes(), p.stat().st_mode) for p in sorted(path.rglob("*"))
            if p.is_file()}


def make_run(store, rid, state="done"):
    run = store.create(run_id=rid)
    run.write_config({"run_id": rid, "preset": "seed", "settings": {"epochs": 1}, "data": {"source": "default"}})
    if state == "running":
        run.write_status("running", pid=os.getpid(), pid_start=_proc_start(os.getpid()))
    else:
        run.write_status(state)
    run.write_metrics({"good_defect_accuracy": 0.9})
    run.file("embedder.keras").write_bytes(bytes(range(256)) * 40)
    (run.path / "sub").mkdir()
    (run.path / "sub" / "notes.txt").write_text("nested\n")
    os.chmod(run.file("metrics.json"), 0o600)
    return run


def test_delete_then_restore_gives_back_a_byte_identical_folder(runs_dir):
    store = RunStore(runs_dir)
    run = make_run(store, "r1")
    before = tree(run.path)
    store.delete("r1")
    assert not run.path.exists() and store.list() == []
    assert (runs_dir / ".trash" / "r1").is_dir()
    assert tree(runs_dir / ".trash" / "r1") == before           # nothing written into the trashed folder
    [row] = trash.list_trash(store)
    assert row["run_id"] == "r1" and row["by"] == "local" and row["preset"] == "seed" and row["state"] == "done"
    trash.restore(store, "r1")
    assert tree(run.path) == before
    assert trash.list_trash(store) == [] and [r.id for r in store.list()] == ["r1"]


def test_busy_runs_cannot_be_deleted(runs_dir):
    store = RunStore(runs_dir)
    run = make_run(store, "r-running", state="running")
    with pytest.raises(RunError, match="still running"):
        store.delete(run.id)
    starting = store.create(run_id="r-starting")            # a launcher's folder before its status is written
    with pytest.raises(RunError, match="still starting"):
        store.delete(starting.id)
    assert run.path.is_dir() and starting.path.is_dir() and trash.list_trash(store) == []


def test_trash_collisions_are_refused_not_overwritten(runs_dir):
    store = RunStore(runs_dir)
    make_run(store, "r1")
    store.delete("r1")
    again = make_run(store, "r1")                             # a new run with the same id
    with pytest.raises(RunError, match="in the trash already"):
        store.delete("r1")
    with pytest.raises(RunError, match="exists in the run store already"):
        trash.restore(store, "r1")
    assert again.path.is_dir() and (runs_dir / ".trash" / "r1").is_dir()
    with pytest.raises(RunError, match="no run 'nope' in the trash"):
        trash.restore(store, "nope")
    with pytest.raises(RunError, match="not a valid run id"):
        trash.restore(store, "../r1")


def test_empty_trash(runs_dir):
    store = RunStore(runs_dir)
    for rid in ("a", "b", "c"):
        make_run(store, rid)
        store.delete(rid)
    assert actions.empty_trash(store, LOCAL, ["b"]) == ["b"]
    assert sorted(r["run_id"] for r in trash.list_trash(store)) == ["a", "c"]
    assert sorted(actions.empty_trash(store, LOCAL)) == ["a", "c"]
    assert trash.list_trash(store) == [] and list((runs_dir / ".trash").iterdir()) == []


def test_a_viewer_changes_nothing(runs_dir):
    store = RunStore(runs_dir)
    make_run(store, "keep")
    make_run(store, "in-trash")
    actions.delete_runs(store, ["in-trash"], LOCAL)
    live = make_run(store, "live", state="running")
    before = tree(runs_dir)
    calls = [lambda: actions.delete_runs(store, ["keep"], VIEWER_ACTOR),
             lambda: actions.restore_runs(store, ["in-trash"], VIEWER_ACTOR),
             lambda: actions.empty_trash(store, VIEWER_ACTOR),
             lambda: actions.stop_run(live, VIEWER_ACTOR, store),
             lambda: actions.start_training(VIEWER_ACTOR, "default", "seed", {"epochs": 1}, store=store)]
    for call in calls:
        with pytest.raises(AccessError, match="Only an engineer"):
            call()
    assert tree(runs_dir) == before and not live.stop_requested()


def test_actions_are_logged_with_who(runs_dir, monkeypatch):
    store = RunStore(runs_dir)
    ann = Actor("ann@plant.example", "engineer", "sso")
    make_run(store, "r1")
    live = make_run(store, "live", state="running")
    monkeypatch.setattr(actions.launch, "start_training", lambda *a, **kw: "r-new")
    assert actions.start_training(ann, "default", "seed", {"epochs": 1}, store=store) == "r-new"
    actions.stop_run(live, ann, store)
    assert live.stop_requested()
    assert actions.delete_runs(store, ["r1", "live"], LOCAL)[1][0] == "error"      # the running one is refused
    actions.restore_runs(store, ["r1"], ann)
    log = actions.read_log(store)
    assert [(e["user"], e["action"], e["run_id"]) for e in log] == [
        ("ann@plant.example", "start", "r-new"), ("ann@plant.example", "stop", "live"), ("local", "delete", "r1"),
        ("ann@plant.example", "restore", "r1")]
    assert log[0]["preset"] == "seed" and all(e["time"] for e in log)
    rows = actions.log_rows(store, limit=2)
    assert [r["action"] for r in rows] == ["restore", "delete"]                     # newest first


def test_the_log_survives_concurrent_writers(runs_dir):
    store = RunStore(runs_dir)
    threads = [threading.Thread(target=lambda i=i: [actions.log_action(store, f"user{i}", "stop", f"r{j}", n=j)
                                                    for j in range(50)]) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = actions.read_log(store)
    assert len(log) == 200 and {e["user"] for e in log} == {"user0", "user1", "user2", "user3"}
    with open(runs_dir / actions.LOG_NAME, "a") as f:
        f.write('{"time": "2026-')                                                  # a writer caught mid-line
    assert len(actions.read_log(store)) == 200


def test_runs_cli_trash_restore_log(runs_dir, capsys):
    store = RunStore(runs_dir)
    run = make_run(store, "r1")
    before = tree(run.path)
    assert main(["runs", "delete", "r1"]) == 0
    assert "trash" in capsys.readouterr().out
    assert main(["runs", "--trash"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("r1\t") and "by=local" in out
    assert main(["runs"]) == 0 and capsys.readouterr().out == ""
    assert main(["runs", "restore", "r1"]) == 0
    assert tree(run.path) == before
    assert main(["runs", "restore", "r1"]) == 2
    assert "no run 'r1' in the trash" in capsys.readouterr().err
    assert main(["runs", "delete"]) == 2 and "needs at least one run id" in capsys.readouterr().err
    live = make_run(store, "live", state="running")
    assert main(["stop", "live"]) == 0 and live.stop_requested()
    assert main(["runs", "delete", "live"]) == 2 and "still running" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["runs", "log"]) == 0
    lines = [ln.split("\t") for ln in capsys.readouterr().out.splitlines()]
    assert [(ln[1], ln[2], ln[3]) for ln in lines] == [("local", "delete", "r1"), ("local", "restore", "r1"),
                                                        ("local", "stop", "live")]
    make_run(store, "old")
    main(["runs", "delete", "old"])
    assert main(["runs", "empty-trash"]) == 0 and "old" in capsys.readouterr().out
    assert not (runs_dir / ".trash" / "old").exists()


def test_trash_listing_is_newest_first(runs_dir):
    store = RunStore(runs_dir)
    for rid, when in (("first", "2026-01-01T10:00:00+00:00"), ("second", "2026-01-02T10:00:00+00:00")):
        make_run(store, rid)
        store.delete(rid, by="ann (password)")
        (runs_dir / ".trash" / f"{rid}.json").write_text(json.dumps({"deleted": when, "by": "ann (password)"}))
    rows = trash.list_trash(store)
    assert [r["run_id"] for r in rows] == ["second", "first"] and rows[0]["by"] == "ann (password)"
