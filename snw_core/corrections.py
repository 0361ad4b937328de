"""Corrections files: decisions about single items (relabel, exclude, keep), applied when a data set is loaded
for training; the source data is never changed.

A corrections file is plain CSV, one row per decision::

    row,given_label,new_label,note,content_hash
    17,0,7,"audit: 9 of its 10 nearest other items are labelled '7'",3f2a...
    230,3,exclude,empty fixture,3f2a...
    512,5,5,kept after review,3f2a...

``row`` is the 0-based index in the order :func:`snw_core.data.load` returns the source; ``given_label`` is the
source's label of that row (a check that the file belongs to this data set); ``new_label`` is a label of the
data set, ``exclude`` (left out of training and evaluation) or the given label again (reviewed and kept, no
change); ``content_hash`` names the data set the file was made for (optional: a hand-written file may leave it
out; the ``given_label`` of every row is checked either way). Leading ``#`` comment lines are ignored.

>>> from snw_core import data                                             # doctest: +SKIP
>>> ds, record = apply_corrections(data.load("default"), "runs/.corrections/fix.csv")   # doctest: +SKIP
>>> record["relabelled"], len(record["excluded_rows"])                   # doctest: +SKIP
(108, 0)

See also :mod:`snw_core.audit` (which writes suggestions in this format).
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from pathlib import Path

import numpy as np

from .data import DataError, Dataset, subset
from .fsutil import atomic_write_text

__all__ = ["COLUMNS", "EXCLUDE", "CorrectionsError", "read_corrections", "write_corrections", "apply_corrections",
           "dataset_for_run", "run_rows", "corrections_dir", "default_corrections_path", "from_flags",
           "merge_decisions", "files_for", "prepare_corrected"]

COLUMNS = ["row", "given_label", "new_label", "note", "content_hash"]
#: other names accepted for a column when reading a file written by hand
_ALIASES = {"given_label": ("label", "given", "old_label"), "new_label": ("new", "corrected_label", "decision")}
EXCLUDE = "exclude"
_META_RE = re.compile(r"^#\s*snw corrections;(.*)$")


class CorrectionsError(DataError):
    """A corrections file that cannot be applied to this data set; the text says which rows and why."""


def corrections_dir(runs_dir=None) -> Path:
    """Where the dashboard keeps corrections files: ``.corrections/`` inside the run store."""
    from .runs import runs_dir as _runs_dir
    return _runs_dir(runs_dir) / ".corrections"


def default_corrections_path(ds: Dataset, runs_dir=None) -> Path:
    """The dashboard's corrections file of a data set: named after its source and content hash."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(ds.source).stem if ds.source != "default" else "default").strip("-")[:40]
    return corrections_dir(runs_dir) / f"{slug or 'data'}-{ds.content_hash[:12]}.csv"


def _rows_text(rows) -> str:
    rows = list(rows)
    return ", ".join(map(str, rows[:8])) + (f" and {len(rows) - 8} more" if len(rows) > 8 else "")


def read_corrections(path) -> tuple[dict, list[dict]]:
    """``(meta, entries)`` of a corrections file: meta from the comment line (``source``, ``content_hash``),
    entries ``{"row": int, "given_label", "new_label", "note"}``. Raises :class:`CorrectionsError`."""
    p = Path(path)
    if not p.is_file():
        raise CorrectionsError(f"The corrections file '{path}' does not exist.")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise CorrectionsError(f"The corrections file '{path}' could not be read as UTF-8 text ({type(e).__name__}). "
                               f"Expected CSV with the columns {', '.join(COLUMNS)}.") from None
    meta: dict = {}
    lines = text.splitlines()
    while lines and lines[0].startswith("#"):
        m = _META_RE.match(lines.pop(0).strip())
        if m:
            for part in m.group(1).split(";"):
                if "=" in part:
                    k, v = part.split("=", 1)
                    meta[k.strip()] = v.strip()
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    if reader.fieldnames:
        names = [f.strip() for f in reader.fieldnames]
        for col, alts in _ALIASES.items():
            if col not in names:
                names = [col if f in alts else f for f in names]
        reader.fieldnames = names
    missing = [c for c in ("row", "given_label", "new_label") if c not in (reader.fieldnames or [])]
    if missing:
        raise CorrectionsError(f"The corrections file '{path}' lacks the column(s) {', '.join(missing)} (it has "
                               f"{', '.join(reader.fieldnames or []) or 'no header'}). Expected CSV with the columns "
                               f"{', '.join(COLUMNS)}: the row number in the data set, its label there, the new label "
                               f"or '{EXCLUDE}', and an optional note.")
    entries, bad, hashes = [], [], set()
    for line_no, rec in enumerate(reader, start=2):
        if (rec.get("content_hash") or "").strip():
            hashes.add(rec["content_hash"].strip())
        raw = (rec.get("row") or "").strip()
        try:
            row = int(raw)
        except ValueError:
            bad.append(f"line {line_no} ({raw!r})")
            continue
        entries.append({"row": row, "given_label": (rec.get("given_label") or "").strip(),
                        "new_label": (rec.get("new_label") or "").strip(), "note": (rec.get("note") or "").strip()})
    if bad:
        raise CorrectionsError(f"The corrections file '{path}' has row numbers that are not whole numbers: "
                               f"{_rows_text(bad)}.")
    if len(hashes) > 1:
        raise CorrectionsError(f"The corrections file '{path}' mixes rows of {len(hashes)} data sets (content_hash "
                               "column); keep one file per data set.")
    if hashes:
        meta["content_hash"] = hashes.pop()
    return meta, entries


def write_corrections(path, entries, source: str, data_hash: str) -> Path:
    """Write ``entries`` (dicts with ``row, given_label, new_label, note``) sorted by row, each with the data set's
    ``data_hash``, atomically; returns the path. ``source`` is accepted for the caller's record only."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for e in sorted(entries, key=lambda e: int(e["row"])):
        w.writerow({"row": int(e["row"]), "given_label": e["given_label"], "new_label": e["new_label"],
                    "note": e.get("note", ""), "content_hash": data_hash})
    return atomic_write_text(path, buf.getvalue())


def _check(meta: dict, entries: list[dict], ds: Dataset, path) -> None:
    """Every problem of the file against ``ds`` in one message (CorrectionsError), or nothing."""
    problems = []
    if meta.get("content_hash") and meta["content_hash"] != ds.content_hash:
        src = f", source {meta['source']}" if meta.get("source") else ""
        raise CorrectionsError(f"The corrections file '{path}' was made for another data set (content hash "
                               f"{meta['content_hash'][:12]}...{src}) than "
                               f"'{ds.source}' (content hash {ds.content_hash[:12]}...); its row numbers would point "
                               "at other items. Audit a run of this data set to make a file for it.")
    rows = np.array([e["row"] for e in entries], np.int64)
    out = [int(r) for r in rows if r < 0 or r >= ds.n]
    if out:
        problems.append(f"rows {_rows_text(out)} do not exist (the data set has rows 0 to {ds.n - 1})")
    uniq, cnt = np.unique(rows, return_counts=True)
    if (cnt > 1).any():
        problems.append(f"rows {_rows_text(uniq[cnt > 1].tolist())} appear more than once")
    mism = [f"{e['row']} (file {e['given_label']!r}, data {ds.labels[e['row']]!r})" for e in entries
            if 0 <= e["row"] < ds.n and e["given_label"] != ds.labels[e["row"]]]
    if mism:
        problems.append(f"the given label differs from the data set's label in rows {_rows_text(mism)}: the file "
                        "belongs to another data set or another order of its rows")
    names = set(ds.label_names)
    unknown = sorted({e["new_label"] for e in entries if e["new_label"] not in names and e["new_label"] != EXCLUDE})
    if unknown:
        problems.append(f"new labels {', '.join(repr(u) for u in unknown[:8])} are not labels of this data set "
                        f"({', '.join(ds.label_names[:16])}) nor '{EXCLUDE}'")
    if problems:
        raise CorrectionsError(f"The corrections file '{path}' cannot be applied to '{ds.source}': "
                               + "; ".join(problems) + ". Nothing was written.")


def _corrected(ds: Dataset, relabels: dict, excluded: list) -> tuple[Dataset, np.ndarray]:
    labels = ds.labels.copy()
    for r, lab in relabels.items():
        labels[int(r)] = lab
    keep = np.setdiff1d(np.arange(ds.n), np.asarray(excluded, np.int64))
    new = subset(ds, keep, labels=labels[keep])
    for a in (new.images, new.labels, new.dirnames) + (() if new.splits is None else (new.splits,)):
        a.flags.writeable = False
    return new, keep


def apply_corrections(ds: Dataset, path) -> tuple[Dataset, dict]:
    """The data set with the file's decisions applied, and the record for the run's config.json.

    The record holds the file, its sha256, the source's content hash and every change (``relabels`` row ->
    label, ``excluded_rows``), so that the run can be matched to its source rows without the file.
    Raises :class:`CorrectionsError` (one paragraph, every problem) for a file that does not fit ``ds``.
    """
    meta, entries = read_corrections(path)
    _check(meta, entries, ds, path)
    relabels = {str(e["row"]): e["new_label"] for e in entries
                if e["new_label"] not in (EXCLUDE, e["given_label"])}
    excluded = sorted(e["row"] for e in entries if e["new_label"] == EXCLUDE)
    new, keep = _corrected(ds, relabels, excluded)
    from .data import check_trainable
    check_trainable(new)
    record = {"file": str(path), "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
              "source_content_hash": ds.content_hash, "n_source": ds.n, "relabelled": len(relabels),
              "kept": sum(e["new_label"] == e["given_label"] for e in entries), "excluded_rows": excluded,
              "relabels": relabels}
    return new, record


def dataset_for_run(ds: Dataset, cfg: dict) -> Dataset:
    """The data set a run trained on, rebuilt from its source ``ds`` and the corrections recorded in ``cfg``
    (the source itself when the run had none, or when ``ds`` is not the run's source)."""
    rec = cfg.get("corrections")
    if not rec or ds.content_hash != rec.get("source_content_hash"):
        return ds
    return _corrected(ds, rec.get("relabels", {}), rec.get("excluded_rows", []))[0]


def run_rows(cfg: dict, ds: Dataset) -> np.ndarray:
    """Source row (in ``ds``) of every item of a run, in the order of its embeddings."""
    rec = cfg.get("corrections")
    if not rec:
        return np.arange(ds.n)
    if ds.content_hash != rec.get("source_content_hash"):
        raise CorrectionsError(f"The data behind '{ds.source}' changed since the run was trained (content hash "
                               f"{ds.content_hash[:12]}..., the run used {str(rec.get('source_content_hash'))[:12]}...).")
    return np.setdiff1d(np.arange(ds.n), np.asarray(rec.get("excluded_rows", []), np.int64))


def from_flags(flags, source_labels) -> list[dict]:
    """Corrections entries for every ``label`` flag of an audit: relabel to the suggested label.
    ``source_labels``: the source's labels (``given_label`` is the source's, also for a corrected run)."""
    out = []
    for f in flags:
        if f["kind"] == "label" and f.get("suggested_label") is not None:
            out.append({"row": f["row"], "given_label": str(source_labels[f["row"]]),
                        "new_label": f["suggested_label"], "note": f"audit: {f['reason']}"})
    return out


def merge_decisions(existing: list[dict], decisions: list[dict]) -> list[dict]:
    """``existing`` entries with ``decisions`` laid over them (the later decision about a row wins)."""
    by_row = {int(e["row"]): e for e in existing}
    for d in decisions:
        by_row[int(d["row"])] = d
    return [by_row[r] for r in sorted(by_row)]


def prepare_corrected(prep, path):
    """A :class:`snw_core.train.Prepared` of the corrected data set (same settings), its config recording the
    corrections file; raises :class:`CorrectionsError` before anything is written."""
    from .train import Prepared
    ds, record = apply_corrections(prep.ds, path)
    new = Prepared(ds, prep.settings)
    new.extra_config = {"corrections": record}
    return new


def files_for(ds: Dataset, runs_dir=None) -> list[Path]:
    """Corrections files in :func:`corrections_dir` made for ``ds`` (their content_hash column), newest first."""
    d = corrections_dir(runs_dir)
    if not d.is_dir():
        return []
    out = []
    for p in d.glob("*.csv"):
        try:
            meta, _ = read_corrections(p)
        except CorrectionsError:
            continue
        if meta.get("content_hash") == ds.content_hash:
            out.append(p)
    return sorted(out, key=lambda p: p.stat().st_mtime, reverse=True)
