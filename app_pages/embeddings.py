"""Embeddings: the run's stored 2-D projection (UMAP, or PCA at once), coloured by pin address; select points
with the box or lasso to see their images."""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import streamlit as st

from snw_core import audit_view as AV
from snw_core import review as R
from snw_core import ui, viz
from snw_core.embed import load_projection, project_pca
from snw_core.fsutil import project_root

MAX_THUMBS = 72
SPLITS = ("all", "train", "val", "test")
# the UMAP child: a separate, low-priority process, so the Streamlit server stays responsive for everyone
UMAP_CODE = (
    "import os, sys; os.nice(10)\n"
    "from pathlib import Path\n"
    "from snw_core.embed import load_embeddings, project_umap, save_projection\n"
    "p = Path(sys.argv[1]); d = load_embeddings(p / 'embeddings.npz')\n"
    "save_projection(p / 'projection.parquet', project_umap(d['embeddings'], seed=int(sys.argv[2])), 'umap')\n")


@st.cache_data(show_spinner=False, max_entries=16)
def _projection(path: str, mtime: int):
    df = load_projection(path)
    return df[["x", "y"]].to_numpy(), str(df["method"].iloc[0]) if "method" in df and len(df) else "umap"


@st.cache_data(show_spinner=False, max_entries=16)
def _pca(path: str, mtime: int, _emb):
    return project_pca(_emb)


@st.cache_resource
def _umap_jobs() -> dict:
    """Running UMAP children by run folder, shared by every session of this server (one job per run)."""
    return {}


def _start_umap(run, seed: int) -> None:
    if not ui.is_engineer():                                # checked here too, not only by hiding the button
        return
    jobs = _umap_jobs()
    key = str(run.path)
    job = jobs.get(key)
    if job is not None and job["proc"].poll() is None:
        return                                              # someone already started it
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-c", UMAP_CODE, key, str(int(seed))], cwd=project_root(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    jobs[key] = {"proc": proc, "log": log, "started": time.time()}


st.title("Embeddings")
run = ui.finished_run_or_info()
if run is None:
    st.stop()
data = ui.run_embeddings(run)
if data is None:
    st.warning(f"Run `{run.id}` has no stored embeddings (embeddings.npz).")
    st.stop()
cfg = run.config()
good = str(cfg.get("data", {}).get("good_label", "0"))
seed = int(cfg.get("settings", {}).get("seed", 0))
labels, split, emb = data["labels"], data["split"], data["embeddings"]
scores = data.get("scores")
if scores is None or len(scores) != len(labels):
    scores = np.full(len(labels), np.nan)

proj_file = run.file("projection.parquet")
stored = None
if proj_file.exists():
    try:
        stored = _projection(str(proj_file), proj_file.stat().st_mtime_ns)
        if len(stored[0]) != len(labels):
            stored = None
    except Exception:                       # a broken file: treat as missing (the button recomputes it)
        stored = None
has_umap = stored is not None and stored[1] == "umap"

c1, c2, c3 = st.columns([1, 1.4, 3])
method = c1.radio("Projection", ("UMAP", "PCA"), key="embeddings_method", horizontal=True, persist_state="session",
                  help="UMAP keeps neighbourhoods (computed once per run and stored); "
                       "PCA is the linear view, instant, with distances in embedding units.")
part = c2.segmented_control("Split", SPLITS, key="embeddings_split", default="all", required=True,
                            persist_state="session",
                            help="Show the items of one split only (the split the run was trained with).")
part = part or "all"

# ------------------------------------------------------------------ UMAP missing: offer PCA now, UMAP in the background
job = _umap_jobs().get(str(run.path))
if method == "UMAP" and not has_umap:
    running = job is not None and job["proc"].poll() is None
    with c3:
        if running:
            ui.poll_job(_umap_jobs(), str(run.path), "Computing the UMAP projection in the background ... {s} s "
                                                     "(usually 5-30 s). Showing PCA meanwhile; the page updates by itself.")
        else:
            if job is not None and job["proc"].returncode not in (None, 0):
                st.error(f"The UMAP projection failed: {ui.job_error(job)}")
            st.info("This run has no stored UMAP projection (trained with `--projection none` or `pca`). "
                    "Showing PCA; compute UMAP once and it is stored with the run.")
            if ui.engineer_only("Computing and storing a projection") and st.button(
                    "Compute UMAP projection", key="embeddings_compute_umap", type="primary",
                    help="Runs in a separate low-priority process (about 5-30 s); you can keep working."):
                _start_umap(run, seed)
                st.rerun()
    method_shown = "PCA"
else:
    method_shown = method

if method_shown == "UMAP":
    xy = stored[0]
else:
    xy = _pca(str(run.file("embeddings.npz")), run.file("embeddings.npz").stat().st_mtime_ns, emb)

# ------------------------------------------------------------------ the scatter (left) and the selection (right)
fig, trace_rows = R.embedding_scatter(xy, labels, split, scores, good, part=part, method=method_shown, height=600)
audit_flags = AV.cached_flags_for(run)
if audit_flags and c3.toggle(f"Ring the {len(AV.flagged_rows(audit_flags))} items flagged by the audit",
                             key="embeddings_flagged", help="Flags of the Audit page (wrong label?, duplicate, "
                             "leak, outlier); hover a ring for its kinds."):
    AV.add_highlight(fig, trace_rows, xy, audit_flags)
n_shown = sum(len(r) for r in trace_rows)
st.caption(f"Run `{run.id}` · {method_shown} of {emb.shape[1]}-d embeddings · {n_shown:,} items"
           f"{'' if part == 'all' else f' ({part} split)'} · colour = label (good: small gray points; pins: the "
           "same colours on every page). Hover for label, split, score and row; drag a box or lasso to select "
           "(double-click to clear); the selected images appear on the right.")
plot_col, sel_col = st.columns([3, 2])
with plot_col:
    event = st.plotly_chart(fig, key="embeddings_scatter", on_select="rerun", selection_mode=("box", "lasso"))

points = (event.get("selection") or {}).get("points", []) if event else []
rows = R.selected_rows(points, trace_rows)
with sel_col:
    if rows.size == 0:
        st.subheader("Selection")
        st.caption("No selection yet: drag a box or lasso around points to see their images here.")
        st.stop()
    st.subheader(f"Selection: {rows.size:,} items")
    counts = R.label_counts(labels, rows, good)
    colors = viz.label_colors(labels, good)
    n_def = int((labels[rows] != good).sum())
    st.caption(f"{rows.size - n_def:,} good, {n_def:,} defective; split: "
               + ", ".join(f"{s} {int((split[rows] == s).sum()):,}" for s in SPLITS[1:] if (split[rows] == s).any()))
    st.dataframe(counts.drop(columns=["label"]).style.apply(
        lambda col: [f"background-color: {colors.get(lab, '#cccccc')}; color: white; font-weight: 600"
                     for lab in counts["label"]], subset=["what"]),
        hide_index=True, key="embeddings_counts", height=min(35 * (len(counts) + 1) + 3, 250),
        column_config={"what": "label", "items": "items"})
    ds, why = ui.run_dataset(cfg, labels.size)
    if ds is None:
        st.info(f"Images unavailable: {why.rstrip('.')}.")
    else:
        shown = R.order_by_label(rows, labels, good, limit=MAX_THUMBS)
        st.caption(("" if rows.size <= MAX_THUMBS else
                    f"Showing {MAX_THUMBS} of {rows.size:,} selected items, shared between the labels. ")
                   + "Grouped by label; frame colour = label; caption = row · label.")
        thumbs = ui.thumbnails(ds, shown, viz.auto_scale(ds.image_shape, 72),
                               [colors.get(lab, "#cccccc") for lab in labels[shown]])
        st.image(thumbs, caption=[f"#{i} · {viz.label_name(labels[i], good)}" for i in shown])
