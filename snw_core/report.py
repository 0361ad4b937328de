"""A finished run as one self-contained HTML file for management: open it offline, forward it, print it on A4.

    python -m snw_core report RUN_ID --out report.html [--threshold T] [--compare OTHER_RUN_ID]

What it shows, all from the **test** split at one threshold (the run's stored one unless given): good/defect
accuracy, escapes and overkill in plain words and counts, pair accuracy beside it (the seed study's metric),
both confusion matrices, the ROC with the operating point, the per-pin table, thumbnails of the escapes and
overkills, every scalar of ``metrics.json`` (keys this module does not know, such as ``unknown_rate``, are
listed under their own name), an optional comparison with other runs, and provenance (data, content hash,
preset, settings, dates, package versions).

Self-contained: plotly.js is inlined once (about 4.8 MB), images are PNG data URIs, no font or style sheet
is fetched, so the file opens without network. Nothing here imports streamlit or TensorFlow, and numpy and
plotly load only when a report is built (the command line registers ``report`` without them).

>>> html = build_report(RunStore().get("20261128-101500-default-ab12"))        # doctest: +SKIP
>>> write_report(run, "report.html", threshold=0.41)                           # doctest: +SKIP
"""
from __future__ import annotations

import html as _html
import math
import sys
import textwrap
from pathlib import Path

from .runs import RunError, RunStore, now_iso

__all__ = ["ReportError", "build_report", "write_report", "add_cli", "cli", "MAX_THUMBS"]

#: escapes and overkills shown as thumbnails (the most confidently wrong first)
MAX_THUMBS = 24
#: content width in CSS px: A4 (210 mm) minus 2 x 12 mm margins is 703 px at 96 px per inch
PAGE_WIDTH = 700
CONFUSION_MARGIN = dict(l=105, r=8, t=62, b=8)
METRIC_LABELS = {
    "good_defect_accuracy": "good/defect accuracy", "escape_rate": "escape rate", "overkill_rate": "overkill rate",
    "auroc": "AUROC", "threshold": "threshold", "pair_accuracy": "pair accuracy (seed study's metric)",
    "pin_accuracy": "pin-address accuracy", "n_train": "train items", "n_val": "val items", "n_test": "test items",
    "train_seconds": "training time (s)", "epochs_run": "epochs run", "best_epoch": "best epoch",
    "takeoff_epoch": "take-off epoch", "embed_ms_per_image": "embedding time per image (ms, batch)",
    "unknown_rate": "UNKNOWN rate (not recognised as this part)",
}


class ReportError(ValueError):
    """A report cannot be made (no results, bad threshold, bad output path); the message is for the user."""


def _e(x) -> str:
    return _html.escape(str(x), quote=True)


def _is_rate(key: str) -> bool:
    return key.endswith("_rate") or key.endswith("accuracy")


def _fmt_metric(key: str, v) -> str:
    from . import review as R
    if isinstance(v, bool) or v is None:
        return _e(v)
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            return "n/a"
        if _is_rate(key):
            return R.pct(float(v), 2)
        if isinstance(v, int):
            return f"{v:,}"
        return f"{v:.4g}"
    return _e(v)


# ------------------------------------------------------------------ the data behind a report

def _load(run, threshold, dataset):
    from .embed import load_embeddings
    cfg, metrics = run.config(), run.metrics()
    if not metrics:
        raise ReportError(f"Run '{run.id}' has no results yet (state: {run.state()}); a report needs a finished "
                          "run with metrics.json.")
    path = run.file("embeddings.npz")
    if not path.exists():
        raise ReportError(f"Run '{run.id}' has metrics but no stored scores (embeddings.npz), so its errors and "
                          "its ROC cannot be shown; re-evaluate or retrain it.")
    arr = load_embeddings(path)
    if not {"scores", "labels", "split"} <= set(arr):
        raise ReportError(f"The embeddings.npz of run '{run.id}' lacks scores, labels or split.")
    stored = metrics.get("threshold")
    stored = float(stored) if isinstance(stored, (int, float)) and math.isfinite(stored) else None
    if threshold is None:
        if stored is None:
            raise ReportError(f"Run '{run.id}' has no stored threshold; give one with --threshold.")
        threshold = stored
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ReportError(f"The threshold must be a number, got {threshold!r}.") from None
    if not math.isfinite(threshold):
        raise ReportError(f"The threshold must be a finite number, got {threshold}.")
    data_cfg = cfg.get("data", {})
    images, why = None, None
    if dataset is None:
        from .data import DataError, load
        try:
            dataset = load(str(data_cfg.get("source", "")), good_label=str(data_cfg.get("good_label", "0")))
        except DataError as e:
            why = f"the run's data source cannot be loaded here ({e})"
    if dataset is not None:
        if dataset.content_hash != data_cfg.get("content_hash") or dataset.n != arr["labels"].size:
            why = "the data behind the run's source has changed since training, so its images no longer match"
        else:
            images = dataset.images
    return cfg, metrics, arr, stored, threshold, images, why


# ------------------------------------------------------------------ pieces of the page

def _figure_div(fig, width: int, height: int, margin: dict) -> str:
    # fixed margins: plotly's automargin measures text in the browser, and some headless or print renderings
    # measure nothing, which clipped the tick labels
    fig.update_layout(width=width, height=height, autosize=False, paper_bgcolor="white", plot_bgcolor="white",
                      font=dict(family="Helvetica, Arial, sans-serif"), margin=margin)
    return fig.to_html(full_html=False, include_plotlyjs=False,
                       config={"displayModeBar": False, "responsive": False, "staticPlot": False})


def _thumbs_html(images, rows, labels, scores, good, colors, digits, verdicts=None) -> str:
    from .gallery import bordered_thumbnails, png_data_uris
    from .viz import auto_scale, label_name
    if not rows.size:
        return ""
    scale = auto_scale(images.shape[1:], 72)
    uris = png_data_uris(bordered_thumbnails(images[rows], scale, [colors.get(lab, "#cccccc") for lab in labels[rows]]))
    cells = [f'<figure class="thumb"><img src="{u}" alt="{_e(label_name(labels[i], good))}">'
             f"<figcaption>{_e(label_name(labels[i], good))} · "
             f"{_e(verdicts[i]) if verdicts is not None and verdicts[i] else f'{scores[i]:.{digits}f}'} · row {int(i)}"
             "</figcaption></figure>"
             for u, i in zip(uris, rows)]
    return '<div class="thumbs">' + "".join(cells) + "</div>"


def _table_html(headers, rows) -> str:
    """The report's data table: header texts, then each row's ready ``<td>`` cells."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return f'<table class="pins"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _pin_table_html(table, colors) -> str:
    from . import review as R
    rows = []
    for row in table.itertuples(index=False):
        good = row.what == "good"
        caught = f"{row.caught} {'passed' if good else 'detected'}"
        missed = f"{row.missed} {'overkill' if good else 'escaped'}"
        rows.append([f'<td><span class="chip" style="background:{colors.get(row.label, "#cccccc")}"></span>'
                     f"{_e(row.what)}</td>", f"<td>{row.items}</td>",
                     f'<td style="background:{R.rate_color(row.rate)}">{R.pct(row.rate)}</td>',
                     f"<td>{_e(caught)}</td>", f"<td>{_e(missed)}</td>"])
    return _table_html(("pin address", "test items", "rate", "caught", "missed"), rows)


def _drift_table_html(rows) -> str:
    from . import review as R
    cells = []
    for r in rows:
        held = '<b style="color:#1a7f37">yes</b>' if r["held"] else '<b style="color:#b42318">no</b>'
        cells.append([f"<td>{_e(r['change'])}</td>",
                      f'<td style="background:{R.rate_color(r["goods_rate"])}">{_e(r["goods GOOD"])}</td>',
                      f'<td style="background:{R.rate_color(r["defects_rate"])}">{_e(r["defects caught"])}</td>',
                      f"<td>{held}</td>"])
    return _table_html(("change", "goods GOOD", "defects caught", "held"), cells)


def _not_a_part_table_html(rows) -> str:
    cells = []
    for r in rows:
        good = f'<td style="background:#ffd8d3"><b>{r["GOOD"]}</b></td>' if r["GOOD"] else "<td>0</td>"
        cells.append([f"<td>{_e(r['input'])}</td>", f"<td>{'yes' if r['designed on'] else 'no'}</td>", good,
                      f"<td>{r['UNKNOWN']}</td>", f"<td>{r['DEFECT']}</td>"])
    return _table_html(("input", "designed on", "GOOD", "UNKNOWN", "DEFECT"), cells)


def _kv_table(rows, cls="kv") -> str:
    return (f'<table class="{cls}"><tbody>'
            + "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</tbody></table>")


def _metrics_rows(metrics: dict):
    rows = []
    for k, v in metrics.items():
        if isinstance(v, (dict, list)):
            continue
        rows.append((METRIC_LABELS.get(k, k), _fmt_metric(k, v)))
    return rows


def _comparison_html(run, others) -> str:
    from .runview import compare_metrics, comparison_table
    summaries = [run.summary()] + [o.summary() for o in others]
    text, marks = comparison_table(compare_metrics(summaries, run.id), run.id)
    cols = list(text.columns)
    out = ['<table class="compare"><thead><tr>' + "".join(f"<th>{_e(c)}</th>" for c in cols) + "</tr></thead><tbody>"]
    for i in range(len(text)):
        cells = []
        for c in cols:
            mark = marks.iloc[i][c]
            cells.append(f'<td class="{_e(mark)}">{_e(text.iloc[i][c])}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


CSS = f"""
*{{box-sizing:border-box}}
body{{font-family:Helvetica,Arial,sans-serif;color:#1f2328;margin:0;background:#f6f7f9}}
main{{max-width:{PAGE_WIDTH + 48}px;margin:0 auto;padding:24px;background:white}}
h1{{font-size:22px;margin:0 0 4px}} h3{{font-size:14px;margin:14px 0 6px}} h2{{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}}
p,li{{font-size:13.5px;line-height:1.45}} .muted{{color:#57606a;font-size:12.5px}}
.cards{{display:grid;grid-template-columns:repeat(4,1fr);gap:8px;margin:12px 0}}
.card{{border:1px solid #d0d7de;border-radius:6px;padding:8px 10px}}
.card .v{{font-size:22px;font-weight:700}} .card .k{{font-size:12px;color:#57606a}} .card p{{margin:4px 0 0;font-size:12px}}
.card.main{{border-color:#1a7f37}} .card.study{{background:#f6f8fa}}
.row{{display:flex;gap:10px;align-items:flex-start}} .row>div{{flex:1}}
table{{border-collapse:collapse;font-size:12.5px;margin:6px 0}} th,td{{border:1px solid #d0d7de;padding:3px 7px;text-align:left}}
table.kv th{{background:#f6f8fa;font-weight:600;width:40%}} table.kv{{width:100%}}
table.pins td:nth-child(2),table.pins td:nth-child(3){{text-align:right}}
.chip{{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:middle}}
td.better{{background:#e6f4ea;color:#1a7f37;font-weight:600}} td.worse{{background:#fdecea;color:#b42318}}
.thumbs{{display:flex;flex-wrap:wrap;gap:6px}} .thumb{{margin:0;text-align:center}}
.thumb img{{image-rendering:pixelated;display:block}} .thumb figcaption{{font-size:10px;color:#57606a}}
.note{{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px;border-radius:6px;font-size:12.5px}}
.alarm{{background:#ffebe9;border:1px solid #cf222e;color:#82071e;padding:8px 12px;border-radius:6px;font-weight:600}}
section{{break-inside:auto}} .keep{{break-inside:avoid;page-break-inside:avoid}}
@page{{size:A4;margin:12mm}}
@media print{{
  body{{background:white}} main{{max-width:none;padding:0;margin:0}}
  h2{{break-after:avoid;page-break-after:avoid}}
  .card,.thumb,tr,.plotly-graph-div{{break-inside:avoid;page-break-inside:avoid}}
  a{{color:inherit;text-decoration:none}}
}}
"""


# ------------------------------------------------------------------ the report

def build_report(run, threshold: float | None = None, dataset=None, compare=(), threshold_note: str | None = None) -> str:
    """The report of a finished run as one HTML string.

    threshold : the score threshold to report at (default: the run's stored threshold).
    dataset : the run's :class:`~snw_core.data.Dataset`, if already loaded (for the thumbnails); else it is
        loaded from the run's source, and the thumbnails are left out (with the reason) when that fails or the
        data has changed since training.
    compare : further finished runs whose metrics are listed beside this run's (at their stored thresholds).
    threshold_note : how the threshold was chosen, in words (default: stored, or "given").
    Raises :class:`ReportError` for a run without results or a bad threshold.
    """
    import numpy as np
    import plotly.offline

    from . import review as R
    from .viz import label_colors
    cfg, metrics, arr, stored, t, images, why = _load(run, threshold, dataset)
    scores, labels, split = arr["scores"], np.asarray(arr["labels"]).astype(str), np.asarray(arr["split"]).astype(str)
    # items the run's gate rejects whatever the threshold (UNKNOWN: not this part; local or patch evidence) count as
    # rejected, as in metrics.json: their scores move above every real one (metrics.effective_scores)
    unknown = np.asarray(arr["unknown"], bool) if "unknown" in arr else None
    rejected, gate_verdicts = R.gate_rejected(arr)
    if rejected is not None:
        from .metrics import effective_scores
        twin_scores, scores = scores, effective_scores(scores, rejected)
    else:
        twin_scores = scores
    data_cfg, settings, status = cfg.get("data", {}), cfg.get("settings", {}), run.status()
    good = str(data_cfg.get("good_label", "0"))
    lo, hi, step = R.slider_range(twin_scores)
    digits = max(4, len(f"{step:.10f}".rstrip("0").split(".")[1]) + 1)
    op = R.operating_point(scores, labels, split, t, good)
    if threshold_note is None:
        threshold_note = ("the run's stored threshold, chosen on the val split by the trainer "
                          f"({settings.get('threshold_method', 'best_accuracy').replace('_', ' ')})"
                          if stored is not None and abs(t - stored) < 1e-12 else "given for this report")
    colors = label_colors(labels, good)

    pairs = None
    if "embeddings" in arr:
        pairs = R.pair_review(arr["embeddings"], labels, split, seed=int(settings.get("seed", 0)),
                              n_per_image=int(cfg.get("eval_pairs_per_image", 10)))
    pair_acc = pairs["pair_accuracy"] if pairs else metrics.get("pair_accuracy")

    parts = []
    title = f"Inspection model report: run {run.id}"
    parts.append(f"<h1>{_e(title)}</h1>")
    parts.append(f'<p class="muted">Preset <b>{_e(cfg.get("preset", "?"))}</b> · data <code>{_e(data_cfg.get("source", "?"))}'
                 f"</code> · trained {_e(status.get('ended') or status.get('started') or '?')} · report made {_e(now_iso())}</p>")

    from .metrics import run_notes, unusable_note
    alarm = unusable_note({"overkill_rate": op["overkill_rate"], "escape_rate": op["escape_rate"]})
    if alarm:
        parts.append(f'<p class="alarm">{_e(alarm)}</p>')
    # what the pages say about the run itself, whatever the threshold: a weak twin, a short budget, faulty data
    parts.extend(f'<p class="note">{_e(note)}</p>' for note in run_notes(metrics, run.id))

    # ---- headline
    test = split == "test"
    parts.append('<section class="keep"><h2>Headline (test split)</h2>')
    parts.append(f"<p>Every number comes from the <b>{op['n']:,} test items</b>, which took no part in training or in "
                 f"choosing the threshold. An item is judged <b>defective</b> when its score (mean embedding distance "
                 f"to its nearest good training items) is above <b>{t:.{digits}f}</b> ({_e(threshold_note)})"
                 + (", or when the run's gate rejects it whatever the threshold (UNKNOWN: not recognised as this part; "
                    "a local defect; patch evidence)" if gate_verdicts is not None else "") + ".</p>")
    cards = [
        ("main", R.pct(op["accuracy"]), "good/defect accuracy",
         f"{op['detected'] + op['passed']:,} of {op['n']:,} test items judged right"),
        ("", R.pct(op["escape_rate"]), "escapes (defects passed)", R.escape_sentence(op)),
        ("", R.pct(op["overkill_rate"]), "overkill (goods rejected)", R.overkill_sentence(op)),
        ("study", R.pct(pair_acc) if isinstance(pair_acc, (int, float)) else "n/a", "pair accuracy (seed study)",
         (f"{pairs['same_as_same'] + pairs['diff_as_diff']:,} of {pairs['n_pairs']:,} test pairs judged right"
          if pairs else "from metrics.json")),
    ]
    parts.append('<div class="cards">' + "".join(
        f'<div class="card {c}"><div class="v">{_e(v)}</div><div class="k">{_e(k)}</div><p>{_e(s)}</p></div>'
        for c, v, k, s in cards) + "</div>")
    words = [f"Of {op['n_defect']:,} defective test items, <b>{op['escapes']:,} would have been shipped</b> as good "
             f"(escapes, {R.pct(op['escape_rate'])}); of {op['n_good']:,} good items, <b>{op['overkills']:,} would have "
             f"been rejected</b> (overkill, {R.pct(op['overkill_rate'])})."]
    if unknown is not None:
        n_unknown = int((unknown & test).sum())
        words.append(f"{n_unknown:,} of {op['n']:,} test items ({R.pct(n_unknown / max(1, op['n']))}) were judged "
                     "UNKNOWN (not recognised as this part) and rejected whatever the threshold.")
    elif isinstance(metrics.get("unknown_rate"), (int, float)):
        words.append(f"{R.pct(float(metrics['unknown_rate']))} of test items were judged UNKNOWN (not recognised as "
                     "this part).")
    if rejected is not None:
        lone = rejected & test & ~(twin_scores > t)
        if unknown is not None:
            lone &= ~unknown
        n_local = int(lone.sum())
        words.append(f"{n_local:,} test items below the threshold were rejected for a local defect the gate found "
                     "(local or patch evidence).")
    if isinstance(pair_acc, (int, float)):
        words.append(f"Pair accuracy ({R.pct(pair_acc)}) answers another question: are two images of the same class? "
                     "It is the study's metric, shown for comparison; the good/defect accuracy is what the line sees.")
    parts.append("<p>" + " ".join(words) + "</p>")
    if stored is not None and abs(t - stored) >= 1e-12:
        ref = R.operating_point(scores, labels, split, stored, good)
        parts.append(f'<p class="muted">At the run\'s stored threshold {stored:.{digits}f} the same items give '
                     f"good/defect accuracy {R.pct(ref['accuracy'])}, escapes {R.pct(ref['escape_rate'])}, "
                     f"overkill {R.pct(ref['overkill_rate'])}.</p>")
    parts.append("</section>")

    # ---- confusion matrices
    parts.append('<section class="keep"><h2>Two different questions</h2><div class="row">')
    if pairs:
        fig = R.confusion_figure([[pairs["same_as_same"], pairs["same_as_diff"]],
                                  [pairs["diff_as_same"], pairs["diff_as_diff"]]],
                                 ["same class", "different class"], ["judged same", "judged different"],
                                 x_title="judged: same if distance < 0.5", y_title="true pair")
        parts.append(f"<div><p><b>Pair question</b>: same class? {R.pct(pairs['pair_accuracy'])}</p>"
                     f"{_figure_div(fig, PAGE_WIDTH // 2 - 6, 250, CONFUSION_MARGIN)}</div>")
    fig = R.confusion_figure([[op["passed"], op["overkills"]], [op["escapes"], op["detected"]]],
                             ["good item", "defective item"], ["judged good", "judged defective"],
                             x_title="judged: defective if score > threshold", y_title="true item")
    parts.append(f"<div><p><b>Item question</b>: good or defective? {R.pct(op['accuracy'])}</p>"
                 f"{_figure_div(fig, PAGE_WIDTH // 2 - 6, 250, CONFUSION_MARGIN)}</div>")
    parts.append('</div><p class="muted">Pairs: the seed-scheme test pairs (10 same + 10 different per test image), '
                 "built exactly as the trainer built them. Items: top right = overkill, bottom left = escape.</p></section>")

    # ---- ROC and per pin
    parts.append('<section class="keep"><h2>Trade-off between escapes and overkill</h2>')
    try:
        parts.append(_figure_div(R.roc_figure(twin_scores, labels, split, t, good, stored=stored), PAGE_WIDTH, 360,
                                 dict(l=70, r=10, t=20, b=50)))
        parts.append('<p class="muted">Every threshold is one point on this curve (test split). Up = fewer escapes, '
                     "right = more overkill. Red dot: the threshold of this report; hollow ring: the run's stored "
                     "threshold." + (" The curve is the twin's score alone (as AUROC in metrics.json and on the Accuracy "
                     "page); the items the gate rejects whatever the threshold are counted in the numbers above, not "
                     "here." if gate_verdicts is not None else "") + "</p>")
    except ValueError as e:
        parts.append(f'<p class="note">No ROC curve: {_e(e)}</p>')
    parts.append("</section>")
    parts.append("<section><h2>Per pin address</h2>")
    parts.append(_pin_table_html(R.per_pin_table(scores, labels, split, t, good), colors))
    parts.append('<p class="muted">Pins: share of the defective test items caught. Good: share of good items '
                 "passed. Green is high, red is low.</p>")
    loc = metrics.get("localisation")
    if loc:
        parts.append(f"<p><b>Where:</b> {_e(R.where_sentence(loc))}</p>")
    parts.append("</section>")
    check = metrics.get("drift_check")
    if check:
        parts.append('<section class="keep"><h2>When the camera drifts</h2>' + _drift_table_html(R.drift_rows(check))
                     + f'<p class="muted">{_e(R.drift_sentence(check, cfg.get("preset", "")))} The run\'s stored threshold and checks decide, '
                     "whatever threshold this report was made at.</p></section>")
    nap = metrics.get("not_a_part_check")
    if nap:
        ok = nap["good"] == 0 and nap["held_out_good"] == 0
        parts.append('<section class="keep"><h2>Inputs that are not the part</h2>'
                     + f'<p class="{"" if ok else "alarm"}">{_e(R.not_a_part_sentence(nap))}</p>'
                     + _not_a_part_table_html(R.not_a_part_rows(nap)) + "</section>")

    # ---- errors
    parts.append("<section><h2>The errors, image by image</h2>")
    if images is None:
        parts.append(f'<p class="note">Images unavailable: {_e(why)}. The numbers above still hold.</p>')
    else:
        for kind, title_ in (("escape", "Escapes: defective items judged good (lowest score first)"),
                             ("overkill", "Overkills: good items judged defective (highest score first)")):
            rows = R.error_items(scores, labels, split, t, kind, good)
            shown = rows[:MAX_THUMBS]
            more = f" (the first {shown.size} of {rows.size:,})" if rows.size > shown.size else f" ({rows.size:,})"
            parts.append(f"<h3>{_e(title_)}{_e(more)}</h3>")
            parts.append(_thumbs_html(images, shown, labels, scores, good, colors, digits, gate_verdicts)
                         if rows.size else f"<p>No {kind}s on the test split at this threshold.</p>")
        parts.append('<p class="muted">Frame colour = label; caption = label · score (or the gate\'s verdict) · row '
                     "in the data set.</p>")
    parts.append("</section>")

    # ---- comparison
    others = list(compare or ())
    if others:
        parts.append('<section class="keep"><h2>Compared with other runs</h2>')
        parts.append(_comparison_html(run, others))
        parts.append('<p class="muted">Test-split metrics of each run at its own stored threshold (from metrics.json); '
                     "in brackets the change against this run. Green = better, red = worse.</p></section>")

    # ---- all metrics and provenance
    parts.append('<section class="keep"><h2>All metrics of the run (metrics.json, stored threshold)</h2>')
    parts.append(_kv_table(_metrics_rows(metrics)) + "</section>")
    split_counts = {s: int((split == s).sum()) for s in ("train", "val", "test")}
    prov = [("run id", _e(run.id)), ("name", _e(cfg.get("name") or "–")), ("state", _e(run.state())),
            ("preset", _e(cfg.get("preset", "?"))), ("data source", f"<code>{_e(data_cfg.get('source', '?'))}</code>"),
            ("content hash (sha256)", f"<code>{_e(data_cfg.get('content_hash', '?'))}</code>"),
            ("items", f"{int(data_cfg.get('n', labels.size)):,} "
                      f"(train {split_counts['train']:,} / val {split_counts['val']:,} / test {split_counts['test']:,})"),
            ("image size", _e(" x ".join(str(x) for x in data_cfg.get("image_shape", [])) + " px")),
            ("good label", f"<code>{_e(good)}</code>"),
            ("started", _e(status.get("started", "–"))), ("ended", _e(status.get("ended", "–")))]
    prov += [(f"setting: {k}", _e(v)) for k, v in settings.items()]
    prov += [(f"version: {k}", _e(v)) for k, v in (cfg.get("versions") or {}).items()]
    prov.append(("report threshold", f"{t:.{digits}f}"))
    parts.append('<section><h2>Provenance</h2>' + _kv_table(prov) + "</section>")

    body = "\n".join(parts)
    js = plotly.offline.get_plotlyjs()
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_e(title)}</title>"
            f"<style>{CSS}</style><script type=\"text/javascript\">{js}</script></head>"
            f"<body><main>\n{body}\n</main></body></html>\n")


def write_report(run, out, threshold: float | None = None, compare=(), dataset=None) -> Path:
    """Write :func:`build_report` to ``out`` atomically; returns the path."""
    from .fsutil import atomic_write_text
    out = Path(out)
    if out.is_dir():
        raise ReportError(f"--out {out} is a folder; give a file name such as report.html.")
    html = build_report(run, threshold=threshold, compare=compare, dataset=dataset)
    return atomic_write_text(out, html)


# ------------------------------------------------------------------ command line

def add_cli(sub) -> None:
    """Register ``report`` on the command line's sub-parsers."""
    p = sub.add_parser("report", help="one self-contained HTML report of a finished run (opens offline, prints on A4)")
    p.add_argument("run_id")
    p.add_argument("--out", required=True, help="the HTML file to write, e.g. report.html")
    p.add_argument("--threshold", type=float, default=None, help="report at this score threshold (default: the "
                                                                 "run's stored one)")
    p.add_argument("--compare", action="append", default=[], metavar="RUN_ID",
                   help="list this run's metrics beside the report's run (repeatable)")
    p.add_argument("--runs-dir", default=None, help="run store folder (default: runs/ or $SNW_RUNS_DIR)")


def cli(a) -> int:
    """``report`` command: exit 0 and the path on stdout; exit 2 and one paragraph on stderr on bad input."""
    try:
        store = RunStore(a.runs_dir)
        run = store.get(a.run_id)
        others = [store.get(r) for r in a.compare]
        for o in others:
            if not o.metrics():
                raise ReportError(f"Run '{o.id}' (--compare) has no results yet (state: {o.state()}).")
        out = write_report(run, a.out, threshold=a.threshold, compare=others)
    except (ReportError, RunError) as e:
        print("error: " + textwrap.fill(str(e), 100), file=sys.stderr)
        return 2
    print(f"report of {run.id}: {out.stat().st_size / 1e6:.1f} MB", file=sys.stderr)
    print(out)
    return 0
