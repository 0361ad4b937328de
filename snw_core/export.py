"""Carry a trained run to the line: a self-contained bundle that judges images without TensorFlow.

>>> out = export_bundle(run, "bundle/")          # doctest: +SKIP
>>> zip_path = bundle_zip(run)                     # doctest: +SKIP  (cached as runs/<id>/bundle.zip)
>>> b = load_bundle("bundle/")                     # doctest: +SKIP  (the bundle's own script, as a module)
>>> b.judge(images)[0]["verdict"]                  # doctest: +SKIP
'GOOD'

A bundle folder holds:

=====================  =================================================================================
``embedder.tflite``    the twin in LiteRT (TFLite) format: raw grayscale pixels (n, h, w) float32 0..255 in,
                       embeddings (n, d) out (normalisation is inside the model); builtin ops only
``references.npz``     good train embeddings (+ row indices), defective train embeddings, labels, row indices
``bundle.json``        threshold, k, pin_k, good label, image shape, run id, data source + content hash,
                       package versions, the export's own numerical check
``gate.npz``           the not-a-part check and the heat map's references (PCA appearance model, train goods)
``register.npz``       (where the run registers) the template and good references that put a part back in place
``check.npz``          a few check images and the embeddings TensorFlow gave them (``--self-test``)
``inspect_bundle.py``  the standalone script (numpy + a LiteRT runtime; Pillow to read image files)
``requirements.txt``   what to pip install on the small computer
``README.txt``         copy, install, run
=====================  =================================================================================

Why LiteRT and not ONNX: the converter ships inside TensorFlow and Keras 3 (``model.export(format="litert")``),
so exporting adds no dependency here; ONNX would need tf2onnx, another converter to pin and keep in step
with TensorFlow and Keras. The runtime, ``ai-edge-litert`` 2.3.0 (the successor of ``tflite-runtime``), has
wheels for Linux aarch64 (14 MB, glibc 2.27+: Raspberry Pi OS 64-bit on a Pi 4/5) and x86-64 (22 MB),
CPython 3.10-3.13; its only compiled dependencies are numpy and ml_dtypes (the rest is pure Python), and it
runs the model through XNNPACK (ARM NEON / x86 SIMD). The bundle script falls back to ``tflite_runtime``
and then ``tensorflow.lite``, so older images with either keep working.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import shutil
import sys
import tempfile
import threading
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np

from .fsutil import atomic_write_bytes, atomic_write_json, default_mode
from .runs import RunError, now_iso

__all__ = ["export_bundle", "bundle_zip", "bundle_zip_ready", "load_bundle", "to_tflite", "litert_interpreter",
           "finished_config",
           "ExportError", "BUNDLE_FORMAT", "TEMPLATE", "RUNTIME_REQUIREMENT", "CHECK_TOLERANCE"]

BUNDLE_FORMAT = 2
TEMPLATE = Path(__file__).resolve().parent / "bundle_template" / "inspect_bundle.py"
RUNTIME_REQUIREMENT = "ai-edge-litert==2.3.0"
#: largest relative difference (max |a - b| / max |b|) between TensorFlow's and LiteRT's embeddings accepted
CHECK_TOLERANCE = 1e-4
#: the same for the patch features a conv twin's bundle carries (relative to their largest value)
PATCH_CHECK_TOLERANCE = 1e-3
ZIP_NAME = "bundle.zip"
_ZIP_LOCK = threading.Lock()
_VERSIONED = ("numpy", "keras", "tensorflow-cpu", "tensorflow", "ai-edge-litert", "pillow")


class ExportError(ValueError):
    """The bundle cannot be written (bad output folder, failed conversion); the message is for the user."""


def _versions() -> dict:
    from .train import package_versions
    return package_versions(_VERSIONED)


def finished_config(run) -> dict:
    """The config of a run that can judge (metrics with a threshold, embedder, embeddings); RunError otherwise."""
    return _finished(run)[0]


def _finished(run):
    cfg, m = run.config(), run.metrics()
    if not cfg or not m or m.get("threshold") is None:
        raise RunError(f"Run '{run.id}' has no results yet (state: {run.state()}); only a finished run "
                       "(with a threshold) can be exported.")
    if not run.embedder_path.exists() or not run.file("embeddings.npz").exists():
        raise RunError(f"Run '{run.id}' lacks embedder.keras or embeddings.npz; it cannot be exported.")
    return cfg, m


def to_tflite(embedder) -> bytes:
    """Convert a Keras embedder to a LiteRT flatbuffer with a dynamic batch, inference mode, builtin ops only.

    Builtin ops only (no Flex/SELECT_TF_OPS): the plain runtime wheels have no TensorFlow kernels, so a model
    that needed them would fail on the line; conversion fails here instead.
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="snw-tflite-") as d:
        path = os.path.join(d, "embedder.tflite")
        embedder.export(path, format="litert", verbose=False,
                        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]})
        return Path(path).read_bytes()


def with_patch_features(embedder):
    """The embedder with its patch features (:data:`snw_core.patches.PATCH_LAYER`, flattened) appended to its
    output: one LiteRT model gives the line bundle both, (n, d + fh * fw * c)."""
    import keras

    from .patches import PATCH_LAYER
    feat = keras.layers.Flatten(name="patch_features")(embedder.get_layer(PATCH_LAYER).output)
    out = keras.layers.Concatenate(axis=1, name="embedding_and_patches")([embedder.output, feat])
    return keras.Model(embedder.input, out, name="embedder_with_patches")


def _check_images(image_shape, goods=None, n_random: int = 8) -> np.ndarray:
    """Seeded check images: random noise and, when given, the first 8 good train images (real parts), uint8.

    No flat frames: a flat image standardises to 0 / (0 + 1) everywhere, so its embedding is decided by float
    rounding of the mean (TensorFlow and LiteRT differ there by far more than on any real image), and the
    gate judges such a frame UNKNOWN whatever its embedding."""
    h, w = image_shape
    rng = np.random.default_rng(0)
    parts = [rng.integers(0, 256, (n_random, h, w), dtype=np.uint8)]
    if goods is not None and len(goods):
        parts.append(np.asarray(goods[:8], np.uint8))
    return np.concatenate(parts)


def litert_interpreter(model: bytes, input_shape, num_threads: int = 1):
    """A LiteRT interpreter for ``model`` with its input resized to ``input_shape`` and tensors allocated."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:     # the export machine has TensorFlow anyway
        import tensorflow as tf
        Interpreter = tf.lite.Interpreter
    it = Interpreter(model_content=model, num_threads=num_threads)
    it.resize_tensor_input(it.get_input_details()[0]["index"], [int(v) for v in input_shape])
    it.allocate_tensors()
    return it


def _run_tflite(model: bytes, images: np.ndarray) -> np.ndarray:
    it = litert_interpreter(model, images.shape)
    inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    it.set_tensor(inp, images.astype(np.float32))
    it.invoke()
    return it.get_tensor(out).copy()


def _readme(run_id: str, meta: dict) -> str:
    h, w = meta["image_shape"]
    return f"""SNW inspection bundle for run {run_id}

Judges {h} x {w} px grayscale connector images: GOOD / DEFECT against threshold {meta['threshold']:.6g}
(score = mean distance to the {meta['k']} nearest good references), the guessed pin address of a defect,
UNKNOWN for an image that is not recognised as the part (camera fault, empty fixture, another part type) or
is softer or noisier than the run can judge or far darker or brighter than its training images or clipped by glare (never passed), and the pixel where an image differs most from the good parts (defect_y, defect_x).

On the small computer (Raspberry Pi 4/5 with 64-bit OS, or any x86-64 / aarch64 Linux, Python 3.9+):

    python3 -m venv ~/snw && ~/snw/bin/pip install -r requirements.txt
    ~/snw/bin/python inspect_bundle.py --self-test          # checks the runtime gives the export's numbers
    ~/snw/bin/python inspect_bundle.py item1.png item2.png  # one JSON line per image
    ~/snw/bin/python inspect_bundle.py --bench 200 item1.png  # latency per image on this computer

Exit status 0 = judged, 2 = bad input (wrong size, not an image), 1 = other failure.
Five or more images at once also get a camera check: a warning on stderr when they are darker, brighter,
softer, noisier or lower in contrast than the images the model was trained on.
No TensorFlow is needed. If ai-edge-litert is missing the script uses tflite_runtime, then tensorflow.lite.
Without Pillow, pass uint8 .npy arrays instead of image files.
"""


def export_bundle(run, out, check_tolerance: float = CHECK_TOLERANCE) -> Path:
    """Write the line bundle of a finished ``run`` to folder ``out`` and return its path.

    ``out`` must not exist, be empty, or be an earlier bundle (it is then replaced whole). The bundle is
    assembled in a temporary folder next to ``out`` and renamed into place, so a failure leaves no half bundle.
    The converted model is checked against Keras on seeded images; a difference above ``check_tolerance``
    (relative) refuses the export.
    """
    from .embed import embed_images, load_embeddings
    from .judge import Judge
    from .model import load_embedder

    cfg, m = _finished(run)
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "bundle.json").exists())):
        raise ExportError(f"'{out}' exists and is not an empty folder or an earlier bundle; choose another --out.")
    embedder = load_embedder(run.embedder_path)
    from .gate import GATE_FILE
    from .judge import load_gate
    from .judge import load_patches, load_registration
    from .patches import PATCH_FILE
    from .register import REGISTER_FILE
    gate = load_gate(run)
    patches = load_patches(run)
    registration = load_registration(run) if gate is not None else None
    judge = Judge.from_parts(cfg, m, load_embeddings(run.file("embeddings.npz")), embedder=embedder, gate=gate,
                             patches=patches, registration=registration)
    exported = with_patch_features(embedder) if patches is not None else embedder
    image_shape = [int(x) for x in cfg["data"]["image_shape"]]
    try:
        model = to_tflite(exported)
    except Exception as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise ExportError(f"The embedder of run '{run.id}' could not be converted to LiteRT with builtin ops "
                          f"({type(e).__name__}: {first}).") from None
    check = _check_images(image_shape, gate.good_images if gate is not None else None)
    expected = embed_images(exported, check)
    got = _run_tflite(model, check)
    dim = int(embedder.output_shape[-1])

    def _rel(a, b):
        return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-12))

    rel = _rel(got[:, :dim], expected[:, :dim])
    if not rel <= check_tolerance:
        raise ExportError(f"The converted model differs from the Keras one by {rel:.2e} (relative), more than "
                          f"{check_tolerance:.0e}; not exported.")
    if patches is not None:     # patch features: ReLU maps of a larger range, float32 rounding shows more
        rel_f = _rel(got[:, dim:], expected[:, dim:])
        if not rel_f <= PATCH_CHECK_TOLERANCE:
            raise ExportError(f"The converted model's patch features differ from the Keras ones by {rel_f:.2e} "
                              f"(relative), more than {PATCH_CHECK_TOLERANCE:.0e}; not exported.")
    refs = judge.references()
    meta = {
        "format": BUNDLE_FORMAT,
        "run_id": run.id,
        "name": cfg.get("name"),
        "preset": cfg.get("preset"),
        "model": "embedder.tflite",
        "model_sha256": hashlib.sha256(model).hexdigest(),
        "input": {"shape": [None, *image_shape], "dtype": "float32",
                  "meaning": "raw grayscale pixels 0..255, rows x columns; the model normalises them"},
        "embedding_dim": int(embedder.output_shape[-1]),
        "patch": None if patches is None else {
            "layer": "the twin's last convolution, flattened after the embedding in the model's output",
            "grid": list(patches.grid), "channels": int(patches.bank.shape[1]),
            "threshold": patches.threshold if np.isfinite(patches.threshold) else None},
        "image_shape": image_shape,
        "threshold": judge.threshold,
        "threshold_method": cfg["settings"].get("threshold_method"),
        "k": judge.k,
        "pin_k": judge.pin_k,
        "good_label": judge.good_label,
        "judgement": "score = mean Euclidean distance of the embedding to its k nearest good references; "
                     "DEFECT when score > threshold; pin = vote of the pin_k nearest defective references, "
                     "each weighted 1 / (distance + 1e-9); UNKNOWN when gate.npz's appearance check does not "
                     "recognise the part; DEFECT also on its local evidence; where noise_rule is used, an image "
                     "noisier than noise_rule.min_noise whose local evidence is at most noise_rule.local has its "
                     "score scaled by threshold / noise_rule.twin",
        "gate": gate.thresholds() if gate is not None else None,
        "noise_rule": judge.noise_rule,
        "registration": m.get("registration") if registration is not None else None,
        "acquisition": m.get("acquisition"),
        "drift_check": m.get("drift_check"),
        "n_good_references": int(len(refs["good"])),
        "n_defect_references": int(len(refs["defect"])),
        "data": {"source": cfg["data"].get("source"), "content_hash": cfg["data"].get("content_hash"),
                 "n": cfg["data"].get("n"),
                 "indices": "nearest_good / nearest_defect are row indices in this data set"},
        "metrics": {k: m.get(k) for k in ("good_defect_accuracy", "escape_rate", "overkill_rate", "auroc",
                                          "pin_accuracy", "n_test")},
        "conversion_check": {"max_relative_difference": rel, "tolerance": check_tolerance, "n": int(len(check))},
        "versions": _versions(),
        "created": now_iso(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = default_mode(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent), folder=True)
    try:
        (tmp / "embedder.tflite").write_bytes(model)
        np.savez_compressed(tmp / "references.npz", **refs)
        np.savez_compressed(tmp / "check.npz", images=check, embeddings=expected.astype(np.float32))
        if gate is not None:
            np.savez_compressed(tmp / GATE_FILE, **gate.arrays())
        if patches is not None:
            np.savez_compressed(tmp / PATCH_FILE, **patches.arrays())
        if registration is not None:
            np.savez_compressed(tmp / REGISTER_FILE, **registration.arrays())
        atomic_write_json(tmp / "bundle.json", meta)
        shutil.copyfile(TEMPLATE, tmp / "inspect_bundle.py")
        (tmp / "requirements.txt").write_text(f"numpy\n{RUNTIME_REQUIREMENT}\npillow\n")
        (tmp / "README.txt").write_text(_readme(run.id, meta))
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _zip_stamp(run) -> str:
    """Changes when anything the bundle is made from changes (run files, template, format)."""
    h = hashlib.sha256(f"format={BUNDLE_FORMAT}\n".encode())
    for name in ("config.json", "metrics.json", "embeddings.npz", "embedder.keras", "gate.npz", "patches.npz",
                 "register.npz"):
        if not run.file(name).exists():
            continue
        st = run.file(name).stat()
        h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    h.update(TEMPLATE.read_bytes())
    return h.hexdigest()


def bundle_zip_ready(run) -> Path | None:
    """The cached ``bundle.zip`` of a run when it is up to date (no build), else None."""
    path = run.file(ZIP_NAME)
    try:
        with zipfile.ZipFile(path) as z:
            return path if z.comment.decode() == _zip_stamp(run) else None
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError):
        return None


def bundle_zip(run) -> Path:
    """``runs/<id>/bundle.zip``: the run's bundle as one zip (folder ``snw-bundle-<id>/`` inside).

    Built on first call and cached; rebuilt when the run's files or the bundle script change. Written
    atomically, so a reader never sees half a zip. Raises :class:`~snw_core.runs.RunError` for a run
    without results and :class:`ExportError` when conversion fails.
    """
    _finished(run)
    path = run.file(ZIP_NAME)
    with _ZIP_LOCK:
        if bundle_zip_ready(run) is not None:
            return path
        stamp = _zip_stamp(run)
        top = f"snw-bundle-{run.id}"
        with tempfile.TemporaryDirectory(prefix="snw-bundle-") as d:
            folder = export_bundle(run, Path(d) / top)
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
                for f in sorted(folder.iterdir()):
                    z.write(f, f"{top}/{f.name}")
                z.comment = stamp.encode()
        atomic_write_bytes(path, buf.getvalue())
    return path


def load_bundle(path, num_threads: int = 1):
    """The bundle's own ``Bundle`` class (from its ``inspect_bundle.py``), loaded for the folder ``path``."""
    path = Path(path)
    name = f"snw_bundle_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]}"
    spec = importlib.util.spec_from_file_location(name, path / "inspect_bundle.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod.Bundle(str(path), num_threads=num_threads)
