"""The side-by-side benchmark: rows, JSON contract, table; one tiny end-to-end run that trains both presets."""
from __future__ import annotations

import io
import json
import math

import pytest

from snw_core.bench import ROW_KEYS, format_table, time_to_reach


def test_time_to_reach_uses_elapsed_and_cumulative_seconds():
    hist = [{"epoch": 1, "val_loss": 0.30, "seconds": 2.0},
            {"epoch": 2, "val_loss": 0.12, "seconds": 1.0},
            {"epoch": 3, "val_loss": 0.10, "seconds": 1.0}]
    assert time_to_reach(hist, 0.12) == 3.0                      # reached exactly at epoch 2
    assert time_to_reach(hist, 0.11) == 4.0
    assert time_to_reach(hist, 0.05) is None                     # never
    assert time_to_reach(hist, 0.12, elapsed=[2.5, 3.9, 5.0]) == 3.9
    assert time_to_reach(hist, float("nan")) is None
    assert time_to_reach([], 1.0) is None


def test_format_table_aligns_and_shows_missing_values():
    rows = [{"preset": "seed", "epochs": 10, "train_seconds": 90.0, "time_ratio": 1.0, "pair_accuracy": 0.6,
             "good_defect_accuracy": 0.75, "escape_rate": 0.25, "overkill_rate": 0.2, "auroc": 0.82,
             "pin_accuracy": None, "embed_ms_single": 1.2, "embed_ms_per_image_batch": 0.03,
             "time_to_seed_best_val_loss": 80.0},
            {"preset": "default", "epochs": 7, "train_seconds": 20.0, "time_ratio": 0.22, "pair_accuracy": 0.99,
             "good_defect_accuracy": 0.999, "escape_rate": 0.0, "overkill_rate": 0.004, "auroc": 1.0,
             "pin_accuracy": 0.99, "embed_ms_single": 2.0, "embed_ms_per_image_batch": 0.1,
             "time_to_seed_best_val_loss": float("nan"), "litert_ms_single": 1.25}]
    text = format_table(rows)
    lines = text.splitlines()
    assert len(lines) == 4                                       # header, rule, two rows
    assert len({len(line) for line in lines}) == 1               # aligned
    assert "99.90" in lines[3] and "75.00" in lines[2]           # rates in percent
    assert " - " in lines[2] + " " and lines[3].split()[-2:] == ["0.100", "1.25"]
    assert lines[2].split()[-1] == "-"                           # no LiteRT number for the first row


@pytest.mark.slow
def test_bench_tiny_data_both_presets(tmp_path):
    from snw_core import synthetic
    from snw_core.bench import run_bench
    from snw_core.runs import RunStore

    src = synthetic.write_parquet(tmp_path / "tiny.parquet", n=130, seed=1)
    out = io.StringIO()
    json_path = tmp_path / "bench.json"
    rows = run_bench(str(src), ["seed", "default"], json_path=str(json_path), epochs=1, seed=0,
                     runs_dir=tmp_path / "runs", projection="none", quiet=True, out=out)
    assert [r["preset"] for r in rows] == ["seed", "default"]
    for r in rows:
        assert set(ROW_KEYS) <= set(r)
        assert r["epochs"] == 1 and r["takeoff_epoch"] == 0     # --epochs 1 is taken literally: no allowance
        assert r["train_seconds"] > 0 and r["embed_ms_single"] > 0 and r["embed_ms_per_image_batch"] > 0
        assert r["litert_ms_single"] is not None and r["litert_ms_single"] > 0, r.get("litert_error")
        for k in ("pair_accuracy", "good_defect_accuracy", "escape_rate", "overkill_rate"):
            assert 0.0 <= r[k] <= 1.0
        assert r["auroc"] is None or 0.0 <= r["auroc"] <= 1.0
        assert r["reference_preset"] == "seed"
    assert rows[0]["takeoff_epoch"] == 0
    assert rows[0]["time_ratio"] == 1.0
    assert math.isclose(rows[1]["time_ratio"], rows[1]["train_seconds"] / rows[0]["train_seconds"], rel_tol=1e-3)
    # the seed preset reaches its own best val loss by construction
    assert rows[0]["time_to_seed_best_val_loss"] is not None

    written = json.loads(json_path.read_text())
    assert isinstance(written, list) and len(written) == 2
    assert all(set(ROW_KEYS) <= set(r) for r in written)
    assert written == json.loads(json.dumps(rows))

    table = out.getvalue()
    assert "seed" in table and "default" in table and "cores" in table
    # a generated set says where its pin cells are: every row measures where its caught defects are shown
    for r in rows:
        assert r["localisation_caught"] > 0 and 0.0 <= r["localisation"] <= 1.0
    assert "localisation (pixel of the strongest evidence in the defect's cell, 2 px tolerance): seed " in table
    runs = RunStore(tmp_path / "runs").list()
    assert sorted(r.config()["name"] for r in runs) == ["bench-default", "bench-seed"]
    assert all(r.state() == "done" for r in runs)
    assert len({r.config()["data"]["content_hash"] for r in runs}) == 1


def test_bench_rejects_unknown_preset_before_training(tmp_path):
    from snw_core.bench import run_bench
    from snw_core.presets import SettingsError

    with pytest.raises(SettingsError, match="Unknown preset"):
        run_bench("default", ["seed", "nope"], runs_dir=tmp_path / "runs", quiet=True)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
