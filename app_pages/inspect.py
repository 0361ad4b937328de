"""Inspect: judge new images (uploads or test items) with the run picked in the sidebar, and download the
run's bundle for a small computer at the line (no TensorFlow there)."""
from __future__ import annotations

import numpy as np
import streamlit as st

from snw_core import acquisition, export, heatmap, ui, viz
from snw_core import inspect_view as IV
from snw_core.data import DataError
from snw_core.judge import Judge, read_images, records

st.title("Inspect")
run = ui.finished_run_or_info()
if run is None:
    st.stop()
cfg, metrics = run.config(), run.metrics()
emb_ref = ui.run_embeddings(run)
if emb_ref is None or not run.embedder_path.exists():
    st.info(f"Run `{run.id}` has no embedder or embeddings yet (state: {run.state()}); it cannot judge images.")
    st.stop()
try:
    judge = Judge.from_parts(cfg, metrics, emb_ref, gate=ui.run_gate(run), patches=ui.run_patches(run),
                             registration=ui.run_registration(run))
except (KeyError, ValueError) as e:
    st.error(f"Run `{run.id}` cannot judge images: {e}")
    st.stop()

good = judge.good_label
H, W = judge.image_shape
thr = judge.threshold
scale = viz.auto_scale((H, W), 180)           # the judged image
ref_scale = viz.auto_scale((H, W), 144)       # its nearest references

# ------------------------------------------------------------------ header: the run, and the bundle for the line
head, dl = st.columns([3, 1], vertical_alignment="center")
head.markdown(
    f"Run `{run.id}` ({cfg.get('preset', '?')}) judges **{H} x {W} px** grayscale images. "
    f"Score = mean embedding distance to the **{judge.k}** nearest of {len(judge.ref_good):,} good train items; "
    f"**DEFECT when score > {thr:.4f}** (threshold chosen on val: {cfg['settings'].get('threshold_method', '?')}). "
    f"Pin address = vote of the {judge.pin_k} nearest of {len(judge.ref_defect):,} defective train items. "
    + ("**UNKNOWN** when the image does not look like the part the run was trained on (camera fault, empty "
       "fixture, another part type), is softer or noisier than the run can judge, or far darker or brighter than "
       "its training images (a lamp off) or clipped by glare"
       + (f" (this run: a mean grey level from {judge.gate.exposure[0]:.0f}"
          + (f" to {judge.gate.exposure[1]:.0f}" if judge.gate.exposure[1] > 0 else " up")
          + (f", at most {judge.gate.max_clipped:.0%} of the pixels clipped white" if judge.gate.max_clipped > 0
             else "") + ")"
          if judge.gate is not None and judge.gate.exposure[0] > 0 else "")
       + "; the heat map shows where an image differs most from the good parts."
       + (" **DEFECT** also when a neighbourhood of the image is unlike any on the good train parts (patch "
          "evidence, chosen on val for this run), whatever the score."
          if judge.patches is not None and np.isfinite(judge.patches.threshold) else "")
       + (f" An image noisier than the training images counts as DEFECT by its score only above "
          f"{judge.noise_rule['twin']:.4f}, unless the good parts' model sees a local difference (its score is shown "
          "scaled to this threshold; the rule was learned on noisy copies of the val items)."
          if judge.noise_rule is not None else "")
       if judge.gate is not None else
       ":orange[This run was trained before the not-a-part check existed: it can only say GOOD or DEFECT and shows "
       "no heat map. Train it again to get both.]"))
with dl:
    ready = export.bundle_zip_ready(run)
    st.download_button(
        "Download bundle for the line", data=lambda: export.bundle_zip(run).read_bytes(),
        file_name=f"snw-bundle-{run.id}.zip", mime="application/zip", key="inspect_bundle_download",
        on_click="ignore", icon=":material/download:", type="primary",
        help="The model as LiteRT (TFLite), the references, the threshold and a standalone script that needs "
             "only numpy, ai-edge-litert and Pillow: runs on a Raspberry Pi 4/5 without TensorFlow.")
    st.caption(f"ready, {ready.stat().st_size / 1e6:.1f} MB" if ready else "built on first click (a few seconds)")

# ------------------------------------------------------------------ the run's data set (test picks, reference images)
ds, ds_note = None, None
try:
    ds = ui.get_dataset(cfg["data"]["source"], good)
    if ds.content_hash != cfg["data"].get("content_hash"):
        ds, ds_note = None, (f"The data source `{cfg['data']['source']}` has changed since this run was trained, "
                             "so test items and reference images cannot be shown (verdicts are unaffected).")
except DataError as e:
    ds_note = (f"The run's data source `{cfg['data']['source']}` cannot be loaded here ({e}); test items and "
               "reference images are not shown (verdicts are unaffected).")

# ------------------------------------------------------------------ inputs
left, right = st.columns(2)
with left:
    uploads = st.file_uploader(
        "Upload images", type=["png", "jpg", "jpeg", "bmp"], accept_multiple_files=True, key="inspect_upload",
        help=f"PNG, JPEG or BMP of {H} x {W} px (height x width). Colour images become grayscale.")
picks, pick_labels = [], []
with right:
    if ds is not None:
        labels, split = emb_ref["labels"], emb_ref["split"]
        test_rows = np.flatnonzero(split == "test").tolist()
        if st.session_state.get("inspect_for_run") != run.id:       # a new run: fresh picks from its test split
            st.session_state["inspect_pick"] = IV.default_picks(labels, split, good)
            st.session_state["inspect_for_run"] = run.id

        def _random_picks():
            st.session_state["inspect_pick"] = IV.random_picks(labels, split, good)

        picks = st.multiselect(
            f"Test items ({len(test_rows):,} in the run's test split, never seen in training)", test_rows,
            key="inspect_pick", format_func=lambda i: IV.pick_name(i, labels[i], good),
            help="Type a row number or 'pin 4' to search.")
        st.button("Pick 2 good + 2 defective at random", key="inspect_random", on_click=_random_picks,
                  icon=":material/casino:")
        pick_labels = [str(labels[i]) for i in picks]
    else:
        st.info(ds_note)

resize = bool(st.session_state.get("inspect_resize", False))
got = read_images([(f.name, f.getvalue()) for f in uploads or []], (H, W), resize=resize, on_error="collect")
if resize or any(p["resizable"] for p in got.problems):
    st.checkbox(f"Resize images with the same aspect ratio to {H} x {W} px", key="inspect_resize",
                help="Safe only when the picture shows the same field of view: scaling keeps the geometry of the "
                     "part. Shrinking averages pixel areas; enlarging interpolates bilinearly.")
if got.problems:
    st.error("\n".join(f"- {p['message']}" for p in got.problems))

names = list(got.names) + [IV.pick_name(i, lab, good) for i, lab in zip(picks, pick_labels)]
true_labels = [None] * len(got.names) + pick_labels
notes = list(got.notes) + [""] * len(picks)
images = np.concatenate([got.images, ds.images[picks] if (ds is not None and picks) else np.zeros((0, H, W), np.uint8)])

if not len(images):
    st.info("Upload images or pick test items to judge them.")
    st.stop()

# ------------------------------------------------------------------ judgement
# test items: the embeddings stored with the run (the same model made them at the end of training, so the verdict
# is the same; tests/test_pages_inspect.py checks it), so a first visit needs no TensorFlow. Uploads: the model.
# registered as the run judges them (a part off its taught position is put back first; snw_core.register)
judged, applied = judge.prepare(images)
n_up = len(got.images)
parts = []
if n_up:
    with st.spinner("Embedding the uploads (the first time loads TensorFlow and the model: about 10 s) ..."):
        parts.append(ui.embed(run, judged[:n_up]))
if picks:
    parts.append(np.asarray(emb_ref["embeddings"][picks], np.float32))
patch = patch_maps = None
if judge.patches is not None:
    # the patch evidence (where its threshold is used) and the heat map's location (always): uploads and test
    # items through the shared model's features
    with st.spinner("Scoring the images' neighbourhoods (the first time loads TensorFlow and the model) ..."):
        p_up = ui.patch_scores(run, judged[:n_up], judge.patches) if n_up else (np.zeros(0), None)
        p_te = (ui.patch_scores(run, judged[n_up:], judge.patches) if picks else (np.zeros(0), None))
    patch = np.concatenate([p_up[0], p_te[0]])
    maps = [m for m in (p_up[1], p_te[1]) if m is not None]
    patch_maps = np.concatenate(maps) if maps else None
out = judge.judge_embeddings(np.concatenate(parts), images=judged, patch=patch, patch_maps=patch_maps, applied=applied)
rows = records(out, names)
n_unknown = int((out["verdict"] == "UNKNOWN").sum())
n_def = int((out["verdict"] == "DEFECT").sum())
c = st.columns(5)
c[0].metric("Judged", len(rows))
c[1].metric("GOOD", len(rows) - n_def - n_unknown)
c[2].metric("DEFECT", n_def)
c[4].metric("UNKNOWN", n_unknown, help="Not recognised as this part: check camera, fixture, part type. Never passed.")
known = [(r["verdict"], t, r["pin"]) for r, t in zip(rows, true_labels) if t is not None]
if known:
    verdict_ok = sum((v != "GOOD") == (t != good) for v, t, _ in known)
    caught = [(t, p) for v, t, p in known if v != "GOOD" and t != good]
    c[3].metric("Test picks: verdict right", f"{verdict_ok} / {len(known)}",
                help=f"Good passed or defect caught. Pin address right for {sum(t == p for t, p in caught)} of "
                     f"{len(caught)} caught defects.")

camera = acquisition.summary(acquisition.findings(metrics.get("acquisition"), got.images),   # the uploads only
                             metrics.get("drift_check"))
if camera:
    st.warning(camera, icon=":material/photo_camera:")

st.plotly_chart(IV.score_figure(names, out["score"], out["verdict"], thr, judge.k), key="inspect_scores")

colors = viz.label_colors(emb_ref["labels"], good)
show_heat = judge.gate is not None and st.toggle("Heat map", value=True, key="inspect_heatmap",
                                                 help="Where the image differs most from the good train parts "
                                                      "(red); the cross marks the strongest evidence.")


def show_image(col, img, label, caption, s):
    """Pixel-exact, at its own size; a frame in the label's colour when the label is known."""
    border = None if label is None else [colors.get(label, viz.GOOD_COLOR)]
    grid = viz.thumbnail_grid(img[None], cols=1, scale=s, gap=0, border=border)
    col.image(grid, caption=caption, width=grid.shape[1], output_format="PNG")     # PNG: no JPEG artefacts


for i, r in enumerate(rows[:IV.MAX_CARDS]):
    with st.container(border=True):
        a, b, g, d = st.columns([1.2, 1.6, 1, 1])
        if show_heat:
            a.image(heatmap.overlay(images[i], judge.gate.display_map(out["heatmap"][i]),
                                    (r["defect_y"], r["defect_x"]), scale),
                    caption=f"{names[i]} · strongest evidence at (y {r['defect_y']}, x {r['defect_x']})",
                    output_format="PNG")
        else:
            show_image(a, images[i], true_labels[i], names[i], scale)
        with b:
            if r["verdict"] == "UNKNOWN":
                st.badge("UNKNOWN", icon=":material/help:", color="orange")
                st.markdown(f":orange[**{r['reason']}**]")
            elif r["defect"]:
                st.badge("DEFECT", icon=":material/cancel:", color="red")
                if r["reason"] and r["score"] <= thr:          # caught by the local or patch evidence
                    strength = r["patch"] if "patch evidence" in r["reason"] else r["local"]
                    st.caption(f"{r['reason']} ({strength:.2f} x its threshold)")
            else:
                st.badge("GOOD", icon=":material/check_circle:", color="green")
            st.markdown(f"Score **{r['score']:.4f}** vs threshold {thr:.4f} "
                        f"({'above' if r['score'] > thr else 'below'} by {abs(r['score'] - thr):.4f})")
            if applied is not None and (note := IV.registration_note(applied[i])):
                st.caption(note)
            if r["defect"] and r["pin"]:
                st.markdown(f"Pin address: **pin {r['pin']}** · confidence {r['pin_confidence']:.0%}")
            elif r["pin"]:
                st.caption(f"No pin address for a GOOD verdict (the nearest defect type would be pin {r['pin']}).")
            if true_labels[i] is not None:
                o = IV.outcome(r["verdict"], true_labels[i], r["pin"], good)
                word = f":red[**{o}**]" if o in ("ESCAPE", "OVERKILL") else o
                st.markdown(f"True label: {viz.label_name(true_labels[i], good)} → {word}")
            if notes[i]:
                st.caption(notes[i])
        for col, kind, idx, dist in ((g, "good", r["nearest_good"], r["nearest_good_distance"]),
                                     (d, "defect", r["nearest_defect"], r["nearest_defect_distance"])):
            if idx is None:
                col.caption(f"No {kind} references.")
                continue
            lab = str(emb_ref["labels"][idx])
            cap = f"nearest {kind}: #{idx} · {viz.label_name(lab, good)} · distance {dist:.4f}"
            if ds is not None:
                show_image(col, ds.images[idx], lab, cap, ref_scale)
            else:
                col.caption(cap)
if len(rows) > IV.MAX_CARDS:
    st.caption(f"Cards for the first {IV.MAX_CARDS} items; all {len(rows)} are in the chart above and the table below.")

table = IV.results_table(rows, good, true_labels=true_labels if known else None, notes=notes)
st.dataframe(table, hide_index=True, key="inspect_table",
             column_config={"score": st.column_config.NumberColumn(format="%.4f"),
                            "threshold": st.column_config.NumberColumn(format="%.4f"),
                            "margin": st.column_config.NumberColumn("score - threshold", format="%+.4f"),
                            "pin_confidence": st.column_config.NumberColumn("pin confidence", format="percent"),
                            "nearest_good": st.column_config.NumberColumn("nearest good (row)"),
                            "nearest_good_distance": st.column_config.NumberColumn("good distance", format="%.4f"),
                            "nearest_defect": st.column_config.NumberColumn("nearest defect (row)"),
                            "nearest_defect_label": st.column_config.TextColumn("defect label"),
                            "nearest_defect_distance": st.column_config.NumberColumn("defect distance", format="%.4f"),
                            "true_label": st.column_config.TextColumn("true label"),
                            "defect": None})
st.download_button("Download results (CSV)", data=table.to_csv(index=False), file_name=f"inspect-{run.id}.csv",
                   mime="text/csv", key="inspect_results_csv", on_click="ignore", icon=":material/table_view:")

with st.expander("Running the bundle on the line"):
    st.markdown(
        "The bundle judges exactly as this page does (the same references, threshold and vote), without TensorFlow:\n\n"
        "```bash\n"
        f"unzip snw-bundle-{run.id}.zip && cd snw-bundle-{run.id}\n"
        "python3 -m venv ~/snw && ~/snw/bin/pip install -r requirements.txt   # numpy, ai-edge-litert, pillow\n"
        "~/snw/bin/python inspect_bundle.py --self-test      # checks the runtime reproduces the export's numbers\n"
        "~/snw/bin/python inspect_bundle.py item.png         # one JSON line per image; exit 2 on bad input\n"
        "~/snw/bin/python inspect_bundle.py --bench 200 item.png   # latency per image on that computer\n"
        "```\n"
        "Scores agree with this page within 1e-4 (relative): float rounding differs between TensorFlow and LiteRT.")
