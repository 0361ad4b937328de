"""Gallery: the current data set at a glance (summary, label distribution, paged pixel-exact thumbnails)."""
import streamlit as st

from snw_core import audit_view as AV
from snw_core import gallery as G
from snw_core import ui, viz
from snw_core.splits import DEFAULT_FRACTIONS, SPLITS

PAGE_SIZES = (12, 24, 36, 48, 60)
SPLIT_NOTE = (f"Split: the default seeded split, stratified per label, train/val/test "
              f"{'/'.join(str(round(100 * f)) for f in DEFAULT_FRACTIONS)} with seed 0 "
              "(what training uses with default settings).")
OWN_SPLIT_NOTE = ("Split: the data set's own (its 'split' column), which every run of it follows, whatever its seed "
                  "and split fractions.")

st.title("Gallery")
ds = ui.current_dataset()
if ds is None:
    st.info("Choose another data source in the sidebar; the rest of the app keeps working.")
    st.stop()

good = ds.good_label
split_note = OWN_SPLIT_NOTE if ds.splits is not None else SPLIT_NOTE
try:
    split = ui.split_for(ds)
except ValueError as e:
    split = None
    st.warning(f"No train/val/test split for this data set: {e}")

# ------------------------------------------------------------------ summary
n_good = int((~ds.is_defect).sum())
n_defect = ds.n - n_good
h, w = ds.image_shape
cols = st.columns([0.8, 1.5, 0.8, 0.8, 1.7])     # room for "1024 x 1280 px" and "21,600 / 7,200 / 7,200"
cols[0].metric("Items", f"{ds.n:,}")
cols[1].metric("Image size", f"{h} x {w} px", help="height x width, grayscale")
cols[2].metric("Good", f"{n_good:,}", help=f"label {good}; {100 * n_good / ds.n:.1f}% of the items")
cols[3].metric("Defect", f"{n_defect:,}", help=f"{len(ds.label_names) - (good in ds.label_names)} pin addresses; "
                                               f"{100 * n_defect / ds.n:.1f}% of the items")
if split is not None:
    sc = G.split_counts(split)
    cols[4].metric("Train / val / test", " / ".join(f"{sc[s]:,}" for s in SPLITS), help=split_note)
st.caption(f"Source `{ds.source}` · content hash `{ds.content_hash[:12]}` · good label `{good}`"
           + ("" if split is None else f" · {split_note}"))
for warning in ds.warnings:
    st.warning(f"Data warning: {warning}")
if good not in ds.label_names:
    st.warning(f"No item has the good label `{good}`: every item counts as a defect. "
               "Set the good label in the sidebar.")

# the label distribution: bars in a table first (no plotly.js on the first page: ~1.3 s of browser time on two
# cores), the interactive plotly chart in a tab that runs only when opened (on_change="rerun" makes tabs lazy)
n_labels = len(ds.label_names)
label_rows = G.label_split_table(ds.labels, split, good)
colors = viz.label_colors(ds.labels, good)
left, _ = st.columns([3, 1])
with left:
    table_tab, chart_tab = st.tabs(["Items per label", "Chart (interactive)"], key="gallery_label_view",
                                   on_change="rerun")
    with table_tab:
        st.html(G.label_bars_html(label_rows, colors))
    if chart_tab.open:
        with chart_tab:
            st.plotly_chart(G.label_bar_figure(ds.counts(), good, height=max(320, min(520, 35 * (n_labels + 1)))),
                            key="gallery_label_chart")

# ------------------------------------------------------------------ thumbnails
st.subheader("Images")
options = G.show_options(ds.labels, good)
if st.session_state.get("gallery_show") not in options:      # another data set without that pin address
    st.session_state["gallery_show"] = G.SHOW_ALL
fcols = st.columns([2, 1.3, 1, 1, 1])
show = fcols[0].selectbox("Show", options, key="gallery_show", format_func=lambda o: G.show_name(o, good))
split_filter = fcols[1].selectbox("Split", ("all",) + SPLITS, key="gallery_split", disabled=split is None,
                                  format_func=lambda s: "all splits" if s == "all" else s, help=SPLIT_NOTE)
page_size = fcols[2].selectbox("Per page", PAGE_SIZES, index=PAGE_SIZES.index(48), key="gallery_page_size")
scale = fcols[3].select_slider("Zoom", options=list(range(1, 9)), value=min(8, viz.auto_scale(ds.image_shape, 144)),
                               key="gallery_scale", help="Pixel-exact enlargement: each pixel becomes a square.")

items = G.filter_items(ds.labels, good, show, split, split_filter if split is not None else "all")
audit_flags = AV.cached_flags_for(ui.current_run(), ds.content_hash)
if audit_flags and st.toggle(f"Only the {len(AV.flagged_rows(audit_flags))} items flagged by the audit of the run",
                             key="gallery_flagged", help="Flags of the Audit page for the run picked in the sidebar."):
    items = AV.only_flagged(items, audit_flags)
n_pages = G.page_count(items.size, page_size)
if st.session_state.get("gallery_page", 1) > n_pages:     # the filter shrank the result: stay in range
    st.session_state["gallery_page"] = n_pages
page = fcols[4].number_input(f"Page (of {n_pages:,})", min_value=1, max_value=n_pages, value=1, step=1,
                             key="gallery_page")
rows, page, n_pages = G.page_items(items, page, page_size)

if items.size == 0:
    st.info("No item matches these filters.")
else:
    first = (page - 1) * page_size + 1
    st.caption(f"Items {first:,}-{first + rows.size - 1:,} of {items.size:,} ({G.show_name(show, good)}"
               f"{'' if split_filter == 'all' else ', ' + split_filter + ' split'}), page {page:,} of {n_pages:,}. "
               "Frame colour = label (the same colours on every page); caption = row index · label.")
    thumbs = ui.thumbnails(ds, rows, scale, [colors[lab] for lab in ds.labels[rows]], border=3)
    captions = [f"#{i} · {viz.label_name(ds.labels[i], good)}"
                + ("" if split is None or split_filter != "all" else f" · {split[i]}") for i in rows]
    st.image(thumbs, caption=captions)
