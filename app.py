"""SNW dashboard: the router and frame. Run with `make run` (or `streamlit run app.py`)."""
import os
import sys
import time

T_START = time.perf_counter()       # SNW_PAGE_TIMING: the whole script (sidebar included)

import streamlit as st

from snw_core import ui

st.set_page_config(page_title="SNW dashboard", page_icon=":material/memory:", layout="wide")
ui.init_state()

PAGES = [
    st.Page("app_pages/gallery.py", title="Gallery", default=True),
    st.Page("app_pages/pairs.py", title="Pairs"),
    st.Page("app_pages/train.py", title="Train"),
    st.Page("app_pages/accuracy.py", title="Accuracy"),
    st.Page("app_pages/embeddings.py", title="Embeddings"),
    st.Page("app_pages/audit.py", title="Audit"),
    st.Page("app_pages/runs.py", title="Runs"),
    st.Page("app_pages/inspect.py", title="Inspect"),
]
nav = st.navigation(PAGES)
ui.sidebar()
try:
    nav.run()
finally:
    if os.environ.get("SNW_PAGE_TIMING"):      # tools/bench_pages.py: the server's share of a page's time
        print(f"snw-page-timing {nav.title} {time.perf_counter() - T_START:.4f}", file=sys.stderr, flush=True)
