"""What the Audit page shows and saves, without Streamlit: decision options, filtering, paging, and turning the
page's decisions into corrections-file entries (and back).

>>> opts = decision_options(["0", "3", "10"])
>>> opts
['undecided', 'keep', 'exclude', 'relabel to 0', 'relabel to 3', 'relabel to 10']
>>> entry_for(17, "0", "relabel to 10", "")["new_label"], decision_of({"given_label": "0", "new_label": "0"})
('10', 'keep')
"""
from __future__ import annotations

from .corrections import EXCLUDE

__all__ = ["UNDECIDED", "KEEP", "decision_options", "default_decision", "entry_for", "decision_of",
           "filter_flags", "flagged_rows", "KIND_NAMES", "SHORT_NAMES",
           "cached_flags_for", "only_flagged", "add_highlight", "short_path"]

UNDECIDED = "undecided"
KEEP = "keep"
RELABEL = "relabel to "
KIND_NAMES = {"label": "wrong label?", "duplicate": "duplicate", "leak": "leak (val/test copy of a train item)",
              "outlier": "outlier"}
SHORT_NAMES = {"label": "wrong label?", "duplicate": "duplicate", "leak": "leak", "outlier": "outlier"}


def decision_options(label_names) -> list[str]:
    """Every decision the page offers for one item, in order."""
    return [UNDECIDED, KEEP, EXCLUDE] + [RELABEL + str(lab) for lab in label_names]


def default_decision(flag: dict) -> str:
    """What the page pre-selects for a flag without a saved decision: nothing (the user decides)."""
    return UNDECIDED


def entry_for(row: int, given_label: str, decision: str, note: str) -> dict | None:
    """The corrections-file entry of one decision (None for ``undecided``)."""
    if decision == UNDECIDED:
        return None
    if decision == KEEP:
        new = given_label
    elif decision == EXCLUDE:
        new = EXCLUDE
    elif decision.startswith(RELABEL):
        new = decision[len(RELABEL):]
    else:
        raise ValueError(f"unknown decision {decision!r}")
    return {"row": int(row), "given_label": str(given_label), "new_label": new, "note": note}


def decision_of(entry: dict) -> str:
    """The page's decision for a saved corrections-file entry."""
    if entry["new_label"] == EXCLUDE:
        return EXCLUDE
    if entry["new_label"] == entry["given_label"]:
        return KEEP
    return RELABEL + entry["new_label"]


def filter_flags(flags, kinds=None, decided_rows=None, show_decided: bool = True) -> list[dict]:
    """Flags of the chosen kinds (all when None), optionally without the rows that already have a decision;
    the audit's order (highest score first) is kept."""
    out = [f for f in flags if kinds is None or f["kind"] in kinds]
    if not show_decided and decided_rows:
        out = [f for f in out if f["row"] not in decided_rows]
    return out


def flagged_rows(flags, kinds=None) -> dict[int, list[str]]:
    """Source row -> the kinds it was flagged for (for the Gallery filter and the Embeddings highlight)."""
    out: dict[int, list[str]] = {}
    for f in flags:
        if kinds is None or f["kind"] in kinds:
            out.setdefault(int(f["row"]), []).append(f["kind"])
    return out


def cached_flags_for(run, content_hash: str | None = None) -> list[dict] | None:
    """The flags of the run's stored audit (None when the run was not audited yet, or, with ``content_hash``,
    when the audit was of another data set). Never computes an audit: that is the Audit page's job."""
    if run is None:
        return None
    from .audit import cached_audit
    try:
        res = cached_audit(run)
    except OSError:
        return None
    if res is None or (content_hash is not None and res["summary"].get("content_hash") != content_hash):
        return None
    return res["flags"]


def only_flagged(items, flags):
    """The source rows in ``items`` (int array) that have a flag, in their order."""
    import numpy as np
    rows = np.fromiter(flagged_rows(flags), dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    return items[np.isin(items, rows)]


def add_highlight(fig, trace_rows, xy, flags) -> int:
    """Ring the flagged items of an embedding scatter (one more trace, hover = kinds); ``trace_rows`` gets the
    trace's rows so that a selection still maps back. Only items already shown (in ``trace_rows``) are ringed.
    Returns how many were ringed."""
    import numpy as np
    import plotly.graph_objects as go
    shown = set(int(r) for tr in trace_rows for r in tr)
    kinds: dict = {}
    for f in flags:
        i = int(f.get("index", f["row"]))
        if i in shown:
            kinds.setdefault(i, []).append(SHORT_NAMES[f["kind"]])
    idx = np.array(sorted(kinds), dtype=np.int64)
    if idx.size == 0:
        return 0
    xy = np.asarray(xy)
    fig.add_trace(go.Scattergl(x=xy[idx, 0], y=xy[idx, 1], mode="markers", name="flagged by the audit",
                               marker=dict(size=11, color="rgba(0,0,0,0)", line=dict(color="black", width=1.5)),
                               text=[f"row index {i}: {', '.join(kinds[i])}" for i in idx.tolist()],
                               hovertemplate="%{text}<extra>audit</extra>"))
    trace_rows.append(idx)
    return int(idx.size)


def short_path(path) -> str:
    """``path`` relative to the project folder when it lies inside it (shorter on the page), else as it is."""
    from pathlib import Path

    from .fsutil import project_root
    p = Path(path)
    try:
        return str(p.resolve().relative_to(project_root()))
    except ValueError:
        return str(p)
