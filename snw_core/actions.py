"""Every action that changes the run store, checked against the actor's role and written to the action log.

The dashboard's buttons and the command line call these functions, never the run store directly, so a viewer
is refused here, on the server, whatever reached the handler (a hidden button, a forged widget value, a stale
page). Each done action appends one line to ``runs/.actions.jsonl``: time, user, action, run, details.

>>> from snw_core.roles import Actor, LOCAL
>>> delete_runs(RunStore(), ["20260101-x"], LOCAL)                  # doctest: +SKIP
[('ok', "Moved run `20260101-x` to the trash.")]
>>> read_log(RunStore())[-1]["action"]                                # doctest: +SKIP
'delete'
"""
from __future__ import annotations

import json
import os
import sys

from . import launch, trash
from .roles import Actor
from .runs import RunError, RunStore, now_iso, read_jsonl

__all__ = ["LOG_NAME", "log_action", "read_log", "log_rows", "start_training", "stop_run", "delete_runs",
           "restore_runs", "empty_trash", "start_checks", "ACTIONS"]

LOG_NAME = ".actions.jsonl"
ACTIONS = ("start", "stop", "delete", "restore", "empty-trash", "correct", "checks")


def log_action(store: RunStore, actor: Actor | str, action: str, run_id: str = "", **details) -> dict:
    """Append one line to the action log (one ``write`` of a whole line, so concurrent writers do not mix)."""
    entry = {"time": now_iso(), "user": actor.name if isinstance(actor, Actor) else str(actor), "action": action,
             "run_id": run_id, **details}
    store.root.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, separators=(",", ":"), default=str) + "\n").encode("utf-8")
    fd = os.open(store.root / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return entry


def read_log(store: RunStore, limit: int | None = None) -> list[dict]:
    """The action log, oldest first (an incomplete last line is skipped); the last ``limit`` entries."""
    out = read_jsonl(store.root / LOG_NAME)
    return out[-limit:] if limit else out


def log_rows(store: RunStore, limit: int | None = 200) -> list[dict]:
    """The latest ``limit`` entries, newest first, as table rows: time, user, action, run, details."""
    rows = []
    for e in reversed(read_log(store, limit)):
        rest = {k: v for k, v in e.items() if k not in ("time", "user", "action", "run_id")}
        rows.append({"time": e.get("time", ""), "user": e.get("user", ""), "action": e.get("action", ""),
                     "run": e.get("run_id", ""), "details": ", ".join(f"{k}={v}" for k, v in rest.items())})
    return rows


# ------------------------------------------------------------------ the actions

def start_training(actor: Actor, source: str, preset: str, overrides: dict, good_label: str = "0",
                   name: str | None = None, projection: str = "umap", store: RunStore | None = None,
                   corrections: str | None = None) -> str:
    """Start a training (``launch.start_training``) for an engineer; return the run id. ``corrections``: a
    corrections file applied on load (passed on only when given)."""
    actor.require("start a training")
    store = store or RunStore()
    rid = launch.start_training(source, preset, overrides, good_label=good_label, name=name, projection=projection,
                                **({"corrections": corrections} if corrections else {}))
    log_action(store, actor, "start", rid, preset=preset, data=source)
    return rid


def stop_run(run, actor: Actor, store: RunStore | None = None) -> None:
    """Ask a running training to stop (within one batch)."""
    actor.require("stop a run")
    run.request_stop()
    log_action(store or RunStore(run.path.parent), actor, "stop", run.id)


def delete_runs(store: RunStore, run_ids, actor: Actor) -> list[tuple[str, str]]:
    """Move runs to the trash; one ``(kind, message)`` per run, kind ``ok`` or ``error``."""
    actor.require("delete runs")
    return _each(store, run_ids, actor, "delete", lambda rid: trash.move_to_trash(store, rid, by=actor.name),
                 "Moved run `{}` to the trash.")


def restore_runs(store: RunStore, run_ids, actor: Actor) -> list[tuple[str, str]]:
    """Move runs back from the trash; one ``(kind, message)`` per run."""
    actor.require("restore runs")
    return _each(store, run_ids, actor, "restore", lambda rid: trash.restore(store, rid), "Restored run `{}`.")


def _each(store, run_ids, actor, action, do, done) -> list[tuple[str, str]]:
    """``do(run_id)`` for each run; log the ones done; a refused one (RunError) does not stop the others."""
    out = []
    for rid in run_ids:
        try:
            do(rid)
        except RunError as e:
            out.append(("error", str(e)))
            continue
        log_action(store, actor, action, rid)
        out.append(("ok", done.format(rid)))
    return out


def empty_trash(store: RunStore, actor: Actor, run_ids=None) -> list[str]:
    """Delete trashed runs for good (all, or ``run_ids``)."""
    actor.require("empty the trash")
    gone = trash.empty_trash(store, run_ids)
    for rid in gone:
        log_action(store, actor, "empty-trash", rid)
    return gone


def start_checks(run, actor: Actor, store: RunStore | None = None, stderr=None):
    """For an engineer: the drift and not-a-part checks of a finished run trained before every training ended with
    them (``python -m snw_core evaluate RUN_ID --checks``), in a separate low-priority process, so the dashboard
    stays responsive; it writes them into the run's metrics.json. ``stderr``: a file for the child's messages (its "error:"
    paragraph says why it failed: :func:`snw_core.ui.job_error`). Returns the ``subprocess.Popen``."""
    import subprocess

    from .fsutil import project_root
    actor.require("run the checks")
    code = "import os, sys; os.nice(10); from snw_core.__main__ import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "evaluate", run.id, "--runs-dir", str(run.path.parent),
                             "--checks"], cwd=project_root(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=stderr if stderr is not None else subprocess.DEVNULL,
                            start_new_session=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    log_action(store or RunStore(run.path.parent), actor, "checks", run.id)
    return proc


# ------------------------------------------------------------------ command line: runs --trash | runs restore ID ...

def add_cli(runs_parser) -> None:
    """Extend ``python -m snw_core runs`` (which lists runs) with the trash."""
    runs_parser.add_argument("action", nargs="?", choices=("delete", "restore", "empty-trash", "log"),
                             help="delete: move runs to the trash; restore: move them back; empty-trash: delete "
                                  "trashed runs for good (all, or the ids given); log: print the action log")
    runs_parser.add_argument("ids", nargs="*", metavar="ID", help="run ids")
    runs_parser.add_argument("--trash", action="store_true", help="list the runs in the trash")


def run_cli(a) -> int | None:
    """Handle the trash forms of ``runs``; None for the plain listing (the caller prints it)."""
    from .roles import LOCAL
    if not a.action and not a.trash:
        if a.ids:
            raise RunError(f"Unexpected argument {a.ids[0]!r}: use `runs delete ID`, `runs restore ID`, "
                           "`runs empty-trash [ID ...]`, `runs log` or `runs --trash`.")
        return None
    store = RunStore(a.runs_dir)
    if a.trash and not a.action:
        for r in trash.list_trash(store):
            print(f"{r['run_id']}\tdeleted={r['deleted']}\tby={r['by']}\t{r['preset']}\t{r['state']}\t{r['MB']} MB")
        return 0
    if a.action == "log":
        for r in reversed(log_rows(store, None)):
            print("\t".join(str(r[k]) for k in ("time", "user", "action", "run", "details")).rstrip("\t"))
        return 0
    if a.action in ("delete", "restore") and not a.ids:
        raise RunError(f"`runs {a.action}` needs at least one run id.")
    if a.action == "empty-trash":
        gone = empty_trash(store, LOCAL, a.ids or None)
        print(f"deleted for good: {len(gone)} run(s)" + (": " + " ".join(gone) if gone else ""))
        return 0
    results = (delete_runs if a.action == "delete" else restore_runs)(store, a.ids, LOCAL)
    for kind, msg in results:
        if kind == "ok":
            print(msg.replace("`", ""))
        else:
            print("error: " + msg, file=sys.stderr)
    return 0 if all(k == "ok" for k, _ in results) else 2
