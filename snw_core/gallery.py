"""Pure logic behind the Gallery and Pairs pages: filtering, paging, thumbnails, pair sampling, pair judgement.

No streamlit here; plotly is imported lazily by the figure helpers.

>>> labels = np.array(["0", "3", "0", "12", "3"])
>>> filter_items(labels, show="defect").tolist()
[1, 3, 4]
>>> page_items(np.arange(10), page=2, page_size=4)
(array([4, 5, 6, 7]), 2, 3)
"""
from __future__ import annotations

import html

import numpy as np

from .data import sort_labels
from .metrics import PAIR_CUTOFF
from .pairs import PAIR_DIFFERENT, PAIR_SAME, make_pairs
from .splits import SPLITS
from .viz import GOOD_COLOR, label_colors, label_name, upscale

__all__ = ["SHOW_ALL", "SHOW_GOOD", "SHOW_DEFECT", "show_options", "show_name", "filter_items", "page_count",
           "page_items", "split_counts", "label_split_table", "label_bars_html", "bordered_thumbnails",
           "png_data_uris", "pair_image",
           "seed_scheme_pairs", "draw_batch", "in_batch_pairs", "pair_distances", "judge_pairs",
           "pair_summary", "PAIR_SHOW", "filter_pairs", "label_bar_figure", "distance_histogram"]

SHOW_ALL, SHOW_GOOD, SHOW_DEFECT = "all", "good", "defect"
SPLIT_ALL = "all"


# --------------------------------------------------------------------------- gallery: filter and paging

def show_options(labels, good_label: str = "0") -> list[str]:
    """The gallery's label filter choices: all, good, every defect, then each pin address (natural order)."""
    pins = [lab for lab in sort_labels(labels, good_label) if lab != good_label]
    return [SHOW_ALL, SHOW_GOOD, SHOW_DEFECT] + pins


def show_name(option: str, good_label: str = "0") -> str:
    """Human name of a :func:`show_options` entry."""
    return {SHOW_ALL: "all items", SHOW_GOOD: f"good only (label {good_label})",
            SHOW_DEFECT: "all defects"}.get(option, f"defects at pin {option}")


def filter_items(labels, good_label: str = "0", show: str = SHOW_ALL, split=None, split_filter: str = SPLIT_ALL):
    """Row indices (int64, ascending) of the items that pass the label and split filters.

    labels : str array, shape (n,)
    show : ``"all"``, ``"good"``, ``"defect"`` or one label (a pin address; the good label also works)
    split : str array, shape (n,), or None (then ``split_filter`` must be ``"all"``)
    split_filter : ``"all"`` or one of ``train``, ``val``, ``test``
    """
    labels = np.asarray(labels).astype(str)
    if show == SHOW_ALL:
        keep = np.ones(labels.shape[0], bool)
    elif show == SHOW_GOOD:
        keep = labels == good_label
    elif show == SHOW_DEFECT:
        keep = labels != good_label
    else:
        keep = labels == str(show)
    if split_filter != SPLIT_ALL:
        if split_filter not in SPLITS:
            raise ValueError(f"split_filter must be 'all' or one of {', '.join(SPLITS)}; got {split_filter!r}")
        if split is None:
            raise ValueError("a split filter needs the split array")
        split = np.asarray(split).astype(str)
        if split.shape != labels.shape:
            raise ValueError(f"split has shape {split.shape}, labels {labels.shape}")
        keep &= split == split_filter
    return np.flatnonzero(keep).astype(np.int64)


def page_count(n: int, page_size: int) -> int:
    """Number of pages for ``n`` items (at least 1, so an empty result still has page 1)."""
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size}")
    return max(1, -(-int(n) // int(page_size)))


def page_items(indices, page: int, page_size: int):
    """The items on one page (1-based; clamped into range) -> (items, page, n_pages)."""
    indices = np.asarray(indices)
    n_pages = page_count(indices.shape[0], page_size)
    page = min(max(1, int(page)), n_pages)
    start = (page - 1) * page_size
    return indices[start:start + page_size], page, n_pages


def split_counts(split) -> dict[str, int]:
    """Items per split, in the order train, val, test."""
    split = np.asarray(split).astype(str)
    return {s: int((split == s).sum()) for s in SPLITS}


def label_split_table(labels, split=None, good_label: str = "0") -> list[dict]:
    """One row per label (good first, pins in natural order): label, name, train, val, test, total; without a
    split (``None``) only label, name and total."""
    labels = np.asarray(labels).astype(str)
    split = None if split is None else np.asarray(split).astype(str)
    rows = []
    for lab in sort_labels(labels, good_label):
        m = labels == lab
        row = {"label": lab, "name": label_name(lab, good_label)}
        if split is not None:
            row.update({s: int((m & (split == s)).sum()) for s in SPLITS})
        row["total"] = int(m.sum())
        rows.append(row)
    return rows


def label_bars_html(rows: list[dict], colors: dict[str, str]) -> str:
    """The label distribution as an HTML table with a bar per label (length = items, colour = the label's
    colour on every page) beside its counts per split; ``rows`` as from :func:`label_split_table` (split
    columns optional). The longest bar takes 80% of its cell, leaving room for the count.

    The Gallery's first view shows this instead of a plotly chart: plotly.js (4.7 MB) costs the first page
    ~1.3 s of browser time on two cores; the interactive chart is one tab away. Labels are escaped (they come
    from the user's data).

    >>> out = label_bars_html([{"label": "0", "name": "good", "train": 6, "val": 2, "test": 2, "total": 10},
    ...                        {"label": "<b>", "name": "pin <b>", "train": 3, "val": 1, "test": 1, "total": 5}],
    ...                       {"0": "#8c8c8c", "<b>": "#1f77b4"})
    >>> "width:80.0%" in out and "width:40.0%" in out and "&lt;b&gt;" in out and "<b>" not in out
    True
    """
    if not rows:
        return ""
    splits = [k for k in rows[0] if k in SPLITS]
    top = max(max(int(r["total"]) for r in rows), 1)
    th = 'style="text-align:{};padding:2px 8px;border-bottom:1px solid #ddd;font-weight:600"'
    td = 'style="text-align:{};padding:1px 8px"'
    head = ("<tr>" + f"<th {th.format('left')}>label</th><th {th.format('left')}>meaning</th>"
            f"<th {th.format('left')}>items (all splits)</th>"
            + "".join(f"<th {th.format('right')}>{html.escape(s)}</th>" for s in splits) + "</tr>")
    body = []
    for r in rows:
        lab, n = str(r["label"]), int(r["total"])
        bar = (f'<div style="display:flex;align-items:center;gap:6px">'
               f'<div style="width:{80 * n / top:.1f}%;min-width:1px;height:0.85em;'
               f'background:{colors.get(lab, GOOD_COLOR)};border-radius:2px"></div><span>{n:,}</span></div>')
        body.append("<tr>" + f"<td {td.format('left')}>{html.escape(lab)}</td>"
                    f"<td {td.format('left')}>{html.escape(str(r['name']))}</td>"
                    f'<td style="width:50%;padding:1px 8px">{bar}</td>'
                    + "".join(f"<td {td.format('right')}>{int(r[s]):,}</td>" for s in splits) + "</tr>")
    return ('<table style="border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums">'
            f"<thead>{head}</thead><tbody>{''.join(body)}</tbody></table>")


# --------------------------------------------------------------------------- thumbnails

def _rgb(c: str) -> np.ndarray:
    c = c.lstrip("#")
    return np.array([int(c[i:i + 2], 16) for i in (0, 2, 4)], np.uint8)


def bordered_thumbnails(images, scale: int, colors=None, border: int = 3) -> np.ndarray:
    """Pixel-exact enlargements with an optional coloured frame.

    images : uint8 array, shape (n, h, w)
    colors : n colours ('#rrggbb') or None (no frame)
    Returns uint8 (n, h*scale + 2*border, w*scale + 2*border, 3) (no frame: border 0).
    """
    images = np.asarray(images, np.uint8)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (n, h, w), got {images.shape}")
    scale = max(1, int(scale))
    n, h, w = images.shape
    b = int(border) if colors is not None else 0
    out = np.empty((n, h * scale + 2 * b, w * scale + 2 * b, 3), np.uint8)
    if colors is not None:
        if len(colors) != n:
            raise ValueError(f"{len(colors)} colours for {n} images")
        out[:] = np.stack([_rgb(c) for c in colors])[:, None, None, :] if n else 0
    big = np.repeat(np.repeat(images, scale, axis=1), scale, axis=2)
    out[:, b:b + h * scale, b:b + w * scale, :] = big[..., None]
    return out


def png_data_uris(images) -> list[str]:
    """Each uint8 image (h, w) or (h, w, 3) as a ``data:image/png;base64,...`` URI: lossless, so pixel-exact.

    Given to ``st.image`` as strings they travel inside the page message: no re-encoding on the server and no
    extra HTTP request per thumbnail in the browser (48 thumbnails cost ~0.1 s less per page switch).
    """
    import base64
    import io

    from PIL import Image
    out = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(img, np.uint8)).save(buf, format="PNG", compress_level=1)
        out.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"))
    return out


def pair_image(img_a, img_b, scale: int, colors=("#8c8c8c", "#8c8c8c"), border: int = 3, gap: int = 8,
               outline=None, outline_width: int = 4) -> np.ndarray:
    """Two images side by side, each framed in its label colour, optionally outlined (e.g. green/red).

    img_a, img_b : uint8 arrays, shape (h, w). Returns one uint8 RGB image.
    """
    a, b = bordered_thumbnails(np.stack([img_a, img_b]), scale, list(colors), border)
    h, w = a.shape[:2]
    o = int(outline_width) if outline is not None else 0
    out = np.full((h + 2 * o, 2 * w + gap + 2 * o, 3), 255, np.uint8)
    if outline is not None:
        out[:] = _rgb(outline)
        out[o:o + h, o + w:o + w + gap] = 255
    out[o:o + h, o:o + w] = a
    out[o:o + h, o + w + gap:o + 2 * w + gap] = b
    return out


# --------------------------------------------------------------------------- pairs

def seed_scheme_pairs(labels, items, n_per_image: int, seed: int):
    """The seed preset's training pairs over the given items, as row indices of the whole data set.

    labels : str array of the whole data set, shape (n,)
    items : int array, the row indices of one split (e.g. the train split)
    Returns ``(idx_a, idx_b, y)`` exactly as :func:`snw_core.pairs.make_pairs` builds them for the trainer
    (``make_pairs(labels[items], n_per_image, seed)``), mapped back to data-set rows.
    """
    labels = np.asarray(labels).astype(str)
    items = np.asarray(items, np.int64)
    a, b, y = make_pairs(labels[items], n_per_image, seed=seed)
    return items[a], items[b], y


def draw_batch(labels, items, batch_size: int, seed: int) -> np.ndarray:
    """One batch of the in-batch scheme, drawn as training draws it: class-balanced, K images of every label.

    labels : labels of the whole data set; items : the rows to draw from (a split).
    K = ``sampling.per_class(batch_size, labels in items)``, so the batch holds ``K * n_labels`` rows (about
    ``batch_size``). On the train split with the run's seed this is exactly training's first batch
    (:func:`snw_core.sampling.balanced_sequence` draws from the same generator). Returns data-set rows.
    """
    from .sampling import balanced_batch_indices

    items = np.asarray(items, np.int64)
    if not 2 <= batch_size:
        raise ValueError(f"batch_size must be >= 2, got {batch_size}")
    if items.size < 2:
        raise ValueError(f"a batch needs at least 2 items; this split has {items.size}")
    local = balanced_batch_indices(np.asarray(labels).astype(str)[items], int(batch_size), 1,
                                   np.random.default_rng(seed))[0]
    return items[local]


def in_batch_pairs(labels, batch, seed: int = 0, shuffle: bool = True):
    """Every pair of two different items inside one batch, as the in-batch loss uses them.

    labels : str array of the whole data set; batch : row indices of the batch's items.
    Returns ``(idx_a, idx_b, y)`` over data-set rows: ``b * (b - 1) / 2`` pairs for a batch of b items,
    y = :data:`PAIR_SAME` for same label, :data:`PAIR_DIFFERENT` otherwise; shuffled (seeded) for display.
    """
    labels = np.asarray(labels).astype(str)
    batch = np.asarray(batch, np.int64)
    i, j = np.triu_indices(batch.size, k=1)
    a, b = batch[i], batch[j]
    y = np.where(labels[a] == labels[b], PAIR_SAME, PAIR_DIFFERENT).astype(np.int8)
    if shuffle:
        p = np.random.default_rng(seed).permutation(y.size)
        a, b, y = a[p], b[p], y[p]
    return a, b, y


def pair_distances(embeddings, idx_a, idx_b) -> np.ndarray:
    """Euclidean distance between the embeddings of each pair -> float64 (n_pairs,)."""
    e = np.asarray(embeddings, np.float64)
    return np.linalg.norm(e[np.asarray(idx_a)] - e[np.asarray(idx_b)], axis=1)


def judge_pairs(distances, y, cutoff: float = PAIR_CUTOFF) -> np.ndarray:
    """True where the model got the pair right: "same" when d < cutoff (the seed metric)."""
    d = np.asarray(distances, np.float64)
    same = d < cutoff
    return same == (np.asarray(y) == PAIR_SAME)


def pair_summary(y, correct=None) -> dict:
    """Counts of a set of pairs, and with ``correct`` (from :func:`judge_pairs`) the share judged right:
    overall (the pair accuracy), among positives and among negatives (None where there are none)."""
    y = np.asarray(y)
    pos = y == PAIR_SAME
    out = {"n": int(y.size), "n_positive": int(pos.sum()), "n_negative": int((~pos).sum())}
    if correct is not None:
        c = np.asarray(correct, bool)
        if c.shape != y.shape:
            raise ValueError(f"correct has shape {c.shape}, y {y.shape}")
        mean = lambda m: float(c[m].mean()) if m.any() else None  # noqa: E731
        out.update(accuracy=mean(np.ones(y.shape, bool)), positive_accuracy=mean(pos), negative_accuracy=mean(~pos))
    return out


#: the pair filters of the Pairs page; "right"/"wrong" need distances
PAIR_SHOW = ("all", "positive", "negative", "wrong", "right")


def filter_pairs(y, correct=None, show: str = "all") -> np.ndarray:
    """Positions (into the pair arrays) of the pairs that pass the filter ``show`` (one of :data:`PAIR_SHOW`)."""
    y = np.asarray(y)
    if show == "all":
        keep = np.ones(y.shape[0], bool)
    elif show == "positive":
        keep = y == PAIR_SAME
    elif show == "negative":
        keep = y == PAIR_DIFFERENT
    elif show in ("wrong", "right"):
        if correct is None:
            raise ValueError(f"the filter {show!r} needs distances from a trained run")
        keep = ~np.asarray(correct, bool) if show == "wrong" else np.asarray(correct, bool)
    else:
        raise ValueError(f"show must be one of {', '.join(PAIR_SHOW)}; got {show!r}")
    return np.flatnonzero(keep).astype(np.int64)


# --------------------------------------------------------------------------- figures (plotly, lazy)

def label_bar_figure(counts: dict, good_label: str = "0", split_label: str | None = None, height: int = 320):
    """Bar chart of items per label: good first, pins in natural order, colours from viz.label_colors."""
    import plotly.graph_objects as go

    order = sort_labels(counts.keys(), good_label)
    colors = label_colors(order, good_label)
    ticks = [f"good ({lab})" if lab == good_label else lab for lab in order]
    ys = [int(counts[lab]) for lab in order]
    fig = go.Figure(go.Bar(x=ticks, y=ys, marker_color=[colors[lab] for lab in order], text=ys,
                           textposition="outside", cliponaxis=False,
                           hovertemplate="%{x}: %{y} items<extra></extra>"))
    title = "Items per label" + (f" ({split_label})" if split_label else "")
    fig.update_layout(title=title, xaxis_title="pin address", yaxis_title="items", showlegend=False,
                      margin=dict(l=10, r=10, t=40, b=10), height=height)
    fig.update_xaxes(type="category")
    return fig


def distance_histogram(distances, y, cutoff: float = PAIR_CUTOFF, nbins: int = 60):
    """Overlaid histograms of pair distances, positives vs negatives, with the cutoff as a dashed line.

    Each histogram is normalised to percent of its own kind, so that the shapes compare even when one kind
    outnumbers the other (in-batch pairs are mostly negatives); hover shows the pair counts.
    """
    import plotly.graph_objects as go

    d = np.asarray(distances, np.float64)
    y = np.asarray(y)
    hi = float(max(d.max() if d.size else 1.0, cutoff * 2))
    xbins = dict(start=0.0, end=hi * 1.0001, size=hi / nbins)
    fig = go.Figure()
    for kind, name, color in ((PAIR_SAME, "positive (same label, 0)", "#1f77b4"),
                              (PAIR_DIFFERENT, "negative (different label, 1)", "#ff7f0e")):
        x = d[y == kind]
        fig.add_trace(go.Histogram(x=x, name=f"{name}: {x.size:,} pairs", marker_color=color, opacity=0.6,
                                   xbins=xbins, histnorm="percent",
                                   hovertemplate="d %{x}: %{y:.1f}% of the " + name.split(" ")[0] + "s<extra></extra>"))
    fig.add_vline(x=cutoff, line_dash="dash", line_color="black",
                  annotation_text=f"cutoff {cutoff:g}: same below", annotation_position="top right")
    fig.update_layout(barmode="overlay", xaxis_title="embedding distance (Euclidean)",
                      yaxis_title="share of pairs of its kind (%)",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), height=320,
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig
