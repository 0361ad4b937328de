"""Dashboard timing benchmark: time to first render after start-up, and page switches with cached data.

Usage (from the project root):  .venv/bin/python tools/bench_pages.py [--rounds 3] [--json FILE] [--data SOURCE]

Starts `streamlit run app.py` on a free loopback port (the run store is $SNW_RUNS_DIR or runs/), opens the
first page in headless Chromium and reports the seconds from process start to a rendered page (`launch_to_render`),
then switches between every page through the sidebar navigation `--rounds` times and reports each switch
(the first round loads data and models into the caches; later rounds are the "cached" numbers).
Targets (issue 3): first page within 5 s of start-up on a warm set-up; switching with cached data under 1 s.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from browser import CHROMIUM, CHROMIUM_ARGS, AppServer, wait_idle  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None)
    ap.add_argument("--data", default=None, help="start-up data source (SNW_DATA_SOURCE); default: the embedded set")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    env = {"SNW_DATA_SOURCE": a.data} if a.data else {}
    t_launch = time.time()
    server = AppServer(env, Path(tempfile.mkdtemp(prefix="snw-bench-")) / "streamlit.log")
    out = {"cores": os.cpu_count(), "switches": []}
    try:
        out["health_s"] = round(server.wait_healthy(), 3)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            t0 = time.time()
            page.goto(server.url)
            done = wait_idle(page, timeout=120)
            out["first_render_s"] = round(done - t0, 3)
            out["launch_to_render_s"] = round(done - t_launch, 3)
            links = page.locator("[data-testid='stSidebarNavLink']")
            names = [t.strip().split("\n")[-1] for t in links.all_inner_texts()]
            for rnd in range(a.rounds):
                for name in names[1:] + names[:1]:
                    t0 = time.time()
                    page.locator("[data-testid='stSidebarNavLink']").filter(has_text=name).first.click()
                    want = "/" if name == names[0] else "/" + name.lower()     # the default page lives at /
                    page.wait_for_function("(p) => location.pathname.replace(/\\/+$/, '') === p.replace(/\\/+$/, '')",
                                           arg=want, timeout=60_000)
                    done = wait_idle(page, timeout=120)
                    exc = page.locator("[data-testid='stException']").count()
                    out["switches"].append({"round": rnd + 1, "page": name, "seconds": round(done - t0, 3),
                                            "exceptions": exc})
            b.close()
    finally:
        server.stop()
    for s in out["switches"]:
        print(f"round {s['round']}  {s['page']:<11} {s['seconds']:6.2f} s" + ("  EXCEPTION" if s["exceptions"] else ""))
    cached = [s["seconds"] for s in out["switches"] if s["round"] > 1]
    out["cached_switch_median_s"] = round(statistics.median(cached), 3) if cached else None
    out["cached_switch_max_s"] = round(max(cached), 3) if cached else None
    print(f"health {out['health_s']} s, launch to first render {out['launch_to_render_s']} s "
          f"(page render {out['first_render_s']} s); cached page switch median {out['cached_switch_median_s']} s, "
          f"max {out['cached_switch_max_s']} s on {out['cores']} cores")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return 1 if any(s["exceptions"] for s in out["switches"]) else 0


if __name__ == "__main__":
    sys.exit(main())
