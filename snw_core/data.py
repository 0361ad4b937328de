"""Data sources -> one :class:`Dataset`, whatever the source.

A source is a string (see design.md):

- ``default``: the embedded synthetic connector set, generated once into ``data_cache/`` as parquet;
- ``hub:OWNER/NAME``: a Hugging Face Hub data set with the seed schema (fails fast offline);
- a ``.parquet`` path with columns ``label`` and ``image`` (HF Image feature), ``dirname`` optional, and
  ``split`` optional: ``train``, ``val`` (or ``validation``) or ``test`` per item, a split the data set fixes
  itself (:attr:`Dataset.splits`; e.g. images of other parts, or of another region of a photograph, kept for the
  test), which a run then follows instead of drawing one;
- a folder path with one sub-folder per label, images inside.

>>> ds = load("default")                       # doctest: +SKIP
>>> ds.images.shape, ds.images.dtype           # doctest: +SKIP
((3600, 26, 36), dtype('uint8'))

Every image is decoded once; decoded arrays are cached in ``data_cache/decoded/`` by the hash of the
source's bytes, so a second load of the same file costs a hash and an ``np.load``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .fsutil import atomic_write_bytes, project_root

__all__ = ["Dataset", "DataError", "load", "check_user_path", "allowed_roots", "natural_key", "sort_labels", "data_cache_dir",
           "check_trainable", "summary", "subset", "own_splits", "SPLIT_NAMES", "few_items_warnings", "MAX_SIDE",
           "MAX_TOTAL_PIXELS"]

DEFAULT_SOURCE = "default"
DEFAULT_N = 3600
DEFAULT_SEED = 0
#: largest image side accepted (pixels); larger images are refused before decoding
MAX_SIDE = 1024
#: largest data set accepted, in pixels over all images
MAX_TOTAL_PIXELS = 400_000_000
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
JUNK_FILES = {"thumbs.db", "desktop.ini", ".ds_store"}
HUB_PROBE_TIMEOUT_S = 4.0
_HUB_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_CACHE_VERSION = "1"
#: the version of the decoded arrays cached under data_cache/decoded (2: images with more than 8 bits per pixel are
#: refused; version 1 had clipped them to white; 3: a data set's own split column)
_DECODED_VERSION = "3"
#: the values a data set's own ``split`` column may hold, and the split each means
SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val", "valid": "val", "test": "test"}


class DataError(ValueError):
    """Bad input: the message is one clear paragraph meant for the user, never a traceback."""


def natural_key(s) -> tuple:
    """Sort key that compares the numbers inside strings numerically ("2" < "10", "NG_2" < "NG_10")."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", str(s)) if t)


def sort_labels(labels, good_label: str = "0") -> list[str]:
    """Unique labels, the good label first, then pin addresses in natural order."""
    arr = labels if isinstance(labels, np.ndarray) else np.array([str(x) for x in labels], dtype=str)
    uniq = sorted((str(x) for x in np.unique(arr.astype(str))), key=natural_key)
    return ([good_label] if good_label in uniq else []) + [u for u in uniq if u != good_label]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A decoded image data set.

    images : uint8 array, shape (n, h, w), grayscale
    labels : str array, shape (n,); ``good_label`` means good, anything else a defect at that pin address
    dirnames : str array, shape (n,)
    source : the source string it was loaded from
    content_hash : sha256 (hex) of the decoded images, labels and dirnames
    """

    images: np.ndarray
    labels: np.ndarray
    dirnames: np.ndarray
    source: str
    content_hash: str
    good_label: str = "0"
    warnings: tuple = field(default=())
    #: str array (n,) of "train" / "val" / "test": the split the data set fixes itself (a ``split`` column), or
    #: None: a run then draws a seeded stratified one (:func:`snw_core.splits.stratified_split`)
    splits: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    @property
    def is_defect(self) -> np.ndarray:
        return self.labels != self.good_label

    @property
    def label_names(self) -> list[str]:
        return list(self._label_names)

    @cached_property
    def _label_names(self) -> tuple[str, ...]:       # the arrays are read-only by contract: computed once
        return tuple(sort_labels(self.labels, self.good_label))

    def counts(self) -> dict[str, int]:
        """Items per label, good first, pins in natural order."""
        return {lab: int((self.labels == lab).sum()) for lab in self.label_names}


def data_cache_dir() -> Path:
    """``data_cache/`` of the project, or ``$SNW_DATA_CACHE``."""
    d = Path(os.environ.get("SNW_DATA_CACHE") or project_root() / "data_cache")
    d.mkdir(parents=True, exist_ok=True)
    return d


def allowed_roots() -> list[Path]:
    """Folders the dashboard may read user-given paths from: ``$SNW_DATA_ROOTS`` (os.pathsep-separated),
    else the project folder (which holds data_cache/)."""
    env = os.environ.get("SNW_DATA_ROOTS")
    roots = [Path(r) for r in env.split(os.pathsep) if r] if env else [project_root(), data_cache_dir()]
    return [r.resolve() for r in roots]


def check_user_path(path: str) -> str:
    """Resolve a path typed by a dashboard user; refuse one outside :func:`allowed_roots` ('..', other folders,
    symlinks out). Relative paths are taken from the project folder. Returns the resolved path as a string."""
    p = Path(path).expanduser()
    p = (p if p.is_absolute() else project_root() / p).resolve()
    roots = allowed_roots()
    if not any(p == r or r in p.parents for r in roots):
        raise DataError(f"The path '{path}' is outside the folders the dashboard may read "
                        f"({', '.join(str(r) for r in roots)}). Copy the data there, or have the administrator "
                        "add its folder to SNW_DATA_ROOTS.")
    return str(p)


def content_hash(images: np.ndarray, labels: np.ndarray, dirnames: np.ndarray, splits=None) -> str:
    """sha256 of the decoded images, labels and dirnames, and of the data set's own split where it has one (a set
    without one hashes as it always has)."""
    h = hashlib.sha256()
    h.update(repr(images.shape).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    h.update("\x00".join(labels.tolist()).encode())
    h.update("\x00".join(dirnames.tolist()).encode())
    if splits is not None:
        h.update(b"\x01splits\x00" + "\x00".join(np.asarray(splits).astype(str).tolist()).encode())
    return h.hexdigest()


def subset(ds: "Dataset", rows, labels=None) -> "Dataset":
    """The items ``rows`` of ``ds`` (their own split with them), optionally with other ``labels``; hash renewed."""
    rows = np.asarray(rows)
    images, dirnames = ds.images[rows], ds.dirnames[rows]
    labels = ds.labels[rows] if labels is None else np.asarray(labels).astype(str)
    splits = None if ds.splits is None else ds.splits[rows]
    return Dataset(images, labels, dirnames, ds.source, content_hash(images, labels, dirnames, splits), ds.good_label,
                   ds.warnings, splits)


def own_splits(values, where: str) -> np.ndarray:
    """A data set's own ``split`` column as "train" / "val" / "test" (see :data:`SPLIT_NAMES`); DataError on any
    other value or where a split is missing (a run needs all three)."""
    raw = np.array([("" if v is None else str(v).strip().lower()) for v in values], dtype=object)
    bad = sorted({v for v in raw.tolist() if v not in SPLIT_NAMES})
    if bad:
        rows = [int(i) for i in np.flatnonzero(~np.isin(raw, list(SPLIT_NAMES)))[:5]]
        raise DataError(f"{where[0].upper() + where[1:]} has a 'split' column with values other than train, val "
                        f"(or validation) and test: {', '.join(repr(v) for v in bad[:5])} (rows {rows}). Fix them, or "
                        "drop the column to let each run draw its own split.")
    out = np.array([SPLIT_NAMES[v] for v in raw.tolist()], dtype=str)
    missing = [s for s in ("train", "val", "test") if not (out == s).any()]
    if missing:
        raise DataError(f"{where[0].upper() + where[1:]} has a 'split' column without {' or '.join(missing)} items. "
                        "A run chooses its threshold on val and reports on test: it needs items in all three, or "
                        "drop the column to let each run draw its own split.")
    return out


def load(source: str = DEFAULT_SOURCE, good_label: str = "0") -> Dataset:
    """Load any source into a :class:`Dataset`. Raises :class:`DataError` on bad input."""
    source = str(source).strip()
    if not source:
        raise DataError("No data source given. Use 'default', 'hub:OWNER/NAME', a .parquet file or an image folder.")
    good_label = str(good_label)
    if source == DEFAULT_SOURCE:
        ds = _load_parquet(default_parquet(), source)
    elif source.startswith("hub:"):
        ds = _load_hub(source[4:], source)
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            ds = _load_folder(path, source)
        elif path.is_file():
            ds = _load_parquet(path, source)
        else:
            raise DataError(f"Data source '{source}' was not found: it is neither 'default', a 'hub:OWNER/NAME' id, "
                            "an existing .parquet file nor an existing image folder.")
    ds = Dataset(ds.images, ds.labels, ds.dirnames, source, ds.content_hash, good_label,
                 tuple(ds.warnings) + tuple(few_items_warnings(ds.labels)), ds.splits)
    if len(ds.label_names) < 2:
        raise DataError(f"Data source '{source}' has only one label ({ds.label_names[0]!r}, {ds.n} items). "
                        "A Siamese network needs at least two labels: good items and defects at one or more pins.")
    return ds


#: a label with fewer items than this cannot have one in each of train, val and test (:mod:`snw_core.splits`)
FEW_ITEMS = 3


def few_items_warnings(labels) -> list[str]:
    """One warning for the labels with fewer than :data:`FEW_ITEMS` items: they are never tested (1 item: train
    only) or never seen when the threshold is chosen (2 items: train and test), and the pin vote rarely names them."""
    names, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    few = [f"'{n}' ({c})" for n, c in sorted(zip(names, counts), key=lambda t: natural_key(t[0])) if c < FEW_ITEMS]
    if not few:
        return []
    return [f"{len(few)} label(s) with fewer than {FEW_ITEMS} items: {', '.join(few[:8])}"
            f"{' and more' if len(few) > 8 else ''}. Each needs at least {FEW_ITEMS} to have one item in train, val "
            "and test: with 1 it is trained on but never tested, with 2 it is not seen when the threshold is "
            "chosen, and the pin vote rarely names a label it has one or two examples of. Add images of them "
            "or merge them into a broader label."]


def check_trainable(ds: Dataset) -> None:
    """Refuse a data set on which training and the good/defect metrics make no sense."""
    labels = ds.label_names
    if ds.good_label not in labels:
        raise DataError(f"Data source '{ds.source}' has no good items: no item has the good label "
                        f"{ds.good_label!r} (labels found: {', '.join(labels[:12])}). The good/defect judgement needs "
                        "good reference items; pass the label that means 'good' with --good-label.")
    if len(labels) < 2:
        raise DataError(f"Data source '{ds.source}' has no defective items (only the good label {ds.good_label!r}); "
                        "escape rate, detection rates and negative pairs need at least one defect label.")
    if ds.n < 12:
        raise DataError(f"Data source '{ds.source}' has only {ds.n} items; at least 12 are needed for "
                        "train, validation and test splits.")
    if ds.splits is not None:
        good = ~ds.is_defect
        lacking = [f"{s} has no good items" for s in ("train", "val", "test") if not (good & (ds.splits == s)).any()]
        lacking += [f"{s} has no defects" for s in ("val", "test") if not (~good & (ds.splits == s)).any()]
        if lacking:
            raise DataError(f"Data source '{ds.source}' fixes its own split (a 'split' column), but "
                            f"{'; '.join(lacking)}. "
                            "The references are the train goods, the threshold is chosen on val goods and defects "
                            "and the test reports both: fix the column, or drop it to let each run draw its own split.")


def summary(ds: Dataset) -> dict:
    """A JSON-friendly summary of a data set (what `data check` prints)."""
    return {"source": ds.source, "n": ds.n, "image_shape": list(ds.image_shape), "good_label": ds.good_label,
            "n_good": int((~ds.is_defect).sum()), "n_defect": int(ds.is_defect.sum()),
            "labels": ds.counts(), "content_hash": ds.content_hash, "warnings": list(ds.warnings),
            **({} if ds.splits is None else
               {"own_split": {s: int((ds.splits == s).sum()) for s in ("train", "val", "test")}})}


# ---------------------------------------------------------------- default

def default_parquet(n: int = DEFAULT_N, seed: int = DEFAULT_SEED) -> Path:
    """Path of the embedded default set, generated on first use."""
    path = data_cache_dir() / f"default_n{n}_seed{seed}_v{_CACHE_VERSION}.parquet"
    if not path.exists():
        from . import synthetic
        synthetic.write_parquet(path, n=n, seed=seed)
    return path


# ---------------------------------------------------------------- parquet

def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _cache_path(key: str) -> Path:
    d = data_cache_dir() / "decoded"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{key}.npz"


def _from_cache(key: str, source: str) -> Dataset | None:
    p = _cache_path(key)
    if not p.exists():
        return None
    try:
        with np.load(p, allow_pickle=False) as z:
            return Dataset(z["images"], z["labels"].astype(str), z["dirnames"].astype(str), source,
                           str(z["content_hash"]), warnings=tuple(z["warnings"].astype(str).tolist()),
                           splits=z["splits"].astype(str) if "splits" in z.files else None)
    except Exception:   # a damaged cache file is rebuilt, never trusted
        return None


def _to_cache(key: str, ds: Dataset) -> None:
    buf = io.BytesIO()
    own = {} if ds.splits is None else {"splits": ds.splits.astype(str)}
    np.savez(buf, images=ds.images, labels=ds.labels.astype(str), dirnames=ds.dirnames.astype(str),
             content_hash=np.array(ds.content_hash), warnings=np.array(list(ds.warnings), dtype=str), **own)
    atomic_write_bytes(_cache_path(key), buf.getvalue())


def _load_parquet(path: Path, source: str) -> Dataset:
    path = Path(path)
    if path.stat().st_size == 0:
        raise DataError(f"The file '{path}' is empty. Expected a parquet file with columns 'label' and 'image'.")
    key = "pq-" + _DECODED_VERSION + "-" + _file_hash(path)
    cached = _from_cache(key, source)
    if cached is not None:
        return cached
    import pyarrow.parquet as pq
    try:
        table = pq.read_table(path)
    except Exception as e:
        raise DataError(f"The file '{path}' could not be read as parquet ({type(e).__name__}: {_short(e)}). "
                        "Expected a parquet file with columns 'label' and 'image' (PNG/JPEG bytes), "
                        "as written by the Hugging Face datasets library.") from None
    ds = _from_table(table, source, where=f"the file '{path}'")
    _to_cache(key, ds)
    return ds


def _short(e: Exception, n: int = 160) -> str:
    s = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return s[:n]


def _from_table(table, source: str, where: str) -> Dataset:
    """Validate a pyarrow table of the seed schema and decode it."""
    missing = [c for c in ("label", "image") if c not in table.column_names]
    if missing:
        raise DataError(f"{where[0].upper() + where[1:]} lacks the column(s) {', '.join(missing)}; it has "
                        f"{', '.join(table.column_names) or 'no columns'}. A data set needs 'label' (pin address, "
                        "the good label for good items) and 'image' (image bytes); 'dirname' is optional.")
    n = table.num_rows
    if n == 0:
        raise DataError(f"{where[0].upper() + where[1:]} has no rows.")
    labels = np.array([("" if v is None else str(v)) for v in table.column("label").to_pylist()], dtype=str)
    if (labels == "").any():
        rows = np.flatnonzero(labels == "")[:5].tolist()
        raise DataError(f"{where[0].upper() + where[1:]} has empty labels in rows {rows}.")
    if "dirname" in table.column_names:
        dirnames = np.array([("" if v is None else str(v)) for v in table.column("dirname").to_pylist()], dtype=str)
    else:
        dirnames = labels.copy()
    splits = own_splits(table.column("split").to_pylist(), where) if "split" in table.column_names else None
    blobs = _image_bytes(table.column("image"), where)
    images = decode_images(blobs, where)
    return Dataset(images, labels, dirnames, "", content_hash(images, labels, dirnames, splits), splits=splits)


def _image_bytes(col, where: str) -> list:
    import pyarrow as pa
    t = col.type
    if pa.types.is_struct(t):
        names = [t.field(i).name for i in range(t.num_fields)]
        if "bytes" not in names:
            raise DataError(f"The 'image' column of {where} has no image bytes (fields: {names}); images "
                            "referenced only by path are not supported: embed the bytes (HF Image feature).")
        return col.combine_chunks().field("bytes").to_pylist()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return col.to_pylist()
    raise DataError(f"The 'image' column of {where} has type {t}; expected image bytes (HF Image feature).")


#: PIL modes of images with more than 8 bits per pixel: refused (converting them to "L" clips every value above 255)
HIGH_BIT_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N", "I;32", "I;32L", "I;32B")


def decode_images(blobs: list, where: str = "the data") -> np.ndarray:
    """Decode encoded images to one uint8 array (n, h, w), grayscale.

    Every header is read first (cheap, no pixel decoding) so that corrupt bytes, images with more than 8 bits
    per pixel, images that are too large (decompression bombs) and mixed sizes are refused before any pixel is
    decoded.
    """
    from PIL import Image

    sizes, bad, deep = [], [], []
    for i, b in enumerate(blobs):
        try:
            if not b:
                raise ValueError("no bytes")
            with Image.open(io.BytesIO(b)) as im:
                sizes.append(im.size)
                if im.mode in HIGH_BIT_MODES:
                    deep.append((i, im.mode))
        except Exception:
            bad.append(i)
            sizes.append(None)
    if bad:
        raise DataError(f"{len(bad)} image(s) in {where} could not be read (corrupt or not an image): rows "
                        f"{_rows(bad)}. Fix or remove those rows and load again.")
    if deep:
        raise DataError(f"{len(deep)} image(s) in {where} have more than 8 bits per pixel (16-bit, 32-bit or "
                        f"floating point; row {deep[0][0]}: mode {deep[0][1]}); as 8-bit grayscale every value "
                        f"above 255 would be clipped to white. Convert them to 8-bit grayscale first, scaling "
                        f"their range deliberately and the same for every image (a 12-bit camera's values / 16), "
                        f"and load again: rows {_rows([i for i, _ in deep])}.")
    too_big = [i for i, (w, h) in enumerate(sizes) if w > MAX_SIDE or h > MAX_SIDE or w * h == 0]
    if too_big:
        w, h = sizes[too_big[0]]
        raise DataError(f"{len(too_big)} image(s) in {where} are too large or empty (e.g. row {too_big[0]}: "
                        f"{w} x {h} px; the limit is {MAX_SIDE} px per side), refused before decoding: rows "
                        f"{_rows(too_big)}.")
    uniq = sorted(set(sizes))
    if len(uniq) > 1:
        parts = []
        for s in uniq[:6]:
            rows = [i for i, x in enumerate(sizes) if x == s]
            where_ = f"in {len(rows)} images, e.g. rows {_rows(rows, 3)}" if len(rows) > 1 else f"in 1 image, row {rows[0]}"
            parts.append(f"{s[1]} x {s[0]} px (height x width) {where_}")
        raise DataError(f"All images of a data set must share one size, but {where} has {len(uniq)} sizes: "
                        + "; ".join(parts) + ". Resize them to one size first.")
    w, h = uniq[0]
    if w * h * len(blobs) > MAX_TOTAL_PIXELS:
        raise DataError(f"{where[0].upper() + where[1:]} is too large: {len(blobs)} images of {h} x {w} px exceed "
                        f"the limit of {MAX_TOTAL_PIXELS:,} pixels in all.")
    out = np.empty((len(blobs), h, w), dtype=np.uint8)
    for i, b in enumerate(blobs):   # PIL decodes one image per call; this is the one unavoidable pass
        with Image.open(io.BytesIO(b)) as im:
            out[i] = np.asarray(im if im.mode == "L" else im.convert("L"))
    return out


def _rows(rows, k: int = 8) -> str:
    rows = list(rows)
    s = ", ".join(str(r) for r in rows[:k])
    return s + (f" and {len(rows) - k} more" if len(rows) > k else "")


# ---------------------------------------------------------------- folder

def _load_folder(root: Path, source: str) -> Dataset:
    subdirs = sorted([p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")],
                     key=lambda p: natural_key(p.name))
    if not subdirs:
        raise DataError(f"The folder '{root}' has no sub-folders. An image folder needs one sub-folder per label "
                        "(e.g. '0/' for good items and '3/' for defects at pin 3), with the images inside.")
    files, labels, warnings = [], [], []
    for d in subdirs:
        entries = sorted(d.iterdir(), key=lambda p: natural_key(p.name))
        nested = [e.name for e in entries if e.is_dir()]
        if nested:
            raise DataError(f"The label folder '{d.name}' in '{root}' contains sub-folders ({', '.join(nested[:5])}). "
                            "Use exactly one level: one folder per label with the images directly inside.")
        imgs = [e for e in entries if e.is_file() and e.suffix.lower() in IMAGE_EXTENSIONS]
        other = [e.name for e in entries if e.is_file() and e.suffix.lower() not in IMAGE_EXTENSIONS
                 and not e.name.startswith(".") and e.name.lower() not in JUNK_FILES]
        if other:
            warnings.append(f"skipped {len(other)} non-image file(s) in '{d.name}/': {', '.join(other[:5])}")
        if not imgs:
            warnings.append(f"label folder '{d.name}/' has no images and was ignored")
            continue
        files += imgs
        labels += [d.name] * len(imgs)
    if not files:
        raise DataError(f"The folder '{root}' holds no images (png, jpg, bmp, ...) in its label sub-folders.")
    h = hashlib.sha256()
    for f, lab in zip(files, labels):
        st = f.stat()
        h.update(f"{lab}/{f.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    key = "dir-" + _DECODED_VERSION + "-" + h.hexdigest()
    cached = _from_cache(key, source)
    if cached is not None:
        return cached
    blobs = [f.read_bytes() for f in files]
    where = f"the folder '{root}'"
    try:
        images = decode_images(blobs, where)
    except DataError as e:   # name files, not row numbers
        msg = str(e)
        raise DataError(re.sub(r"rows? (\d+(?:, \d+)*)", lambda m: "files " + ", ".join(
            f"{labels[int(i)]}/{files[int(i)].name}" for i in re.findall(r"\d+", m.group(1))), msg)) from None
    labels_a = np.array(labels, dtype=str)
    dirnames = labels_a.copy()
    ds = Dataset(images, labels_a, dirnames, source, content_hash(images, labels_a, dirnames),
                 warnings=tuple(warnings))
    _to_cache(key, ds)
    return ds


# ---------------------------------------------------------------- hub

def _hub_reachable(host: str = "huggingface.co", port: int = 443, timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """True when a TCP connection to the Hub opens within ``timeout`` seconds (DNS included)."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return False
    ok = []

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(ok)


def hub_cache_file(name: str) -> Path:
    d = data_cache_dir() / "hub"
    d.mkdir(parents=True, exist_ok=True)
    return d / (name.replace("/", "__") + ".parquet")


def _load_hub(name: str, source: str, reachable=None, hub_path: str | None = None) -> Dataset:
    """Load a Hub data set: from our local copy when there is one, else download it once.

    ``hub_path`` replaces the Hub id in the ``datasets.load_dataset`` call (tests use a local folder).
    """
    if not _HUB_RE.match(name):
        raise DataError(f"'{name}' is not a Hugging Face data set id; expected hub:OWNER/NAME, "
                        "e.g. hub:YxBxRyXJx/SNWimages_train_1110.")
    local = hub_cache_file(name)
    if local.exists():
        return _load_parquet(local, source)
    if not (reachable if reachable is not None else _hub_reachable()):
        raise DataError(f"The Hugging Face Hub data set '{name}' is not in data_cache/ and the Hub cannot be reached "
                        "(no network). To use it here, download it on a machine with network access "
                        f"(python -m snw_core data import hub:{name} --out {name.split('/')[-1]}.parquet) and copy the "
                        f"parquet file to {local}, or pass the file's path as the data source.")
    download_hub(name, local, hub_path=hub_path)
    return _load_parquet(local, source)


def download_hub(name: str, out: Path, hub_path: str | None = None) -> Path:
    """Download ``name`` with ``datasets.load_dataset`` (split 'train') and write it as seed-schema parquet."""
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
    import datasets
    try:
        ds = datasets.load_dataset(hub_path or name, split="train", cache_dir=str(data_cache_dir() / "hf"))
    except Exception as e:
        raise DataError(f"Downloading the Hugging Face data set '{name}' failed ({type(e).__name__}: {_short(e)}). "
                        "Check the id and the network, or pass a local .parquet file as the data source.") from None
    missing = [c for c in ("label", "image") if c not in ds.column_names]
    if missing:
        raise DataError(f"The Hugging Face data set '{name}' lacks the column(s) {', '.join(missing)}; "
                        f"it has {', '.join(ds.column_names)}.")
    ds = ds.cast_column("image", datasets.Image(decode=False))
    table = ds.with_format("arrow")[:]
    import pyarrow.parquet as pq
    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write_bytes(out, buf.getvalue())
    return out
