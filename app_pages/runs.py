"""Runs: every run in the run store (whoever wrote it), compared side by side; delete old ones (to the trash,
restorable), and the action log. Changing actions are for engineers and go through ``snw_core.actions``.

The run store folder is the interface: runs trained from the command line, another tab or another worker
show up here like the dashboard's own.
"""
from __future__ import annotations

import plotly.graph_objects as go
import plotly.colors
import streamlit as st

from app_pages import runs_sweeps
from snw_core import actions, trash, ui
from snw_core import runview as V
from snw_core.roles import AccessError
from snw_core.runs import RunError

PALETTE = plotly.colors.qualitative.Plotly
VERDICT_STYLE = {"better": "color: #1a7f37; background-color: #e6f4ea; font-weight: 600",
                 "worse": "color: #b42318; background-color: #fdecea", "same": "color: #6b7280", "": ""}
COLUMN_CONFIG = {
    "run_id": st.column_config.TextColumn("run", pinned=True),
    "epochs": st.column_config.NumberColumn("epochs", help="the setting: epochs counted from take-off"),
    "epochs_run": st.column_config.NumberColumn(
        "epochs run", help="epochs actually trained: more than the setting when the model sat on a start-up plateau "
                           "first or its budget grew for a hard surface, fewer after early stopping or Stop"),
    "learning_rate": st.column_config.NumberColumn("learning rate", format="%g"),
    "batch_size": st.column_config.NumberColumn("batch size"),
    "embedding_dim": st.column_config.NumberColumn("embedding size"),
    "good_defect_accuracy": st.column_config.NumberColumn("good/defect acc.", format="percent",
                                                          help="test split; higher is better"),
    "escape_rate": st.column_config.NumberColumn("escape rate", format="percent", help="test split; lower is better"),
    "overkill_rate": st.column_config.NumberColumn("overkill rate", format="percent",
                                                   help="test split; lower is better"),
    "auroc": st.column_config.NumberColumn("AUROC", format="%.3f", help="test split; higher is better"),
    "pair_accuracy": st.column_config.NumberColumn("pair acc.", format="percent", help="test pairs; higher is better"),
    "pin_accuracy": st.column_config.NumberColumn("pin acc.", format="percent",
                                                  help="defective test items with the right pin guessed"),
    "drift_held": st.column_config.NumberColumn(
        "drift held", format="%d", help="camera-drift conditions (of 9) under which the run passes at least 98 % of "
        "fresh good parts and catches 95 % of defects (90 % blurred); the Accuracy page has the table"),
    "train_seconds": st.column_config.NumberColumn("training s", format="%.1f"),
    "started": st.column_config.TextColumn("started (UTC)"),
    "sweep": st.column_config.TextColumn("sweep", help="the sweep a run belongs to (see Sweeps below)"),
}


def _delete(ids: list[str]) -> None:
    """Callback of the confirm button: delete, remember the outcome, clear the selection (row numbers shift)."""
    try:
        msgs = actions.delete_runs(ui.store(), ids, ui.actor())
    except AccessError as e:
        msgs = [("error", str(e))]
    st.session_state["runs_delete_msgs"] = msgs
    st.session_state.pop("runs_delete_pending", None)
    # The browser keeps a table selection by row number, and rows below a deleted one move up: a new key
    # gives the table a fresh, empty selection (its identity is the key alone).
    st.session_state["runs_table_gen"] = st.session_state.get("runs_table_gen", 0) + 1


def _table_key() -> str:
    gen = st.session_state.get("runs_table_gen", 0)
    return "runs_table" if not gen else f"runs_table-{gen}"


def _cancel_delete() -> None:
    st.session_state.pop("runs_delete_pending", None)


def loss_overlay_figure(histories: dict[str, list[dict]]) -> go.Figure:
    df = V.loss_overlay(histories)
    fig = go.Figure()
    for i, rid in enumerate(histories):
        color = PALETTE[i % len(PALETTE)]
        for series, dash in (("loss", "solid"), ("val_loss", "dash")):
            d = df[(df.run_id == rid) & (df.series == series)]
            fig.add_scatter(x=d["epoch"], y=d["value"], mode="lines+markers", name=f"{rid} · {series}",
                            legendgroup=rid, line=dict(color=color, dash=dash), marker=dict(size=6))
    fig.update_layout(title="Loss per epoch (solid: training, dashed: validation)", height=420,
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2),
                      xaxis_title="epoch", yaxis_title="contrastive loss")
    return fig


def compare(runs_by_id: dict, summaries: list[dict], prefix: str = "runs") -> None:
    ids = [s["run_id"] for s in summaries]
    st.subheader(f"Comparing {len(ids)} runs")
    st.plotly_chart(loss_overlay_figure({rid: runs_by_id[rid].history() for rid in ids}), key=f"{prefix}_loss_chart")
    st.caption("Validation loss uses the same seed-scheme validation pairs for every preset, so dashed lines compare "
               "across presets; the training loss of in-batch presets is on another scale.")
    if st.session_state.get(f"{prefix}_baseline") not in ids:
        st.session_state[f"{prefix}_baseline"] = ids[0]
    baseline = st.columns([1, 1])[0].selectbox("Baseline", ids, key=f"{prefix}_baseline",
                                                help="Changes are shown as other run minus this run.")
    text, marks = V.comparison_table(V.compare_metrics(summaries, baseline), baseline)
    styled = text.style.apply(lambda col: [VERDICT_STYLE.get(v, "") for v in marks[col.name]], axis=0)
    st.dataframe(styled, hide_index=True, key=f"{prefix}_compare_table",
                 column_config={"metric": st.column_config.TextColumn("metric", pinned=True),
                                "better": st.column_config.TextColumn("better when")})
    st.caption("Test-split metrics; in brackets the change against the baseline (run minus baseline, in percentage "
               "points for rates). Green = an improvement (higher accuracy or AUROC, lower escape, overkill or "
               "training time), red = worse.")


def delete_section(selected: list[str], states: dict[str, str]) -> None:
    for kind, msg in st.session_state.pop("runs_delete_msgs", []):
        (st.success if kind == "ok" else st.error)(msg)
    if not ui.engineer_only("Deleting runs"):
        st.session_state.pop("runs_delete_pending", None)
        return
    pending = st.session_state.get("runs_delete_pending")
    if pending:
        st.warning(f"Delete {len(pending)} run folder(s): {', '.join(f'`{r}`' for r in pending)}? They move to "
                   "the trash (below), where an engineer can restore them until the trash is emptied.")
        c1, c2, _ = st.columns([1, 1, 4])
        c1.button("Yes, delete", key="runs_delete_confirm", type="primary", on_click=_delete, args=(pending,),
                  icon=":material/delete:")
        c2.button("Cancel", key="runs_delete_cancel", on_click=_cancel_delete)
        return
    running = [r for r in selected if states.get(r) == "running"]
    if st.button(f"Delete selected run{'s' if len(selected) != 1 else ''}", key="runs_delete",
                 disabled=not selected, icon=":material/delete:"):
        if running:
            # the run store refuses too (RunError); say so before asking for confirmation
            for kind, msg in actions.delete_runs(ui.store(), running, ui.actor()):
                (st.success if kind == "ok" else st.error)(msg)
        else:
            st.session_state["runs_delete_pending"] = list(selected)
            st.rerun()


def _restore(ids: list[str]) -> None:
    try:
        st.session_state["runs_trash_msgs"] = actions.restore_runs(ui.store(), ids, ui.actor())
    except AccessError as e:
        st.session_state["runs_trash_msgs"] = [("error", str(e))]
    _new_tables()


def _empty(ids: list[str]) -> None:
    try:
        gone = actions.empty_trash(ui.store(), ui.actor(), ids)
        st.session_state["runs_trash_msgs"] = [("ok", f"Deleted {len(gone)} run(s) for good.")]
    except (AccessError, RunError) as e:
        st.session_state["runs_trash_msgs"] = [("error", str(e))]
    st.session_state.pop("runs_trash_empty_pending", None)
    _new_tables()


def _new_tables() -> None:
    """Fresh keys for both tables: their selections are row numbers, and rows moved."""
    st.session_state["runs_table_gen"] = st.session_state.get("runs_table_gen", 0) + 1


def trash_section() -> None:
    rows = trash.list_trash(store)
    with st.expander(f"Trash: {len(rows)} run{'s' if len(rows) != 1 else ''}", icon=":material/delete:",
                     expanded=bool(rows) and "runs_trash_msgs" in st.session_state):
        for kind, msg in st.session_state.pop("runs_trash_msgs", []):
            (st.success if kind == "ok" else st.error)(msg)
        if not rows:
            st.caption("Empty. Deleted runs land here, unchanged, and can be restored.")
            return
        gen = st.session_state.get("runs_table_gen", 0)
        event = st.dataframe(rows, key=f"runs_trash_table-{gen}", on_select="rerun", selection_mode="multi-row",
                             hide_index=True)
        chosen = [rows[i]["run_id"] for i in event.selection.rows if i < len(rows)]
        if not ui.engineer_only("Restoring runs and emptying the trash"):
            return
        pending = st.session_state.get("runs_trash_empty_pending")
        if pending:
            st.warning(f"Delete {len(pending)} trashed run(s) for good? This cannot be undone.")
            c1, c2, _ = st.columns([1, 1, 3])
            c1.button("Yes, delete for good", key="runs_trash_empty_confirm", type="primary", on_click=_empty,
                      args=(pending,), icon=":material/delete_forever:")
            c2.button("Cancel", key="runs_trash_empty_cancel",
                      on_click=lambda: st.session_state.pop("runs_trash_empty_pending", None))
            return
        c1, c2, _ = st.columns([1, 1, 3])
        c1.button("Restore selected", key="runs_trash_restore", disabled=not chosen, on_click=_restore,
                  args=(chosen,), icon=":material/restore_from_trash:")
        if c2.button("Empty trash" if not chosen else "Delete selected for good", key="runs_trash_empty",
                     icon=":material/delete_forever:"):
            st.session_state["runs_trash_empty_pending"] = chosen or [r["run_id"] for r in rows]
            st.rerun()


def log_section() -> None:
    rows = actions.log_rows(store, limit=200)
    with st.expander(f"Action log: {len(rows)} latest", icon=":material/history:"):
        if not rows:
            st.caption("No actions yet. Starts, stops, deletions and restores from the dashboard and the command "
                       "line are recorded here, with who did them.")
            return
        st.dataframe(rows, key="runs_action_log", hide_index=True)
        st.caption(f"Newest first; the whole log is `{store.root / actions.LOG_NAME}` (`python -m snw_core runs log`).")


# ------------------------------------------------------------------ page

ui.init_state()
st.title("Runs")
store = ui.store()
runs = list(reversed(store.list()))          # oldest first: a new run is appended, selected rows stay put
st.caption(f"Every run folder in `{store.root}`, oldest first (click a column header to sort). Runs started from "
           "the command line or by other workers show up too.")
if not runs:
    st.info("No runs yet. Train one on the **Train** page or with `python -m snw_core train`.")
    for kind, msg in st.session_state.pop("runs_delete_msgs", []):
        (st.success if kind == "ok" else st.error)(msg)
    trash_section()
    log_section()
    st.stop()

summaries = [r.summary() for r in runs]
runs_by_id = {r.id: r for r in runs}
states = {s["run_id"]: s["state"] for s in summaries}
diff_only = st.toggle("Differences only", key="runs_diff_only",
                      help="Show only the settings that differ between the runs (any setting, not just the key ones).")
table = V.runs_frame(summaries, diff_only=diff_only)
table.insert(2, "sweep", runs_sweeps.sweep_column(runs_by_id, table["run_id"]))   # grouped below
labels = {c: c.replace("_", " ") for c in table.columns if c not in COLUMN_CONFIG}
event = st.dataframe(table, key=_table_key(), on_select="rerun", selection_mode="multi-row", hide_index=True,
                     column_config={**labels, **COLUMN_CONFIG}, placeholder="–")
rows = [i for i in event.selection.rows if i < len(table)]
selected = [table.iloc[i]["run_id"] for i in rows]

delete_section(selected, states)

if len(selected) >= 2:
    compare(runs_by_id, [s for s in summaries if s["run_id"] in selected])
elif len(selected) == 1:
    st.info(f"Selected `{selected[0]}`. Select one or more further rows to overlay loss curves and compare metrics.")
    one = runs_by_id[selected[0]]
    if one.metrics() and one.embedder_path.exists():
        from snw_core import export
        ui.unusable_box(one)
        st.download_button(
            "Download bundle for the line", data=lambda: export.bundle_zip(one).read_bytes(),
            file_name=f"snw-bundle-{one.id}.zip", mime="application/zip", key="runs_bundle_download",
            on_click="ignore", icon=":material/download:",
            help="The embedder as LiteRT (no TensorFlow needed), the good and defect references, the threshold and "
                 "a numpy-only script: see the Inspect page for how to run it at the line.")
else:
    st.info("Select two or more rows (tick boxes on the left) to overlay their loss curves and compare their metrics.")

runs_sweeps.section(runs_by_id, summaries, compare)
trash_section()
log_section()
