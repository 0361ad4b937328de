"""Accuracy: the management view of a finished run. Pair accuracy beside good/defect accuracy, escapes and
overkills at a threshold you choose (recomputed instantly from the stored scores), ROC, per pin address,
and the images behind the errors."""
import streamlit as st

from snw_core import heatmap, report, ui, viz
from snw_core import review as R
from snw_core.metrics import effective_scores

MAX_THUMBS = 60
METHOD_NAMES = {"best_accuracy": "best accuracy on val", "zero_escape": "zero escapes on val",
                "max_escape": "escape rate <= {x} on val"}

@st.cache_resource
def _check_jobs() -> dict:
    """Running check children by run folder, shared by every session of this server (one job per run)."""
    return {}


def _checks_offer(run) -> None:
    """The drift and not-a-part checks for a run trained before every training ended with them: a button (for
    engineers) that runs them once in a separate process and stores them with the run; the page then shows them."""
    import tempfile
    import time

    from snw_core import actions

    st.subheader("Camera drift and inputs that are not the part")
    job = _check_jobs().get(str(run.path))
    if job is not None and job["proc"].poll() is None:
        ui.poll_job(_check_jobs(), str(run.path), "Running the checks in the background ... {s} s (usually 10-30 s). "
                                                  "The page updates by itself.")
        return
    if job is not None and job["proc"].returncode not in (None, 0):
        st.error(f"The checks failed: {ui.job_error(job)}")
    st.info("This run was trained before every training ended with the camera-drift check (fresh parts judged under "
            "nine everyday camera changes) and the not-a-part check (camera faults, empty fixtures, other parts, "
            "...). Run them once and they are stored with the run (the same numbers as `python -m snw_core "
            "evaluate RUN_ID --checks`).", icon=":material/info:")
    if ui.engineer_only("Running and storing the checks") and st.button(
            "Run the checks", key="accuracy_run_checks", type="primary",
            help="Runs in a separate low-priority process (about 10-30 s); you can keep working."):
        log = tempfile.TemporaryFile()
        try:
            proc = actions.start_checks(run, ui.actor(), ui.store(), stderr=log)
        except Exception as e:                              # a refused role (AccessError) or a failed start
            log.close()
            st.error(str(e))
            return
        _check_jobs()[str(run.path)] = {"proc": proc, "log": log, "started": time.time()}
        st.rerun()


st.title("Accuracy")
run = ui.finished_run_or_info()
if run is None:
    st.stop()
data = ui.run_embeddings(run)
if data is None or not {"scores", "labels", "split"} <= set(data):
    st.warning(f"Run `{run.id}` has metrics but no stored scores (embeddings.npz); it cannot be reviewed here.")
    st.stop()

cfg, metrics = run.config(), run.metrics()
settings, data_cfg = cfg.get("settings", {}), cfg.get("data", {})
good = str(data_cfg.get("good_label", "0"))
scores, labels, split = data["scores"], data["labels"], data["split"]
# items the run's gate rejects whatever the threshold (UNKNOWN: not recognised as the part; local or patch evidence):
# counted as rejected at every threshold (an UNKNOWN good is overkill, an UNKNOWN defect is caught)
unknown = data.get("unknown")
forced, _ = R.gate_rejected(data)
eff = effective_scores(scores, forced)
stored = metrics.get("threshold")
stored = float(stored) if isinstance(stored, (int, float)) else None
method = METHOD_NAMES.get(settings.get("threshold_method"), "chosen on val").format(
    x=R.pct(float(settings.get("max_escape", 0.0))))
lo, hi, step = R.slider_range(scores)
digits = max(0, len(f"{step:.10f}".rstrip("0").split(".")[1]) + 1)


# ------------------------------------------------------------------ threshold state
def _clamp(t: float) -> float:
    # a threshold below (above) every score judges everything defect (good): clamping to the padded range keeps that
    return float(min(hi, max(lo, t)))


def _apply_preset() -> None:
    preset = st.session_state["accuracy_preset"]
    if preset == R.PRESET_MANUAL:
        return
    try:
        t = R.preset_threshold(preset, eff, labels, split, good, stored=stored,
                               max_escape=st.session_state["accuracy_max_escape"] / 100)
        st.session_state["accuracy_threshold"] = _clamp(t)
        st.session_state["accuracy_preset_error"] = None
    except ValueError as e:
        st.session_state["accuracy_preset_error"] = f"Preset '{preset}' is not available: {e}"


def _on_max_escape() -> None:
    st.session_state["accuracy_preset"] = R.PRESET_MAX_ESCAPE
    _apply_preset()


def _on_slider() -> None:
    st.session_state["accuracy_preset"] = R.PRESET_MANUAL


st.session_state.setdefault("accuracy_max_escape", 1.0)
if st.session_state.get("accuracy_for_run") != run.id or "accuracy_threshold" not in st.session_state:
    # a new run (or a fresh session): start at the run's stored threshold
    st.session_state["accuracy_for_run"] = run.id
    st.session_state["accuracy_preset"] = R.PRESET_STORED if stored is not None else R.PRESET_BEST
    st.session_state["accuracy_threshold"] = _clamp(stored if stored is not None else (lo + hi) / 2)
    _apply_preset()

st.caption(f"Run `{run.id}` · preset `{cfg.get('preset', '?')}` · data `{data_cfg.get('source', '?')}`. "
           "Thresholds are chosen on the **val** split; every number below comes from the **test** split "
           f"({int((split == 'test').sum()):,} items). An item is judged defective when its score "
           "(mean distance to its nearest good train items) is above the threshold.")

c1, c2, c3 = st.columns([1.3, 0.8, 3])
c1.selectbox("Threshold preset", R.PRESETS, key="accuracy_preset", on_change=_apply_preset, persist_state="session",
             help="Presets are chosen on the val split with the same rules as the trainer; the results shown are "
                  "from the test split. Moving the slider switches to manual.")
c2.number_input("X: max escape rate (%)", min_value=0.0, max_value=100.0, step=0.5, key="accuracy_max_escape",
                on_change=_on_max_escape, persist_state="session", help="Used by the preset 'escape rate <= X' (on val).")
threshold = c3.slider("Score threshold (judged defective above it)", min_value=lo, max_value=hi, step=step,
                      format=f"%.{digits}f", key="accuracy_threshold", on_change=_on_slider,
                      persist_state="session")
if st.session_state.get("accuracy_preset_error"):
    st.warning(st.session_state["accuracy_preset_error"])
if stored is not None:
    here = " — **this is the threshold shown now**" if abs(threshold - _clamp(stored)) < 1e-12 else ""
    st.caption(f"The run's stored threshold: **{stored:.{digits}f}** (chosen by the trainer: {method}){here}.")

# ------------------------------------------------------------------ the report for management, at this threshold
_report_ds, _ = ui.run_dataset(cfg, labels.size)
_note = None if stored is not None and abs(threshold - stored) < 1e-12 else \
    f"chosen on the Accuracy page ({st.session_state.get('accuracy_preset', R.PRESET_MANUAL)})"
st.download_button(
    "Download report", key="accuracy_report_download", on_click="ignore", icon=":material/description:",
    data=lambda t=threshold, d=_report_ds, n=_note: report.build_report(run, threshold=t, dataset=d, threshold_note=n),
    file_name=f"snw-report-{run.id}.html", mime="text/html",
    help="One HTML file at the threshold shown, to forward or print (A4); it opens without network: the numbers "
         "below, both confusion matrices, the ROC, per pin address, the images of the errors and where the run "
         "came from. Same as `python -m snw_core report RUN_ID --out report.html --threshold T`.")

# ------------------------------------------------------------------ big numbers
op = R.operating_point(eff, labels, split, threshold, good)
ref = R.operating_point(eff, labels, split, stored, good) if stored is not None else None
pairs = R.pair_review(data["embeddings"], labels, split, seed=int(settings.get("seed", 0)),
                      n_per_image=int(cfg.get("eval_pairs_per_image", 10)))


def _delta(key: str):
    if ref is None or abs(threshold - stored) < 1e-12:
        return None
    d = 100 * (op[key] - ref[key])
    return f"{d:+.1f} pts vs stored threshold"


m1, m2, m3, m4, m5 = st.columns(5)
m1.metric("Good/defect", R.pct(op["accuracy"]), _delta("accuracy"), border=True,
          help="Good/defect accuracy: the share of test items judged right (good as good, defective as "
               "defective) at this threshold.")
m1.caption(f"{op['detected'] + op['passed']:,} of {op['n']:,} test items judged right")
m2.metric("Escapes", R.pct(op["escape_rate"]), _delta("escape_rate"), delta_color="inverse",
          border=True, help="Escapes: defective items passed as good, the costly error.")
m2.caption(R.escape_sentence(op))
m3.metric("Overkill", R.pct(op["overkill_rate"]), _delta("overkill_rate"), delta_color="inverse",
          border=True, help="Overkill: good items rejected (judged defective or UNKNOWN); costs yield.")
m3.caption(R.overkill_sentence(op))
m4.metric("Pair accuracy", R.pct(pairs["pair_accuracy"]), border=True,
          help="The seed study's metric: are two images of the same class? Does not depend on the threshold.")
m4.caption(f"{pairs['same_as_same'] + pairs['diff_as_diff']:,} of {pairs['n_pairs']:,} test pairs judged right")
if unknown is not None:
    te = split == "test"
    n_unk_good = int((unknown & te & (labels == good)).sum())
    n_unk_def = int((unknown & te & (labels != good)).sum())
    m5.metric("UNKNOWN", R.pct((n_unk_good + n_unk_def) / max(int(te.sum()), 1)), border=True,
              help="Test items the run does not recognise as the part (camera fault, empty fixture, another part "
                   "type). Never passed: an UNKNOWN good counts as overkill, an UNKNOWN defect as caught. Does not "
                   "depend on the threshold.")
    m5.caption(f"{n_unk_good:,} goods and {n_unk_def:,} defects of the test split judged UNKNOWN")
else:
    m5.metric("UNKNOWN", "-", border=True)
    m5.caption("This run was trained before the not-a-part check existed; train it again to get UNKNOWN verdicts.")

# ------------------------------------------------------------------ two questions, two confusion matrices
st.subheader("Two different questions")
left, right = st.columns(2)
with left:
    st.markdown(f"**Pair question:** are these two images of the same class? — **{R.pct(pairs['pair_accuracy'])}**")
    st.plotly_chart(R.confusion_figure(
        [[pairs["same_as_same"], pairs["same_as_diff"]], [pairs["diff_as_same"], pairs["diff_as_diff"]]],
        ["same class", "different class"], ["judged same", "judged different"], x_title="judged (distance < 0.5 = same)",
        y_title="true pair"), key="accuracy_pair_confusion")
    st.caption(f"{pairs['n_pairs']:,} seed-scheme test pairs (10 same + 10 different per test image), built exactly "
               "as the trainer built them; a pair is judged 'same' when the embedding distance is below 0.5.")
with right:
    st.markdown(f"**Item question:** is this item good or defective? — **{R.pct(op['accuracy'])}**")
    st.plotly_chart(R.confusion_figure(
        [[op["passed"], op["overkills"]], [op["escapes"], op["detected"]]],
        ["good item", "defective item"], ["judged good", "judged defective"],
        x_title=f"judged (defective: score > {threshold:.{digits}f}, or the gate)",
        y_title="true item"),
        key="accuracy_item_confusion")
    st.caption(f"{op['n']:,} test items: {op['n_good']:,} good, {op['n_defect']:,} defective. "
               "Top right = overkill, bottom left = escape.")

# ------------------------------------------------------------------ ROC and per pin address
st.subheader("Trade-off and pin addresses")
left, right = st.columns([1, 1])
with left:
    try:
        st.plotly_chart(R.roc_figure(scores, labels, split, threshold, good, stored=stored),
                        key="accuracy_roc")
        st.caption("Every threshold is one point on this curve (test split). Up = fewer escapes, "
                   "right = more overkill. Red dot: the threshold above; hollow ring: the run's stored threshold.")
    except ValueError as e:
        st.info(f"No ROC curve: {e}")
with right:
    table = R.per_pin_table(eff, labels, split, threshold, good)
    colors = viz.label_colors(labels, good)
    shown = table.rename(columns={"what": "pin address", "items": "test items"}).drop(columns=["label"])
    shown.insert(1, "rate", shown.pop("rate"))
    shown["caught"] = [f"{c} of {n} {'passed' if w == 'good' else 'detected'}"
                       for c, n, w in zip(table["caught"], table["items"], table["what"])]
    shown["missed"] = [f"{m} {'overkill' if w == 'good' else 'escaped'}" for m, w in zip(table["missed"], table["what"])]

    def _style(df):
        sty = df.style.format({"rate": lambda r: R.pct(r)})
        sty = sty.apply(lambda col: [f"background-color: {R.rate_color(r)}" for r in table["rate"]], subset=["rate"])
        sty = sty.apply(lambda col: [f"background-color: {colors.get(lab, '#cccccc')}; color: white; font-weight: 600"
                                     for lab in table["label"]], subset=["pin address"])
        return sty

    st.dataframe(_style(shown), hide_index=True, key="accuracy_pin_table", height=35 * (len(shown) + 1) + 3,
                 column_config={"rate": st.column_config.Column(
                     "rate", help="Pins: detection rate (share of defective items caught). Good: share passed.")})
    st.caption("Per pin address on the test split: the share of its defective items that are caught "
               "(for good items: the share that pass). Green is high, red is low.")
    loc = metrics.get("localisation")
    if loc:
        st.caption("**Where:** " + R.where_sentence(loc))

# ------------------------------------------------------------------ camera drift
check = metrics.get("drift_check")
if check:
    import pandas as pd

    st.subheader("When the camera drifts")
    rows = R.drift_rows(check)
    drift_df = pd.DataFrame([{k: r[k] for k in ("change", "goods GOOD", "defects caught")}
                             | {"held": "yes" if r["held"] else "no"} for r in rows])

    def _drift_style(df):
        sty = df.style.apply(lambda col: [f"background-color: {R.rate_color(r['goods_rate'])}" for r in rows],
                             subset=["goods GOOD"])
        sty = sty.apply(lambda col: [f"background-color: {R.rate_color(r['defects_rate'])}" for r in rows],
                        subset=["defects caught"])
        return sty.apply(lambda col: ["font-weight: 600; color: #1a7f37" if r["held"] else
                                      "font-weight: 600; color: #b42318" for r in rows], subset=["held"])

    st.dataframe(_drift_style(drift_df), hide_index=True, key="accuracy_drift_table",
                 height=35 * (len(drift_df) + 1) + 3)
    st.caption(R.drift_sentence(check, cfg.get("preset", "")) + " The stored threshold and the run's own checks "
               "decide, as at the line; the threshold chosen above does not change this table.")

# ------------------------------------------------------------------ inputs that are not the part
nap = metrics.get("not_a_part_check")
if nap:
    import pandas as pd

    st.subheader("Inputs that are not the part")
    (st.success if nap["good"] == 0 and nap["held_out_good"] == 0 else st.warning)(
        R.not_a_part_sentence(nap), icon=":material/block:")
    with st.expander(f"Per kind ({nap['n'] + nap['held_out_n']} inputs, 20 of each)"):
        nap_df = pd.DataFrame([{"input": r["input"], "designed on": "yes" if r["designed on"] else "no",
                                "GOOD": r["GOOD"], "UNKNOWN": r["UNKNOWN"], "DEFECT": r["DEFECT"]}
                               for r in R.not_a_part_rows(nap)])
        st.dataframe(nap_df.style.apply(lambda col: ["background-color: #ffd8d3" if v else "" for v in col],
                                        subset=["GOOD"]), hide_index=True, key="accuracy_not_a_part_table")

# ------------------------------------------------------------------ a run trained before the checks: run them once
if not check or not nap:
    _checks_offer(run)

# ------------------------------------------------------------------ the images behind the errors
st.subheader("The errors, image by image (test split)")
ds, why = ui.run_dataset(cfg, labels.size)
if ds is None:
    st.info(f"Images unavailable: {why.rstrip('.')}. The numbers above still hold.")
else:
    escapes = R.error_items(eff, labels, split, threshold, "escape", good)
    overkills = R.error_items(eff, labels, split, threshold, "overkill", good)
    scale = viz.auto_scale(ds.image_shape, 96)
    gate = ui.run_gate(run)
    show_heat = gate is not None and st.toggle(
        "Heat maps", value=False, key="accuracy_heatmaps",
        help="Red where an image differs most from the good train parts; the cross marks the "
             "strongest evidence (the defect_y / defect_x of its verdict).")
    tab_e, tab_o = st.tabs([f"Escapes ({escapes.size:,})", f"Overkills ({overkills.size:,})"])
    for tab, rows, what in ((tab_e, escapes, "escape"), (tab_o, overkills, "overkill")):
        with tab:
            if rows.size == 0:
                st.success(f"No {what}s on the test split at this threshold.")
                continue
            order = "lowest score" if what == "escape" else "highest score"
            st.caption(f"The most confidently wrong first ({order} first). "
                       + (f"Showing {MAX_THUMBS} of {rows.size:,}. " if rows.size > MAX_THUMBS else "")
                       + "Frame colour = label; caption = label · score.")
            rows = rows[:MAX_THUMBS]
            why_rejected = ["UNKNOWN · " if (unknown is not None and unknown[i]) else "" for i in rows]
            caps = [f"{w}{viz.label_name(labels[i], good)} · {scores[i]:.{digits}f}" for w, i in zip(why_rejected, rows)]
            if show_heat:
                with st.spinner("Heat maps (a run with a patch bank loads TensorFlow the first time) ..."):
                    c = ui.heat_checks(run, ds.images[rows])
                shown = gate.display_map(c["heatmap"])
                st.image([heatmap.overlay(ds.images[i], shown[j], (c["defect_y"][j], c["defect_x"][j]), scale)
                          for j, i in enumerate(rows)], caption=caps)
            else:
                thumbs = ui.thumbnails(ds, rows, scale, [colors.get(lab, "#cccccc") for lab in labels[rows]])
                st.image(thumbs, caption=caps)
