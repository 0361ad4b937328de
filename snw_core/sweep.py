"""Sweeps: many training runs placed by Ray Tune, on this machine or a Ray cluster, all in one run store.

The trainer stays one function (:func:`snw_core.train.train`); Ray only places trials. Every trial writes an
ordinary run folder ``<runs>/<sweep_id>-tNNN/`` whose ``config.json`` holds ``"sweep": {"id", "trial", ...}``,
so the dashboard shows it like any other run. The sweep itself is recorded in ``<runs>/.sweeps/<sweep_id>/``:
``sweep.json`` (the request and every trial's settings, fixed before the first trial starts), ``status.json``
(the driver's state and pid), ``stop_request`` (when asked to stop) and ``tune/`` (Ray Tune's own records).

Ray is imported only here and only when a sweep runs: the dashboard and ``train`` never pay its start-up.

>>> spec = plan_sweep("default", "seed", grid=["learning_rate=0.001,0.01"], epochs=1)   # doctest: +SKIP
>>> [t["overrides"]["learning_rate"] for t in spec["trials"]]                           # doctest: +SKIP
[0.001, 0.01]
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import platform
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from .fsutil import atomic_write_json, atomic_write_text
from .runs import RUN_ID_RE, Run, RunError, RunStore, _proc_start, now_iso, pid_alive, remove_orphan_temps, validate_run_id

__all__ = ["SweepError", "Sweep", "parse_grid", "parse_random", "expand_trials", "plan_sweep", "create_sweep",
           "execute", "prepare_resume", "start_sweep", "resume_in_background", "stop_sweep", "find_sweep",
           "list_sweeps", "sweep_of", "trial_run_id", "add_parser", "cli", "sweepable", "SWEEPS_FOLDER"]

SWEEPS_FOLDER = ".sweeps"           # inside the run store; a dot-folder is not a run
STOP_FILE = "stop_request"
MAX_TRIALS = 1000
EXIT_STOPPED = 130


def _presets():
    from . import presets      # imported here: the command line builds this parser for every command
    return presets


def sweepable() -> tuple[str, ...]:
    """Settings a sweep may vary: every preset setting except the split, and the preset itself."""
    keys = dict.fromkeys(k for p in _presets().PRESETS.values() for k in p if k != "split")
    return ("preset",) + tuple(keys)


def _kinds() -> tuple[set, set]:
    d = {k: v for p in reversed(list(_presets().PRESETS.values())) for k, v in p.items()}
    return ({k for k, v in d.items() if isinstance(v, int) and not isinstance(v, bool)},
            {k for k, v in d.items() if isinstance(v, float)})


class SweepError(RunError):
    """A bad sweep request (unknown setting, bad value, unknown sweep); the message is for the user."""


# ------------------------------------------------------------------ the request

def _key(raw: str, flag: str) -> str:
    key = raw.strip().replace("-", "_")
    if key not in sweepable():
        raise SweepError(f"{flag} {raw!r}: unknown setting. A sweep can vary: {', '.join(sweepable())}.")
    return key


def _value(key: str, text: str, flag: str):
    _INT, _FLOAT = _kinds()
    text = text.strip()
    if not text:
        raise SweepError(f"{flag} {key}: an empty value; give values like {key}=V1,V2.")
    try:
        if key in _INT:
            v = float(text)
            if v != int(v):
                raise ValueError
            return int(v)
        if key in _FLOAT:
            v = float(text)
            if not math.isfinite(v):
                raise ValueError
            return v
    except ValueError:
        raise SweepError(f"{flag} {key}: {text!r} is not {'an integer' if key in _INT else 'a number'}.") from None
    return text


def parse_grid(items) -> dict:
    """``["learning_rate=0.001,0.01", "preset=seed,default"]`` -> ``{"learning_rate": [0.001, 0.01], ...}``.

    >>> parse_grid(["margin=0.5,1", "embedding-dim=32"])
    {'margin': [0.5, 1.0], 'embedding_dim': [32]}
    """
    grid = {}
    for item in items or ():
        if "=" not in item:
            raise SweepError(f"--grid {item!r}: write KEY=V1,V2 (for example learning_rate=0.001,0.002).")
        raw, values = item.split("=", 1)
        key = _key(raw, "--grid")
        if key in grid:
            raise SweepError(f"--grid {key} is given twice; list all its values in one --grid {key}=V1,V2.")
        vals = [_value(key, v, "--grid") for v in values.split(",")]
        if len(set(map(repr, vals))) != len(vals):
            raise SweepError(f"--grid {key}: a value is listed twice ({values}).")
        grid[key] = vals
    return grid


def parse_random(items) -> dict:
    """``["learning_rate=0.0005:0.005:log"]`` -> ``{"learning_rate": [0.0005, 0.005, "log"]}`` (uniform unless ``:log``).

    >>> parse_random(["margin=0.5:2"])
    {'margin': [0.5, 2.0, 'uniform']}
    """
    out = {}
    for item in items or ():
        if "=" not in item:
            raise SweepError(f"--random {item!r}: write KEY=LO:HI or KEY=LO:HI:log.")
        raw, rng = item.split("=", 1)
        key = _key(raw, "--random")
        _INT, _FLOAT = _kinds()
        if key not in _INT | _FLOAT:
            raise SweepError(f"--random {key}: only numeric settings can be drawn at random; use --grid for {key}.")
        parts = rng.split(":")
        scale = "uniform"
        if len(parts) == 3 and parts[2].strip() in ("log", "uniform"):
            scale = parts.pop().strip()
        if len(parts) != 2:
            raise SweepError(f"--random {key}={rng}: write LO:HI or LO:HI:log.")
        lo, hi = (_value(key, p, "--random") for p in parts)
        lo, hi = float(lo), float(hi)
        if not lo < hi:
            raise SweepError(f"--random {key}={rng}: LO must be below HI.")
        if scale == "log" and lo <= 0:
            raise SweepError(f"--random {key}={rng}: a log scale needs LO > 0.")
        if key in out:
            raise SweepError(f"--random {key} is given twice.")
        out[key] = [lo, hi, scale]
    return out


def expand_trials(preset: str, grid: dict, random: dict, trials: int = 1, seed: int = 0, base: dict | None = None):
    """Every trial's preset and setting overrides: the grid's product, each point ``trials`` times with the
    random settings drawn from ``numpy.random.default_rng(seed)`` (in trial order). Without random settings
    and without ``seed`` in the grid, the repeats of a grid point differ in their training seed
    (``seed``, ``seed + 1``, ...).

    >>> [t["overrides"]["margin"] for t in expand_trials("seed", {"margin": [0.5, 1.0]}, {})]
    [0.5, 1.0]
    """
    if not isinstance(trials, int) or trials < 1:
        raise SweepError(f"--trials must be a whole number of at least 1; got {trials!r}.")
    clash = set(grid) & set(random)
    if clash:
        raise SweepError(f"{', '.join(sorted(clash))} is both in --grid and --random; choose one.")
    keys = list(grid)
    points = list(itertools.product(*(grid[k] for k in keys))) or [()]
    n = len(points) * trials
    if n > MAX_TRIALS:
        raise SweepError(f"This sweep has {n} trials; at most {MAX_TRIALS} are allowed in one sweep.")
    import numpy as np
    _INT = _kinds()[0]
    rng = np.random.default_rng(seed)
    out = []
    for point in points:
        for r in range(trials):
            ov = dict(base or {})
            ov.update(zip(keys, point))
            for k, (lo, hi, scale) in random.items():
                x = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if scale == "log" else float(rng.uniform(lo, hi))
                ov[k] = int(round(x)) if k in _INT else float(f"{x:.6g}")
            if trials > 1 and not random and "seed" not in grid:
                ov["seed"] = int(ov.get("seed", seed)) + r
            p = ov.pop("preset", preset)
            out.append({"trial": len(out), "preset": p, "overrides": ov})
    return out


def trial_run_id(sweep_id: str, trial: int) -> str:
    return f"{sweep_id}-t{trial:03d}"


def _new_sweep_id(store: RunStore, name: str | None) -> str:
    for _ in range(20):
        sid = RunStore.new_id(name or "sweep")
        if not (store.root / SWEEPS_FOLDER / sid).exists() and not (store.root / trial_run_id(sid, 0)).exists():
            return sid
    raise RunError("could not find an unused sweep id")


def plan_sweep(source: str = "default", preset: str = "default", grid=(), random=(), trials: int = 1,
               epochs: int | None = None, seed: int = 0, good_label: str = "0", name: str | None = None,
               projection: str = "pca", dataset=None, base: dict | None = None, corrections=None) -> dict:
    """Validate a sweep request and fix every trial's settings; returns the plan (``dataset`` under ``"_ds"``).

    ``base``: settings every trial shares (the Train page's form), overridden by the grid and random draws.
    ``corrections``: a corrections file (Audit page) applied on load, as ``train --corrections`` does; every
    trial trains on the corrected set and records the corrections in its config.json.

    Raises :class:`SweepError` / ``SettingsError`` / ``DataError`` on bad input; writes nothing.
    """
    from .data import load
    from .presets import PRESETS, SettingsError, resolve_settings
    from .train import Prepared
    if preset not in PRESETS:
        raise SweepError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    if name is not None and (len(name) > 24 or not RUN_ID_RE.match(name)):
        raise SweepError(f"--name {name!r}: use at most 24 letters, digits, '_' or '-'.")
    g = grid if isinstance(grid, dict) else parse_grid(grid)
    r = random if isinstance(random, dict) else parse_random(random)
    if not g and not r and trials == 1:
        raise SweepError("A sweep needs something to vary: at least one --grid KEY=V1,V2, a --random KEY=LO:HI, "
                         "or --trials N (repeats with seeds S, S+1, ...).")
    base = dict(base or {}, seed=seed)
    if epochs is not None:
        base["epochs"] = epochs
    plan = expand_trials(preset, g, r, trials, seed, base)
    for t in plan:      # every trial is valid before anything starts
        try:
            t["settings"] = resolve_settings(t["preset"], **t["overrides"])
        except SettingsError as e:
            raise SweepError(f"Trial {t['trial']} ({_describe(t)}): {e}") from None
    source_ds = dataset if dataset is not None else load(source, good_label=good_label)
    from .data import check_trainable
    check_trainable(source_ds)
    ds, record = _corrected(source_ds, corrections)
    for t in plan:
        try:
            Prepared(ds, t["settings"])
        except SettingsError as e:
            raise SweepError(f"Trial {t['trial']} ({_describe(t)}): {e}") from None
    return {"name": name or "", "preset": preset, "grid": g, "random": r, "trials_per_point": trials, "seed": seed,
            "epochs": epochs, "projection": projection,
            "data": {"source": source_ds.source, "content_hash": source_ds.content_hash,
                     "good_label": source_ds.good_label, "n": source_ds.n, "trained_hash": ds.content_hash},
            "corrections": record,
            "trials": [{"trial": t["trial"], "preset": t["preset"], "overrides": t["overrides"]} for t in plan],
            "_ds": ds}


def _corrected(ds, corrections):
    """``(data set, record)``: ``ds`` with a corrections file applied (record for config.json), or ``ds``, None."""
    if corrections in (None, "", "none"):
        return ds, None
    from .corrections import apply_corrections
    return apply_corrections(ds, corrections)


def _describe(t: dict) -> str:
    ov = {k: v for k, v in t["overrides"].items() if k not in ("epochs",)}
    return ", ".join([f"preset={t['preset']}"] + [f"{k}={v}" for k, v in ov.items()])


# ------------------------------------------------------------------ the sweep record

class Sweep:
    """One sweep's record folder, ``<runs>/.sweeps/<id>/``."""

    def __init__(self, store: RunStore, sweep_id: str):
        self.store, self.id = store, validate_run_id(sweep_id)
        self.path = store.root / SWEEPS_FOLDER / sweep_id

    def spec(self) -> dict:
        import json
        try:
            return json.loads((self.path / "sweep.json").read_text())
        except (OSError, ValueError):
            return {}

    def status(self) -> dict:
        import json
        try:
            return json.loads((self.path / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def write_status(self, state: str, **fields) -> None:
        st = self.status()
        st.update(fields, state=state, updated=now_iso())
        st.setdefault("started", now_iso())
        if state != "running":
            st["ended"] = fields.get("ended", now_iso())
        else:
            st.pop("ended", None)
        atomic_write_json(self.path / "status.json", st)

    def driver_alive(self) -> bool:
        """True while another process on this machine drives this sweep (one started on another host counts
        as alive while its status says running)."""
        st = self.status()
        if st.get("state") != "running" or st.get("pid") == os.getpid():
            return False
        return st.get("host") not in (None, platform.node()) or pid_alive(st.get("pid"), st.get("pid_start"))

    def state(self) -> str:
        """``running``, ``done``, ``stopped``, ``failed``, ``failed (interrupted)`` (its driver is gone) or
        ``starting`` (recorded less than a minute ago, no driver yet)."""
        st = self.status()
        if not st:
            try:
                young = time.time() - (self.path / "sweep.json").stat().st_mtime < 60
            except OSError:
                young = False
            return "starting" if young else "failed"
        s = st.get("state", "failed")
        if s == "running" and st.get("host") in (None, platform.node()) and not pid_alive(st.get("pid"), st.get("pid_start")):
            remove_orphan_temps(self.path)
            return "failed (interrupted)"
        return s

    def request_stop(self) -> None:
        atomic_write_text(self.path / STOP_FILE, now_iso())

    def stop_requested(self) -> bool:
        return (self.path / STOP_FILE).exists()

    def run_ids(self) -> list[str]:
        return [trial_run_id(self.id, t["trial"]) for t in self.spec().get("trials", [])]

    def runs(self) -> dict[int, Run]:
        """Trial number -> its run folder, for trials that have one."""
        out = {}
        for t in self.spec().get("trials", []):
            run = Run(self.store.root, trial_run_id(self.id, t["trial"]))
            if run.path.is_dir():
                out[t["trial"]] = run
        return out


def find_sweep(sweep_id: str, runs_dir=None) -> Sweep:
    sw = Sweep(RunStore(runs_dir), sweep_id)
    if not (sw.path / "sweep.json").exists():
        raise SweepError(f"There is no sweep '{sweep_id}' in {sw.store.root}.")
    return sw


def list_sweeps(runs_dir=None) -> list[Sweep]:
    """All recorded sweeps, newest first."""
    store = RunStore(runs_dir)
    root = store.root / SWEEPS_FOLDER
    if not root.is_dir():
        return []
    out = [Sweep(store, p.name) for p in root.iterdir() if RUN_ID_RE.match(p.name) and (p / "sweep.json").exists()]
    return sorted(out, key=lambda s: (s.spec().get("created", ""), s.id), reverse=True)


def sweep_of(config: dict) -> tuple[str, int] | None:
    """``(sweep id, trial)`` of a run's config, or None for a run that is not a sweep trial."""
    s = config.get("sweep")
    if isinstance(s, dict) and isinstance(s.get("id"), str):
        return s["id"], int(s.get("trial", 0))
    return None


def _allowed(actor, action: str, store: RunStore, sweep_id: str, **details):
    """Check ``actor``'s role (a viewer gets ``roles.AccessError``) and return a function that logs the action
    (the dashboard's action log) once it is done."""
    if actor is None:
        return lambda **more: None
    from .actions import log_action
    actor.require(action)
    verb = "stop" if action.startswith("stop") else "start"
    return lambda **more: log_action(store, actor, verb, sweep_id, kind="sweep", **details, **more)


def stop_sweep(sweep_id: str, runs_dir=None, actor=None) -> list[str]:
    """Ask every trial of a sweep to stop (within one batch) and the driver to start no more; returns the ids
    of the trials that were running. Raises :class:`SweepError` when nothing of it runs, ``roles.AccessError``
    when ``actor`` is a viewer."""
    sw = find_sweep(sweep_id, runs_dir)
    done = _allowed(actor, "stop a sweep", sw.store, sweep_id)
    running = [r.id for r in sw.runs().values() if r.state() in ("running", "starting")]
    if not running and not sw.driver_alive():
        raise SweepError(f"Sweep '{sweep_id}' is not running (state: {sw.state()}); nothing to stop.")
    sw.request_stop()
    for rid in running:
        Run(sw.store.root, rid).request_stop()
    done(trials=len(running))
    return running


# ------------------------------------------------------------------ a trial (runs in a Ray worker)

def _watch_sweep_stop(sweep_stop: Path, run: Run, done: threading.Event) -> None:
    """Turn the sweep's stop request into this trial's stop request (the trainer checks it every batch)."""
    while not done.wait(0.5):
        if sweep_stop.exists():
            run.request_stop()
            return


def _trial(config: dict, shared: dict, dataset) -> None:
    """One trial: the ordinary trainer, writing its own run folder; its log goes to the folder's train.log."""
    import contextlib
    from ray import tune
    from .presets import resolve_settings
    from .train import Prepared, train
    i = int(config["trial"])
    t = shared["trials"][i]
    root = Path(shared["runs_dir"])
    sweep_stop = root / SWEEPS_FOLDER / shared["sweep_id"] / STOP_FILE
    if sweep_stop.exists():                   # stopped before this trial began: no run folder, resume runs it
        tune.report({"state": "skipped", "trial": i})
        return
    threads = str(max(1, int(shared["cpus_per_trial"])))
    os.environ["TF_NUM_INTRAOP_THREADS"] = threads      # read when TensorFlow starts, which happens below
    os.environ["TF_NUM_INTEROP_THREADS"] = threads
    os.environ["OMP_NUM_THREADS"] = threads
    if dataset.content_hash != shared["trained_hash"]:
        raise RuntimeError(f"the data set reached this worker with content hash {dataset.content_hash[:12]}, "
                           f"not the sweep's {shared['trained_hash'][:12]}")
    run_id = trial_run_id(shared["sweep_id"], i)
    run = Run(root, run_id)
    run.path.mkdir(parents=True, exist_ok=True)
    import ray
    node = ray.get_runtime_context().get_node_id()
    done = threading.Event()
    threading.Thread(target=_watch_sweep_stop, args=(sweep_stop, run, done), daemon=True).start()
    prep = Prepared(dataset, resolve_settings(t["preset"], **t["overrides"]))
    if shared.get("corrections"):
        prep.extra_config = {"corrections": shared["corrections"]}     # as train --corrections records it
    if "keras" in sys.modules:       # a reused worker (TensorFlow loaded by an earlier trial): start clean
        sys.modules["keras"].backend.clear_session()
    try:
        with open(run.file("train.log"), "a") as log, contextlib.redirect_stderr(log):
            run, state = train(prepared=prep, name=shared["name"] or None, runs_dir=root,
                               projection=shared["projection"], run_id=run_id,
                               sweep={"id": shared["sweep_id"], "trial": i, "node": node, "host": platform.node()})
    finally:
        done.set()
    m = run.metrics()
    tune.report({"state": state, "trial": i, "run_id": run_id,
                 **{k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}})


# ------------------------------------------------------------------ the driver

def _probe(address: str, timeout: float = 5.0) -> None:
    """Fail fast with a clear message when a Ray address cannot be reached (ray.init would wait long)."""
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if address in ("auto", "local") or not host:
        return
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as e:
        raise SweepError(f"Cannot reach the Ray cluster at {address!r} ({e}). Start it with `ray start --head` on "
                         "the head machine and pass the address it prints (HOST:6379), or leave out --address to "
                         "run on this machine.") from None


def _start_ray(address: str | None, log):
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"              # Ctrl-C stops trials gracefully (below)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    t0 = time.time()
    import ray
    from .fsutil import project_root
    code = str(project_root())          # the workers import snw_core from the same project folder
    if address:
        _probe(address)
        ray.init(address=address, log_to_driver=False, logging_level="WARNING",
                 runtime_env={"env_vars": {"PYTHONPATH": code}})
    else:
        os.environ["PYTHONPATH"] = os.pathsep.join(x for x in (code, os.environ.get("PYTHONPATH")) if x)
        ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                 logging_level="WARNING", object_store_memory=200 * 1024 * 1024)
        _guard_local_ray()
    log(f"ray {ray.__version__} {'joined ' + address if address else 'started on this machine'} in "
        f"{time.time() - t0:.1f} s: {int(ray.cluster_resources().get('CPU', 0))} CPUs on "
        f"{len([n for n in ray.nodes() if n.get('Alive')])} node(s)")
    return ray


_WATCHDOG = """
import os, sys, time
def start(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None
driver, procs = int(sys.argv[1]), [tuple(map(int, x.split(":"))) for x in sys.argv[2:]]
first = start(driver)
while start(driver) == first and first is not None:
    time.sleep(0.5)
time.sleep(3)                      # Ray's own shutdown goes first
for pid, st in procs:
    if start(pid) == st:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
"""


def _descendants(root: int) -> list[tuple[int, int]]:
    """``(pid, start time)`` of every process below ``root`` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        st = _proc_start(pid)
        if st is not None:
            out.append((pid, st))
        todo += children.get(pid, [])
    return out


def _guard_local_ray() -> None:
    """When this driver is killed (SIGKILL), Ray's head processes die with it but its per-node agents stay;
    a small watchdog process ends the Ray processes this driver started once the driver is gone."""
    import subprocess
    procs = [p for p in _descendants(os.getpid())]
    if not procs:
        return
    subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid())] + [f"{p}:{s}" for p, s in procs],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


def _cpus(ray, concurrency: int | None) -> tuple[int, float]:
    total = float(ray.cluster_resources().get("CPU", 1))
    biggest = max([float(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")] or [total])
    k = int(concurrency) if concurrency else max(1, int(total))
    per = min(biggest, total / k)
    per = math.floor(per) if per >= 1 else round(per, 3)
    return k, max(per, 0.001)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _interrupts(sw: Sweep):
    """First Ctrl-C / SIGTERM: stop every trial within one batch and start no more; second Ctrl-C: leave now."""
    count = {"n": 0}

    def handler(signum, frame):
        count["n"] += 1
        if count["n"] == 1:
            _log("stopping the sweep: every trial ends within one batch (Ctrl-C again to leave at once)")
            sw.request_stop()
            for r in sw.runs().values():
                if r.state() == "running":
                    r.request_stop()
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
    return handler


def _execute(sw: Sweep, spec: dict, trials: list[int], ds, address: str | None, concurrency: int | None) -> int:
    """Run ``trials`` of a recorded sweep on Ray; returns the exit code (0 all done, 130 stopped, 1 failures)."""
    import contextlib
    sw.write_status("running", pid=os.getpid(), pid_start=_proc_start(os.getpid()), host=platform.node(),
                    started=now_iso(), trials=trials, error=None)
    old = {s: signal.signal(s, _interrupts(sw)) for s in (signal.SIGINT, signal.SIGTERM)} \
        if threading.current_thread() is threading.main_thread() else {}
    t0 = time.time()
    ray = None
    try:
        ray = _start_ray(address, _log)
        from ray import tune
        k, per = _cpus(ray, concurrency)
        _log(f"sweep {sw.id}: {len(trials)} trial(s), {k} at a time, {per:g} CPU each")
        shared = {"sweep_id": sw.id, "runs_dir": str(sw.store.root.resolve()), "trials": spec["trials"],
                  "name": spec.get("name") or "", "projection": spec.get("projection", "pca"),
                  "trained_hash": spec["data"].get("trained_hash", spec["data"]["content_hash"]),
                  "corrections": spec.get("corrections"), "cpus_per_trial": per}
        trainable = tune.with_resources(tune.with_parameters(_trial, shared=shared, dataset=ds), {"cpu": per})
        tuner = tune.Tuner(
            trainable, param_space={"trial": tune.grid_search(list(trials))},
            tune_config=tune.TuneConfig(max_concurrent_trials=k, trial_name_creator=_trial_name,
                                        trial_dirname_creator=_trial_name, reuse_actors=True),
            run_config=tune.RunConfig(name="tune", storage_path=str((sw.path).resolve()), verbose=0,
                                      callbacks=[_Progress(sw, spec)], failure_config=tune.FailureConfig(max_failures=0)))
        with contextlib.redirect_stdout(sys.stderr):        # stdout carries the sweep id alone
            tuner.fit()
    except KeyboardInterrupt:
        sw.write_status("stopped", ended=now_iso(), seconds=round(time.time() - t0, 1))
        raise
    except BaseException as e:
        sw.write_status("failed", error=f"{type(e).__name__}: {e}", ended=now_iso())
        raise
    finally:
        if ray is not None:
            ray.shutdown()
        for s, h in old.items():
            signal.signal(s, h)
    states = {i: _trial_state(sw, i) for i in trials}
    stopped = sw.stop_requested() or any(s == "stopped" for s in states.values())
    failed = [i for i, s in states.items() if s not in ("done", "stopped", "not started")]
    state = "stopped" if stopped else ("failed" if failed else "done")
    sw.write_status(state, ended=now_iso(), seconds=round(time.time() - t0, 1),
                    error=f"trial(s) {', '.join(map(str, failed))} failed" if failed else None)
    _summary(sw, spec, trials, states, time.time() - t0)
    if stopped:
        return EXIT_STOPPED
    return 1 if failed else 0


def _trial_name(trial) -> str:
    return f"trial_{int(trial.config['trial']):03d}"


def _trial_state(sw: Sweep, i: int) -> str:
    run = Run(sw.store.root, trial_run_id(sw.id, i))
    return run.state() if run.path.is_dir() else "not started"


def _progress_class():
    from ray import tune

    class Progress(tune.Callback):
        """The driver's progress lines on stderr: a trial started, ended (with its headline metric), failed."""

        def __init__(self, sw, spec):
            self.sw, self.spec = sw, spec

        def _t(self, trial):
            return self.spec["trials"][int(trial.config["trial"])]

        def on_trial_start(self, iteration, trials, trial, **info):
            t = self._t(trial)
            _log(f"trial {t['trial']} started: {trial_run_id(self.sw.id, t['trial'])} ({_describe(t)})")

        def on_trial_result(self, iteration, trials, trial, result, **info):
            t = self._t(trial)
            if result.get("state") == "skipped":
                _log(f"trial {t['trial']} skipped: the sweep was asked to stop before it began (sweep --resume runs it)")
            else:
                acc = result.get("good_defect_accuracy")
                _log(f"trial {t['trial']} {result.get('state')}: good_defect_accuracy "
                     f"{'-' if acc is None else f'{acc:.4f}'}, {result.get('train_seconds', 0):.1f} s training")

        def on_trial_error(self, iteration, trials, trial, **info):
            t = self._t(trial)
            _log(f"trial {t['trial']} failed: see {self.sw.store.root / trial_run_id(self.sw.id, t['trial'])}/train.log")

    return Progress


def _Progress(sw, spec):
    return _progress_class()(sw, spec)


def _summary(sw: Sweep, spec: dict, trials, states: dict, seconds: float) -> None:
    _log(f"sweep {sw.id}: {len(trials)} trial(s) in {seconds:.1f} s (Ray start included)")
    for i in trials:
        run = Run(sw.store.root, trial_run_id(sw.id, i))
        m = run.metrics() if run.path.is_dir() else {}
        acc = m.get("good_defect_accuracy")
        _log(f"  {run.id}\t{states[i]}\tgood_defect_accuracy={'-' if acc is None else round(float(acc), 4)}\t"
             f"{_describe(spec['trials'][i])}")


def create_sweep(plan: dict, runs_dir=None) -> tuple[Sweep, dict]:
    """Record a planned sweep (``sweep.json``) under a new sweep id; returns the sweep and its spec."""
    store = RunStore(runs_dir)
    store.root.mkdir(parents=True, exist_ok=True)
    sw = Sweep(store, _new_sweep_id(store, plan.get("name")))
    sw.path.mkdir(parents=True)
    from .train import package_versions
    spec = {k: v for k, v in plan.items() if not k.startswith("_")}
    spec.update(id=sw.id, created=now_iso(), command=sys.argv,
                versions=package_versions(("ray", "numpy", "keras", "tensorflow-cpu")))
    atomic_write_json(sw.path / "sweep.json", spec)
    return sw, spec


def execute(sw: Sweep, spec: dict, ds, address=None, concurrency=None, trials=None) -> int:
    """Run ``trials`` (default: all) of a recorded sweep; returns the exit code."""
    trials = [t["trial"] for t in spec["trials"]] if trials is None else trials
    _log(f"sweep {sw.id}: {len(trials)} trial(s) on {spec['data']['source']} ({ds.n} items); runs in {sw.store.root}")
    return _execute(sw, spec, trials, ds, address, concurrency)


def prepare_resume(sweep_id: str, runs_dir=None, dataset=None):
    """``(sweep, spec, data set, trials to run)`` for ``sweep --resume``; raises SweepError when it cannot resume."""
    """Run the trials of a recorded sweep that are not ``done``: never started, stopped, failed or interrupted.

    An unfinished trial's old folder is kept under ``.sweeps/<id>/replaced/``. Refuses while the sweep's driver
    or one of its trials is still running.
    """
    from .data import check_trainable, load
    sw = find_sweep(sweep_id, runs_dir)
    spec = sw.spec()
    if sw.driver_alive():
        raise SweepError(f"Sweep '{sweep_id}' is still running (driver pid {sw.status().get('pid')}); stop it "
                         f"first (python -m snw_core stop {sweep_id}) or wait for it to end.")
    states = {t["trial"]: _trial_state(sw, t["trial"]) for t in spec["trials"]}
    busy = [i for i, s in states.items() if s in ("running", "starting")]
    if busy:
        raise SweepError(f"Trial(s) {', '.join(map(str, busy))} of sweep '{sweep_id}' are still running; wait for "
                         f"them or stop the sweep before resuming.")
    todo = [i for i, s in states.items() if s != "done"]
    if not todo:
        return sw, spec, None, []
    d = spec["data"]
    ds = dataset if dataset is not None else load(d["source"], good_label=d.get("good_label", "0"))
    if ds.content_hash != d["content_hash"]:
        raise SweepError(f"The data source {d['source']!r} has changed since sweep '{sweep_id}' began (content "
                         f"hash {ds.content_hash[:12]}, recorded {d['content_hash'][:12]}); its trials would not "
                         "compare. Start a new sweep instead.")
    check_trainable(ds)
    rec = spec.get("corrections")
    if rec:
        import hashlib
        try:
            same = hashlib.sha256(Path(rec["file"]).read_bytes()).hexdigest() == rec["sha256"]
        except OSError:
            same = False
        if not same:
            raise SweepError(f"The corrections file {rec['file']} of sweep '{sweep_id}' is missing or has changed "
                             "since the sweep began; its trials would not compare. Start a new sweep instead.")
        ds = _corrected(ds, rec["file"])[0]
    for i in todo:
        if states[i] == "not started":
            continue
        run = Run(sw.store.root, trial_run_id(sw.id, i))
        dest = sw.path / "replaced"
        dest.mkdir(exist_ok=True)
        n = 1
        while (dest / f"{run.id}.{n}").exists():
            n += 1
        shutil.move(str(run.path), str(dest / f"{run.id}.{n}"))
    (sw.path / STOP_FILE).unlink(missing_ok=True)
    _log(f"sweep {sweep_id}: resuming {len(todo)} of {len(states)} trials ({', '.join(map(str, todo))}); "
         f"{len(states) - len(todo)} done already")
    return sw, spec, ds, todo


# ------------------------------------------------------------------ from the dashboard

def start_sweep(plan: dict, runs_dir=None, concurrency: int | None = None, actor=None) -> str:
    """Record a planned sweep and start its driver as a detached child process; return the sweep id at once.
    The calling process (the dashboard) never imports Ray. A viewer ``actor`` gets ``roles.AccessError``."""
    if concurrency is not None and concurrency < 1:
        raise SweepError(f"Trials at a time must be at least 1; got {concurrency}.")
    _allowed(actor, "start a sweep", RunStore(runs_dir), "")
    sw, spec = create_sweep(plan, runs_dir)
    _spawn_driver(sw, concurrency)
    _allowed(actor, "start a sweep", sw.store, sw.id, trials=len(spec["trials"]), data=spec["data"]["source"])()
    return sw.id


def resume_in_background(sweep_id: str, runs_dir=None, concurrency: int | None = None, actor=None) -> str:
    """Check that a sweep can resume (raises SweepError otherwise), then resume it in a detached child process."""
    done = _allowed(actor, "resume a sweep", RunStore(runs_dir), sweep_id, resume=True)
    sw, spec, ds, todo = prepare_resume(sweep_id, runs_dir)
    if not todo:
        raise SweepError(f"Every trial of sweep '{sweep_id}' is done; nothing to resume.")
    _spawn_driver(sw, concurrency)
    done(trials=len(todo))
    return sw.id


def _spawn_driver(sw: Sweep, concurrency: int | None) -> None:
    """``python -m snw_core sweep --resume ID`` (it runs every trial that is not done), detached; its output goes
    to ``driver.log`` in the sweep's record folder; status.json names its pid at once."""
    import subprocess
    from .fsutil import project_root
    cmd = [sys.executable, "-m", "snw_core", "sweep", "--resume", sw.id, "--runs-dir", str(sw.store.root)]
    if concurrency:
        cmd += ["--concurrency", str(concurrency)]
    with open(sw.path / "driver.log", "ab") as log:
        proc = subprocess.Popen(cmd, cwd=project_root(), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env=dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2"))
    sw.write_status("running", pid=proc.pid, pid_start=_proc_start(proc.pid), host=platform.node(), started=now_iso())
    threading.Thread(target=proc.wait, daemon=True).start()     # reap the child when it ends


# ------------------------------------------------------------------ the command line

def add_parser(sub) -> None:
    """Register ``sweep`` on the command line's sub-parsers."""
    p = sub.add_parser("sweep", help="run many trainings on Ray Tune (this machine or a Ray cluster); "
                                     "the last stdout line is the sweep id")
    p.add_argument("--data", default="default")
    p.add_argument("--preset", default="default")
    p.add_argument("--good-label", default="0")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="try every listed value (all --grid keys combined); keys: preset and the settings of "
                        "train (learning_rate, margin, embedding_dim, batch_size, epochs, seed, ...)")
    p.add_argument("--random", action="append", default=[], metavar="KEY=LO:HI[:log]",
                   help="draw a value per trial, uniform (or log-uniform) between LO and HI")
    p.add_argument("--trials", type=int, default=1, help="trials per grid point (random draws, or seed repeats)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="trials at a time (default: one per CPU); each gets its share of the CPUs")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=0, help="training seed of every trial and seed of the random draws")
    p.add_argument("--address", default=None, help="join this Ray cluster (HOST:PORT) instead of starting Ray here")
    p.add_argument("--name", default=None)
    p.add_argument("--projection", default="pca", choices=("umap", "pca", "none"),
                   help="2-D projection stored with every trial (default pca: instant; the Embeddings page computes "
                        "UMAP on demand)")
    p.add_argument("--corrections", default=None, help="corrections CSV applied on load, as for train (the source "
                                                          "is not changed)")
    p.add_argument("--resume", default=None, metavar="SWEEP_ID", help="run the trials of this sweep that are not done")
    p.add_argument("--runs-dir", default=None, help="run store folder (default: runs/ or $SNW_RUNS_DIR)")


def cli(a: argparse.Namespace) -> int:
    """``python -m snw_core sweep``: progress on stderr, the sweep id as the last stdout line."""
    if a.concurrency is not None and a.concurrency < 1:
        raise SweepError(f"--concurrency must be at least 1; got {a.concurrency}.")
    if a.address:
        _probe(a.address)
    if a.resume:
        given = [f for f, v in (("--grid", a.grid), ("--random", a.random), ("--corrections", a.corrections)) if v]
        if given:
            raise SweepError(f"--resume runs the recorded trials of a sweep; leave out {' and '.join(given)}.")
        sw, spec, ds, todo = prepare_resume(a.resume, a.runs_dir)
        if not todo:
            _log(f"sweep {sw.id}: all its trials are done; nothing to resume")
            print(sw.id, flush=True)
            return 0
    else:
        plan = plan_sweep(a.data, a.preset, a.grid, a.random, a.trials, a.epochs, a.seed, a.good_label, a.name,
                          a.projection, corrections=a.corrections)
        sw, spec = create_sweep(plan, a.runs_dir)
        ds, todo = plan["_ds"], None
    try:
        code = execute(sw, spec, ds, a.address, a.concurrency, todo)
    except KeyboardInterrupt:
        code = EXIT_STOPPED
    print(sw.id, flush=True)
    return code
