"""AppTest smoke tests of the Train and Runs pages on a temporary run store with hand-made run folders.

No training happens: finished runs are written with Run.write_* and a "running" run names this test
process as its pid, so the run store sees it alive. Starting a run is tested with launch.start_training
replaced by a fake.
"""
import os
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from snw_core import launch
from snw_core.presets import PRESETS
from snw_core.runs import Run, RunStore, _proc_start

APP = Path(__file__).resolve().parent.parent / "app.py"
SETTINGS = {"epochs": 3, "batch_size": 32, "learning_rate": 0.001, "embedding_dim": 128, "seed": 0, "twin": "dense",
            "pairing": "pairs", "split": [0.6, 0.2, 0.2], "pairs_per_image": 10, "margin": 1.0}
HISTORY = [{"epoch": e, "loss": 0.3 / e, "val_loss": 0.35 / e, "pair_accuracy": 0.5 + e / 20,
            "val_pair_accuracy": 0.5 + e / 25, "seconds": 2.0} for e in (1, 2, 3)]
METRICS = {"pair_accuracy": 0.6, "good_defect_accuracy": 0.8, "escape_rate": 0.2, "overkill_rate": 0.1, "auroc": 0.85,
           "threshold": 0.1, "per_label": {"0": 0.9, "1": 0.8}, "pin_accuracy": 0.3, "n_train": 60, "n_val": 20,
           "n_test": 20, "train_seconds": 12.5, "epochs_run": 3, "state": "done"}


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("SNW_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SNW_DATA_CACHE", str(tmp_path / "data_cache"))
    return RunStore()


def make_run(store, rid, state="done", started="2026-01-01T10:00:00+00:00", settings=None, metrics=None,
             history=None, events=None, **status):
    run = store.create(run_id=rid)
    run.write_config({"run_id": rid, "name": rid, "preset": "seed", "settings": dict(SETTINGS, **(settings or {})),
                      "data": {"source": "default", "good_label": "0"}})
    if state == "running":
        status.setdefault("pid", os.getpid())
        status.setdefault("pid_start", _proc_start(os.getpid()))
    run.write_status(state, started=started, **status)
    if history is not None:
        run.write_history(history)
    if metrics is not None:
        run.write_metrics(metrics)
    for ev in events or []:
        run.append_progress(ev)
    return run


def finished(store, rid="r1-done", **kw):
    kw.setdefault("history", HISTORY)
    kw.setdefault("metrics", METRICS)
    return make_run(store, rid, "done", **kw)


def running(store, rid="r9-running", started="2026-01-02T10:00:00+00:00"):
    events = [{"kind": "phase", "phase": "training", "epochs": 4, "batches": 10},
              {"kind": "batch", "epoch": 1, "epochs": 4, "batch": 1, "batches": 10, "loss": 0.5, "elapsed": 1.0},
              {"kind": "batch", "epoch": 1, "epochs": 4, "batch": 5, "batches": 10, "loss": 0.4, "elapsed": 3.0}]
    return make_run(store, rid, "running", started=started, events=events)


def page(path, **state):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()                                  # the router registers the pages first
    for k, v in state.items():
        at.session_state[k] = v
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


def texts(elements):
    return " ".join(str(e.value) for e in elements)


# ------------------------------------------------------------------ Train

def test_train_empty_store(store):
    at = page("app_pages/train.py")
    assert "No runs yet" in texts(at.info)
    assert at.selectbox(key="train_preset").value == "default"
    assert at.number_input(key="train_epochs").value == PRESETS["default"]["epochs"]


def test_train_preset_sets_form_defaults(store):
    at = page("app_pages/train.py")
    at.selectbox(key="train_preset").set_value("seed").run()
    assert not at.exception
    assert at.number_input(key="train_epochs").value == 10
    assert at.number_input(key="train_batch_size").value == 32
    assert at.number_input(key="train_embedding_dim").value == 128
    assert "seed study" in texts(at.caption)
    at.selectbox(key="train_preset").set_value("default").run()
    assert at.number_input(key="train_epochs").value == PRESETS["default"]["epochs"]


def test_train_shows_finished_run_results(store):
    finished(store)
    at = page("app_pages/train.py")
    assert "is **done**" in texts(at.success)
    labels = [m.label for m in at.metric]
    assert {"good/defect acc.", "escape rate", "overkill rate", "pair accuracy"} <= set(labels)
    assert "80.0 %" in [m.value for m in at.metric]
    assert len(at.get("plotly_chart")) == 2
    assert "Camera drift" not in texts(at.caption)                   # a run without the check says nothing of it
    rows = [{"condition": "none", "strength": 0.0, "n_good": 10, "n_defect": 10, "goods_passed_n": 10,
             "defects_caught_n": 10, "goods_passed": 1.0, "defects_caught": 1.0, "held": True},
            {"condition": "noise", "strength": 8.0, "n_good": 10, "n_defect": 10, "goods_passed_n": 7,
             "defects_caught_n": 10, "goods_passed": 0.7, "defects_caught": 1.0, "held": False}]
    nap = {"good": 0, "n": 240, "held_out_good": 2, "held_out_n": 300}
    finished(store, "r2-done", metrics={**METRICS, "drift_check": {"rows": rows, "held": 1, "items": "the run's test "
                                                                   "split (no generator for this source)"},
                                        "not_a_part_check": nap})
    at = page("app_pages/train.py", train_watch_run="r2-done")
    assert ("Camera drift: 1 of 2 conditions held; short: noise (7/10 goods GOOD, 10/10 defects caught) (items: "
            "the run's test split") in texts(at.caption)
    assert "Not the part: 0 of 240 such inputs judged GOOD, 2 of 300 of the kinds the check was not designed on" in \
        texts(at.caption)


def test_train_shows_running_run_and_stop_works(store):
    finished(store)
    run = running(store)
    at = page("app_pages/train.py")
    assert at.session_state["train_watch_run"] == run.id
    prog = at.get("progress")
    assert len(prog) == 1
    assert "Epoch 1/4" in prog[0].proto.text and "batch 5/10" in prog[0].proto.text
    assert "left" in prog[0].proto.text
    at.button(key="train_stop").click().run()
    assert not at.exception
    assert run.stop_requested()
    assert "Stop requested" in texts(at.info)


def test_train_says_when_a_run_is_learning_the_pose_before_its_first_epoch(store):
    """Registration can take minutes on large images before the first epoch: the page names it (not "loading the
    data and TensorFlow") and a stop can still be asked for."""
    run = make_run(store, "r8-registering", "running", events=[{"kind": "phase", "phase": "registration"}])
    at = page("app_pages/train.py")
    assert at.session_state["train_watch_run"] == run.id
    assert "Learning where the taught part sits" in at.get("progress")[0].proto.text
    at.button(key="train_stop").click().run()
    assert run.stop_requested()


def test_train_picks_among_several_running_runs(store):
    a = running(store, "ra-running", started="2026-01-02T10:00:00+00:00")
    b = running(store, "rb-running", started="2026-01-03T10:00:00+00:00")
    at = page("app_pages/train.py")
    box = at.selectbox(key="train_watch_pick")
    assert {o.split(" · ")[0] for o in box.options} == {a.id, b.id}
    assert at.session_state["train_watch_run"] == b.id          # the newest
    box.set_value(a.id).run()
    assert not at.exception
    assert at.session_state["train_watch_run"] == a.id


def test_train_rediscovers_watched_run_after_reload(store):
    run = running(store)
    at = page("app_pages/train.py")                                  # a fresh session: nothing in session state
    assert at.session_state["train_watch_run"] == run.id


def test_train_failed_run_shows_error_and_log_tail(store):
    run = make_run(store, "r2-failed", "failed", error="ValueError: something broke")
    run.file("train.log").write_text("line 1\nline 2\nTraceback (most recent call last):\nValueError: something broke\n")
    at = page("app_pages/train.py")
    assert "something broke" in texts(at.error)
    assert "Traceback" in texts(at.code)


def test_train_interrupted_run(store):
    make_run(store, "r3-gone", "running", pid=2**22 + 12345, pid_start=None)
    at = page("app_pages/train.py")
    assert "failed (interrupted)" in texts(at.error)


def test_train_start_bad_settings_shows_error(store):
    at = page("app_pages/train.py")
    at.number_input(key="train_split_train").set_value(0.9)
    at.button(key="train_start").click().run()
    assert not at.exception
    assert at.error, "a SettingsError should be shown"
    assert RunStore().list() == []


def test_train_start_bad_data_shows_error(store, tmp_path):
    at = page("app_pages/train.py", data_source=str(tmp_path / "missing.parquet"))
    at.button(key="train_start").click().run()
    assert not at.exception
    assert "missing.parquet" in texts(at.error)
    assert RunStore().list() == []


def test_train_start_launches_trainer_and_watches_it(store, monkeypatch):
    calls = []

    def fake_start(source, preset, overrides, good_label="0", name=None, runs_dir=None, projection="umap"):
        calls.append((source, preset, overrides, good_label, name, projection))
        return running(store, "r5-started").id

    monkeypatch.setattr(launch, "start_training", fake_start)
    at = page("app_pages/train.py")
    at.selectbox(key="train_preset").set_value("seed").run()
    at.number_input(key="train_epochs").set_value(1)
    at.text_input(key="train_name").set_value("quick")
    at.button(key="train_start").click().run()
    assert not at.exception
    (source, preset, overrides, good, name, projection), = calls
    assert (source, preset, good, name, projection) == ("default", "seed", "0", "quick", "umap")
    assert overrides["epochs"] == 1 and overrides["batch_size"] == 32 and overrides["split"] == [0.6, 0.2, 0.2]
    assert overrides["plateau_epochs"] == 0                      # the seed preset has no plateau allowance
    assert at.session_state["train_watch_run"] == "r5-started"
    assert at.get("progress")


def test_train_form_carries_the_plateau_allowance(store, monkeypatch):
    calls = []
    monkeypatch.setattr(launch, "start_training", lambda source, preset, overrides, **kw:
                        calls.append(overrides) or running(store, "r6-started").id)
    at = page("app_pages/train.py")
    assert at.number_input(key="train_plateau_epochs").value == 30          # the default preset's allowance
    at.number_input(key="train_plateau_epochs").set_value(4)
    at.button(key="train_start").click().run()
    assert not at.exception
    assert calls[0]["plateau_epochs"] == 4 and calls[0]["epochs"] == PRESETS["default"]["epochs"]
    # the command line the dashboard runs passes it on (an explicit --epochs alone would turn it off)
    argv = launch.train_command("default", "default", calls[0])
    assert argv[argv.index("--plateau-epochs") + 1] == "4" and argv[argv.index("--epochs") + 1] == str(PRESETS["default"]["epochs"])


@pytest.mark.parametrize("key, flag, preset_value, value, seed_value", [
    ("stretch_epochs", "--stretch-epochs", 20, 0, 0),        # the stretch of a hard surface; the study has none
    ("work_side", "--work-side", 128, 64, 0),               # the working size; the study sees every pixel
    ("grid_pool", "--grid-pool", 12, 6, 0),                 # the grid pool of a surface without a layout
])
def test_train_form_carries_a_setting_to_the_command_line(store, monkeypatch, key, flag, preset_value, value, seed_value):
    calls = []
    monkeypatch.setattr(launch, "start_training", lambda source, preset, overrides, **kw:
                        calls.append(overrides) or running(store, "r7-started").id)
    at = page("app_pages/train.py")
    assert at.number_input(key=f"train_{key}").value == PRESETS["default"][key] == preset_value
    at.number_input(key=f"train_{key}").set_value(value)
    at.button(key="train_start").click().run()
    assert not at.exception and calls[0][key] == value
    argv = launch.train_command("default", "default", calls[0])
    assert argv[argv.index(flag) + 1] == str(value)
    at.selectbox(key="train_preset").set_value("seed").run()
    assert at.number_input(key=f"train_{key}").value == seed_value


def test_train_form_carries_the_augmentation(store, monkeypatch):
    calls = []
    monkeypatch.setattr(launch, "start_training", lambda source, preset, overrides, **kw:
                        calls.append(overrides) or running(store, "r7-started").id)
    at = page("app_pages/train.py")
    assert at.selectbox(key="train_augment").value == "none"                # the preset's
    at.selectbox(key="train_augment").set_value("camera")
    at.button(key="train_start").click().run()
    assert not at.exception
    assert calls[0]["augment"] == "camera"
    argv = launch.train_command("default", "default", calls[0])
    assert argv[argv.index("--augment") + 1] == "camera"


def test_train_form_carries_the_weight_average(store, monkeypatch):
    from snw_core.presets import PRESETS
    calls = []
    monkeypatch.setattr(launch, "start_training", lambda source, preset, overrides, **kw:
                        calls.append(overrides) or running(store, "r8-started").id)
    at = page("app_pages/train.py")
    assert at.number_input(key="train_ema").value == PRESETS["default"]["ema"]     # the preset's
    at.number_input(key="train_ema").set_value(0.99)
    at.button(key="train_start").click().run()
    assert not at.exception
    assert calls[0]["ema"] == 0.99
    argv = launch.train_command("default", "default", calls[0])
    assert float(argv[argv.index("--ema") + 1]) == 0.99


def test_train_form_carries_the_extra_noise_share(store, monkeypatch):
    from snw_core.presets import PRESETS
    calls = []
    monkeypatch.setattr(launch, "start_training", lambda source, preset, overrides, **kw:
                        calls.append(overrides) or running(store, "r9-started").id)
    at = page("app_pages/train.py")
    assert at.number_input(key="train_augment_noise").value == PRESETS["default"]["augment_noise"]
    at.number_input(key="train_augment_noise").set_value(0.25)
    at.button(key="train_start").click().run()
    assert not at.exception
    argv = launch.train_command("default", "default", calls[0])
    assert float(argv[argv.index("--augment-noise") + 1]) == 0.25


# ------------------------------------------------------------------ Runs

def select(at, rows, key="runs_table"):
    at.session_state[key] = {"selection": {"rows": rows, "columns": [], "cells": []}}


def test_runs_empty_store(store):
    at = page("app_pages/runs.py")
    assert "No runs yet" in texts(at.info)


def test_runs_table_and_differences_only(store):
    finished(store, "r1-a", started="2026-01-01T10:00:00+00:00")
    finished(store, "r2-b", started="2026-01-01T11:00:00+00:00", settings={"epochs": 5, "twin": "conv"})
    running(store)
    at = page("app_pages/runs.py")
    df = at.dataframe(key="runs_table").value
    assert df["run_id"].tolist() == ["r1-a", "r2-b", "r9-running"]          # oldest first
    assert {"state", "preset", "epochs", "batch_size", "learning_rate", "embedding_dim", "seed",
            "good_defect_accuracy", "escape_rate", "overkill_rate", "auroc", "pair_accuracy", "pin_accuracy",
            "train_seconds", "started", "data"} <= set(df.columns)
    assert df["state"].tolist() == ["done", "done", "running"]
    at.toggle(key="runs_diff_only").set_value(True).run()
    df = at.dataframe(key="runs_table").value
    assert "epochs" in df.columns and "twin" in df.columns
    assert "batch_size" not in df.columns and "seed" not in df.columns
    assert "good_defect_accuracy" in df.columns


def test_runs_compare_two_runs(store):
    finished(store, "r1-a", started="2026-01-01T10:00:00+00:00")
    finished(store, "r2-b", started="2026-01-01T11:00:00+00:00",
             metrics=dict(METRICS, good_defect_accuracy=0.85, escape_rate=0.25))
    at = page("app_pages/runs.py")
    select(at, [0, 1])
    at.run()
    assert not at.exception
    assert at.selectbox(key="runs_baseline").value == "r1-a"
    assert len(at.get("plotly_chart")) == 1
    cmp = [d for d in at.dataframe if d.key != "runs_table"][0].value.set_index("metric")
    assert cmp.at["good/defect accuracy", "r2-b"] == "85.0 % (+5.0 pp)"
    assert cmp.at["escape rate", "r2-b"] == "25.0 % (+5.0 pp)"
    assert cmp.at["escape rate", "better"].startswith("lower")
    select(at, [0, 1])
    at.selectbox(key="runs_baseline").set_value("r2-b").run()
    cmp = [d for d in at.dataframe if d.key != "runs_table"][0].value.set_index("metric")
    assert cmp.at["good/defect accuracy", "r1-a"] == "80.0 % (-5.0 pp)"


def test_runs_delete_running_is_refused(store):
    finished(store)
    run = running(store)
    at = page("app_pages/runs.py")
    select(at, [1])
    at.run()
    select(at, [1])
    at.button(key="runs_delete").click().run()
    assert not at.exception
    assert "still running" in texts(at.error)
    assert run.path.exists()


def test_runs_delete_after_confirmation(store):
    a = finished(store, "r1-a", started="2026-01-01T10:00:00+00:00")
    b = finished(store, "r2-b", started="2026-01-01T11:00:00+00:00")
    at = page("app_pages/runs.py")
    select(at, [0])
    at.run()
    select(at, [0])
    at.button(key="runs_delete").click().run()
    assert not at.exception
    assert "trash" in texts(at.warning)
    assert a.path.exists()
    select(at, [0])
    at.button(key="runs_delete_confirm").click().run()
    assert not at.exception
    assert not a.path.exists() and b.path.exists()
    assert "to the trash" in texts(at.success)
    # the table has a fresh (empty) selection: row numbers moved up
    assert [d.value["run_id"].tolist() for d in at.dataframe if d.key and d.key.startswith("runs_table")] == [["r2-b"]]


def test_runs_shows_runs_written_by_other_processes(store):
    at = page("app_pages/runs.py")
    assert "No runs yet" in texts(at.info)
    finished(store, "r7-from-cli")                   # another process writes a run folder
    at.run()
    assert at.dataframe(key="runs_table").value["run_id"].tolist() == ["r7-from-cli"]


def test_train_says_when_the_data_set_fixes_its_own_split(store, tmp_path, monkeypatch, tiny_dataset):
    from snw_core import synthetic
    ds = tiny_dataset
    own = np.array(["train", "val", "test"] * (ds.n // 3) + ["train"] * (ds.n % 3))
    path = synthetic.write_images_parquet(tmp_path / "own.parquet", ds.images, ds.labels, ds.dirnames, splits=own)
    monkeypatch.setenv("SNW_DATA_ROOTS", str(tmp_path))
    at = page("app_pages/train.py", data_source=str(path), good_label="0")
    counts = " / ".join(f"{int((own == s).sum()):,}" for s in ("train", "val", "test"))
    assert f"fixes its own split (its 'split' column: {counts} items)" in texts(at.caption)
    plain = page("app_pages/train.py")
    assert "fixes its own split" not in texts(plain.caption)
