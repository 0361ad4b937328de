"""What the pages show of sweeps: the trials of a sweep as rows sorted by a metric, the best trial, the settings
that vary, and the grid the Train page's form builds. Pure Python and pandas (no streamlit, no Ray).

>>> rows = trial_rows(find_sweep("20261130-101500-sweep-ab12"), "good_defect_accuracy")   # doctest: +SKIP
>>> best_trial(rows, "good_defect_accuracy")["run_id"]                                      # doctest: +SKIP
"""
from __future__ import annotations

from .runview import BETTER, KEY_METRICS, _num, metric_value
from .sweep import Sweep, _trial_state, trial_run_id

__all__ = ["varied_keys", "trial_rows", "sort_rows", "best_trial", "sweep_line", "grid_items"]


def varied_keys(spec: dict) -> list[str]:
    """The settings a sweep varies (grid keys, random keys, and the seed when repeats vary it), in order."""
    keys = list(spec.get("grid") or {}) + list(spec.get("random") or {})
    if int(spec.get("trials_per_point") or 1) > 1 and not spec.get("random") and "seed" not in keys:
        keys.append("seed")              # repeats of a grid point differ in their seed
    return keys


def trial_rows(sw: Sweep, metric: str = "good_defect_accuracy") -> list[dict]:
    """One row per planned trial: ``trial, run_id, state``, the varied settings, then the key metrics;
    sorted best first by ``metric`` (trials without it last, in trial order)."""
    spec = sw.spec()
    keys = varied_keys(spec)
    rows = []
    for t in spec.get("trials", []):
        i = t["trial"]
        rid = trial_run_id(sw.id, i)
        state = _trial_state(sw, i)
        settings = dict(t["overrides"], preset=t["preset"])
        row = {"trial": i, "run_id": rid, "state": state}
        for k in keys:
            row[k] = settings.get(k)
        m = sw.store.get(rid).metrics() if state != "not started" else {}
        for k in KEY_METRICS:
            row[k] = _num(metric_value(m, k))
        rows.append(row)
    return sort_rows(rows, metric)


def sort_rows(rows: list[dict], metric: str) -> list[dict]:
    """Best first by ``metric`` (its better direction from :data:`runview.BETTER`), missing values last.

    >>> [r["t"] for r in sort_rows([{"t": 0, "escape_rate": 0.2}, {"t": 1, "escape_rate": None},
    ...                              {"t": 2, "escape_rate": 0.1}], "escape_rate")]
    [2, 0, 1]
    """
    sign = -1.0 if BETTER.get(metric, "higher") == "higher" else 1.0
    have = [r for r in rows if _num(r.get(metric)) is not None]
    missing = [r for r in rows if _num(r.get(metric)) is None]
    return sorted(have, key=lambda r: (sign * r[metric], r.get("trial", 0))) + missing


def best_trial(rows: list[dict], metric: str) -> dict | None:
    """The best finished (``done``) trial by ``metric``, or None when none has it."""
    done = [r for r in rows if r.get("state") == "done" and _num(r.get(metric)) is not None]
    return sort_rows(done, metric)[0] if done else None


def sweep_line(sw: Sweep) -> str:
    """``<id> · <state> · 3/8 done`` for a picker."""
    spec = sw.spec()
    states = [_trial_state(sw, t["trial"]) for t in spec.get("trials", [])]
    return f"{sw.id} · {sw.state()} · {states.count('done')}/{len(states)} done"


def grid_items(values: dict[str, str]) -> list[str]:
    """The form's grid boxes (setting -> "v1, v2" text) as ``--grid`` items; empty boxes are left out.

    >>> grid_items({"learning_rate": "0.001, 0.002", "margin": " "})
    ['learning_rate=0.001,0.002']
    """
    out = []
    for k, text in values.items():
        vals = [v.strip() for v in str(text or "").split(",") if v.strip()]
        if vals:
            out.append(f"{k}={','.join(vals)}")
    return out
