"""The run store: one folder per training run, ``runs/<run_id>/`` (or ``$SNW_RUNS_DIR``).

Any process that writes such a folder shows up in the dashboard; the folder is the interface.

>>> store = RunStore("/tmp/runs")                 # doctest: +SKIP
>>> run = store.create(name="first")              # doctest: +SKIP
>>> run.write_status("running")                   # doctest: +SKIP

Files (design.md): config.json, status.json, progress.jsonl, history.csv, metrics.json, embedder.keras,
embeddings.npz, projection.parquet. JSON, parquet and model files are written atomically; progress.jsonl is
append-only and readers skip an incomplete last line.
"""
from __future__ import annotations

import csv
import io
import json
import os
import platform
import re
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path

from .fsutil import atomic_write_json, atomic_write_text, project_root, temp_host, temp_writer

__all__ = ["RunStore", "Run", "RunError", "validate_run_id", "runs_dir", "STATES", "HISTORY_COLUMNS"]

RUN_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
STATES = ("running", "done", "stopped", "failed")
INTERRUPTED = "failed (interrupted)"
HISTORY_COLUMNS = ["epoch", "loss", "val_loss", "pair_accuracy", "val_pair_accuracy", "seconds"]
STOP_FILE = "stop_request"


class RunError(ValueError):
    """A bad run id, a missing run, or a run store problem; the message is for the user."""


def validate_run_id(run_id) -> str:
    """Return ``run_id`` if it matches ``[A-Za-z0-9_-]{1,64}``; raise :class:`RunError` otherwise."""
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise RunError(f"{run_id!r} is not a valid run id: use 1-64 letters, digits, '_' or '-' "
                       "(no paths, no '..').")
    return run_id


def runs_dir(path=None) -> Path:
    """The run store folder: ``path``, else ``$SNW_RUNS_DIR``, else ``runs/`` in the project."""
    return Path(path or os.environ.get("SNW_RUNS_DIR") or project_root() / "runs")


def read_jsonl(path) -> list[dict]:
    """Every complete line of an append-only JSON-lines file (a writer's incomplete last line is skipped);
    [] when the file does not exist."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.split("\n"):
        if line:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _proc_start(pid: int):
    """Start time of a process in clock ticks (Linux), to tell a reused pid from ours; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid, start=None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if start is not None and _proc_start(int(pid)) not in (None, start):
        return False
    try:   # a zombie (exited, not yet reaped by its parent) is not running
        with open(f"/proc/{int(pid)}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        pass
    return True


def remove_orphan_temps(folder: Path) -> list[str]:
    """Remove the temp files in ``folder`` whose writer, a process on this machine, is gone; returns their names.

    A write is a temp file renamed into place, so a process killed outright (SIGKILL; a sweep's driver killed
    takes its trials with it) can leave one behind, never a half-written file. Temp files written by a live
    process, by another machine, or in an older naming, are left alone."""
    removed = []
    try:
        names = [p.name for p in Path(folder).iterdir() if p.name.startswith(".")]
    except OSError:
        return removed
    here = temp_host()
    for name in names:
        w = temp_writer(name)
        if w and w[0] == here and not pid_alive(w[1]):
            try:
                (Path(folder) / name).unlink()
                removed.append(name)
            except OSError:
                pass
    return removed


class Run:
    """One run folder. Reading methods tolerate missing files (a run that is still starting)."""

    def __init__(self, root: Path, run_id: str):
        self.id = validate_run_id(run_id)
        self.path = Path(root) / run_id

    def __repr__(self):
        return f"Run({self.id!r})"

    # ---- paths
    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def embedder_path(self) -> Path:
        return self.file("embedder.keras")

    # ---- JSON
    def _read_json(self, name: str) -> dict:
        p = self.file(name)
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError):
            return {}

    def config(self) -> dict:
        return self._read_json("config.json")

    def write_config(self, config: dict) -> None:
        atomic_write_json(self.file("config.json"), config)

    def metrics(self) -> dict:
        return self._read_json("metrics.json")

    def write_metrics(self, metrics: dict) -> None:
        atomic_write_json(self.file("metrics.json"), metrics)

    def status(self) -> dict:
        return self._read_json("status.json")

    def write_status(self, state: str, **fields) -> dict:
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        st = self.status()
        st.update(fields)
        st["state"] = state
        st.setdefault("started", now_iso())
        if state != "running":
            st.setdefault("ended", now_iso())
        st["updated"] = now_iso()
        atomic_write_json(self.file("status.json"), st)
        return st

    def state(self) -> str:
        """``running``, ``done``, ``stopped``, ``failed``, or ``failed (interrupted)`` when the process is gone."""
        st = self.status()
        if not st:   # a folder being set up by its launcher, or one abandoned before it began
            try:
                young = time.time() - self.path.stat().st_mtime < 60
            except OSError:
                young = False
            return "starting" if young else "failed"
        s = st.get("state", "failed")
        # a pid means something only on the machine that wrote it (sweep trials may run on other machines)
        local = st.get("host") in (None, platform.node())
        if s == "running" and local and not pid_alive(st.get("pid"), st.get("pid_start")):
            remove_orphan_temps(self.path)
            return INTERRUPTED
        return s

    # ---- progress & history
    def append_progress(self, event: dict) -> None:
        line = json.dumps(event, separators=(",", ":")) + "\n"
        with open(self.file("progress.jsonl"), "a") as f:
            f.write(line)
            f.flush()

    def progress(self) -> list[dict]:
        """All complete progress events (an incomplete last line is skipped)."""
        return read_jsonl(self.file("progress.jsonl"))

    def write_history(self, rows: list[dict]) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)
        atomic_write_text(self.file("history.csv"), buf.getvalue())

    def history(self) -> list[dict]:
        try:
            with open(self.file("history.csv"), newline="") as f:
                return [{k: (float(v) if v not in ("", None) else float("nan")) for k, v in r.items()}
                        for r in csv.DictReader(f)]
        except OSError:
            return []

    # ---- stop requests
    def request_stop(self) -> None:
        atomic_write_text(self.file(STOP_FILE), now_iso())

    def stop_requested(self) -> bool:
        return self.file(STOP_FILE).exists()

    def summary(self) -> dict:
        """One flat row for tables: id, state, preset, key settings and metrics."""
        cfg, st, m = self.config(), self.status(), self.metrics()
        row = {"run_id": self.id, "name": cfg.get("name", ""), "state": self.state(), "preset": cfg.get("preset", ""),
               "data": cfg.get("data", {}).get("source", ""), "started": st.get("started", ""),
               "ended": st.get("ended", "")}
        for k, v in (cfg.get("settings") or {}).items():
            row[k] = v
        for k, v in m.items():
            if not isinstance(v, (dict, list)):
                row[k] = v
        if isinstance(m.get("drift_check"), dict):     # how many camera-drift conditions the run held
            row["drift_held"] = m["drift_check"].get("held")
        if row.get("epochs_run") is None:      # still running, stopped early, or an older run: count the epochs
            row["epochs_run"] = len(self.history()) or None
        return row


class RunStore:
    """The folder of all runs."""

    def __init__(self, root=None):
        self.root = runs_dir(root)

    @staticmethod
    def new_id(name: str | None = None) -> str:
        """A fresh run id: ``YYYYmmdd-HHMMSS-<name>-<random>``."""
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name or "").strip("-")[:24]
        return "-".join(x for x in (time.strftime("%Y%m%d-%H%M%S"), slug, secrets.token_hex(2)) if x)

    def create(self, name: str | None = None, run_id: str | None = None) -> Run:
        """Make a new, empty run folder; with ``run_id``, that id (it must not hold a run already)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if run_id is not None:
            run = Run(self.root, run_id)
            run.path.mkdir(exist_ok=True)
            if run.file("config.json").exists():
                raise RunError(f"Run '{run_id}' exists already; choose another id.")
            return run
        for _ in range(20):
            rid = self.new_id(name)
            try:
                (self.root / rid).mkdir()
                return Run(self.root, rid)
            except FileExistsError:
                continue
        raise RunError("could not create a unique run folder")

    def get(self, run_id: str) -> Run:
        run = Run(self.root, run_id)
        if not run.path.is_dir():
            raise RunError(f"There is no run '{run_id}' in {self.root}.")
        return run

    def list(self) -> list[Run]:
        """All runs, newest first."""
        if not self.root.is_dir():
            return []
        runs = [Run(self.root, p.name) for p in self.root.iterdir() if p.is_dir() and RUN_ID_RE.match(p.name)]
        return sorted(runs, key=lambda r: (r.status().get("started", ""), r.id), reverse=True)

    def delete(self, run_id: str, by: str = "local") -> Path:
        """Move a run to the trash (``.trash/``, see snw_core.trash); a running run is refused."""
        from .trash import move_to_trash
        return move_to_trash(self, run_id, by=by)
