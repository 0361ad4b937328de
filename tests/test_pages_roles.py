"""Roles on the pages (AppTest): what a viewer sees, that handlers refuse a viewer whatever reached them, the
password sign-in, and the Runs page's trash and action log."""
import re

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest
from test_pages_accuracy_embeddings import make_run as make_embedded_run
from test_pages_train_runs import APP, finished, running, select, store, texts  # noqa: F401  (fixture)

from snw_core import actions, trash
from snw_core import roles as R
from snw_core.runs import RunStore

PAGES = ["app_pages/gallery.py", "app_pages/pairs.py", "app_pages/train.py", "app_pages/accuracy.py",
         "app_pages/embeddings.py", "app_pages/runs.py", "app_pages/inspect.py"]
ACTION_KEYS = {"train_start", "train_stop", "runs_delete", "runs_delete_confirm", "runs_trash_restore",
               "runs_trash_empty", "runs_trash_empty_confirm", "embeddings_compute_umap"}
ACTION_LABEL = re.compile(r"\b(start|stop|delete|sweep|restore|empty)\b", re.I)
PASSWORD = "engineer-pw-1"


@pytest.fixture
def bound_to(monkeypatch):
    """Pretend the server is bound to ``address`` (AppTest reads the project's config.toml: 127.0.0.1)."""
    old = config.get_option("server.address")

    def bind(address):
        config.set_option("server.address", address)
    yield bind
    config.set_option("server.address", old)


@pytest.fixture
def fast_throttle(monkeypatch):
    slept = []
    monkeypatch.setattr(R, "THROTTLE", R.SignInThrottle(sleep=slept.append))
    return slept


def open_page(path, **state):
    at = AppTest.from_file(str(APP), default_timeout=60)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


def buttons(at):
    """(key, label) of every button on the page and in the sidebar, form submit buttons included."""
    return [(b.key, b.label) for b in list(at.button) + list(at.get("form_submit_button"))]


def password_field(at):
    """The sign-in form's password input (its key changes after every try, so the field starts empty)."""
    found = [w for w in at.sidebar.text_input if (w.key or "").startswith("sidebar_signin_password")]
    return found[0] if found else None


def test_viewer_only_has_no_action_control_on_any_page(store, monkeypatch, tiny_parquet):
    finished(store)
    running(store)
    RunStore().delete("r1-done")                      # something in the trash too
    finished(store, "r2-done", started="2026-01-01T11:00:00+00:00")
    # a finished run with embeddings but no stored UMAP: the Embeddings page would offer to compute it
    make_embedded_run(RunStore().root, str(tiny_parquet), "r3-noproj", projection=False)
    monkeypatch.setenv(R.VIEWER_ONLY_ENV, "1")
    for path in PAGES:
        at = open_page(path, data_source=str(tiny_parquet), run_id="r3-noproj")
        found = buttons(at)
        assert not ACTION_KEYS & {k for k, _ in found}, (path, found)
        assert not [lab for _, lab in found if ACTION_LABEL.search(lab)], (path, found)
        assert "viewer-only mode" in texts(at.sidebar.caption)
    # what a viewer is told instead
    at = open_page("app_pages/train.py")
    assert "Starting a training is for engineers" in texts(at.caption)
    assert "Stopping a run is for engineers" in texts(at.caption)
    at = open_page("app_pages/runs.py")
    assert "Deleting runs is for engineers" in texts(at.caption)
    at = open_page("app_pages/embeddings.py", data_source=str(tiny_parquet), run_id="r3-noproj")
    assert "Computing and storing a projection is for engineers" in texts(at.caption)


def test_the_same_pages_have_the_controls_for_the_local_engineer(store, tiny_parquet):
    """The check above can fail: on loopback, the controls it looks for are there."""
    running(store)
    finished(store)
    at = open_page("app_pages/train.py", data_source=str(tiny_parquet))
    assert {"train_start", "train_stop"} <= {k for k, _ in buttons(at)}
    assert "Engineer: the dashboard listens on this computer only." in texts(at.sidebar.caption)
    at = open_page("app_pages/runs.py")
    assert "runs_delete" in {k for k, _ in buttons(at)}
    make_embedded_run(RunStore().root, str(tiny_parquet), "r3-noproj", projection=False)
    at = open_page("app_pages/embeddings.py", data_source=str(tiny_parquet), run_id="r3-noproj")
    assert "embeddings_compute_umap" in {k for k, _ in buttons(at)}


def test_a_stale_confirm_click_is_refused_by_the_handler(store, monkeypatch):
    """The confirm button was drawn while the session was an engineer; the server became viewer-only before
    the click. The click reaches the button's callback, which must refuse."""
    a = finished(store, "r1-a")
    at = open_page("app_pages/runs.py")
    select(at, [0])
    at.run()
    select(at, [0])
    at.button(key="runs_delete").click().run()
    assert at.button(key="runs_delete_confirm")
    monkeypatch.setenv(R.VIEWER_ONLY_ENV, "1")
    select(at, [0])
    at.button(key="runs_delete_confirm").click().run()
    assert not at.exception
    assert a.path.is_dir() and trash.list_trash(RunStore()) == []
    assert "Only an engineer can delete runs" in texts(at.error)
    assert actions.read_log(RunStore()) == []


def test_a_stale_restore_click_is_refused(store, monkeypatch):
    finished(store, "r1-a")
    RunStore().delete("r1-a")
    at = open_page("app_pages/runs.py")
    at.session_state["runs_trash_table-0"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.button(key="runs_trash_restore").disabled
    monkeypatch.setenv(R.VIEWER_ONLY_ENV, "1")
    at.session_state["runs_trash_table-0"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.button(key="runs_trash_restore").click().run()
    assert not at.exception
    assert [r["run_id"] for r in trash.list_trash(RunStore())] == ["r1-a"]
    assert "Only an engineer can restore runs" in texts(at.error)


def test_forged_session_state_deletes_nothing(store, monkeypatch):
    a = finished(store, "r1-a")
    monkeypatch.setenv(R.VIEWER_ONLY_ENV, "1")
    at = open_page("app_pages/runs.py", runs_delete_pending=["r1-a"], runs_trash_empty_pending=["r1-a"])
    assert "runs_delete_confirm" not in {k for k, _ in buttons(at)}
    assert a.path.is_dir()


def test_non_loopback_without_sign_in_is_a_viewer(store, bound_to, tiny_parquet):
    bound_to("0.0.0.0")
    running(store)
    at = open_page("app_pages/train.py", data_source=str(tiny_parquet))
    assert not ACTION_KEYS & {k for k, _ in buttons(at)}
    assert "No engineer sign-in is configured" in texts(at.sidebar.caption)
    assert not password_field(at)                                            # no form without a hash
    # viewers choose among the sources that write nothing
    from snw_core.ui import SOURCE_KINDS
    assert at.sidebar.selectbox(key="sidebar_source_kind").options == [SOURCE_KINDS[0], SOURCE_KINDS[3]]


def test_password_sign_in(store, bound_to, monkeypatch, fast_throttle):
    bound_to("0.0.0.0")
    encoded = R.hash_password(PASSWORD, iterations=1000)
    monkeypatch.setenv(R.PASSWORD_HASH_ENV, encoded)
    run = running(store)
    at = open_page("app_pages/train.py")
    assert not {"train_start", "train_stop"} & {k for k, _ in buttons(at)}
    at.sidebar.text_input(key="sidebar_signin_name").input("Ann")
    password_field(at).input("wrong-password")
    at.sidebar.button(key="sidebar_signin").click().run()
    assert not at.exception
    assert "Wrong password" in texts(at.sidebar.error) and fast_throttle == [1.0]
    assert password_field(at).value == "" and at.sidebar.text_input(key="sidebar_signin_name").value == "Ann"
    assert not {"train_start", "train_stop"} & {k for k, _ in buttons(at)}
    password_field(at).input(PASSWORD)
    at.sidebar.button(key="sidebar_signin").click().run()
    assert not at.exception
    assert {"train_start", "train_stop"} <= {k for k, _ in buttons(at)}
    assert "Engineer: **Ann (password)**" in texts(at.sidebar.caption)
    at.button(key="train_stop").click().run()
    assert run.stop_requested()
    log = actions.read_log(RunStore())
    assert [(e["user"], e["action"]) for e in log] == [("Ann (password)", "sign-in-refused"),
                                                        ("Ann (password)", "sign-in"), ("Ann (password)", "stop")]
    # another hash configured (the password was changed): the session is a viewer again
    monkeypatch.setenv(R.PASSWORD_HASH_ENV, R.hash_password(PASSWORD, iterations=1000))
    at.run()
    assert "train_start" not in {k for k, _ in buttons(at)}
    # signing out
    monkeypatch.setenv(R.PASSWORD_HASH_ENV, encoded)
    at.run()
    at.sidebar.button(key="sidebar_signout").click().run()
    assert "train_start" not in {k for k, _ in buttons(at)}


def test_a_malformed_hash_says_so(store, bound_to, monkeypatch):
    bound_to("0.0.0.0")
    monkeypatch.setenv(R.PASSWORD_HASH_ENV, "my-password-in-clear")
    at = open_page("app_pages/runs.py")
    assert "not valid" in texts(at.sidebar.error)
    assert not password_field(at)


def test_runs_page_trash_and_log_for_the_engineer(store):
    a = finished(store, "r1-a")
    finished(store, "r2-b", started="2026-01-01T11:00:00+00:00")
    before = {p.name: p.read_bytes() for p in a.path.iterdir()}
    at = open_page("app_pages/runs.py")
    select(at, [0])
    at.run()
    select(at, [0])
    at.button(key="runs_delete").click().run()
    select(at, [0])
    at.button(key="runs_delete_confirm").click().run()
    assert not a.path.exists()
    gen = at.session_state["runs_table_gen"]
    at.session_state[f"runs_trash_table-{gen}"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    at.session_state[f"runs_trash_table-{gen}"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.button(key="runs_trash_restore").click().run()
    assert not at.exception
    assert {p.name: p.read_bytes() for p in a.path.iterdir()} == before
    assert "Restored run `r1-a`" in texts(at.success)
    [log] = [d.value for d in at.dataframe if "action" in d.value.columns]            # the action log table
    assert log["action"].tolist() == ["restore", "delete"] and set(log["user"]) == {"local"}
    # empty the trash, with a confirmation
    RunStore().delete("r2-b")
    at.run()
    at.button(key="runs_trash_empty").click().run()
    assert "cannot be undone" in texts(at.warning)
    assert trash.list_trash(RunStore())
    at.button(key="runs_trash_empty_confirm").click().run()
    assert not at.exception
    assert trash.list_trash(RunStore()) == [] and "for good" in texts(at.success)
