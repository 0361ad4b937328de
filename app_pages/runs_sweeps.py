"""The Runs page's sweep part: one sweep's trials sorted by a metric, settings against the metric with the best
trial marked, stop / resume, and the page's overlay and delta views for the sweep's trials.

Not a page of its own (app.py does not list it): app_pages/runs.py calls :func:`section`.
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from snw_core import runview as V
from snw_core import sweep as S
from snw_core import sweepview as SV
from snw_core import ui
from snw_core.roles import AccessError
from snw_core.runs import RunError

BEST_COLOR, OTHER_COLOR = "#d62728", "#1f77b4"


def sweep_column(runs_by_id: dict, run_ids) -> list[str]:
    """The sweep id of each run ("" for a run trained on its own)."""
    return [(S.sweep_of(runs_by_id[r].config()) or ("",))[0] for r in run_ids]


def settings_figure(rows: list[dict], keys: list[str], metric: str, best: dict | None) -> go.Figure:
    """One varied setting: the metric against it, the best trial as a red star. More: parallel coordinates of
    the settings and the metric (colour = metric), the best trial's line picked out on the metric axis."""
    have = [r for r in rows if r.get(metric) is not None]
    label = V.METRIC_LABELS.get(metric, metric)
    if len(keys) == 1:
        k = keys[0]
        fig = go.Figure()
        fig.add_scatter(x=[r[k] for r in have], y=[r[metric] for r in have], mode="markers", name="trials",
                        text=[r["run_id"] for r in have], marker=dict(size=10, color=OTHER_COLOR),
                        hovertemplate="%{text}<br>" + k + " %{x}<br>" + label + " %{y}<extra></extra>")
        if best:
            fig.add_scatter(x=[best[k]], y=[best[metric]], mode="markers", name=f"best: trial {best['trial']}",
                            marker=dict(size=18, symbol="star", color=BEST_COLOR))
        fig.update_layout(xaxis_title=k, yaxis_title=label)
        if all(isinstance(r[k], (int, float)) for r in have) and k == "learning_rate":
            fig.update_xaxes(type="log")
    else:
        dims = []
        for k in keys:
            vals = [r[k] for r in have]
            if all(isinstance(v, (int, float)) for v in vals):
                dims.append(dict(label=k, values=vals))
            else:                                     # text values (presets): one tick per value
                cats = sorted({str(v) for v in vals})
                dims.append(dict(label=k, values=[cats.index(str(v)) for v in vals],
                                 tickvals=list(range(len(cats))), ticktext=cats))
        m = dict(label=label, values=[r[metric] for r in have])
        if best:
            eps = max(1e-9, 1e-6 * abs(best[metric]))
            m["constraintrange"] = [best[metric] - eps, best[metric] + eps]
        dims.append(m)
        fig = go.Figure(go.Parcoords(dimensions=dims, line=dict(color=[r[metric] for r in have],
                                                                 colorscale="Viridis", showscale=True)))
    title = f"{label} by setting" + (f" · best: trial {best['trial']} ({best['run_id']})" if best else "")
    fig.update_layout(title=title, height=400, margin=dict(l=50, r=50, t=90 if len(keys) > 1 else 60, b=30))
    return fig


def _controls(sw: S.Sweep) -> None:
    root = ui.store().root
    state = sw.state()
    rows = SV.trial_rows(sw)
    running = [r for r in rows if r["state"] in ("running", "starting")]
    unfinished = any(r["state"] != "done" for r in rows)
    if (state == "running" or running or unfinished) and not ui.engineer_only("Stopping or resuming a sweep"):
        return
    if state == "running" or running:
        if sw.stop_requested():
            st.info("Stop requested: every trial ends within one batch.", icon=":material/hourglass_top:")
        elif st.button("Stop sweep", key="runs_sweep_stop", icon=":material/stop_circle:",
                       help="Every running trial ends `stopped` within one batch; no further trial starts."):
            try:
                S.stop_sweep(sw.id, root, actor=ui.actor())
            except (RunError, AccessError) as e:
                st.error(str(e))
            st.rerun()
    elif unfinished:
        missing = sum(r["state"] != "done" for r in rows)
        st.caption(f"{missing} trial(s) are not done. `python -m snw_core sweep --resume {sw.id}` runs them, "
                   "or press Resume.")
        if st.button("Resume sweep", key="runs_sweep_resume", icon=":material/replay:",
                     help="Runs the trials that are not done (never started, stopped, failed or interrupted)."):
            try:
                S.resume_in_background(sw.id, root, actor=ui.actor())
                st.toast(f"Resumed sweep {sw.id}", icon=":material/replay:")
            except (RunError, AccessError) as e:
                st.error(str(e))
            st.rerun()


def section(runs_by_id: dict, summaries: list[dict], compare) -> None:
    """The sweep picker and the chosen sweep's views; ``compare(runs_by_id, summaries, prefix)`` is the page's
    overlay and delta view."""
    sweeps = {sw.id: sw for sw in S.list_sweeps(ui.store().root)}
    if not sweeps:
        return
    st.divider()
    st.subheader("Sweeps")
    pick = st.selectbox("Sweep", list(sweeps), key="runs_sweep_pick", format_func=lambda i: SV.sweep_line(sweeps[i]),
                        help="Runs started together by `python -m snw_core sweep` or the Train page's sweep.")
    sw = sweeps[pick]
    spec = sw.spec()
    keys = SV.varied_keys(spec)
    d = spec.get("data") or {}
    st.caption(f"Data `{d.get('source', '?')}` · preset `{spec.get('preset', '?')}` · varies "
               f"{', '.join(f'`{k}`' for k in keys) or 'nothing'} · {len(spec.get('trials', []))} trials · "
               f"created {V.format_time(spec.get('created'))}")
    _controls(sw)
    metric = st.selectbox("Sort by", list(V.KEY_METRICS), key="runs_sweep_metric",
                          format_func=lambda m: f"{V.METRIC_LABELS[m]} ({V.BETTER[m]} is better)")
    rows = SV.trial_rows(sw, metric)
    best = SV.best_trial(rows, metric)
    table = pd.DataFrame(rows)
    cfg = {"trial": st.column_config.NumberColumn("trial", pinned=True),
           **{m: st.column_config.NumberColumn(V.METRIC_LABELS[m], format="percent" if m in V._RATES else
                                               "%d" if m == "drift_held" else "%.3f")
              for m in V.KEY_METRICS if m != "train_seconds"}}
    st.dataframe(table, key="runs_sweep_table", hide_index=True, column_config=cfg, placeholder="–")
    if best:
        st.markdown(f"Best by {V.METRIC_LABELS[metric]}: **trial {best['trial']}** (`{best['run_id']}`, "
                    + ", ".join(f"{k} `{best[k]}`" for k in keys) + f"): {V.format_value(metric, best[metric])}")
    if keys and any(r.get(metric) is not None for r in rows):
        st.plotly_chart(settings_figure(rows, keys, metric, best), key="runs_sweep_chart")
    elif not any(r.get(metric) is not None for r in rows):
        st.info("No trial of this sweep has finished yet.")
    done = [r["run_id"] for r in rows if r["run_id"] in runs_by_id and r.get(metric) is not None]
    if len(done) >= 2 and st.toggle("Overlay and deltas of its trials (baseline: the best)", key="runs_sweep_compare"):
        by = {s["run_id"]: s for s in summaries}
        compare(runs_by_id, [by[r] for r in done if r in by], prefix="runs_sweep")
