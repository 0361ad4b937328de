"""AppTest tests of the sweep parts of the Train and Runs pages, on a temporary run store with a hand-made
sweep record and trial folders (no Ray, no training). Starting a sweep is tested with sweep.start_sweep
replaced by a fake that records the plan the form built.
"""
import os

import pytest

from snw_core import sweep as S
from snw_core.runs import RunStore, _proc_start
from test_pages_train_runs import page, texts

ME = {"pid": os.getpid(), "pid_start": _proc_start(os.getpid())}


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("SNW_RUNS_DIR", str(tmp_path / "runs"))
    return RunStore()


def sweep_table(at):
    """The sweep's trial table (a data frame without selection has no key in AppTest: found by its columns)."""
    return [d.value for d in at.dataframe if "trial" in d.value.columns][0]


def make_sweep(store, dataset, accs=(0.7, 0.9, 0.8, None), driver=None):
    """A recorded sweep over learning_rate with one trial folder per given accuracy (None: no folder)."""
    lrs = ",".join(str(0.001 * (i + 1)) for i in range(len(accs)))
    sw, spec = S.create_sweep(S.plan_sweep(preset="seed", grid=[f"learning_rate={lrs}"], epochs=1, dataset=dataset))
    sw.write_status("running" if driver else "stopped", **(driver or {"pid": 2**22 + 3}))
    for i, acc in enumerate(accs):
        if acc is None:
            continue
        run = store.create(run_id=S.trial_run_id(sw.id, i))
        run.write_config({"run_id": run.id, "preset": "seed", "sweep": {"id": sw.id, "trial": i},
                          "settings": {"learning_rate": 0.001 * (i + 1), "epochs": 1},
                          "data": {"source": dataset.source}})
        if acc == "running":
            run.write_status("running", **ME)
            continue
        run.write_status("done")
        run.write_history([{"epoch": 1, "loss": 0.3, "val_loss": 0.4, "pair_accuracy": 0.6, "val_pair_accuracy": 0.6,
                            "seconds": 1.0}])
        run.write_metrics({"good_defect_accuracy": acc, "escape_rate": 1 - acc, "overkill_rate": 0.1, "auroc": acc,
                           "pair_accuracy": 0.6, "pin_accuracy": 0.2, "train_seconds": 3.0,
                           "drift_check": {"held": 9 - i, "rows": []}})
    return sw


def test_train_form_builds_the_grid_and_starts_a_sweep(store, tiny_parquet, monkeypatch):
    calls = []

    def fake_start(plan, runs_dir=None, concurrency=None, actor=None):
        assert actor.is_engineer
        calls.append((plan, concurrency))
        return "20260101-000000-sweep-0000"

    monkeypatch.setattr(S, "start_sweep", fake_start)
    at = page("app_pages/train.py", data_source=str(tiny_parquet))
    at.selectbox(key="train_preset").set_value("seed").run()
    at.number_input(key="train_epochs").set_value(2)
    at.text_input(key="train_sweep_learning_rate").set_value("0.001, 0.002")
    at.text_input(key="train_sweep_margin").set_value("0.5,1")
    at.number_input(key="train_sweep_concurrency").set_value(2)
    at.button(key="train_sweep_start").click().run()
    assert not at.exception and not at.error, texts(at.error)
    (plan, k), = calls
    assert k == 2 and plan["preset"] == "seed" and plan["grid"] == {"learning_rate": [0.001, 0.002], "margin": [0.5, 1.0]}
    got = sorted((t["overrides"]["learning_rate"], t["overrides"]["margin"]) for t in plan["trials"])
    assert got == [(0.001, 0.5), (0.001, 1.0), (0.002, 0.5), (0.002, 1.0)]
    assert all(t["overrides"]["epochs"] == 2 and t["overrides"]["batch_size"] == 32 for t in plan["trials"])


def test_train_sweep_bad_value_shows_error_and_starts_nothing(store, tiny_parquet, monkeypatch):
    calls = []
    monkeypatch.setattr(S, "start_sweep", lambda *a, **k: calls.append(a))
    at = page("app_pages/train.py", data_source=str(tiny_parquet))
    at.text_input(key="train_sweep_margin").set_value("0.5, big")
    at.button(key="train_sweep_start").click().run()
    assert not at.exception
    assert "not a number" in texts(at.error) and calls == []
    assert S.list_sweeps() == []


def test_train_shows_running_sweep_and_stops_it(store, tiny_dataset):
    sw = make_sweep(store, tiny_dataset, accs=(0.7, "running"), driver=ME)
    at = page("app_pages/train.py")
    assert sw.id in texts(at.markdown)
    at.button(key=f"train_sweep_stop_{sw.id}").click().run()
    assert not at.exception
    assert sw.stop_requested() and store.get(S.trial_run_id(sw.id, 1)).stop_requested()


def test_runs_groups_a_sweep_sorted_with_best_marked(store, tiny_dataset):
    sw = make_sweep(store, tiny_dataset)
    at = page("app_pages/runs.py")
    main = at.dataframe(key="runs_table").value
    assert set(main["sweep"]) == {sw.id}
    table = sweep_table(at)
    assert list(table["trial"]) == [1, 2, 0, 3]              # best good/defect accuracy first, unfinished last
    assert list(table["state"]) == ["done", "done", "done", "not started"]
    assert "trial 1" in texts(at.markdown)
    chart = at.get("plotly_chart")
    assert chart and "best: trial 1" in chart[-1].proto.spec
    at.selectbox(key="runs_sweep_metric").set_value("escape_rate").run()
    assert list(sweep_table(at)["trial"]) == [1, 2, 0, 3]     # lower escape is better
    at.selectbox(key="runs_sweep_metric").set_value("drift_held").run()
    assert list(sweep_table(at)["trial"]) == [0, 1, 2, 3]     # most camera-drift conditions held first
    assert list(sweep_table(at)["drift_held"])[:3] == [9, 8, 7]
    at.selectbox(key="runs_sweep_metric").set_value("escape_rate").run()
    assert at.button(key="runs_sweep_resume")                # not all done, driver gone
    at.toggle(key="runs_sweep_compare").set_value(True).run()
    assert not at.exception
    compare = [d.value for d in at.dataframe if "metric" in d.value.columns][0]
    assert f"{S.trial_run_id(sw.id, 1)} (baseline)" in compare.columns


def test_runs_stop_button_of_a_running_sweep(store, tiny_dataset):
    sw = make_sweep(store, tiny_dataset, accs=(0.7, "running"), driver=ME)
    at = page("app_pages/runs.py")
    at.button(key="runs_sweep_stop").click().run()
    assert not at.exception
    assert sw.stop_requested() and store.get(S.trial_run_id(sw.id, 1)).stop_requested()


def test_viewers_see_sweeps_but_cannot_stop_them(store, tiny_dataset, monkeypatch):
    from snw_core import roles as R
    sw = make_sweep(store, tiny_dataset, accs=(0.7, "running"), driver=ME)
    monkeypatch.setenv(R.VIEWER_ONLY_ENV, "1")
    at = page("app_pages/runs.py")
    assert not [b for b in at.button if b.key in ("runs_sweep_stop", "runs_sweep_resume")]
    assert "is for engineers" in texts(at.caption)
    assert list(sweep_table(at)["trial"]) == [0, 1]
    at = page("app_pages/train.py")
    assert not [b for b in at.button if (b.key or "").startswith("train_sweep_")]
    with pytest.raises(R.AccessError):
        S.stop_sweep(sw.id, actor=R.Actor("someone", R.VIEWER))
    assert not sw.stop_requested()


def test_stopping_a_sweep_is_logged(store, tiny_dataset):
    from snw_core import actions
    from snw_core.roles import LOCAL
    sw = make_sweep(store, tiny_dataset, accs=(0.7, "running"), driver=ME)
    S.stop_sweep(sw.id, actor=LOCAL)
    entry = actions.read_log(store)[-1]
    assert (entry["action"], entry["run_id"], entry["kind"], entry["user"]) == ("stop", sw.id, "sweep", "local")
