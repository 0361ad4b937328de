"""The dashboard's .streamlit/config.toml: safe defaults and the settings page-switch speed relies on."""
import tomllib
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml"


def test_safe_defaults():
    c = tomllib.loads(CONFIG.read_text())
    assert c["server"]["address"] == "127.0.0.1"              # this computer only unless ADDRESS=0.0.0.0
    assert c["server"]["enableXsrfProtection"] is True
    assert c["server"]["maxUploadSize"] == 50
    assert c["browser"]["gatherUsageStats"] is False
    assert c["client"]["showErrorDetails"] == "none"


def test_no_gc_and_no_file_watcher_per_script_run():
    # gc.collect() after every run cost 0.3 s per click with TensorFlow loaded; the watcher walks the project
    c = tomllib.loads(CONFIG.read_text())
    assert c["runner"]["postScriptGC"] is False
    assert c["server"]["fileWatcherType"] == "none"
    assert c["server"]["runOnSave"] is False


def test_makefile_default_data_is_the_file_the_app_loads():
    # `make run` runs `data check default` (a Python start, 0.5 s) only when this file is missing: after a
    # rename of the cache file (a new version) the Makefile must follow, or every start pays it again
    import re

    from snw_core import data as D
    make = (CONFIG.parent.parent / "Makefile").read_text()
    name = re.search(r"^DEFAULT_DATA := data_cache/(\S+)$", make, re.M).group(1)
    assert name == D.default_parquet().name
