"""Pairs: the positive and negative pairs a preset trains on, and (with a finished run) how the model judges them."""
import numpy as np
import streamlit as st

from snw_core import gallery as G
from snw_core import ui, viz
from snw_core.data import sort_labels
from snw_core.metrics import PAIR_CUTOFF
from snw_core.pairs import PAIR_DIFFERENT, PAIR_SAME
from snw_core.presets import PRESET_HELP, PRESETS
from snw_core.sampling import per_class
from snw_core.splits import SPLITS

PAGE_SIZES = (6, 12, 24, 36)
SHOW_NAMES = {"all": "all pairs", "positive": "positives only", "negative": "negatives only",
              "wrong": "judged wrong", "right": "judged right"}

st.title("Pairs")
st.caption("A Siamese network learns from pairs of images: a **positive** pair has the same label (pair label "
           f"{PAIR_SAME}), a **negative** pair different labels (pair label {PAIR_DIFFERENT}). The model calls a pair "
           f"\"same\" when the distance of its two embeddings is below {PAIR_CUTOFF:g} (the seed study's metric).")
ds = ui.current_dataset()
if ds is None:
    st.info("Choose another data source in the sidebar; the rest of the app keeps working.")
    st.stop()
good = ds.good_label

# ------------------------------------------------------------------ the pair scheme
run = ui.current_run()
if "pairs_preset" not in st.session_state:
    run_preset = run.config().get("preset") if run is not None else None
    st.session_state["pairs_preset"] = run_preset if run_preset in PRESETS else "seed"
c = st.columns([1.8, 0.8, 0.8, 1])
preset = c[0].segmented_control("Preset", list(PRESETS), key="pairs_preset", required=True,
                                help="Which training recipe's pairs to show.")
settings = PRESETS[preset]
seed = int(c[1].number_input("Seed", min_value=0, max_value=2**31 - 1, value=int(settings["seed"]), step=1,
                             key="pairs_seed", help="Seeds the split and the pairs, as in training."))
part = c[3].selectbox("Images from", SPLITS, key="pairs_split",
                      format_func=lambda s: {"train": "train split (what training uses)", "val": "val split",
                                             "test": "test split (unseen)"}[s],
                      help="Training builds its pairs from the train split; val and test pairs are built the same way "
                           "and show how the model does on images it has not trained on.")
fractions = tuple(settings["split"])
try:
    split = ui.split_for(ds, fractions, seed)
except ValueError as e:
    st.error(f"Cannot split this data set: {e}")
    st.stop()
if ds.splits is not None:
    st.caption("This data set fixes its own split (a 'split' column): every run follows it, whatever its seed.")
items = np.flatnonzero(split == part)
in_batch = settings["pairing"] in ("in_batch", "classify")     # the classifier baseline uses the same batches

try:
    if not in_batch:
        n_per = int(c[2].number_input("Pairs per image", min_value=1, max_value=100,
                                      value=int(settings["pairs_per_image"]), step=1, key="pairs_per_image",
                                      help="Positive pairs per image, and as many negative pairs (seed scheme)."))
        ia, ib, y = G.seed_scheme_pairs(ds.labels, items, n_per, seed)
        st.markdown(f"**{preset}** preset: {PRESET_HELP[preset]}  \nIts pairs follow the seed scheme: for each of "
                    f"the {items.size:,} {part} images, {n_per} random images of the same label (positives) and "
                    f"{n_per} of a different label (negatives), shuffled: **{y.size:,} pairs**.")
    else:
        max_b = max(2, int(items.size))
        if st.session_state.get("pairs_batch_size", 0) > max_b:
            st.session_state["pairs_batch_size"] = max_b
        bs = int(c[2].number_input("Batch size (images)", min_value=2, max_value=max_b,
                                   value=min(int(settings["batch_size"]), max_b), step=1, key="pairs_batch_size",
                                   help="Images per batch: K = batch size // labels images of every label (at least 2); every pair inside the batch enters the loss."))
        batch = G.draw_batch(ds.labels, items, bs, seed)
        ia, ib, y = G.in_batch_pairs(ds.labels, batch, seed)
        n_pos = int((y == PAIR_SAME).sum())
        n_lab = int(np.unique(ds.labels[items]).size)
        k = per_class(bs, n_lab)
        which = (f"exactly training's first batch (train split, seed {seed})" if part == "train" else
                 f"one batch drawn that way from the {part} split (seed {seed})")
        st.markdown(f"**{preset}** preset: {PRESET_HELP[preset]}  \nIt trains on **all pairs inside each batch of "
                    f"images** instead of a fixed pair list. Every batch is class-balanced: {k} images of each of the "
                    f"{n_lab} labels (good and every pin address), so {batch.size} images per batch whatever the label "
                    f"counts. Below: {which} and its {y.size:,} pairs ({n_pos:,} positive, "
                    f"{y.size - n_pos:,} negative). The loss averages positives and negatives separately and weights "
                    "both halves equally."
                    + (f" Training also shifts each image by up to {settings['augment_shift']} px at random; the "
                       "images here are unshifted." if settings.get("augment_shift") else "")
                    + (f" Training also changes every image afresh with the `{settings['augment']}` augmentation (a "
                       "camera's drift); the images here are as they are in the data set."
                       if settings.get("augment", "none") != "none" else "")
                    + (" The classifier baseline trains on these same batches but with cross-entropy on each image's "
                       "label, not on pairs; the pairs are shown for comparison with the twins."
                       if settings["pairing"] == "classify" else ""))
except ValueError as e:
    st.error(f"Cannot build pairs from the {part} split: {e}")
    st.stop()

# ------------------------------------------------------------------ distances from a trained run
correct = dist = None
metrics = run.metrics() if run is not None else {}
if run is None:
    st.caption("Pick a finished run in the sidebar to see each pair's embedding distance and whether the model "
               "got it right.")
elif not metrics:
    st.info(f"Run `{run.id}` has no results yet (state: {run.state()}); distances appear once it has finished.")
else:
    cfg = run.config()
    data_cfg = cfg.get("data", {})
    emb = ui.run_embeddings(run)
    if data_cfg.get("content_hash") != ds.content_hash:
        st.info(f"Run `{run.id}` was trained on other data (source `{data_cfg.get('source', '?')}`, content hash "
                f"`{str(data_cfg.get('content_hash', '?'))[:12]}`) than the current data set (`{ds.source}`, "
                f"`{ds.content_hash[:12]}`), so its distances are not shown. Pick a run trained on this data set.")
    elif emb is None or emb["embeddings"].shape[0] != ds.n:
        st.info(f"Run `{run.id}` has no embeddings for the {ds.n:,} items of this data set; distances are not shown.")
    else:
        dist = G.pair_distances(emb["embeddings"], ia, ib)
        correct = G.judge_pairs(dist, y)
        rs = cfg.get("settings", {})
        notes = []
        if cfg.get("preset") != preset:
            notes.append(f"the run was trained with the {cfg.get('preset', '?')} preset; the distances show how that "
                         f"model judges the {preset} preset's pairs")
        if part == "train":
            notes.append("these are training images, which the model has seen, so their pair accuracy is optimistic; "
                         "pick the test split for unseen images")
        if rs.get("seed") != seed or list(rs.get("split", fractions)) != list(fractions):
            notes.append(f"the run used seed {rs.get('seed')} for its split, this page seed {seed}: the "
                         f"'{part}' images here are not exactly the run's {part} split")
        note = "; ".join(notes)
        st.caption(f"Distances from run `{run.id}` (preset {cfg.get('preset', '?')})."
                   + (f" Note: {note}." if note else ""))

# ------------------------------------------------------------------ summary
summ = G.pair_summary(y, correct)
if correct is not None:
    m = st.columns(4)
    m[0].metric(f"Pair accuracy ({summ['n']:,} pairs)", f"{100 * summ['accuracy']:.1f}%",
                help=f"Share of all the pairs above judged right (same when d < {PAIR_CUTOFF:g}).")
    for col, kind in ((m[1], "positive"), (m[2], "negative")):
        v = summ[f"{kind}_accuracy"]
        col.metric(f"{kind.capitalize()}s right ({summ['n_' + kind]:,})", "-" if v is None else f"{100 * v:.1f}%",
                   help=f"Share of the {kind} pairs judged right.")
    test_acc = metrics.get("pair_accuracy")
    if isinstance(test_acc, (int, float)):
        m[3].metric("Run's test pair accuracy", f"{100 * test_acc:.1f}%",
                    help="From the run's metrics: seed-scheme pairs of its test split (comparable across presets).")
    st.plotly_chart(G.distance_histogram(dist, y), key="pairs_distance_hist")
    st.caption(f"Distances of all {summ['n']:,} pairs; left of the dashed line the model says \"same\". "
               "Each kind is shown as a share of its own count."
               + (" The pair accuracy counts every pair, so in-batch pairs (mostly negatives) weigh negatives more "
                  "than the loss does." if in_batch else "")
               + ("" if in_batch else " The seed scheme may pair an image with itself as a positive (distance 0), "
                                      "as the seed study's random choice could."))

if in_batch:
    colors = viz.label_colors(ds.labels, good)
    grid = viz.thumbnail_grid(ds.images[batch], cols=16, scale=viz.auto_scale(ds.image_shape, 72), gap=2,
                              border=[colors[lab] for lab in ds.labels[batch]])
    with st.expander(f"The batch: {batch.size} images (frame colour = label)", expanded=False):
        in_batch_labels = ds.labels[batch]
        st.image(grid, caption=", ".join(f"{viz.label_name(lab, good)}: {int((in_batch_labels == lab).sum())}"
                                         for lab in sort_labels(in_batch_labels, good)), output_format="PNG")

# ------------------------------------------------------------------ the pairs, side by side
st.subheader("The pairs, side by side")
fc = st.columns([1.5, 1, 1, 2])
show_opts = list(G.PAIR_SHOW) if correct is not None else ["all", "positive", "negative"]
if st.session_state.get("pairs_show") not in show_opts:
    st.session_state["pairs_show"] = "all"
show = fc[0].selectbox("Show", show_opts, key="pairs_show", format_func=SHOW_NAMES.get)
page_size = fc[1].selectbox("Per page", PAGE_SIZES, index=1, key="pairs_page_size")
sel = G.filter_pairs(y, correct, show)
n_pages = G.page_count(sel.size, page_size)
if st.session_state.get("pairs_page", 1) > n_pages:
    st.session_state["pairs_page"] = n_pages
page = fc[2].number_input(f"Page (of {n_pages:,})", min_value=1, max_value=n_pages, value=1, step=1, key="pairs_page")
rows, page, n_pages = G.page_items(sel, page, page_size)
if rows.size == 0:
    st.info("No pair matches this filter.")
    st.stop()
first = (page - 1) * page_size + 1
fc[3].caption(f"Pairs {first:,}-{first + rows.size - 1:,} of {sel.size:,} ({SHOW_NAMES[show]}). Frame = label colour"
              + ("; the distance line is green when the model judged the pair right, red when wrong."
                 if correct is not None else "."))

colors = viz.label_colors(ds.labels, good)
scale = viz.auto_scale(ds.image_shape, 144)
n_cols = 3
for start in range(0, rows.size, n_cols):
    cols = st.columns(n_cols)
    for col, k in zip(cols, rows[start:start + n_cols]):
        a, b, yk = int(ia[k]), int(ib[k]), int(y[k])
        la, lb = ds.labels[a], ds.labels[b]
        ok = None if correct is None else bool(correct[k])
        img = G.pair_image(ds.images[a], ds.images[b], scale, (colors[la], colors[lb]))
        kind = (f"**Positive** · same label · pair label {PAIR_SAME}" if yk == PAIR_SAME
                else f"**Negative** · different labels · pair label {PAIR_DIFFERENT}")
        if ok is not None:
            d = float(dist[k])
            verdict = "same" if d < PAIR_CUTOFF else "different"
            tone = "green" if ok else "red"
            kind += f"  \n:{tone}[**d = {d:.3f}** → judged {verdict}: {'right ✓' if ok else 'wrong ✗'}]"
        with col.container(border=True):        # two elements per pair: each one costs the browser time
            st.markdown(kind)
            st.image(G.png_data_uris([img])[0],
                     caption=f"#{a} {viz.label_name(la, good)}  ↔  #{b} {viz.label_name(lb, good)}")
