"""snw_core.runview: progress summaries, curves and run comparisons, on hand-made events and rows."""
import pandas as pd
import pytest

from snw_core import runview as V

PHASE = {"kind": "phase", "phase": "training", "epochs": 2, "batches": 10}


def batch(epoch, b, elapsed, loss=0.5, batches=10, epochs=2):
    return {"kind": "batch", "epoch": epoch, "epochs": epochs, "batch": b, "batches": batches, "loss": loss,
            "elapsed": elapsed}


def epoch_ev(epoch, elapsed, epochs=2):
    return {"kind": "epoch", "epoch": epoch, "loss": 0.4, "val_loss": 0.5, "pair_accuracy": 0.7,
            "val_pair_accuracy": 0.6, "seconds": 5.0, "epochs": epochs, "elapsed": elapsed}


def test_no_events_is_starting():
    p = V.summarize_progress([])
    assert (p.phase, p.fraction, p.eta, p.epoch) == ("starting", 0.0, None, 0)
    assert not p.training


def test_phase_event_alone_gives_plan_but_no_eta():
    p = V.summarize_progress([PHASE])
    assert (p.phase, p.epochs, p.batches, p.fraction, p.eta) == ("training", 2, 10, 0.0, None)


def test_single_batch_event_eta_from_elapsed_and_fraction():
    # 5 of 10 batches of epoch 1 of 2 = 25 % done after 10 s -> 30 s left
    p = V.summarize_progress([PHASE, batch(1, 5, 10.0, loss=0.3)])
    assert (p.phase, p.epoch, p.batch, p.batches) == ("training", 1, 5, 10)
    assert p.fraction == pytest.approx(0.25)
    assert p.eta == pytest.approx(30.0)
    assert p.elapsed == 10.0 and p.loss == 0.3


def test_eta_excludes_time_before_the_first_batch():
    # first batch (5 %) at 4 s (compilation), 25 % at 8 s: 4 s per 20 % -> 75 % left takes 15 s
    p = V.summarize_progress([PHASE, batch(1, 1, 4.0), batch(1, 5, 8.0, loss=0.3)])
    assert p.fraction == pytest.approx(0.25)
    assert p.eta == pytest.approx(15.0)


def test_last_batch_before_epoch_event_is_validating():
    p = V.summarize_progress([PHASE, batch(1, 10, 20.0)])
    assert p.phase == "validating"
    assert p.fraction == pytest.approx(0.5)
    assert p.eta == pytest.approx(20.0)


def test_epoch_event_then_second_epoch():
    evs = [PHASE, batch(1, 10, 20.0), epoch_ev(1, 24.0)]
    p = V.summarize_progress(evs)
    assert (p.phase, p.epochs_done, p.fraction) == ("training", 1, 0.5)
    assert p.eta == pytest.approx(24.0)          # one batch event only: elapsed * (1 - f) / f
    p = V.summarize_progress(evs + [batch(2, 2, 28.0)])
    # (1 + 2/10) / 2 = 0.6 done after 28 s; since the first batch (0.5 at 20 s): 8 s per 0.1 -> 0.4 left = 32 s
    assert p.fraction == pytest.approx(0.6)
    assert p.eta == pytest.approx(32.0)
    assert p.epoch == 2 and p.epochs_done == 1


@pytest.mark.parametrize("mark", [{"kind": "phase", "phase": "takeoff", "epoch": 1},
                                  {"kind": "phase", "phase": "stretch", "epoch": 1, "extra_epochs": 1},
                                  {"kind": "phase", "phase": "stretch_check", "epoch": 1, "extra_epochs": 0}])
def test_the_budget_starting_or_growing_is_a_mark_inside_training_not_a_phase(mark):
    """Before, the Train page showed the take-off's sentence for the rest of the training, without epoch, batch or
    time left."""
    evs = [PHASE, batch(1, 10, 20.0), epoch_ev(1, 24.0, epochs=3), mark, batch(2, 2, 28.0, epochs=3)]
    p = V.summarize_progress(evs)
    assert p.training and p.phase == "training" and p.epochs == 3 and p.epoch == 2 and p.eta is not None
    p = V.summarize_progress(evs + [batch(2, 10, 36.0, epochs=3)])
    assert p.phase == "validating"


def test_stretch_mark_only_where_the_budget_grew():
    assert V.stretch_mark([{"kind": "phase", "phase": "takeoff", "epoch": 3}]) is None
    assert V.stretch_mark([{"kind": "phase", "phase": "stretch_check", "epoch": 6, "extra_epochs": 0}]) is None
    assert V.stretch_mark([{"kind": "phase", "phase": "stretch", "epoch": 7, "extra_epochs": 5}]) == \
        (7, "budget +5 (hard surface)")


def test_after_training_phases_have_no_eta():
    evs = [PHASE, batch(1, 10, 20.0), epoch_ev(1, 24.0), batch(2, 10, 44.0), epoch_ev(2, 48.0),
           {"kind": "phase", "phase": "evaluating"}]
    p = V.summarize_progress(evs)
    assert (p.phase, p.fraction, p.eta) == ("evaluating", 1.0, None)
    p = V.summarize_progress(evs + [{"kind": "phase", "phase": "projection"}, {"kind": "phase", "phase": "done"}])
    assert p.phase == "done"


def test_stopped_run_keeps_partial_fraction():
    evs = [PHASE, batch(1, 3, 6.0), {"kind": "phase", "phase": "evaluating"}, {"kind": "phase", "phase": "stopped"}]
    p = V.summarize_progress(evs)
    assert p.phase == "stopped" and p.fraction == pytest.approx(0.15) and p.eta is None


def test_eta_seconds_edge_cases():
    assert V.eta_seconds(10.0, 0.0) is None
    assert V.eta_seconds(10.0, 1.0) == 0.0
    assert V.eta_seconds(30.0, 0.75) == pytest.approx(10.0)


def test_batch_curve_x_is_fractional_epoch():
    df = V.batch_curve([PHASE, batch(1, 5, 1.0, loss=0.9), batch(1, 10, 2.0, loss=0.7), epoch_ev(1, 3.0),
                        batch(2, 5, 4.0, loss=float("nan"))])
    assert df["x"].tolist() == [0.5, 1.0]
    assert df["loss"].tolist() == [0.9, 0.7]


def test_epoch_curve_prefers_history_and_falls_back_to_events():
    hist = [{"epoch": 1.0, "loss": 0.3, "val_loss": 0.4, "pair_accuracy": 0.8, "val_pair_accuracy": 0.7,
             "seconds": 2.0}]
    df = V.epoch_curve(hist, [epoch_ev(1, 1.0), epoch_ev(2, 2.0)])
    assert df["epoch"].tolist() == [1] and df["loss"].tolist() == [0.3]
    df = V.epoch_curve([], [epoch_ev(1, 1.0), epoch_ev(2, 2.0)])
    assert df["epoch"].tolist() == [1, 2] and df["val_pair_accuracy"].tolist() == [0.6, 0.6]
    assert V.epoch_curve([], []).empty


def test_loss_overlay_long_frame():
    hist = [{"epoch": 1, "loss": 0.3, "val_loss": 0.4}, {"epoch": 2, "loss": 0.2, "val_loss": 0.35}]
    df = V.loss_overlay({"a": hist, "b": hist[:1]})
    assert len(df) == 6
    assert df[(df.run_id == "a") & (df.series == "val_loss")]["value"].tolist() == [0.4, 0.35]


# ------------------------------------------------------------------ tables and comparisons

def summary(rid, **kw):
    row = {"run_id": rid, "state": "done", "preset": "seed", "epochs": 10, "batch_size": 32,
           "learning_rate": 0.001, "embedding_dim": 128, "seed": 0, "twin": "dense", "split": [0.6, 0.2, 0.2],
           "good_defect_accuracy": 0.80, "escape_rate": 0.20, "overkill_rate": 0.10, "auroc": 0.85,
           "pair_accuracy": 0.6, "pin_accuracy": 0.3, "train_seconds": 100.0, "started": "2026-01-01",
           "data": "default"}
    row.update(kw)
    return row


def test_runs_frame_key_settings_and_metrics():
    df = V.runs_frame([summary("a"), summary("b", epochs=3)])
    settings = list(V.KEY_SETTINGS)
    settings.insert(settings.index("epochs") + 1, "epochs_run")
    assert list(df.columns) == ["run_id", "state", "preset", *settings, *V.KEY_METRICS, "started", "data"]
    assert df["epochs"].tolist() == [10, 3]


def test_runs_frame_shows_the_epochs_run_beside_the_setting():
    # a run that sat on a start-up plateau for 2 epochs trains 12 of a 10-epoch budget; early stopping fewer
    df = V.runs_frame([summary("a", epochs_run=12), summary("b", epochs=10, epochs_run=7), summary("c")])
    cols = list(df.columns)
    assert cols[cols.index("epochs") + 1] == "epochs_run"
    assert df["epochs"].tolist() == [10, 10, 10]
    assert df["epochs_run"].tolist()[:2] == [12, 7] and df["epochs_run"].isna().tolist() == [False, False, True]
    # differences only: the setting is equal, the epochs run differ -> shown alone
    diff = V.runs_frame([summary("a", epochs_run=12), summary("b", epochs_run=7)], diff_only=True)
    assert "epochs" not in diff.columns and diff["epochs_run"].tolist() == [12, 7]


def test_runs_frame_differences_only():
    rows = [summary("a"), summary("b", epochs=3, twin="conv", split=[0.7, 0.15, 0.15], learning_rate=1e-3)]
    df = V.runs_frame(rows, diff_only=True)
    settings = [c for c in df.columns if c not in ("run_id", "state", "preset", *V.KEY_METRICS, "started", "data")]
    assert settings == ["epochs", "epochs_run", "twin", "split"]   # learning rate equal (0.001 == 1e-3): hidden
    assert df["split"].tolist() == ["0.6/0.2/0.2", "0.7/0.15/0.15"]
    # one run: nothing differs
    assert not set(V.KEY_SETTINGS) & set(V.runs_frame([summary("a")], diff_only=True).columns)


def test_differing_columns_treats_int_and_float_alike_and_missing_as_value():
    rows = [{"a": 1, "b": None, "c": [1, 2]}, {"a": 1.0, "b": 2, "c": [1, 2]}]
    assert V.differing_columns(rows, ["a", "b", "c"]) == ["b"]


def test_compare_metrics_deltas_and_verdicts():
    rows = [summary("base"), summary("new", good_defect_accuracy=0.85, escape_rate=0.25, train_seconds=80.0,
                                     pin_accuracy=None)]
    df = V.compare_metrics(rows, "base")
    new = df[df.run_id == "new"].set_index("metric")
    assert new.at["good_defect_accuracy", "delta"] == pytest.approx(0.05)
    assert new.at["good_defect_accuracy", "verdict"] == "better"
    assert new.at["escape_rate", "delta"] == pytest.approx(0.05)
    assert new.at["escape_rate", "verdict"] == "worse"          # lower is better
    assert new.at["train_seconds", "verdict"] == "better"
    assert new.at["auroc", "verdict"] == "same"
    assert pd.isna(new.at["pin_accuracy", "delta"]) and pd.isna(new.at["pin_accuracy", "verdict"])
    base = df[df.run_id == "base"]
    assert base["delta"].isna().all()
    assert set(df["better"]) == {"higher", "lower"}
    with pytest.raises(ValueError):
        V.compare_metrics(rows, "nope")


def test_comparison_table_text_and_marks():
    rows = [summary("base"), summary("new", escape_rate=0.15, auroc=0.80)]
    text, marks = V.comparison_table(V.compare_metrics(rows, "base"), "base")
    assert list(text.columns) == ["metric", "better", "base (baseline)", "new"]
    assert list(marks.columns) == list(text.columns)
    t = text.set_index("metric")
    assert t.at["escape rate", "new"] == "15.0 % (-5.0 pp)"
    assert t.at["escape rate", "base (baseline)"] == "20.0 %"
    assert t.at["escape rate", "better"] == "lower ↓"
    assert t.at["AUROC", "new"] == "0.800 (-0.050)"
    assert t.at["training time", "base (baseline)"] == "1 min 40 s"
    m = marks.set_index(text["metric"])
    assert m.at["escape rate", "new"] == "better" and m.at["AUROC", "new"] == "worse"
    assert m.at["pair accuracy", "new"] == "same" and m.at["pair accuracy", "base (baseline)"] == ""
    rows[1]["pin_accuracy"] = None
    text, marks = V.comparison_table(V.compare_metrics(rows, "base"), "base")
    assert text.set_index("metric").at["pin accuracy", "new"] == "– (–)"
    assert marks.set_index(text["metric"]).at["pin accuracy", "new"] == ""


def test_verdict_and_formatting():
    assert V.verdict("overkill_rate", -0.01) == "better"
    assert V.verdict("unknown", 1.0) is None
    assert V.verdict("auroc", None) is None
    assert V.format_delta("pair_accuracy", 0.0123) == "+1.2 pp"
    assert V.format_delta("train_seconds", -3.25) == "-3.2 s"
    assert V.format_value("auroc", float("nan")) == "–"
    assert V.format_duration(5) == "5 s" and V.format_duration(125) == "2 min 05 s"
    assert V.format_duration(3720) == "1 h 02 min" and V.format_duration(None) == "–"


def test_tail_collapses_carriage_returns():
    text = "a\nepoch 1 [#..] 1/3\repoch 1 [##.] 2/3\nb\nc"
    assert V.tail(text, 3) == "epoch 1 [##.] 2/3\nb\nc"


def test_format_time():
    assert V.format_time("2026-11-28T15:31:18+00:00") == "2026-11-28 15:31:18 UTC"
    assert V.format_time("2026-11-28T16:31:18+01:00") == "2026-11-28 15:31:18 UTC"
    assert V.format_time(None) == "–" and V.format_time("soon") == "soon"


def test_takeoff_mark_only_after_a_plateau():
    from snw_core.runview import takeoff_mark
    assert takeoff_mark([]) is None
    assert takeoff_mark([{"kind": "phase", "phase": "training"}, {"kind": "epoch", "epoch": 1}]) is None
    assert takeoff_mark([{"kind": "phase", "phase": "takeoff", "epoch": 1}]) is None      # no plateau to show
    assert takeoff_mark([{"kind": "phase", "phase": "takeoff", "epoch": 17}]) == (17, "take-off")
    assert takeoff_mark([{"kind": "phase", "phase": "no_takeoff", "epoch": 30}])[0] == 30
