"""Wall time of a sweep against the same trials trained one after another with ``train``.

    python tools/bench_sweep.py --data default --preset seed --epochs 2 \\
        --grid learning_rate=0.0005,0.001 --grid margin=0.5,1 --concurrency 2 --json docs/bench_sweep.json

Runs ``python -m snw_core sweep ...`` (Ray start included in its time), then, for every trial the sweep
recorded, ``python -m snw_core train`` with the same preset and settings, one after another (each a fresh
process with TensorFlow's default threads: every core). Prints both wall times, their ratio and every run's
good/defect accuracy; both use a temporary run store unless --runs-dir is given.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from snw_core import launch
    from snw_core.runs import RunStore
    from snw_core.sweep import plan_sweep, trial_run_id
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="default")
    ap.add_argument("--preset", default="seed")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--grid", action="append", default=[])
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--projection", default="pca")
    ap.add_argument("--runs-dir", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--sequential-first", action="store_true", help="train one after another first, then sweep")
    a = ap.parse_args(argv)
    runs = Path(a.runs_dir or tempfile.mkdtemp(prefix="snw-bench-sweep-"))
    env = dict(os.environ, SNW_RUNS_DIR=str(runs))
    store = RunStore(runs)
    cmd = [sys.executable, "-m", "snw_core", "sweep", "--data", a.data, "--preset", a.preset, "--epochs", str(a.epochs),
           "--concurrency", str(a.concurrency), "--projection", a.projection]
    for g in a.grid:
        cmd += ["--grid", g]
    cmd += ["--runs-dir", str(runs)]            # last: left out of the recorded command
    trials = [dict(t, row={"trial": t["trial"], "settings": t["overrides"]}) for t in
              plan_sweep(a.data, a.preset, a.grid, epochs=a.epochs, projection=a.projection)["trials"]]

    def sweep_part() -> float:
        t0 = time.time()
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.time() - t0
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        sid = r.stdout.strip().splitlines()[-1]
        for t in trials:
            m = store.get(trial_run_id(sid, t["trial"])).metrics()
            t["row"].update(sweep_gd_acc=m.get("good_defect_accuracy"), sweep_train_seconds=m.get("train_seconds"))
        return seconds

    def sequential_part() -> float:
        t0 = time.time()
        for t in trials:
            tc = launch.train_command(a.data, t["preset"], t["overrides"], runs_dir=runs, projection=a.projection,
                                      name=f"seq-{t['trial']}")
            t1 = time.time()
            out = subprocess.run(tc + ["--quiet"], cwd=ROOT, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(out.stderr)
            m = store.get(out.stdout.strip().splitlines()[-1]).metrics()
            t["row"].update(train_wall_seconds=round(time.time() - t1, 1), train_gd_acc=m.get("good_defect_accuracy"),
                            train_train_seconds=m.get("train_seconds"))
        return time.time() - t0

    if a.sequential_first:
        seq_s = sequential_part()
        sweep_s = sweep_part()
    else:
        sweep_s = sweep_part()
        seq_s = sequential_part()
    rows = [t["row"] for t in trials]
    result = {"sweep_seconds": round(sweep_s, 1), "sequential_seconds": round(seq_s, 1),
              "ratio": round(sweep_s / seq_s, 3), "trials": rows, "concurrency": a.concurrency, "cores": os.cpu_count(),
              "order": "sequential first" if a.sequential_first else "sweep first", "command": " ".join(cmd[1:-2]), "loadavg_1_5_15_at_end": os.getloadavg()}
    print(json.dumps(result, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
