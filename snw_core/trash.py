"""The run store's trash: a deleted run is moved to ``runs/.trash/<run_id>/``, untouched, until restored or
until the trash is emptied. Nothing is lost to a mis-click.

>>> move_to_trash(store, "20260101-120000-seed-ab12", by="local")    # doctest: +SKIP
>>> restore(store, "20260101-120000-seed-ab12")                        # doctest: +SKIP

The move is one ``rename`` inside the run store (same file system), so a run is either in the store or in
the trash, never half in each, and its files are byte for byte what they were. Beside each trashed folder,
``<run_id>.json`` says when and by whom it was deleted (the folder itself is not written to).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from .fsutil import atomic_write_json
from .runs import RUN_ID_RE, RunError, RunStore, now_iso, validate_run_id

__all__ = ["TRASH", "trash_dir", "move_to_trash", "restore", "list_trash", "empty_trash", "BUSY_STATES"]

TRASH = ".trash"
BUSY_STATES = ("running", "starting")        # a run being trained (or being set up by its launcher)


def trash_dir(store: RunStore) -> Path:
    return store.root / TRASH


def move_to_trash(store: RunStore, run_id: str, by: str = "local") -> Path:
    """Move a run folder to the trash; refuse a run that is training or starting."""
    run = store.get(run_id)
    state = run.state()
    if state in BUSY_STATES:
        raise RunError(f"Run '{run_id}' is still {state}; stop it before deleting it.")
    dest = trash_dir(store) / run.id
    if dest.exists():
        raise RunError(f"A deleted run '{run_id}' is in the trash already; restore it or empty the trash before "
                       "deleting this one.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.rename(run.path, dest)
    atomic_write_json(dest.parent / f"{run.id}.json", {"run_id": run.id, "deleted": now_iso(), "by": by})
    return dest


def restore(store: RunStore, run_id: str) -> Path:
    """Move a run back from the trash; refuse when a run of that id exists again."""
    validate_run_id(run_id)
    src = trash_dir(store) / run_id
    if not src.is_dir():
        raise RunError(f"There is no run '{run_id}' in the trash of {store.root}.")
    dest = store.root / run_id
    if dest.exists():
        raise RunError(f"A run '{run_id}' exists in the run store already; delete or rename it before restoring.")
    os.rename(src, dest)
    (src.parent / f"{run_id}.json").unlink(missing_ok=True)
    return dest


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def list_trash(store: RunStore) -> list[dict]:
    """The trashed runs, most recently deleted first: run_id, deleted, by, preset, state, MB."""
    import json
    d = trash_dir(store)
    if not d.is_dir():
        return []
    rows = []
    for p in d.iterdir():
        if not (p.is_dir() and RUN_ID_RE.match(p.name)):
            continue
        try:
            meta = json.loads((d / f"{p.name}.json").read_text())
        except (OSError, ValueError):
            meta = {}
        try:
            cfg = json.loads((p / "config.json").read_text())
        except (OSError, ValueError):
            cfg = {}
        try:
            state = json.loads((p / "status.json").read_text()).get("state", "")
        except (OSError, ValueError):
            state = ""
        rows.append({"run_id": p.name, "deleted": meta.get("deleted", ""), "by": meta.get("by", ""),
                     "preset": cfg.get("preset", ""), "state": state, "MB": round(_size(p) / 1e6, 2)})
    return sorted(rows, key=lambda r: (r["deleted"], r["run_id"]), reverse=True)


def empty_trash(store: RunStore, run_ids=None) -> list[str]:
    """Delete trashed runs for good (all, or ``run_ids``); return the ids removed."""
    d = trash_dir(store)
    ids = [r["run_id"] for r in list_trash(store)] if run_ids is None else [validate_run_id(i) for i in run_ids]
    gone = []
    for rid in ids:
        if not (d / rid).is_dir():
            raise RunError(f"There is no run '{rid}' in the trash of {store.root}.")
        shutil.rmtree(d / rid)
        (d / f"{rid}.json").unlink(missing_ok=True)
        gone.append(rid)
    return gone
