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


def test_format_seeds_gives_mean_worst_best_and_targets_held():
    from snw_core.bench import format_seeds

    def row(preset, seed, acc, esc, ovk, auc, t):
        return {"preset": preset, "seed": seed, "good_defect_accuracy": acc, "escape_rate": esc,
                "overkill_rate": ovk, "auroc": auc, "train_seconds": t}
    rows = [row("default", 0, 1.0, 0.0, 0.0, 1.0, 20.0), row("seed", 0, 0.9, 0.1, 0.05, None, 80.0),
            row("default", 1, 0.99, 0.02, 0.0, 0.998, 30.0), row("seed", 1, 0.8, 0.3, 0.0, None, 70.0)]
    text = format_seeds(rows)
    lines = text.splitlines()
    assert lines[0].startswith("over the seeds")
    default = next(line for line in lines if line.startswith("default"))
    assert "0,1" in default
    assert "99.50 (99.00 .. 100.00)" in default            # accuracy: mean (worst = lowest .. best)
    assert "1.00 (2.00 .. 0.00)" in default                # escapes: worst is the highest
    assert "0.9990 (0.9980 .. 1.0000)" in default and "25.0 (30.0 .. 20.0)" in default
    assert len({len(line) for line in lines[1:]}) == 1      # aligned
    assert default.split()[-9:] == ["1", "of", "2", "1", "of", "2", "2", "of", "2"]   # targets held: acc, esc, ovk
    seed_line = next(line for line in lines if line.startswith("seed "))
    assert " - " in seed_line and seed_line.split()[-9:] == ["0", "of", "2", "0", "of", "2", "1", "of", "2"]


def test_parse_seeds_rejects_what_is_not_a_seed():
    from snw_core.bench import parse_seeds
    from snw_core.presets import SettingsError

    assert parse_seeds("0, 1,2,1") == [0, 1, 2] and parse_seeds("") == [] and parse_seeds(None) == []
    for bad in ("0,x", "-1", "1.5"):
        with pytest.raises(SettingsError, match="--seeds"):
            parse_seeds(bad)


@pytest.mark.slow
def test_bench_over_two_seeds_writes_every_row_and_summarises(tmp_path):
    from snw_core import synthetic
    from snw_core.bench import run_bench_seeds

    src = synthetic.write_parquet(tmp_path / "tiny.parquet", n=130, seed=1)
    out = io.StringIO()
    rows = run_bench_seeds(str(src), ["default"], seeds=[0, 1], json_path=str(tmp_path / "b.json"), epochs=1,
                           runs_dir=tmp_path / "runs", quiet=True, out=out)
    assert [(r["preset"], r["seed"]) for r in rows] == [("default", 0), ("default", 1)]
    assert json.loads((tmp_path / "b.json").read_text()) == json.loads(json.dumps(rows))
    text = out.getvalue()
    assert "== seed 0" in text and "== seed 1" in text and "over the seeds" in text
    assert text.rstrip().splitlines()[-1].startswith("default")


def test_bench_over_seeds_rejects_an_unknown_preset_before_training(tmp_path):
    from snw_core.bench import run_bench_seeds
    from snw_core.presets import SettingsError

    with pytest.raises(SettingsError, match="Unknown preset"):
        run_bench_seeds("default", ["default", "nope"], seeds=[0, 1], runs_dir=tmp_path / "runs", quiet=True,
                        out=io.StringIO())
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_unseen_kinds_tool_leaves_the_kind_out_and_counts_every_fresh_item(tmp_path):
    """tools/unseen_kinds.py: the data set it trains on has no item of the kind left out, and the fresh items it
    judges (goods and every kind) are all counted, caught ones located and given a pin at most as often as caught."""
    import subprocess
    import sys

    import numpy as np
    import pyarrow.parquet as pq

    from snw_core import synthetic as S
    from trained_run import ROOT
    sys.path.insert(0, str(ROOT / "tools"))
    import unseen_kinds
    path = unseen_kinds.held_out_set(tmp_path, 5, 260, 0)
    labels = pq.read_table(path).column("label").to_pylist()
    p = S.sample_params(260, seed=0)
    assert len(labels) == int((p["kind"] != 5).sum()) < 260
    out = tmp_path / "unseen.json"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "unseen_kinds.py"), "--kinds", "dirty", "--no-baseline",
                        "--n", "260", "--fresh", "200", "--epochs", "1", "--json", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "left out: dirty" in r.stdout
    (row,) = json.loads(out.read_text())
    assert row["left_out"] == "dirty" and row["seed"] == 0
    fresh = row["fresh"]
    assert fresh["goods"]["n"] + sum(c["n"] for k, c in fresh.items() if k != "goods") == 200
    for kind, c in fresh.items():
        if kind != "goods":
            assert 0 <= c["located"] <= c["caught"] <= c["n"] and c["right_pin"] <= c["caught"]
    assert np.isfinite(row["test_good_defect_accuracy"])
