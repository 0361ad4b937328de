"""Shared fixtures: tiny data sets made by the project itself, and an isolated data cache and run store.

Every test session gets its own SNW_DATA_CACHE and SNW_RUNS_DIR, so tests never touch the real
data_cache/ or runs/ and never need the network.
"""
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="snw-tests-"))
os.environ["SNW_DATA_CACHE"] = str(_SESSION_TMP / "data_cache")
os.environ["SNW_RUNS_DIR"] = str(_SESSION_TMP / "runs")
os.environ["HF_HUB_OFFLINE"] = "1"           # tests never download
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_sessionfinish(session, exitstatus):
    """The session's data cache and run store go with the session: a test run leaves nothing in the temp folder."""
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_parquet() -> Path:
    """130 synthetic connector images (26 x 36): 43 good, 7-8 per pin address 1..12."""
    from snw_core import synthetic
    return synthetic.write_parquet(_SESSION_TMP / "tiny.parquet", n=130, seed=0)


@pytest.fixture(scope="session")
def tiny_dataset(tiny_parquet):
    from snw_core import data
    return data.load(str(tiny_parquet))


@pytest.fixture()
def runs_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "runs"
    monkeypatch.setenv("SNW_RUNS_DIR", str(d))
    return d


def write_png_folder(root: Path, labels_to_images: dict) -> Path:
    """Write {label: [uint8 arrays]} as root/<label>/<i>.png."""
    from PIL import Image
    for lab, imgs in labels_to_images.items():
        (root / lab).mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(imgs):
            Image.fromarray(np.asarray(im, np.uint8)).save(root / lab / f"{i}.png")
    return root


def write_parquet_rows(path: Path, labels, blobs, dirnames=None) -> Path:
    """A seed-schema parquet with given labels and raw image bytes (for bad-input tests)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    cols = {"label": pa.array([str(x) for x in labels]),
            "image": pa.array([{"bytes": b, "path": None} for b in blobs],
                              type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))}
    if dirnames is not None:
        cols["dirname"] = pa.array(dirnames)
    pq.write_table(pa.table(cols), path)
    return path


def png_bytes(arr) -> bytes:
    import io
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.asarray(arr, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
