"""The one Streamlit module of snw_core: UI caches and the shared sidebar (data source, run picker).

Pages import this; everything else in snw_core stays free of streamlit (a test guards it).
Session keys: ``data_source``, ``good_label``, ``run_id``, ``data_error``; ``_roles_password`` (a password
sign-in: name and hash fingerprint), ``_roles_as_viewer`` (opened with ``?view=viewer``). Roles: ``actor()``.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np
import streamlit as st

from . import data as D
from . import roles as R
from .runs import RunError, RunStore

DEFAULT_HUB_ID = "YxBxRyXJx/SNWimages_train_1110"
SOURCE_KINDS = ("Embedded default", "Hugging Face Hub", "Upload parquet", "Path (parquet file or image folder)")
_EMBEDDER_LOCK = threading.Lock()


def init_state() -> None:
    st.session_state.setdefault("data_source", os.environ.get("SNW_DATA_SOURCE", "default"))
    st.session_state.setdefault("good_label", "0")
    st.session_state.setdefault("run_id", None)
    st.session_state.setdefault("data_error", None)


def store() -> RunStore:
    return RunStore(None)


# ------------------------------------------------------------------ caches

def _source_stamp(source: str) -> str:
    """Changes when the file or folder behind a source changes, so the cache reloads."""
    p = Path(source)
    if source in ("default",) or source.startswith("hub:") or not p.exists():
        return ""
    st_ = p.stat()
    return f"{st_.st_mtime_ns}:{st_.st_size}"


@st.cache_resource(show_spinner="Loading data set ...", max_entries=6)
def _dataset(source: str, good_label: str, stamp: str) -> D.Dataset:
    return D.load(source, good_label=good_label)


def get_dataset(source: str, good_label: str = "0") -> D.Dataset:
    """A shared, read-only Dataset (never modify its arrays)."""
    return _dataset(source, good_label, _source_stamp(source))


def current_dataset() -> D.Dataset | None:
    """The data set chosen in the sidebar, or None (with the error shown) when it cannot be loaded."""
    try:
        return get_dataset(st.session_state["data_source"], st.session_state["good_label"])
    except D.DataError as e:
        st.error(str(e))
        return None


@st.cache_resource(show_spinner="Loading model ...", max_entries=8)
def _embedder(path: str, mtime: int):
    from .model import load_embedder
    return load_embedder(path)


def get_embedder(run):
    """The run's embedder (shared; calls are serialised with a lock)."""
    p = run.embedder_path
    return _embedder(str(p), p.stat().st_mtime_ns)


def embed(run, images: np.ndarray) -> np.ndarray:
    from .embed import embed_images
    model = get_embedder(run)
    with _EMBEDDER_LOCK:
        return embed_images(model, images)


@st.cache_resource(show_spinner=False, max_entries=8)
def _feature_model(path: str, mtime: int):
    import keras

    from .patches import PATCH_LAYER
    embedder = _embedder(path, mtime)
    return keras.Model(embedder.input, embedder.get_layer(PATCH_LAYER).output)


def patch_scores(run, images: np.ndarray, bank):
    """Patch scores (n,) and maps (n, fh, fw) of images with the run's shared model and its patch bank."""
    from .embed import embed_images
    p = run.embedder_path
    model = _feature_model(str(p), p.stat().st_mtime_ns)      # built once per run (a new model recompiles)
    with _EMBEDDER_LOCK:
        feats = embed_images(model, images)
    return bank.score(feats)


def heat_checks(run, images: np.ndarray) -> dict:
    """The gate's checks of input images with the heat map and location as the run's verdicts give them: registered
    first, the patch map beside the pixel comparison where the run keeps a patch bank, mapped back to the input."""
    from .judge import gate_checks
    bank = run_patches(run)
    return gate_checks(run_gate(run), run_registration(run), images, bank,
                       lambda registered: patch_scores(run, registered, bank))


@st.cache_resource(show_spinner=False, max_entries=8)
def _patches(path: str, mtime_ns: int):
    from .patches import PatchBank
    return PatchBank.load(path)


def run_patches(run):
    """The run's patch memory bank (shared, read-only), or None."""
    from .patches import PATCH_FILE
    p = run.file(PATCH_FILE)
    return _patches(str(p), p.stat().st_mtime_ns) if p.exists() else None


@st.cache_data(show_spinner=False, max_entries=16)
def _embeddings(path: str, mtime: int) -> dict:
    from .embed import load_embeddings
    return load_embeddings(path)


def run_embeddings(run) -> dict | None:
    """embeddings.npz of a run as a dict of arrays (a copy), or None when it does not exist yet."""
    p = run.file("embeddings.npz")
    if not p.exists():
        return None
    return _embeddings(str(p), p.stat().st_mtime_ns)


@st.cache_resource(show_spinner=False, max_entries=8)
def _gate(path: str, mtime_ns: int):
    from .gate import Gate
    return Gate.load(path)


def run_gate(run):
    """The run's fitted :class:`~snw_core.gate.Gate` (shared, read-only), or None for a run without one."""
    from .gate import GATE_FILE
    p = run.file(GATE_FILE)
    if not p.exists():
        return None
    return _gate(str(p), p.stat().st_mtime_ns)


@st.cache_resource(show_spinner=False, max_entries=8)
def _registration(path: str, mtime_ns: int):
    from .register import Registration
    return Registration.load(path)


def run_registration(run):
    """The run's :class:`~snw_core.register.Registration` (shared, read-only), or None when it registers nothing."""
    from .register import REGISTER_FILE
    p = run.file(REGISTER_FILE)
    if not p.exists():
        return None
    return _registration(str(p), p.stat().st_mtime_ns)


@st.cache_data(show_spinner=False, max_entries=16)
def _split(content_hash: str, good_label: str, fractions: tuple, seed: int, _labels: np.ndarray) -> np.ndarray:
    # keyed by the content hash (it covers the labels): hashing 3,600 labels on every page cost ~35 ms
    from .splits import stratified_split
    return stratified_split(np.asarray(_labels), fractions, seed)


def split_for(ds: D.Dataset, fractions=(0.6, 0.2, 0.2), seed: int = 0) -> np.ndarray:
    """The split a run of this data set would use: the data set's own (a ``split`` column), else the seeded
    stratified one (cached)."""
    if ds.splits is not None:
        return ds.splits
    return _split(ds.content_hash, ds.good_label, tuple(float(f) for f in fractions), int(seed), ds.labels)


@st.cache_data(show_spinner=False, max_entries=16)   # a page of 48: 0.23 MB (26x36, noise), 5 MB (256x256 photo-like)
def _thumbnails(content_hash: str, rows: tuple, scale: int, colors: tuple, border: int, _images) -> list[str]:
    from .gallery import bordered_thumbnails, png_data_uris
    idx = np.asarray(rows, dtype=np.int64)
    return png_data_uris(bordered_thumbnails(_images[idx], scale, list(colors) if colors else None, border))


def thumbnails(ds: D.Dataset, rows, scale: int, colors=None, border: int = 3) -> list[str]:
    """Framed, pixel-exact thumbnails of ``ds.images[rows]`` as PNG data URIs for ``st.image`` (cached per page
    of a data set: paging back and forth or switching pages does not encode them again)."""
    return _thumbnails(ds.content_hash, tuple(int(r) for r in rows), int(scale),
                       tuple(colors) if colors is not None else (), int(border), ds.images)


# ------------------------------------------------------------------ runs

def run_dataset(cfg: dict, n: int):
    """The data set a run was trained on, as ``(Dataset, None)``, or ``(None, why)`` when its images are not
    available any more (source gone, or its content changed since: the rows would not match)."""
    data_cfg = cfg.get("data", {})
    try:
        ds = get_dataset(str(data_cfg.get("source", "")), data_cfg.get("good_label", "0"))
    except D.DataError as e:
        return None, f"the run's data source `{data_cfg.get('source')}` cannot be loaded: {e}"
    if cfg.get("corrections"):                  # trained with a corrections file: its labels, without excluded rows
        from .corrections import dataset_for_run
        ds = dataset_for_run(ds, cfg)
    if ds.content_hash != data_cfg.get("content_hash") or ds.n != n:
        return None, (f"the data behind `{data_cfg.get('source')}` has changed since this run was trained "
                      "(content hash differs), so its images no longer match the run's rows")
    return ds, None


def current_run():
    """The run picked in the sidebar (a Run), or None."""
    rid = st.session_state.get("run_id")
    if not rid:
        return None
    try:
        return store().get(rid)
    except RunError:
        st.session_state["run_id"] = None
        return None


def finished_run_or_info(run=None):
    """The picked run if it has metrics; otherwise an info box and None."""
    run = run or current_run()
    if run is None:
        st.info("No run selected. Train one on the **Train** page, or pick one in the sidebar.")
        return None
    if not run.metrics():
        st.info(f"Run `{run.id}` has no results yet (state: {run.state()}).")
        return None
    unusable_box(run)
    return run


def unusable_box(run) -> None:
    """A red box when the run cannot tell good parts from defective ones (:func:`snw_core.metrics.unusable_note`), a
    yellow one when its twin ranks worse than chance or its epoch budget cut it short, a blue one when its data held
    images the gate left out."""
    from .metrics import faulty_data_note, short_budget_note, unusable_note, weak_twin_note
    note = unusable_note(run.metrics())
    if note:
        st.error(f"Run `{run.id}`: {note}", icon=":material/block:")
    weak = weak_twin_note(run.metrics() or {})
    if weak:
        st.warning(f"Run `{run.id}`: {weak}", icon=":material/warning:")
    short = short_budget_note(run.metrics() or {})
    if short:
        st.warning(f"Run `{run.id}`: {short}", icon=":material/hourglass_bottom:")
    faulty = faulty_data_note(run.metrics() or {}, run.id)
    if faulty:
        st.info(f"Run `{run.id}`: {faulty}", icon=":material/rule:")


def run_label(run) -> str:
    cfg = run.config()
    m = run.metrics()
    acc = m.get("good_defect_accuracy")
    acc_s = f" · {100 * acc:.1f}%" if isinstance(acc, (int, float)) else ""
    from .metrics import unusable_reasons
    bad = "UNUSABLE · " if m and unusable_reasons(m) else ""      # first: the sidebar cuts long labels short
    return f"{bad}{run.id} · {run.state()} · {cfg.get('preset', '?')}{acc_s}"


# ------------------------------------------------------------------ roles (logic: snw_core.roles and .actions)

def _secrets() -> dict:
    try:
        return st.secrets.to_dict()
    except Exception:            # no secrets file (StreamlitSecretNotFoundError), or one that does not parse
        return {}


def _oidc_user() -> dict | None:
    try:
        user = st.user.to_dict()
    except Exception:
        return None
    return user if user.get("is_logged_in") else None


def actor() -> R.Actor:
    """Who this browser session is; decided on every call from the server address, SNW_VIEWER_ONLY, the
    secrets and the session's sign-in, so a changed setting applies at the next click. ``?view=viewer`` in
    the first URL makes a session a viewer for its lifetime (it can only lower a role)."""
    ss = st.session_state
    if st.query_params.get("view") == "viewer":
        ss["_roles_as_viewer"] = True
    return R.resolve_actor(st.get_option("server.address"), _secrets(), os.environ,
                           password_signin=ss.get("_roles_password"), oidc_user=_oidc_user(),
                           as_viewer=bool(ss.get("_roles_as_viewer")))


def poll_job(jobs: dict, key: str, message: str) -> None:
    """While the background child ``jobs[key]`` runs: ``message`` (``{s}``: seconds since it started) in a fragment
    that looks again every second, and the whole page redrawn once the child is done (or failed)."""
    import time

    @st.fragment(run_every=1.0)
    def _poll():
        job = jobs.get(key)
        if job is None or job["proc"].poll() is not None:
            st.rerun()
        st.info(message.format(s=f"{time.time() - job['started']:.0f}"), icon=":material/hourglass_top:")
    _poll()


def job_error(job: dict) -> str:
    """Why a background child of a page failed (``job``: its ``proc`` and the ``log`` file its stderr went to): the
    command line's error paragraph (wrapped over lines; from its last "error:" on), else the last line (a
    traceback's exception), else the exit code."""
    job["log"].seek(0)
    lines = job["log"].read().decode(errors="replace").strip().splitlines()
    if not lines:
        return f"exit code {job['proc'].returncode}"
    starts = [i for i, line in enumerate(lines) if line.lower().startswith("error: ")]
    return " ".join(line.strip() for line in lines[starts[-1]:])[len("error: "):] if starts else lines[-1]


def is_engineer() -> bool:
    return actor().is_engineer


def engineer_only(what: str) -> bool:
    """True for an engineer; for a viewer a caption saying that ``what`` is for engineers, and False."""
    a = actor()
    if a.is_engineer:
        return True
    how = ("this dashboard runs in viewer-only mode" if a.how == "viewer-only"
           else "sign in as an engineer in the sidebar" if a.how != "asked" else "this session views as a viewer")
    st.caption(f":material/lock: {what} is for engineers ({how}).")
    return False


def _sign_in(name: str, password: str, encoded: str) -> None:
    from .actions import log_action
    name = " ".join((name or "").split())[:40] or "engineer"
    try:
        ok, waited = R.THROTTLE.attempt(password or "", encoded)
    except R.AccessError as e:
        st.error(str(e))
        return
    log_action(store(), f"{name} (password)", "sign-in" if ok else "sign-in-refused")
    if ok:
        st.session_state["_roles_password"] = {"name": name, "fingerprint": R.hash_fingerprint(encoded)}
    else:
        st.session_state["_roles_signin_error"] = (f"Wrong password (answered after {waited:.0f} s; every further "
                                                   "wrong try waits longer).")
    st.rerun()


def _sign_out() -> None:
    st.session_state.pop("_roles_password", None)


def access_box() -> None:
    """The sidebar's Access section: the session's role and, for a viewer, how to sign in as an engineer."""
    a = actor()
    st.markdown("### Access")
    if a.how == "loopback":
        st.caption("Engineer: the dashboard listens on this computer only.")
        return
    if a.how in ("viewer-only", "asked"):
        st.caption("Viewer: " + ("this dashboard runs in viewer-only mode." if a.how == "viewer-only" else
                                 "this session was opened with `?view=viewer`."))
        return
    if a.is_engineer:
        st.caption(f"Engineer: **{a.name}**")
        if a.how == "password":
            st.button("Sign out", key="sidebar_signout", on_click=_sign_out)
        else:
            st.button("Log out", key="sidebar_logout", on_click=st.logout)
        return
    st.caption("Viewer: every page, reviews and downloads. Starting, stopping and deleting runs is for engineers.")
    secrets = _secrets()
    user = _oidc_user()
    if user:
        st.caption(f"Signed in as {user.get('email') or user.get('name') or '?'}, who is not on this dashboard's "
                   "engineer list.")
        st.button("Log out", key="sidebar_logout", on_click=st.logout)
    else:
        for p in R.oidc_providers(secrets):
            st.button(f"Sign in with {p or 'single sign-on'}", key=f"sidebar_login_{p or 'sso'}", on_click=st.login,
                      args=(p,) if p else ())
    try:
        encoded = R.password_hash(secrets)
        if encoded:
            R.check_hash(encoded)
    except R.AccessError as e:
        st.error(str(e))
        encoded = None
    if encoded:
        if msg := st.session_state.pop("_roles_signin_error", None):
            st.error(msg)
        gen = st.session_state.get("_roles_signin_gen", 0)         # a fresh password field after every try
        with st.form("sidebar_signin_form", border=False):
            name = st.text_input("Your name (for the action log)", key="sidebar_signin_name", max_chars=40)
            pw = st.text_input("Engineer password", type="password", key=f"sidebar_signin_password-{gen}")
            submitted = st.form_submit_button("Sign in as engineer", key="sidebar_signin")
        if submitted:
            st.session_state["_roles_signin_gen"] = gen + 1
            _sign_in(name, pw, encoded)
    elif not R.oidc_providers(secrets):
        st.caption("No engineer sign-in is configured on this server (README: *Opening the dashboard to the plant "
                   "network*).")


# ------------------------------------------------------------------ sidebar

def _save_upload(uploaded) -> str:
    """Store an uploaded parquet file in data_cache/uploads/ by content hash; return its path."""
    data = uploaded.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    out = D.data_cache_dir() / "uploads" / f"{digest}.parquet"
    if not out.exists():
        from .fsutil import atomic_write_bytes
        atomic_write_bytes(out, data)
    return str(out)


def sidebar() -> None:
    """Data source form and run picker, shared by every page."""
    init_state()
    with st.sidebar:
        st.markdown("### Data")
        cur = st.session_state["data_source"]
        kind_default = 0 if cur == "default" else 1 if cur.startswith("hub:") else 3
        # viewers read what is here: downloading from the Hub and uploading write files, so they are for engineers
        kinds = SOURCE_KINDS if is_engineer() else (SOURCE_KINDS[0], SOURCE_KINDS[3])
        kind_index = kinds.index(SOURCE_KINDS[kind_default]) if SOURCE_KINDS[kind_default] in kinds else 0
        # the kind sits outside the form so that only its own input is shown (fewer widgets to read and to draw)
        kind = st.selectbox("Source", kinds, index=kind_index, key="sidebar_source_kind")
        with st.form("sidebar_source_form", border=False):
            hub_id = upload = path = None
            if kind == SOURCE_KINDS[1]:
                hub_id = st.text_input("Hub data set id", value=cur[4:] if cur.startswith("hub:") else DEFAULT_HUB_ID,
                                       key="sidebar_hub_id", help="OWNER/NAME of a data set on the Hugging Face Hub "
                                       "with columns label and image; downloaded once into data_cache/.")
            elif kind == SOURCE_KINDS[2]:
                upload = st.file_uploader("Parquet file", type=["parquet"], key="sidebar_upload",
                                          help="Columns: label, image (PNG/JPEG bytes, or the Hugging Face Image "
                                               "feature).")
            elif kind == SOURCE_KINDS[3]:
                path = st.text_input("Path", value=cur if kind_default == 3 else "", key="sidebar_path",
                                     help="A .parquet file or a folder with one sub-folder per label.")
            good = st.text_input("Good label", value=st.session_state["good_label"], key="sidebar_good_label")
            submitted = st.form_submit_button("Load data", key="sidebar_load")
        if submitted:
            _apply_source(kind, hub_id, upload, path, good)
        if st.session_state.get("data_error"):
            st.error(st.session_state["data_error"])
        st.caption(f"Using: `{st.session_state['data_source']}` (good label `{st.session_state['good_label']}`)")

        st.markdown("### Run")
        runs = store().list()
        if not runs:
            st.caption("No runs yet.")
            st.session_state["run_id"] = None
        else:
            ids = [r.id for r in runs]
            if st.session_state.get("run_id") not in ids:
                done = [r.id for r in runs if r.metrics()]
                st.session_state["run_id"] = (done or ids)[0]
            labels = {r.id: run_label(r) for r in runs}
            st.selectbox("Run", ids, key="run_id", format_func=lambda i: labels.get(i, i))
        access_box()


def _apply_source(kind, hub_id, upload, path, good) -> None:
    if kind in (SOURCE_KINDS[1], SOURCE_KINDS[2]) and not is_engineer():
        st.session_state["data_error"] = ("Downloading from the Hub and uploading files is for engineers; viewers "
                                          "choose the embedded default or a path. The previous data source stays "
                                          "selected.")
        return
    if kind == SOURCE_KINDS[0]:
        source = "default"
    elif kind == SOURCE_KINDS[1]:
        source = "hub:" + (hub_id or "").strip()
    elif kind == SOURCE_KINDS[2]:
        if upload is None:
            st.session_state["data_error"] = "Choose a parquet file to upload first."
            return
        source = _save_upload(upload)
    else:
        source = (path or "").strip()
    good = (good or "0").strip() or "0"
    try:
        if kind == SOURCE_KINDS[3]:
            source = D.check_user_path(source)
        ds = get_dataset(source, good)
        D.check_trainable(ds)
    except D.DataError as e:
        st.session_state["data_error"] = f"Could not use '{source}': {e} The previous data source stays selected."
        return
    st.session_state.update(data_source=source, good_label=good, data_error=None)
