"""Files the project writes get the mode the user's umask gives any new file (not mkstemp's private 0600)."""
import os
import stat

import numpy as np
import pytest

from snw_core import fsutil
from snw_core.runs import RunStore


@pytest.fixture()
def umask():
    """Set a umask for one test: ``umask(0o022)``; the old one comes back afterwards."""
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_without_changing_it(umask):
    umask(0o027)
    assert fsutil.current_umask() == 0o027
    assert fsutil.current_umask() == 0o027


@pytest.mark.parametrize("mask, want", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mask, want):
    umask(mask)
    fsutil.atomic_write_json(tmp_path / "a.json", {"x": 1})
    with fsutil.atomic_writer(tmp_path / "m.keras") as tmp:      # a writer that reopens the temp file (keras)
        tmp.write_bytes(b"model")
    assert mode(tmp_path / "a.json") == want
    assert mode(tmp_path / "m.keras") == want
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_run_store_files_are_0644_under_umask_022(runs_dir, umask):
    run = RunStore(runs_dir).create(name="modes")
    run.write_config({"preset": "seed"})
    run.write_status("running", pid=os.getpid())
    run.write_metrics({"good_defect_accuracy": 0.9})
    run.write_history([{"epoch": 1, "loss": 0.5}])
    run.append_progress({"kind": "batch"})
    run.request_stop()
    from snw_core.embed import save_embeddings, save_projection
    save_embeddings(run.file("embeddings.npz"), np.zeros((3, 2)), ["0", "1", "0"], ["test"] * 3, np.zeros(3))
    save_projection(run.file("projection.parquet"), np.zeros((3, 2)), "pca")
    files = sorted(p for p in run.path.iterdir())
    assert len(files) == 8
    assert {p.name: mode(p) for p in files} == {p.name: 0o644 for p in files}


def test_generated_data_is_0644_under_umask_022(tmp_path, umask):
    from snw_core import synthetic
    out = synthetic.write_parquet(tmp_path / "synth.parquet", n=26, seed=1)
    assert mode(out) == 0o644


@pytest.mark.slow
def test_exported_bundle_is_readable_by_others_under_umask_022(tiny_parquet, tmp_path, umask):
    from snw_core import export
    from trained_run import trained_run
    runs, rid = trained_run(tiny_parquet)
    run = RunStore(runs).get(rid)
    out = export.export_bundle(run, tmp_path / "bundle")
    assert mode(out) == 0o755
    assert {p.name: mode(p) for p in out.iterdir()} == {p.name: 0o644 for p in out.iterdir()}
    # (the bundle's zip is written with atomic_write_bytes, covered above without a second conversion)
