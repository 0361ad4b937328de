"""Latency per image and size on disk of a run's line bundle (LiteRT model + references + script).

    .venv/bin/python tools/bench_bundle.py [RUN_ID] [--runs-dir DIR] [--bundle DIR] [--n 500] [--threads 1]

Without --bundle the run (default: the newest finished one) is exported to a temporary folder first.
Measured with the bundle's own code (inspect_bundle.py), as on the line:

- single image, in memory: embed (LiteRT) + score + pin vote, median / p95 over --n calls after a warm-up;
- single image from a PNG file: the same plus reading and decoding the file with Pillow;
- batch of 32, per image;
- cold start: ``python inspect_bundle.py one.png`` as a new process (interpreter start, imports, model load).

Timing is wall clock on a machine that may be shared; the load average is printed next to the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):   # as inspect_bundle.py does
    os.environ.setdefault(_var, "1")


def _images(bundle, run, n: int = 64):
    """Test items of the run's data set when it loads and matches; else the bundle's check images."""
    import numpy as np
    if run is not None:
        try:
            from snw_core.data import load
            cfg = run.config()
            ds = load(cfg["data"]["source"], good_label=cfg["data"]["good_label"])
            if ds.content_hash == cfg["data"]["content_hash"]:
                split = np.load(run.file("embeddings.npz"), allow_pickle=False)["split"]
                return ds.images[np.flatnonzero(split == "test")[:n]], "test items of the run's data set"
        except Exception:
            pass
    with np.load(Path(bundle.path) / "check.npz", allow_pickle=False) as z:
        return z["images"], "the bundle's check images"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_id", nargs="?", default=None)
    ap.add_argument("--runs-dir", default=None)
    ap.add_argument("--bundle", default=None, help="an exported bundle folder (skips the export)")
    ap.add_argument("--n", type=int, default=500, help="single-image calls timed")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)

    from snw_core.export import export_bundle, load_bundle
    from snw_core.runs import RunStore

    run = None
    tmp = None
    if a.bundle:
        folder = Path(a.bundle)
    else:
        store = RunStore(a.runs_dir)
        if a.run_id:
            run = store.get(a.run_id)
        else:
            done = [r for r in store.list() if r.metrics().get("threshold") is not None]
            if not done:
                print("no finished run to export; pass RUN_ID or --bundle", file=sys.stderr)
                return 2
            run = done[0]
        tmp = tempfile.TemporaryDirectory(prefix="snw-bench-bundle-")
        t0 = time.perf_counter()
        folder = export_bundle(run, Path(tmp.name) / "bundle")
        print(f"exported run {run.id} in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    bundle = load_bundle(folder, num_threads=a.threads)
    load_s = time.perf_counter() - t0
    mod = sys.modules[type(bundle).__module__]
    images, what = _images(bundle, run)

    files = sorted(p for p in folder.iterdir() if p.is_file())
    total = sum(p.stat().st_size for p in files)
    print(f"bundle {folder} ({bundle.meta['run_id']}, preset {bundle.meta.get('preset')}):")
    for p in files:
        print(f"  {p.name:<20} {p.stat().st_size / 1e3:>9.1f} kB")
    print(f"  {'total':<20} {total / 1e3:>9.1f} kB  ({total / 1e6:.2f} MB)")

    r = mod.bench(bundle, images, n=a.n)
    with tempfile.TemporaryDirectory(prefix="snw-bench-png-") as png_dir:     # removed when the measurement ends
        png = Path(png_dir) / "item.png"
        from PIL import Image
        Image.fromarray(images[0]).save(png)
        shape = bundle.image_shape
        t = []
        for _ in range(max(50, a.n // 5)):
            t0 = time.perf_counter()
            imgs, names = mod.read_images([str(png)], shape)
            bundle.judge(imgs, names)
            t.append(time.perf_counter() - t0)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        cold = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, str(folder / "inspect_bundle.py"), str(png)], capture_output=True,
                                 text=True, env=env, cwd=png.parent)
            cold.append(time.perf_counter() - t0)
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                return 1
    load1 = os.getloadavg()[0]
    print(f"runtime {r['runtime']}, {a.threads} thread(s), images: {what}, CPU load average {load1:.1f} "
          f"on {os.cpu_count()} cores")
    print(f"  bundle load (model + references)   {load_s * 1e3:8.1f} ms   once per process")
    print(f"  one image, in memory               {r['single_ms_median']:8.3f} ms   median of {a.n} "
          f"(p95 {r['single_ms_p95']:.3f} ms)")
    print(f"  one image from a PNG file          {statistics.median(t) * 1e3:8.3f} ms   median (read + decode + judge)")
    print(f"  batch of {r['batch']}, per image            {r['batch_ms_per_image_median']:8.3f} ms   median")
    print(f"  cold start, new process per image  {min(cold) * 1e3:8.0f} ms   best of 3 "
          "(python + numpy + LiteRT import + model load)")
    print(f"  takt budget 10 s: one warm judgement uses {100 * r['single_ms_median'] / 1e4:.4f} % of it")
    print(json.dumps({"bundle_bytes": total, **r, "png_ms_median": statistics.median(t) * 1e3,
                      "cold_start_ms": min(cold) * 1e3, "load_ms": load_s * 1e3, "loadavg": load1}))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
