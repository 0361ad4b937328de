"""Screenshots of the dashboard for the README, taken from the real app in headless Chromium.

Usage (from the project root; `make screenshots` runs it):

    .venv/bin/python tools/screenshots.py [--out docs/screenshots] [--runs-dir DIR] [--seed 0]

Needs one finished run. With ``--runs-dir`` the newest finished run there is shown; without it the tool trains
one in a temporary run store, exactly as a user would (``python -m snw_core train --data default --preset
default --seed S``: about a minute on two cores), so the pictures show the embedded data and the default preset.
Starts ``streamlit run app.py`` on a free loopback port, opens each page, waits until the app is idle and plotly
has drawn, and writes one PNG per page (the browser window, 1400 x 900) to ``--out``.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from browser import CHROMIUM, CHROMIUM_ARGS, AppServer, wait_idle  # noqa: E402

#: (file name, page path, what to wait for before the picture)
SHOTS = [
    ("accuracy.png", "accuracy", ".js-plotly-plot .main-svg"),
    ("embeddings.png", "embeddings", ".js-plotly-plot .main-svg"),
    ("audit.png", "audit", "[data-testid='stImage']"),
]


def finished_run(runs_dir: Path):
    from snw_core.runs import RunStore
    for run in RunStore(runs_dir).list():
        if run.metrics() and run.file("embeddings.npz").exists():
            return run.id
    return None


def train(runs_dir: Path, seed: int) -> str:
    print(f"training a default run on the embedded data into {runs_dir} (about a minute) ...", file=sys.stderr)
    r = subprocess.run([sys.executable, "-m", "snw_core", "train", "--data", "default", "--preset", "default",
                        "--seed", str(seed), "--name", "screenshots", "--quiet"], cwd=ROOT,
                       env=dict(os.environ, SNW_RUNS_DIR=str(runs_dir)), capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"training failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    return r.stdout.strip().splitlines()[-1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="docs/screenshots")
    ap.add_argument("--runs-dir", default=None, help="show the newest finished run of this run store")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=900)
    a = ap.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        sys.exit(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory(prefix="snw-screenshots-")
    runs_dir = Path(a.runs_dir) if a.runs_dir else Path(tmp.name) / "runs"
    run_id = finished_run(runs_dir) if a.runs_dir else None
    if run_id is None:
        if a.runs_dir:
            sys.exit(f"no finished run in {runs_dir}; train one first or leave out --runs-dir")
        run_id = train(runs_dir, a.seed)
    from playwright.sync_api import sync_playwright
    server = AppServer({"SNW_RUNS_DIR": str(runs_dir), "SNW_DATA_SOURCE": "default"}, Path(tmp.name) / "streamlit.log")
    try:
        server.wait_healthy()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": a.width, "height": a.height})
            for name, path, ready in SHOTS:
                page.goto(f"{server.url}/{path}")
                wait_idle(page, timeout=180)
                page.wait_for_selector(ready, timeout=60000)
                wait_idle(page, timeout=60)
                time.sleep(0.5)              # plotly's transitions
                errors = page.locator("[data-testid='stException']")
                if errors.count():
                    sys.exit(f"page '{path or 'gallery'}' shows an exception: {errors.first.inner_text()[:500]}")
                page.screenshot(path=str(out / name))
                print(out / name)
            browser.close()
    finally:
        server.stop()
        tmp.cleanup()
    print(f"run shown: {run_id}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
