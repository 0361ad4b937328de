"""Dashboard timing benchmark: time to first render after start-up, and page switches with cached data.

Usage (from the project root):  .venv/bin/python tools/bench_pages.py [--rounds 3] [--json FILE] [--data SOURCE]

Starts `streamlit run app.py` on a free loopback port (the run store is $SNW_RUNS_DIR or runs/), opens the
first page in headless Chromium and reports the seconds from process start to a rendered page
(`launch_to_render_cold`: a browser that never saw the app, so it downloads and parses the dashboard's
JavaScript). Then it restarts the app and opens it again in the same browser profile (`launch_to_render_warm`:
the everyday case, JavaScript from the browser cache) and switches between every page through the sidebar
navigation `--rounds` times, reporting each switch (the first round loads data and models into the caches;
later rounds are the "cached" numbers).
A page counts as rendered when the app's script has finished AND the page's content has stopped changing for
0.3 s (plotly draws its charts after the script has ended; the time reported is that of the last change, not the
end of the 0.3 s wait; see MUTATION_PROBE for what counts as content).
Targets: first page within 5 s of start-up on a warm set-up; switching with cached data under 1 s.
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


# records the time (performance.now(), ms) of the newest change of the page's content (main area and sidebar).
# Not counted: <head> (styles come with the content anyway), the "Running..." status widget and the header (they
# animate after the page is done), and the children of a <canvas> (the data grid's accessibility table, never drawn).
MUTATION_PROBE = """
window.__snwLast = 0;
document.addEventListener('DOMContentLoaded', () => new MutationObserver((muts) => {
  for (const m of muts) {
    const e = m.target.nodeType === 1 ? m.target : m.target.parentElement;
    if (!e || e.closest('head, [data-testid="stStatusWidget"], [data-testid="stHeader"]')) continue;
    if (m.type === 'childList' && e.closest('canvas')) continue;
    window.__snwLast = performance.now();
  }
}).observe(document.documentElement, {subtree: true, childList: true, attributes: true, characterData: true}));
"""


def rendered_at(page, click_wall: float, click_perf: float, idle_at: float, quiet: float = 0.3,
                timeout: float = 15) -> tuple[float, bool]:
    """Wall-clock time of the page's last DOM change after an action taken at ``click_wall`` (``click_perf`` on
    the page's clock), once nothing has changed for ``quiet`` s; never before ``idle_at`` (the script's end).
    Returns (time, settled); settled is False when the DOM kept changing for ``timeout`` s (time = idle_at)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        last, now = page.evaluate("[window.__snwLast || 0, performance.now()]")
        if now - last >= quiet * 1000:
            return max(idle_at, click_wall + (last - click_perf) / 1000), True
        time.sleep(0.05)
    return idle_at, False


def server_time(log: Path, page_name: str, seen: int) -> tuple[float | None, int]:
    """The script time the app logged (SNW_PAGE_TIMING) for its newest run of ``page_name`` after line ``seen``."""
    lines = [ln.split() for ln in log.read_text(errors="replace").splitlines() if ln.startswith("snw-page-timing ")]
    hits = [float(parts[-1]) for parts in lines[seen:] if " ".join(parts[1:-1]) == page_name]
    return (hits[-1] if hits else None), len(lines)


def switch_pages(page, rounds: int, out: dict, log: Path) -> None:
    """Click through every page of the sidebar ``rounds`` times; the time from the click to the rendered page,
    and the part of it the app's script took on the server."""
    _, seen = server_time(log, "", 0)
    links = page.locator("[data-testid='stSidebarNavLink']")
    names = [t.strip().split("\n")[-1] for t in links.all_inner_texts()]
    for rnd in range(rounds):
        for name in names[1:] + names[:1]:
            t_perf = page.evaluate("performance.now()")
            t0 = time.time()
            page.locator("[data-testid='stSidebarNavLink']").filter(has_text=name).first.click()
            want = "/" if name == names[0] else "/" + name.lower()     # the default page lives at /
            page.wait_for_function("(p) => location.pathname.replace(/\\/+$/, '') === p.replace(/\\/+$/, '')",
                                   arg=want, timeout=60_000)
            done, settled = rendered_at(page, t0, t_perf, wait_idle(page, timeout=120))
            exc = page.locator("[data-testid='stException']").count()
            server, seen = server_time(log, name, seen)
            out["switches"].append({"round": rnd + 1, "page": name, "seconds": round(done - t0, 3),
                                    "server_seconds": server, "exceptions": exc, "settled": settled})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None)
    ap.add_argument("--data", default=None, help="start-up data source (SNW_DATA_SOURCE); default: the embedded set")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    env = {"SNW_DATA_SOURCE": a.data} if a.data else {}
    env["SNW_PAGE_TIMING"] = "1"
    tmp = Path(tempfile.mkdtemp(prefix="snw-bench-"))
    out = {"cores": os.cpu_count(), "switches": []}
    with sync_playwright() as p:
        # one browser profile for the whole benchmark, as a user's browser: the first visit loads the
        # dashboard's JavaScript (cold cache); after a restart of the app it comes from the browser cache
        ctx = p.chromium.launch_persistent_context(str(tmp / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                   viewport={"width": 1400, "height": 1000})
        ctx.add_init_script(MUTATION_PROBE)
        try:
            for visit in ("cold", "warm"):
                t_launch = time.time()
                log = tmp / f"streamlit-{visit}.log"
                server = AppServer(env, log)
                try:
                    out[f"health_{visit}_s"] = round(server.wait_healthy(), 3)
                    page = ctx.new_page()
                    t0 = time.time()
                    page.goto(server.url)
                    # first content: the page's title is on screen (the rest may still be loading)
                    page.wait_for_selector("[data-testid='stMain'] h1", timeout=120_000)
                    out[f"launch_to_first_content_{visit}_s"] = round(time.time() - t_launch, 3)
                    # the page's clock starts at navigation (t0): its last DOM change is t0 + last / 1000
                    done, _ = rendered_at(page, t0, 0.0, wait_idle(page, timeout=120))
                    out[f"first_render_{visit}_s"] = round(done - t0, 3)
                    out[f"launch_to_render_{visit}_s"] = round(done - t_launch, 3)
                    if visit == "warm":
                        switch_pages(page, a.rounds, out, log)
                    page.close()
                finally:
                    server.stop()
        finally:
            ctx.close()
    for s in out["switches"]:
        srv = "   n/a" if s["server_seconds"] is None else f"{s['server_seconds']:6.2f}"
        print(f"round {s['round']}  {s['page']:<11} {s['seconds']:6.2f} s  (server script {srv} s)"
              + ("  EXCEPTION" if s["exceptions"] else "") + ("" if s["settled"] else "  (DOM kept changing)"))
    cached = [s["seconds"] for s in out["switches"] if s["round"] > 1]
    out["cached_switch_median_s"] = round(statistics.median(cached), 3) if cached else None
    out["cached_switch_max_s"] = round(max(cached), 3) if cached else None
    srv = [s["server_seconds"] for s in out["switches"] if s["round"] > 1 and s["server_seconds"] is not None]
    out["cached_server_median_s"] = round(statistics.median(srv), 3) if srv else None
    out["cached_server_max_s"] = round(max(srv), 3) if srv else None
    for visit, what in (("cold", "first visit, empty browser cache"), ("warm", "app restarted, browser cache warm")):
        print(f"{visit}: {what}: healthy after {out[f'health_{visit}_s']} s, first content (page title) "
              f"{out[f'launch_to_first_content_{visit}_s']} s and whole first page rendered "
              f"{out[f'launch_to_render_{visit}_s']} s after start (page load {out[f'first_render_{visit}_s']} s)")
    per_page = {}
    for s in out["switches"]:
        if s["round"] > 1:
            per_page.setdefault(s["page"], []).append(s["seconds"])
    out["cached_switch_median_by_page_s"] = {k: round(statistics.median(v), 3) for k, v in per_page.items()}
    print("cached switch to each page, median: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in out["cached_switch_median_by_page_s"].items()))
    print(f"page switches with cached data (rounds 2+): median {out['cached_switch_median_s']} s, "
          f"max {out['cached_switch_max_s']} s on {out['cores']} cores; of which the app's script on the server: "
          f"median {out['cached_server_median_s']} s, max {out['cached_server_max_s']} s (the rest is the browser, "
          "which here shares the 2 cores and renders without a GPU)")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return 1 if any(s["exceptions"] for s in out["switches"]) else 0


if __name__ == "__main__":
    sys.exit(main())
