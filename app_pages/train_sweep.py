"""The Train page's sweep part: a grid builder inside the training form, and the running sweeps with Stop.

Not a page of its own (app.py does not list it): app_pages/train.py calls these functions. A sweep starts as a
detached ``python -m snw_core sweep`` process (Ray Tune places its trials); the dashboard never imports Ray.
"""
from __future__ import annotations

import os
import re

import streamlit as st

from snw_core import sweep as S
from snw_core import sweepview as SV
from snw_core import ui
from snw_core.data import DataError
from snw_core.presets import PRESETS, SettingsError
from snw_core.roles import AccessError
from snw_core.runs import RunError

#: form boxes of the grid builder: setting -> label
GRID_FIELDS = {"learning_rate": "Learning rates", "margin": "Margins", "embedding_dim": "Embedding sizes",
               "batch_size": "Batch sizes", "epochs": "Epochs", "seed": "Seeds"}


def grid_builder() -> bool:
    """Inside the training form: the values to try and the Start sweep button; returns True when pressed."""
    st.session_state.setdefault("train_sweep_concurrency", max(1, os.cpu_count() or 1))
    with st.expander("Sweep: try several values, one run per combination", icon=":material/grid_view:"):
        st.caption("Comma-separated values; every combination of the filled boxes becomes one run, with the "
                   "settings above (and the corrections file) for everything else. Ray Tune places the runs on "
                   "this machine's cores.")
        c1, c2 = st.columns(2)
        for i, (k, label) in enumerate(GRID_FIELDS.items()):
            (c1, c2)[i % 2].text_input(label, key=f"train_sweep_{k}", placeholder="0.001, 0.002"
                                       if k == "learning_rate" else "", help=f"values of {k}")
        c1.multiselect("Presets", list(PRESETS), key="train_sweep_presets",
                       help="Two or more presets: each keeps its own settings except the epochs, the seed and "
                            "the split (the values above apply to all).")
        c2.number_input("Trials at a time", 1, 256, step=1, key="train_sweep_concurrency",
                        help="Each trial gets its share of the CPU cores; two TensorFlow processes that each "
                             "want every core only fight.")
        return st.form_submit_button("Start sweep", key="train_sweep_start", icon=":material/grid_view:")


def start(preset: str, overrides: dict, name: str | None, projection: str) -> None:
    """Plan the sweep from the form (bad input: an error, nothing written) and start its driver."""
    ss = st.session_state
    items = SV.grid_items({k: ss.get(f"train_sweep_{k}", "") for k in GRID_FIELDS})
    presets = list(ss.get("train_sweep_presets") or [])
    if len(presets) > 1:
        items.append("preset=" + ",".join(presets))
        base = {k: overrides[k] for k in ("epochs", "split") if k in overrides}
    else:
        preset = presets[0] if presets else preset
        base = {k: v for k, v in overrides.items() if k != "seed"}
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name or "").strip("-")[:24] or None
    try:
        with st.spinner("Checking the data and every trial's settings, starting the sweep …"):
            plan = S.plan_sweep(ss["data_source"], preset, grid=items, seed=int(overrides.get("seed", 0)),
                                good_label=ss["good_label"], name=slug, projection=projection, base=base,
                                corrections=ss.get("train_corrections"))
            sid = S.start_sweep(plan, concurrency=int(ss["train_sweep_concurrency"]), actor=ui.actor())
    except (SettingsError, DataError, RunError, AccessError) as e:
        st.error(str(e))
        return
    st.session_state["train_sweep_last"] = sid
    st.toast(f"Started sweep {sid} ({len(plan['trials'])} runs)", icon=":material/grid_view:")


def running_sweeps() -> None:
    """Each running sweep: a line and a Stop button (every trial stops within one batch)."""
    live = [sw for sw in S.list_sweeps(ui.store().root) if sw.state() == "running"]
    last = st.session_state.get("train_sweep_last")
    if not live and not last:
        return
    st.subheader("Sweeps")
    for sw in live:
        c1, c2 = st.columns([4, 1])
        c1.markdown(f"`{SV.sweep_line(sw)}`")
        if sw.stop_requested():
            c2.caption("stopping …")
        elif ui.is_engineer() and c2.button(
                "Stop sweep", key=f"train_sweep_stop_{sw.id}", icon=":material/stop_circle:",
                help="Every trial ends `stopped` within one batch; trials not started yet are left for "
                     "`sweep --resume`."):
            try:
                S.stop_sweep(sw.id, ui.store().root, actor=ui.actor())
            except (RunError, AccessError) as e:
                st.error(str(e))
            st.rerun()
    if last and last not in {sw.id for sw in live}:
        st.caption(f"Sweep `{last}` is not running any more; the **Runs** page shows its trials.")
    elif live:
        st.caption("Trials appear in **Watch run** while they train; the **Runs** page groups them by sweep.")
