"""Audit: items of the run's data whose label looks wrong, duplicates, leaks and outliers, each with a decision
(relabel / keep / exclude) saved to a corrections file that training applies on load; the source is never changed."""
from pathlib import Path

import streamlit as st

from snw_core import audit as A
from snw_core import audit_view as V
from snw_core import corrections as C
from snw_core import ui, viz
from snw_core.actions import log_action
from snw_core.data import DataError
from snw_core.roles import AccessError

PAGE_SIZE = 10
SCALE = 3
NB_SCALE = 3

st.title("Audit")
st.caption("Flags from the run's embeddings (wrong labels: the labels of the nearest other items vote, the item's "
           "own label never counts; each picture against its most similar good parts confirms or overrules the "
           "vote) and from the pictures themselves (duplicates, leaks, outliers). Decisions go to a corrections "
           "file beside the runs; training with it relabels or leaves out those rows on load.")
run = ui.finished_run_or_info()
if run is None:
    st.stop()
cfg = run.config()
data_cfg = cfg.get("data", {})
good = str(data_cfg.get("good_label", "0"))
try:
    src = ui.get_dataset(str(data_cfg.get("source", "")), good)
except DataError as e:
    st.warning(f"The data of run `{run.id}` cannot be loaded, so it cannot be audited: {e}")
    st.stop()

res = A.cached_audit(run)
if res is None:
    try:
        with st.spinner("Auditing the run's data (a second or two) ..."):
            res = A.audit_run(run)
    except DataError as e:
        st.warning(str(e))
        st.stop()
flags, summary = res["flags"], res["summary"]

# ------------------------------------------------------------------ the corrections file
rec = cfg.get("corrections") or {}
path = C.default_corrections_path(src)
if rec.get("file") and rec.get("source_content_hash") == src.content_hash and Path(rec["file"]).is_file():
    path = Path(rec["file"])              # the run was trained with a file of this data set: keep adding to it
entries, file_error = [], None
if path.is_file():
    try:
        _, entries = C.read_corrections(path)
    except C.CorrectionsError as e:
        file_error = str(e)
saved = {int(e["row"]): V.decision_of(e) for e in entries}
shown_path = V.short_path(path)

# ------------------------------------------------------------------ counts
cols = st.columns(4)
for col, kind in zip(cols, A.KINDS):
    col.metric(V.SHORT_NAMES[kind].capitalize(), f"{summary['counts'][kind]:,}",
               help={"label": "its nearest other items mostly carry another label, or its picture contradicts "
                              "its label (compared with the most similar good parts)",
                     "duplicate": "the same picture as another item (pixel RMS difference far below the usual)",
                     "leak": "a val/test item whose duplicate is in train: its test result is not independent",
                     "outlier": "a picture far from every other one: wrong part, camera fault, empty fixture?"}[kind])
st.caption(f"{summary['n']:,} items of run `{run.id}` · data `{src.source}` · audit took "
           f"{summary['seconds']['total']:.2f} s · label evidence: {summary.get('label_evidence', 'neighbours')} · "
           f"decisions: {len(saved):,} in `{shown_path}`")
if summary.get("note"):
    st.warning(summary["note"])
if file_error:
    st.error(f"The corrections file cannot be used, so decisions are not saved until it is fixed or removed: {file_error}")
if cfg.get("corrections"):
    st.info(f"This run was trained with corrections ({rec.get('relabelled', 0)} relabelled, "
            f"{len(rec.get('excluded_rows', []))} excluded): the labels below are the corrected ones.")

if not flags:
    st.success("Nothing flagged: no label disagrees with its neighbours, no duplicates, leaks or outliers.")
    st.stop()

# ------------------------------------------------------------------ filters
present = [k for k in A.KINDS if summary["counts"][k]]
fc = st.columns([3, 1.2, 1])
kinds = fc[0].multiselect("Kinds", present, default=present, key="audit_kinds", format_func=V.SHORT_NAMES.get)
hide = fc[1].toggle("Hide decided items", value=False, key="audit_hide_decided")
shown = V.filter_flags(flags, set(kinds), set(saved), show_decided=not hide)
by_row: dict = {}
for f in shown:                         # one entry per item (an item can be a duplicate and a leak)
    by_row.setdefault(f["row"], []).append(f)
rows = list(by_row)
n_pages = max(1, -(-len(rows) // PAGE_SIZE))
if st.session_state.get("audit_page", 1) > n_pages:
    st.session_state["audit_page"] = n_pages
page = fc[2].number_input(f"Page (of {n_pages})", min_value=1, max_value=n_pages, value=1, step=1, key="audit_page")
page_rows = rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]

engineer = ui.is_engineer()


def save(new_entries: list, message: str) -> bool:
    """Write the corrections file (engineers only, checked here on the server) and log who did it."""
    try:
        actor = ui.actor()
        actor.require("save audit decisions")
    except AccessError as e:
        st.error(str(e))
        return False
    C.write_corrections(path, new_entries, src.source, src.content_hash)
    log_action(ui.store(), actor, "audit-decisions", run.id, file=str(path), decisions=len(new_entries))
    st.session_state["audit_saved_msg"] = message
    return True


colors = viz.label_colors(src.labels, good)
options = V.decision_options(src.label_names)
label_name = lambda lab: viz.label_name(lab, good)   # noqa: E731

if not page_rows:
    st.info("No flag matches these filters.")
with st.form("audit_form", border=False):
    for row in page_rows:
        fl = by_row[row]
        f0 = fl[0]
        with st.container(border=True):
            c = st.columns([1.1, 2.0, 3.6, 1.3])
            c[0].image(ui.thumbnails(src, [row], SCALE, [colors[src.labels[row]]], border=3),
                       caption=[f"#{row} · {label_name(f0['label'])}"])
            kinds_text = ", ".join(V.KIND_NAMES[f["kind"]] for f in fl)
            sug = next((f["suggested_label"] for f in fl if f["suggested_label"] is not None), None)
            c[1].markdown(f"**{kinds_text}** · score {max(f['score'] for f in fl):.2f} · {f0['split']}  \n"
                          f"label **{label_name(f0['label'])}**"
                          + (f" → suggested **{label_name(sug)}**" if sug is not None else ""))
            for f in fl:
                c[1].caption(f["reason"])
            nb = f0["neighbours"]
            c[2].image(ui.thumbnails(src, [n["row"] for n in nb], NB_SCALE, [colors[src.labels[n["row"]]] for n in nb],
                                     border=2),
                       caption=[f"#{n['row']} · {label_name(n['label'])} · {n['distance']:.2f}" for n in nb])
            current = saved.get(row, V.UNDECIDED)
            c[3].selectbox("Decision", options, index=options.index(current) if current in options else 0,
                           key=f"audit_decision_{row}", disabled=not engineer, help="relabel to X / keep (reviewed, label right) / "
                           "exclude (left out of training and evaluation); 'undecided' removes a saved decision")
    st.caption("Nearest items in the run's embedding: row · label · distance. Frame colour = label.")
    submitted = st.form_submit_button("Save decisions of this page", key="audit_save",
                                      disabled=bool(file_error) or not engineer, type="primary")
if not engineer:
    ui.engineer_only("Saving decisions")
if st.session_state.get("audit_saved_msg"):
    st.success(st.session_state.pop("audit_saved_msg"))

if submitted:
    decisions = {r: st.session_state.get(f"audit_decision_{r}", V.UNDECIDED) for r in page_rows}
    kept = [e for e in entries if int(e["row"]) not in decisions]
    notes = {r: "audit: " + "; ".join(f["reason"] for f in by_row[r]) for r in page_rows}
    new = [e for r, d in decisions.items() if (e := V.entry_for(r, src.labels[r], d, notes[r])) is not None]
    if save(C.merge_decisions(kept, new), f"Saved {len(new)} decision(s) of this page to `{shown_path}`."):
        st.rerun()

# ------------------------------------------------------------------ everything at once, the file, training with it
st.divider()
b = st.columns([1.6, 1.2, 3])
n_label = sum(f["kind"] == "label" for f in flags)
if b[0].button(f"Accept all {n_label} label suggestions", key="audit_accept_all",
               disabled=bool(file_error) or not n_label or not engineer,
               help="Relabel every flagged item to its suggested label; decisions already saved are kept."):
    new = [e for e in C.from_flags(flags, src.labels) if int(e["row"]) not in saved]
    if save(C.merge_decisions(entries, new), f"Added {len(new)} relabel decision(s) to `{shown_path}`."):
        st.rerun()
if path.is_file():
    b[1].download_button("Download the corrections file", path.read_bytes(), file_name=path.name, mime="text/csv",
                         key="audit_download")
    b[2].markdown(f"Train with it: **Train** page, *Corrections file*, or  \n"
                  f"`python -m snw_core train --data {src.source} --corrections {shown_path}`")
