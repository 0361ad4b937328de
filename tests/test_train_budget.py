"""The epoch budget counted from take-off, and the learning-rate schedule (snw_core.train)."""
import json

import numpy as np
import pytest

from snw_core import train as T


def test_scheduled_lr_constant_cosine_and_plateau():
    assert T.scheduled_lr(0.002, "cosine", None, 100) == 0.002         # on the plateau: the peak
    assert T.scheduled_lr(0.002, "constant", 70, 100) == 0.002
    assert T.scheduled_lr(0.002, "cosine", 0, 100) == pytest.approx(0.002)
    assert T.scheduled_lr(0.002, "cosine", 50, 100) == pytest.approx(0.002 * (T.COSINE_FLOOR + (1 - T.COSINE_FLOOR) / 2))
    assert T.scheduled_lr(0.002, "cosine", 100, 100) == pytest.approx(0.002 * T.COSINE_FLOOR)
    assert T.scheduled_lr(0.002, "cosine", 500, 100) == pytest.approx(0.002 * T.COSINE_FLOOR)   # clamped
    lrs = [T.scheduled_lr(1.0, "cosine", s, 40) for s in range(41)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))                    # decays monotonically


def _events(run):
    return [json.loads(line) for line in run.file("progress.jsonl").read_text().splitlines()]


def _fit(tiny_parquet, monkeypatch, takeoff_at, **settings):
    monkeypatch.setattr(T, "TAKEOFF_PAIR_ACCURACY", takeoff_at)
    seen = []
    real = T.scheduled_lr

    def record(base, schedule, step, total):
        seen.append((step, total))
        return real(base, schedule, step, total)

    monkeypatch.setattr(T, "scheduled_lr", record)
    run, state = T.train(str(tiny_parquet), preset="default", projection="none", quiet=True, **settings)
    assert state == "done"
    return run, seen


@pytest.mark.slow
def test_epochs_on_the_plateau_do_not_count_and_the_budget_starts_at_takeoff(tiny_parquet, runs_dir, monkeypatch):
    # take-off threshold 0: the first epoch takes off, then `epochs` more are trained
    run, seen = _fit(tiny_parquet, monkeypatch, 0.0, epochs=2, plateau_epochs=5, early_stopping_patience=0)
    assert len(run.history()) == 3
    m = run.metrics()
    assert m["takeoff_epoch"] == 1 and m["epochs_run"] == 3
    ev = _events(run)
    assert [e["epoch"] for e in ev if e.get("phase") == "takeoff"] == [1]
    assert [e["epochs"] for e in ev if e["kind"] == "epoch"] == [3, 3, 3]
    steps = next(e["batches"] for e in ev if e.get("phase") == "training")
    # epoch 1 at the peak learning rate (no step yet), then a cosine over 2 epochs of batches
    assert [s for s, _ in seen[:steps]] == [None] * steps
    assert [s for s, _ in seen[steps:]] == list(range(2 * steps))
    assert {t for _, t in seen} == {2 * steps}


@pytest.mark.slow
def test_without_takeoff_the_budget_starts_after_the_allowance(tiny_parquet, runs_dir, monkeypatch):
    run, seen = _fit(tiny_parquet, monkeypatch, 1.01, epochs=1, plateau_epochs=2, early_stopping_patience=1)
    assert len(run.history()) == 3            # 2 plateau epochs (no early stop there), then the budget of 1
    m = run.metrics()
    assert m["takeoff_epoch"] is None and m["state"] == "done"
    ev = _events(run)
    assert [e["epoch"] for e in ev if e.get("phase") == "no_takeoff"] == [2]
    assert [e["epochs"] for e in ev if e["kind"] == "epoch"] == [2, 3, 3]   # the total grows while on the plateau


@pytest.mark.slow
def test_plateau_allowance_off_is_a_plain_schedule(tiny_parquet, runs_dir, monkeypatch):
    run, seen = _fit(tiny_parquet, monkeypatch, 1.01, epochs=2, plateau_epochs=0, early_stopping_patience=0)
    assert len(run.history()) == 2 and run.metrics()["takeoff_epoch"] == 0
    assert seen[0][0] == 0 and all(s is not None for s, _ in seen)
    assert not [e for e in _events(run) if e.get("phase") in ("takeoff", "no_takeoff")]


def test_an_explicit_epoch_count_is_literal_unless_an_allowance_is_asked_for():
    from snw_core.presets import PRESETS, resolve_settings
    assert PRESETS["default"]["plateau_epochs"] == 30 and PRESETS["seed"]["plateau_epochs"] == 0
    assert resolve_settings("default")["plateau_epochs"] == 30               # the preset's own budget
    assert resolve_settings("default", epochs=1)["plateau_epochs"] == 0       # `train --epochs 1`: one epoch
    assert resolve_settings("default", epochs=1, plateau_epochs=5)["plateau_epochs"] == 5
    assert resolve_settings("default", epochs=None)["plateau_epochs"] == 30   # None = not given


def test_an_explicit_epoch_count_turns_the_stretch_off_unless_it_is_asked_for():
    from snw_core.presets import PRESETS, resolve_settings
    assert PRESETS["default"]["stretch_epochs"] == 20 and PRESETS["seed"]["stretch_epochs"] == 0
    assert resolve_settings("default")["stretch_epochs"] == 20
    assert resolve_settings("default", epochs=15)["stretch_epochs"] == 0
    assert resolve_settings("default", epochs=15, stretch_epochs=3)["stretch_epochs"] == 3


def test_val_twin_auroc_ranks_the_val_items_by_their_distance_to_the_train_goods():
    rng = np.random.default_rng(0)
    tr = np.concatenate([rng.normal(0, 0.1, (30, 4)), rng.normal(3, 0.1, (10, 4))])
    tr_lab = np.array(["0"] * 30 + ["2"] * 10)
    va_good, va_def = rng.normal(0, 0.1, (8, 4)), rng.normal(3, 0.1, (4, 4))
    va_lab = np.array(["0"] * 8 + ["5"] * 4)
    assert T.val_twin_auroc(tr, tr_lab, np.concatenate([va_good, va_def]), va_lab, "0", 3) == 1.0
    swapped = np.array(["5"] * 8 + ["0"] * 4)                  # the goods far from the train goods: worst ranking
    assert T.val_twin_auroc(tr, tr_lab, np.concatenate([va_good, va_def]), swapped, "0", 3) == 0.0
    assert np.isnan(T.val_twin_auroc(tr, tr_lab, va_good, va_lab[:8], "0", 3))          # no defect among the val


@pytest.mark.slow
@pytest.mark.parametrize("below, grows", [(1.01, True), (0.0, False)])
def test_halfway_a_hard_surface_grows_the_budget_and_the_schedule_runs_over_it(tiny_parquet, runs_dir, monkeypatch,
                                                                                below, grows):
    monkeypatch.setattr(T, "STRETCH_BELOW_AUROC", below)      # 1.01: every twin ranks below it; 0: none does
    run, seen = _fit(tiny_parquet, monkeypatch, 1.01, epochs=4, plateau_epochs=0, stretch_epochs=2,
                     early_stopping_patience=0)
    m = run.metrics()
    assert len(run.history()) == m["epochs_run"] == (6 if grows else 4)
    st = m["budget_stretch"]
    assert st["epoch"] == 2 and st["extra_epochs"] == (2 if grows else 0) and 0.0 <= st["val_auroc"] <= 1.0
    ev = _events(run)
    assert [(e["phase"], e["epoch"]) for e in ev if e.get("phase", "").startswith("stretch")] == \
        [("stretch" if grows else "stretch_check", 2)]
    assert [e["epochs"] for e in ev if e["kind"] == "epoch"] == ([4, 6, 6, 6, 6, 6] if grows else [4] * 4)
    steps = next(e["batches"] for e in ev if e.get("phase") == "training")
    # a cosine over 4 epochs of batches for the first 2, then over the 6 the budget has become
    assert [t for _, t in seen] == [4 * steps] * (2 * steps) + [(6 if grows else 4) * steps] * ((4 if grows else 2) * steps)
    assert [s for s, _ in seen] == list(range((6 if grows else 4) * steps))
    assert run.config()["settings"]["stretch_epochs"] == 2


def test_takeoff_needs_the_train_images_too():
    level = T.TAKEOFF_PAIR_ACCURACY
    assert T.took_off(level, level) and T.took_off(0.9, 0.8)
    assert not T.took_off(level + 0.02, level - 0.05)        # a small val split's lucky epoch
    assert not T.took_off(level - 0.01, 0.95)                # the train images alone never decide


@pytest.mark.slow
def test_a_lucky_val_epoch_is_not_a_takeoff(tiny_parquet, runs_dir, monkeypatch):
    # during training every epoch measures the seed-scheme pair accuracy of the train images, then of the val
    # items; here the val items look taken off from the first epoch while the train images stay at chance
    from snw_core import metrics as M
    real, calls = M.pair_accuracy, []

    def fake(d, y):
        calls.append(len(d))
        if len(calls) <= 2 * 3:                              # the 3 epochs of the fit below
            return 0.9 if len(calls) % 2 == 0 else 0.5
        return real(d, y)

    monkeypatch.setattr(M, "pair_accuracy", fake)
    run, state = T.train(str(tiny_parquet), preset="default", projection="none", quiet=True, epochs=1,
                         plateau_epochs=2, early_stopping_patience=0)
    assert state == "done" and len(run.history()) == 3
    assert [round(r["val_pair_accuracy"], 2) for r in run.history()] == [0.9, 0.9, 0.9]
    assert run.metrics()["takeoff_epoch"] is None          # no take-off: the budget started after the allowance
    assert [e["epoch"] for e in _events(run) if e.get("phase") == "no_takeoff"] == [2]
