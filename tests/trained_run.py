"""One run trained with the real command line, shared by the inspect/export tests of one test process.

    runs_dir, run_id = trained_run(tiny_parquet)

``python -m snw_core train --data tiny.parquet --preset seed --epochs 1 --projection none`` into its own run
store (a temporary folder), once per process; every test that calls it is marked slow.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_CACHE: dict = {}


def trained_run(tiny_parquet, preset: str = "seed") -> tuple[Path, str]:
    """A run of ``preset`` (seed: the dense twin; default: the conv twin, with a patch memory bank)."""
    key = f"run-{preset}"
    if key not in _CACHE:
        runs = Path(tempfile.mkdtemp(prefix="snw-inspect-runs-"))
        atexit.register(shutil.rmtree, runs, ignore_errors=True)
        env = dict(os.environ, SNW_RUNS_DIR=str(runs))
        r = subprocess.run([sys.executable, "-m", "snw_core", "train", "--data", str(tiny_parquet), "--preset", preset,
                            "--epochs", "1", "--projection", "none", "--quiet"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        _CACHE[key] = (runs, r.stdout.strip().splitlines()[-1])
    return _CACHE[key]


def write_pngs(images, folder: Path, names) -> list[str]:
    """Write uint8 images (n, h, w) as PNG files named ``names``; return their paths."""
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for img, name in zip(images, names):
        p = folder / name
        Image.fromarray(img).save(p)
        paths.append(str(p))
    return paths


class FixedGate:
    """A stand-in for a run's gate whose check gives the same checks (a dict of arrays) for any images: the tests
    of the verdict's rules set the gate's evidence by hand."""

    def __init__(self, checks: dict):
        self.checks = checks

    def check(self, images, filled=None) -> dict:
        return dict(self.checks)
