"""Bounded load test on localhost: N browser sessions open the dashboard's pages while a training runs.

Usage (from the project root, with the project's python):
    .venv/bin/python tools/load_test.py [--sessions 20] [--concurrency 5] [--train-epochs 3] [--viewers 0.5]
                                        [--json FILE]

Starts its own `streamlit run` on a free loopback port with a temporary run store, starts a seed-preset training
on a small synthetic set through the command line, then opens --sessions browser pages (Chromium, headless),
--concurrency at a time, cycling through every page, and reports page latency (time until the app is idle with
no exception) and errors. With --viewers F, that share of the sessions opens its page with ``?view=viewer`` (a
viewer session of the same server) and must show no Start/Stop/Delete control; the others are the local engineer.
Only 127.0.0.1 is contacted; every loop is bounded in count and time.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from browser import CHROMIUM, CHROMIUM_ARGS, AppServer, wait_idle  # noqa: E402

PATHS = ["", "pairs", "train", "accuracy", "embeddings", "runs"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=5)
    ap.add_argument("--train-epochs", type=int, default=3)
    ap.add_argument("--viewers", type=float, default=0.0, help="share of the sessions that are viewers (0..1)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright
    from snw_core import synthetic

    tmp = Path(tempfile.mkdtemp(prefix="snw-load-"))
    data = synthetic.write_parquet(tmp / "load.parquet", n=600, seed=0)
    env = {"SNW_RUNS_DIR": str(tmp / "runs"), "SNW_DATA_SOURCE": str(data), "SNW_DATA_ROOTS": str(tmp)}
    server = AppServer(env, tmp / "streamlit.log")
    trainer = None
    results = []
    try:
        health_s = server.wait_healthy()
        trainer = subprocess.Popen([sys.executable, "-m", "snw_core", "train", "--data", str(data), "--preset", "seed",
                                    "--epochs", str(a.train_epochs), "--projection", "pca", "--run-id", "load-test"],
                                   cwd=ROOT, env=dict(os.environ, **env), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        lock = threading.Lock()
        todo = list(range(a.sessions))

        def worker():
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                while True:
                    with lock:
                        if not todo:
                            break
                        i = todo.pop(0)
                    path = PATHS[i % len(PATHS)]
                    k = i + i // len(PATHS)            # spread evenly over sessions and pages (every 2nd at 0.5)
                    as_viewer = (k + 1) * a.viewers >= int(k * a.viewers) + 1
                    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
                    page = ctx.new_page()
                    t0 = time.time()
                    err = None
                    try:
                        page.goto(f"{server.url}/{path}" + ("?view=viewer" if as_viewer else ""), timeout=120_000)
                        wait_idle(page, timeout=120)
                        if page.locator("[data-testid='stException']").count():
                            err = "exception: " + page.locator("[data-testid='stException']").first.inner_text()[:400]
                        elif as_viewer:
                            side = page.locator("[data-testid='stSidebar']").inner_text()
                            actions = [t for t in page.locator("button").all_inner_texts()
                                       if re.search(r"\b(start|stop|delete|sweep|restore|empty)\b", t, re.I)]
                            if "Viewer:" not in side or actions:
                                err = f"viewer session is not a plain viewer: controls {actions}"
                    except Exception as e:  # report, never hide
                        err = f"{type(e).__name__}: {e}"[:200]
                    dt = time.time() - t0
                    with lock:
                        results.append({"session": i, "page": path or "gallery", "seconds": round(dt, 3), "error": err,
                                        "role": "viewer" if as_viewer else "engineer",
                                        "training_running": trainer.poll() is None})
                    ctx.close()
                browser.close()

        t_all = time.time()
        threads = [threading.Thread(target=worker) for _ in range(max(1, a.concurrency))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=900)
        wall = time.time() - t_all
        trainer.wait(timeout=600)
    finally:
        if trainer and trainer.poll() is None:
            trainer.kill()
        server.stop()
    lat = sorted(r["seconds"] for r in results)
    summary = {"sessions": len(results), "concurrency": a.concurrency, "errors": sum(1 for r in results if r["error"]),
               "during_training": sum(1 for r in results if r["training_running"]),
               "viewers": sum(1 for r in results if r["role"] == "viewer"),
               "p50_s": round(statistics.median(lat), 3) if lat else None,
               "p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 3) if lat else None,
               "max_s": round(max(lat), 3) if lat else None, "wall_s": round(wall, 1), "health_s": round(health_s, 2),
               "training_exit_code": trainer.returncode, "cores": os.cpu_count()}
    for r in sorted(results, key=lambda r: r["session"]):
        print(f"session {r['session']:3d}  {r['page']:<11} {r['role']:<8} {r['seconds']:7.2f} s  "
              f"{'training' if r['training_running'] else '        '}  {r['error'] or 'ok'}")
    print(json.dumps(summary))
    if a.json:
        Path(a.json).write_text(json.dumps({"summary": summary, "sessions": results}, indent=2))
    return 1 if summary["errors"] or summary["training_exit_code"] != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
