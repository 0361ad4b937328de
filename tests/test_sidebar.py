"""The shared sidebar's data-source form: only the chosen kind's input, Load data reloads every page,
bad input shows the reason and keeps the previous source."""
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_pages_gallery_pairs import APP, env  # noqa: F401  (fixture)

from snw_core.ui import SOURCE_KINDS


@pytest.fixture
def roots(env, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SNW_DATA_ROOTS", str(env["tmp"]))
    return env


def start(env) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["data_source"] = env["parquet"]
    at.run()
    assert not at.exception
    return at


def sidebar_inputs(at) -> list[str]:
    return [w.key for w in at.sidebar.text_input] + [w.key for w in at.sidebar.get("file_uploader")]


def test_only_the_chosen_kind_has_an_input(roots):
    at = start(roots)
    assert at.sidebar.selectbox(key="sidebar_source_kind").value == SOURCE_KINDS[3]     # a path is in use
    assert sidebar_inputs(at) == ["sidebar_path", "sidebar_good_label"]
    assert at.sidebar.text_input(key="sidebar_path").value == roots["parquet"]
    at.sidebar.selectbox(key="sidebar_source_kind").set_value(SOURCE_KINDS[0]).run()
    assert sidebar_inputs(at) == ["sidebar_good_label"]
    at.sidebar.selectbox(key="sidebar_source_kind").set_value(SOURCE_KINDS[1]).run()
    assert sidebar_inputs(at) == ["sidebar_hub_id", "sidebar_good_label"]
    at.sidebar.selectbox(key="sidebar_source_kind").set_value(SOURCE_KINDS[2]).run()
    assert sidebar_inputs(at) == ["sidebar_good_label", "sidebar_upload"]
    assert at.metric[0].value == "130"                 # choosing a kind alone loads nothing


def test_load_a_folder_reloads_the_page(roots):
    from conftest import write_png_folder
    rng = np.random.default_rng(0)
    imgs = lambda k: [rng.integers(0, 255, (8, 10), dtype=np.uint8) for _ in range(k)]  # noqa: E731
    folder = write_png_folder(roots["tmp"] / "folder", {"OK": imgs(6), "NG_1": imgs(4), "NG_2": imgs(4)})
    at = start(roots)
    at.sidebar.text_input(key="sidebar_path").set_value(str(folder))
    at.sidebar.text_input(key="sidebar_good_label").set_value("OK")
    at.sidebar.button(key="sidebar_load").click().run()
    assert not at.exception and not at.sidebar.error
    assert at.session_state["data_source"] == str(folder) and at.session_state["good_label"] == "OK"
    assert at.metric[0].value == "14" and at.metric[1].value == "8 x 10 px"


def test_bad_path_says_why_and_keeps_the_previous_source(roots, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    at = start(roots)
    for bad, reason in ((str(outside), "outside the folders"), (str(roots["tmp"] / "nope.parquet"), "nope.parquet")):
        at.sidebar.text_input(key="sidebar_path").set_value(bad)
        at.sidebar.button(key="sidebar_load").click().run()
        assert not at.exception
        assert reason in at.sidebar.error[0].value and "previous data source stays" in at.sidebar.error[0].value
        assert at.session_state["data_source"] == roots["parquet"]
        assert at.metric[0].value == "130"


def test_hub_offline_fails_with_a_clear_message(roots):
    at = start(roots)
    at.sidebar.selectbox(key="sidebar_source_kind").set_value(SOURCE_KINDS[1]).run()
    at.sidebar.text_input(key="sidebar_hub_id").set_value("someone/not-cached")
    at.sidebar.button(key="sidebar_load").click().run()
    assert not at.exception
    msg = at.sidebar.error[0].value
    assert "someone/not-cached" in msg and "previous data source stays" in msg
    assert at.session_state["data_source"] == roots["parquet"] and at.metric[0].value == "130"


def test_upload_without_a_file_asks_for_one(roots):
    at = start(roots)
    at.sidebar.selectbox(key="sidebar_source_kind").set_value(SOURCE_KINDS[2]).run()
    at.sidebar.button(key="sidebar_load").click().run()
    assert "Choose a parquet file" in at.sidebar.error[0].value
    assert at.session_state["data_source"] == roots["parquet"]
