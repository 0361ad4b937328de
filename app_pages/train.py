"""Train: start the command-line trainer for a new run, and watch running runs live (curves, progress, stop).

Training never runs in this script: ``launch.start_training`` starts a child process that writes the run
folder, and a fragment polls that folder. Leaving the page, reloading it or opening a second tab does not
touch the run; the page finds running runs again in the run store.
"""
from __future__ import annotations

import time
from datetime import datetime

import plotly.graph_objects as go
import streamlit as st
from streamlit.errors import StreamlitAPIException

from app_pages import train_sweep
from snw_core import actions, ui
from snw_core import runview as V
from snw_core.augment import AUGMENTATIONS
from snw_core.data import DataError
from snw_core.presets import PRESET_HELP, PRESETS, SETTING_HELP, SettingsError
from snw_core.roles import AccessError
from snw_core.runs import RunError

FIELDS = ("epochs", "batch_size", "pairs_per_image", "margin", "learning_rate", "embedding_dim", "seed",
          "plateau_epochs", "stretch_epochs", "work_side", "grid_pool", "augment", "ema", "augment_noise")
SPLIT_KEYS = ("train_split_train", "train_split_val", "train_split_test")
LIVE = ("running", "starting")
PHASE_TEXT = {
    "starting": "Starting: loading the data and TensorFlow …",
    "registration": "Learning where the taught part sits (registration) and how it looks flipped …",
    "training": "Training",
    "validating": "Scoring the validation pairs for this epoch …",
    "early_stopping": "Early stopping: the validation loss stopped improving",
    "evaluating": "Training finished: embedding every item and scoring the test split …",
    "gate": "Fitting the checks of every verdict (not-a-part, focus, noise, heat map) …",
    "drift_check": "Judging fresh items under nine camera changes (the drift check) …",
    "projection": "Computing the 2-D projection for the Embeddings page …",
}
FIXED_BY_PRESET = ("twin", "pairing", "normalize", "lr_schedule", "early_stopping_patience", "augment_shift", "register", "k",
                   "threshold_method")
LOSS_COLOR, VAL_COLOR = "#1f77b4", "#ff7f0e"

ui.init_state()                                             # harmless when app.py did it already
st.session_state.setdefault("train_watch_run", None)
st.session_state.setdefault("train_seen_running", set())   # runs this session saw running (their end is adopted)
st.session_state.setdefault("train_adopted", set())        # finished runs already put in the sidebar picker


# ------------------------------------------------------------------ the form

def _apply_preset() -> None:
    """Callback of the preset box: put the preset's settings into the form widgets."""
    p = PRESETS[st.session_state["train_preset"]]
    for f in FIELDS:
        st.session_state[f"train_{f}"] = p[f]
    for k, v in zip(SPLIT_KEYS, p["split"]):
        st.session_state[k] = float(v)


def _init_form_state() -> None:
    if any(f"train_{f}" not in st.session_state for f in FIELDS) or any(k not in st.session_state for k in SPLIT_KEYS):
        _apply_preset()


def start_form() -> None:
    st.subheader("New run")
    if not ui.engineer_only("Starting a training"):
        return
    presets = list(PRESETS)
    st.selectbox("Preset", presets, index=presets.index("default"), key="train_preset", on_change=_apply_preset,
                 help="Changing the preset resets the settings below to its defaults.")
    preset = st.session_state["train_preset"]
    _init_form_state()
    p = PRESETS[preset]
    st.caption(PRESET_HELP[preset])
    st.caption("Fixed by the preset: " + ", ".join(f"{k.replace('_', ' ')} `{p[k]}`" for k in FIXED_BY_PRESET))
    in_batch = p["pairing"] != "pairs"
    with st.form("train_form"):
        c1, c2 = st.columns(2)
        c1.number_input("Epochs", 1, 1000, step=1, key="train_epochs", help=SETTING_HELP["epochs"])
        c2.number_input("Batch size", 2, 8192, step=1, key="train_batch_size", help=SETTING_HELP["batch_size"])
        c1.number_input("Pairs per image", 1, 100, step=1, key="train_pairs_per_image", disabled=in_batch,
                        help=SETTING_HELP["pairs_per_image"] + (" (not used: this preset pairs the images inside "
                                                                 "each batch)" if in_batch else ""))
        c2.number_input("Margin", 0.01, 100.0, step=0.1, format="%.2f", key="train_margin",
                        help=SETTING_HELP["margin"])
        c1.number_input("Learning rate", 1e-7, 1.0, step=1e-4, format="%.5f", key="train_learning_rate",
                        help=SETTING_HELP["learning_rate"])
        c2.number_input("Embedding size", 2, 1024, step=1, key="train_embedding_dim", help=SETTING_HELP["embedding_dim"])
        st.markdown("Split fractions (train / val / test)", help=SETTING_HELP["split"] + "; they must add up to 1")
        s1, s2, s3 = st.columns(3)
        for col, key, label in zip((s1, s2, s3), SPLIT_KEYS, ("train", "val", "test")):
            col.number_input(label, 0.0, 1.0, step=0.05, format="%.2f", key=key)
        own = _own_split_note()
        if own:
            st.caption(own)
        c1, c2 = st.columns(2)
        c1.number_input("Seed", 0, 2**31 - 1, step=1, key="train_seed", help=SETTING_HELP["seed"])
        c2.number_input("Plateau epochs", 0, 1000, step=1, key="train_plateau_epochs",
                        help=SETTING_HELP["plateau_epochs"] + ". With an allowance, Epochs counts from take-off, so "
                             "a run can take up to Epochs + allowance epochs.")
        c1.number_input("Stretch epochs", 0, 1000, step=1, key="train_stretch_epochs",
                        help=SETTING_HELP["stretch_epochs"] + ".")
        c2.number_input("Working size (px)", 0, 4096, step=8, key="train_work_side",
                        help=SETTING_HELP["work_side"] + ".")
        c1.number_input("Grid pool (cells)", 0, 256, step=1, key="train_grid_pool",
                        help=SETTING_HELP["grid_pool"] + ".")
        c2.selectbox("Augmentation", AUGMENTATIONS, key="train_augment", help=SETTING_HELP["augment"])
        c1.number_input("Weight average", 0.0, 0.9999, step=0.001, format="%.4f", key="train_ema",
                        help=SETTING_HELP["ema"])
        c2.number_input("Extra noise share", 0.0, 1.0, step=0.05, format="%.2f", key="train_augment_noise",
                        help=SETTING_HELP["augment_noise"])
        c1.selectbox("2-D projection", ("umap", "pca"), key="train_projection",
                     help="UMAP for the Embeddings page (slower, tens of seconds); PCA is instant.")
        st.text_input("Run name (optional)", key="train_name", max_chars=24, placeholder=preset)
        corr_files = _corrections_files()
        st.selectbox("Corrections file", ["none"] + corr_files, key="train_corrections",
                     help="Decisions saved on the Audit page for this data set: relabelled and excluded rows are "
                          "applied on load (the data source itself is not changed).")
        st.caption(f"Data: `{st.session_state['data_source']}` (good label `{st.session_state['good_label']}`), "
                   "chosen in the sidebar.")
        n_running = len(_running_ids())
        if n_running:
            st.caption(f":orange[{n_running} run{'s are' if n_running > 1 else ' is'} training already; "
                       "a new one shares the CPU with it.]")
        submitted = st.form_submit_button("Start training", key="train_start", type="primary",
                                          icon=":material/play_arrow:")
        sweep_pressed = train_sweep.grid_builder()
    if submitted:
        _start(preset)
    elif sweep_pressed:
        ss = st.session_state
        train_sweep.start(preset, _form_overrides(), (ss.get("train_name") or "").strip() or None,
                          ss.get("train_projection", "umap"))
    train_sweep.running_sweeps()


def _form_overrides() -> dict:
    ss = st.session_state
    overrides = {f: ss[f"train_{f}"] for f in FIELDS}
    overrides["split"] = [ss[k] for k in SPLIT_KEYS]
    return overrides


def _own_split_note() -> str | None:
    """A line for a data set that fixes its own split (a 'split' column): the fractions above are then not used."""
    try:
        ds = ui.get_dataset(st.session_state["data_source"], st.session_state["good_label"])
    except DataError:
        return None
    if ds.splits is None:
        return None
    n = " / ".join(f"{int((ds.splits == s).sum()):,}" for s in ("train", "val", "test"))
    return (f"This data set fixes its own split (its 'split' column: {n} items): every run follows it, and the "
            "fractions above are not used.")


def _corrections_files() -> list[str]:
    """Corrections files (Audit page) made for the data set chosen in the sidebar."""
    from snw_core.corrections import files_for
    try:
        ds = ui.get_dataset(st.session_state["data_source"], st.session_state["good_label"])
    except DataError:
        return []
    return [str(p) for p in files_for(ds)]


def _start(preset: str) -> None:
    ss = st.session_state
    corrections = ss.get("train_corrections")
    overrides = _form_overrides()
    try:
        with st.spinner("Checking the data and settings, starting the trainer …"):
            rid = actions.start_training(ui.actor(), ss["data_source"], preset, overrides, good_label=ss["good_label"],
                                         name=(ss.get("train_name") or "").strip() or None,
                                         projection=ss.get("train_projection", "umap"),
                                         **({} if corrections in (None, "none") else {"corrections": corrections}))
    except (SettingsError, DataError, RunError, AccessError) as e:
        st.error(str(e))
        return
    ss["train_watch_run"] = rid
    ss["train_seen_running"].add(rid)
    st.toast(f"Started run {rid}", icon=":material/model_training:")


# ------------------------------------------------------------------ live view

def _running_ids() -> tuple[str, ...]:
    return tuple(r.id for r in ui.store().list() if r.state() in LIVE)


def _adopt(run_id: str) -> bool:
    """Make a run that ended the sidebar's run. Only possible in a fragment rerun (the sidebar box, key
    ``run_id``, is not instantiated then); in a full run Streamlit refuses and the next fragment tick does it."""
    try:
        st.session_state["run_id"] = run_id
    except StreamlitAPIException:
        return False
    st.session_state["train_adopted"].add(run_id)
    return True


def loss_figure(events, hist, epochs: int) -> go.Figure:
    bc, ec = V.batch_curve(events), V.epoch_curve(hist, events)
    fig = go.Figure()
    fig.add_scatter(x=bc["x"], y=bc["loss"], mode="lines", name="training loss (running mean in the epoch)",
                    line=dict(color=LOSS_COLOR, width=1.5))
    fig.add_scatter(x=ec["epoch"], y=ec["loss"], mode="markers", name="training loss (end of epoch)",
                    marker=dict(color=LOSS_COLOR, size=8))
    fig.add_scatter(x=ec["epoch"], y=ec["val_loss"], mode="lines+markers", name="validation loss (val pairs)",
                    line=dict(color=VAL_COLOR, dash="dash"), marker=dict(size=8))
    fig.update_layout(title="Loss", height=330, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.25), xaxis_title="epoch", yaxis_title="contrastive loss")
    fig.update_xaxes(range=[0, max(epochs, 1) * 1.02])
    _mark_budget(fig, events)
    return fig


def _mark_budget(fig: go.Figure, events, edge: str = "top") -> None:
    """Dotted lines at the epoch the model left its start-up plateau (when it had one) and where its budget grew
    for a hard surface (when it did); their labels at the ``edge`` of the plot the curves leave free."""
    for mark, side in ((V.takeoff_mark(events), "left"), (V.stretch_mark(events), "right")):
        if mark:
            fig.add_vline(x=mark[0], line=dict(color="#888888", dash="dot", width=1), annotation_text=mark[1],
                          annotation_position=f"{edge} {side}", annotation_font_size=11)


def accuracy_figure(events, hist, epochs: int) -> go.Figure:
    ec = V.epoch_curve(hist, events)
    fig = go.Figure()
    fig.add_scatter(x=ec["epoch"], y=ec["pair_accuracy"], mode="lines+markers", name="train pairs",
                    line=dict(color=LOSS_COLOR), marker=dict(size=8))
    fig.add_scatter(x=ec["epoch"], y=ec["val_pair_accuracy"], mode="lines+markers", name="validation pairs",
                    line=dict(color=VAL_COLOR, dash="dash"), marker=dict(size=8))
    fig.update_layout(title="Pair accuracy", height=330,
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25),
                      xaxis_title="epoch", yaxis_title="pair accuracy (same when d < 0.5)")
    fig.update_xaxes(range=[0, max(epochs, 1) * 1.02])
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    _mark_budget(fig, events, edge="bottom")          # pair accuracies climb to the top
    return fig


def _phase_seconds(run, prog: V.Progress) -> float | None:
    """Seconds spent in the current phase: since the last progress event, or since the start."""
    try:
        if prog.phase == "starting":
            return time.time() - datetime.fromisoformat(run.status()["started"]).timestamp()
        return time.time() - run.file("progress.jsonl").stat().st_mtime
    except (OSError, KeyError, ValueError, TypeError):
        return None


def _progress_block(run, prog: V.Progress) -> None:
    if prog.training and prog.epoch == 0:
        text = f"Epoch 1/{prog.epochs}: building the pairs and compiling the model …"
    elif prog.training and prog.epochs:
        text = (f"Epoch {prog.epoch}/{prog.epochs} · batch {prog.batch}/{prog.batches} · "
                f"{100 * prog.fraction:.0f} % · {V.format_duration(prog.elapsed)} elapsed · "
                f"about {V.format_duration(prog.eta)} left")
        if prog.phase == "validating":
            text += " · scoring validation pairs"
        quiet = _phase_seconds(run, prog)
        if quiet is not None and quiet > 15:
            text += f" · no update for {V.format_duration(quiet)}"
    else:
        text = PHASE_TEXT.get(prog.phase, prog.phase)
        since = _phase_seconds(run, prog)
        if since is not None and since >= 2:
            text += f" ({V.format_duration(since)} so far)"
    st.progress(prog.fraction, text=text)
    steps = ("starting", "training", "evaluating", "projection")
    cur = ("training" if prog.phase in ("validating", "early_stopping") else
           "starting" if prog.phase == "registration" else
           "evaluating" if prog.phase in ("gate", "drift_check") else prog.phase)
    st.markdown("Phase: " + " › ".join(f"**:blue[{s}]**" if s == cur else f":gray[{s}]" for s in steps))
    if prog.phase not in ("starting", "registration", "training", "validating"):
        return          # training is over: a stop request would change nothing
    if run.stop_requested():
        st.info("Stop requested: the run ends within one batch, then its model so far is evaluated.",
                icon=":material/hourglass_top:")
    elif ui.engineer_only("Stopping a run") and st.button(
            "Stop", key="train_stop", icon=":material/stop_circle:",
            help="Ask the trainer to stop; the run ends `stopped` with the model so far."):
        try:
            actions.stop_run(run, ui.actor())
        except AccessError as e:
            st.error(str(e))
            return
        st.info("Stop requested: the run ends within one batch.", icon=":material/hourglass_top:")


def _final_block(run, state: str) -> None:
    status, m = run.status(), run.metrics()
    dur = V.format_duration(status.get("train_seconds") or m.get("train_seconds"))
    if state == "done":
        st.success(f"Run `{run.id}` is **done** (training {dur}).", icon=":material/check_circle:")
    elif state == "stopped":
        planned = (run.config().get("settings") or {}).get("epochs", "?")
        st.warning(f"Run `{run.id}` was **stopped** in epoch {int(m.get('epochs_run', 0))} of {planned}; "
                   "the model so far was evaluated.", icon=":material/stop_circle:")
    else:
        msg = status.get("error") or ("The trainer process ended without reporting (killed, or it crashed)."
                                      if state == "failed (interrupted)" else "The trainer reported no error text.")
        st.error(f"Run `{run.id}` **{state}**: {msg}", icon=":material/error:")
        log = run.file("train.log")
        if log.exists():
            st.caption("Last lines of train.log")
            st.code(V.tail(log.read_text(errors="replace"), 30), language="text", wrap_lines=True)
    if m:
        keys = ("good_defect_accuracy", "escape_rate", "overkill_rate", "pair_accuracy", "auroc")
        for col, k in zip(st.columns([1.5, 1, 1, 1.1, 0.9]), keys):      # room for "good/defect acc." and its ?
            col.metric(V.SHORT_LABELS.get(k, V.METRIC_LABELS[k]), V.format_value(k, m.get(k)),
                       help=f"{V.METRIC_LABELS[k]} on the test split; {V.BETTER[k]} is better")
        check = m.get("drift_check")
        if check:
            from snw_core.drift import check_summary
            said = check_summary(check)
            st.caption(f"{said[:1].upper()}{said[1:]} (items: {check.get('items', '?')}; the table is on Accuracy).")
        nap = m.get("not_a_part_check")
        if nap:
            from snw_core.notapart import check_summary as not_a_part_summary
            said = not_a_part_summary(nap)
            st.caption(f"{said[:1].upper()}{said[1:]} (none may pass; per kind on Accuracy).")
        st.page_link("app_pages/accuracy.py", label="Open **Accuracy** for the confusion matrix, the threshold "
                     "trade-off, per-pin detection rates and the camera drift table", icon=":material/fact_check:")


def monitor(run_id: str, running_ids: tuple[str, ...], live: bool) -> None:
    """The run's header, progress, curves and (when ended) results. In the live fragment it also adopts
    a run that ended and reruns the page when the set of running runs changes."""
    try:
        run = ui.store().get(run_id)
    except RunError:
        st.info(f"Run `{run_id}` no longer exists (deleted).")
        return
    state = run.state()
    ss = st.session_state
    if state in LIVE:
        ss["train_seen_running"].add(run_id)
    elif live and run_id in ss["train_seen_running"] and run_id not in ss["train_adopted"] and _adopt(run_id):
        st.rerun()          # full rerun: the sidebar shows the finished run, polling ends
    if live and set(_running_ids()) != set(running_ids):
        st.rerun()
    cfg = run.config()
    events, hist = run.progress(), run.history()
    prog = V.summarize_progress(events)
    epochs = prog.epochs or int((cfg.get("settings") or {}).get("epochs", 1))
    color = {"running": "blue", "starting": "blue", "done": "green", "stopped": "orange"}.get(state, "red")
    st.markdown(f"**`{run.id}`** :{color}-badge[{state}] · preset `{cfg.get('preset', '?')}` · "
                f"data `{(cfg.get('data') or {}).get('source', '?')}` · started "
                f"{V.format_time(run.status().get('started'))}")
    if state in LIVE:
        _progress_block(run, prog)
    else:
        _final_block(run, state)
    if not events and not hist and state not in LIVE:
        return          # it never got to train: no curves to draw
    c1, c2 = st.columns(2)
    c1.plotly_chart(loss_figure(events, hist, epochs), key="train_loss_chart", width="stretch")
    c2.plotly_chart(accuracy_figure(events, hist, epochs), key="train_acc_chart", width="stretch")
    st.caption("Validation loss and pair accuracy use the seed scheme's fixed validation pairs, the same for every "
               "preset. The training loss of in-batch presets is computed on all pairs of a batch, so its scale "
               "differs from the validation loss.")


@st.fragment(run_every=1.0)
def live_monitor(run_id: str, running_ids: tuple[str, ...]) -> None:
    monitor(run_id, running_ids, live=True)


@st.fragment(run_every=3.0)
def watch_for_new_runs(running_ids: tuple[str, ...]) -> None:
    """Nothing to draw: rerun the page when a run starts or ends elsewhere (CLI, another tab)."""
    if set(_running_ids()) != set(running_ids):
        st.rerun()


def live_view() -> None:
    runs = ui.store().list()
    ids = [r.id for r in runs]
    running = [r.id for r in runs if r.state() in LIVE]
    ss = st.session_state
    watch = ss.get("train_watch_run") if ss.get("train_watch_run") in ids else None
    options = list(running)
    if watch and watch not in options:
        options.append(watch)
    if not options:
        if not runs:
            st.info("No runs yet: choose a preset and press **Start training**.")
            watch_for_new_runs(())
            return
        options = [runs[0].id]
        st.caption("No run is training now; showing the most recent run.")
    heading = st.empty()
    default = watch if watch in options else options[0]
    if len(options) > 1:
        states = {r.id: r.state() for r in runs}
        if ss.get("train_watch_pick") not in options:
            ss["train_watch_pick"] = default
        pick = st.selectbox("Watch run", options, key="train_watch_pick",
                            help=f"{len(running)} of these runs are training now.",
                            format_func=lambda i: f"{i} · {states.get(i, '?')}")
    else:
        pick = options[0]
    ss["train_watch_run"] = pick
    try:
        state = ui.store().get(pick).state()
    except RunError:
        state = "deleted"
    heading.subheader("Running" if state in LIVE else "Last run")
    pending = pick in ss["train_seen_running"] and pick not in ss["train_adopted"]
    if state in LIVE or pending:
        live_monitor(pick, tuple(running))
    else:
        monitor(pick, tuple(running), live=False)
        watch_for_new_runs(tuple(running))


# ------------------------------------------------------------------ page

st.title("Train")
left, right = st.columns([1, 2], gap="large")
with left:
    start_form()
with right:
    live_view()
