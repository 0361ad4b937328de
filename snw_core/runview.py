"""What the Train and Runs pages show about runs: live progress, curves, run tables and comparisons (pure).

Inputs are what :class:`snw_core.runs.Run` returns (progress events, history rows, ``summary()`` rows);
outputs are plain values and pandas frames that the pages draw. No Streamlit, no TensorFlow.

>>> p = summarize_progress([{"kind": "phase", "phase": "training", "epochs": 2, "batches": 10},
...                         {"kind": "batch", "epoch": 1, "epochs": 2, "batch": 5, "batches": 10,
...                          "loss": 0.4, "elapsed": 10.0}])
>>> p.phase, p.fraction, p.eta
('training', 0.25, 30.0)
>>> format_delta("escape_rate", -0.021)
'-2.1 pp'
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

import pandas as pd

__all__ = ["Progress", "summarize_progress", "eta_seconds", "batch_curve", "epoch_curve", "loss_overlay",
           "KEY_SETTINGS", "OTHER_SETTINGS", "KEY_METRICS", "BETTER", "METRIC_LABELS", "runs_frame",
           "differing_columns", "compare_metrics", "metric_value", "comparison_table", "verdict", "format_value", "format_delta",
           "format_duration", "format_time", "tail", "SHORT_LABELS", "ENDED_STATES", "takeoff_mark",
           "stretch_mark"]

#: run states after which nothing changes any more
ENDED_STATES = ("done", "stopped", "failed", "failed (interrupted)")
_TRAINING_PHASES = ("training", "validating")
#: events inside training that mark an epoch (the budget started, or grew) without ending the training phase
_MARK_PHASES = ("takeoff", "no_takeoff", "stretch", "stretch_check")


@dataclass(frozen=True)
class Progress:
    """Where a run stands, from its progress events.

    phase: ``starting`` (no event yet: loading data and TensorFlow), ``registration`` (learning the taught pose, before
    the first epoch), ``training``, ``validating`` (end of an
    epoch, validation pairs being scored), ``early_stopping``, ``evaluating``, ``projection``, ``done``,
    ``stopped``. ``fraction`` is the share of the planned training done (0..1); ``eta`` the seconds of training
    left (None when unknown or training is over); ``elapsed`` seconds since fitting began, at the last event.
    """
    phase: str = "starting"
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    epochs_done: int = 0
    fraction: float = 0.0
    elapsed: float = 0.0
    eta: float | None = None
    loss: float | None = None

    @property
    def training(self) -> bool:
        return self.phase in _TRAINING_PHASES


def eta_seconds(elapsed: float, fraction: float) -> float | None:
    """Seconds left if the rest goes as fast as what is done: ``elapsed * (1 - f) / f``; None when f is 0."""
    if not fraction or fraction <= 0 or elapsed is None or not math.isfinite(elapsed):
        return None
    return max(0.0, float(elapsed) * (1.0 - min(fraction, 1.0)) / fraction)


def summarize_progress(events: list[dict]) -> Progress:
    """Fold progress.jsonl events (kinds ``phase``, ``batch``, ``epoch``) into a :class:`Progress`.

    Time left is measured from the first batch event on (``(elapsed - e0) / (f - f0)`` seconds per unit of
    fraction), so the one-off graph compilation before it does not inflate the estimate; with only one
    batch event it is ``elapsed * (1 - f) / f``.
    """
    phase, epoch, epochs, batch, batches, done = None, 0, 0, 0, 0, 0
    fraction, elapsed, loss = 0.0, 0.0, None
    first = None            # (elapsed, fraction) of the first batch event
    last_kind = None
    for ev in events:
        kind = ev.get("kind")
        epochs = int(ev.get("epochs") or epochs)
        if kind == "phase":
            if ev.get("phase") not in _MARK_PHASES:
                phase = ev.get("phase", phase)
            batches = int(ev.get("batches") or batches)
        elif kind == "batch":
            epoch, batch, batches = int(ev["epoch"]), int(ev["batch"]), int(ev.get("batches") or batches)
            loss = _num(ev.get("loss"))
            elapsed = float(ev.get("elapsed", elapsed))
            if epochs and batches:
                fraction = (epoch - 1 + batch / batches) / epochs
                if first is None:
                    first = (elapsed, fraction)
        elif kind == "epoch":
            epoch = done = int(ev["epoch"])
            batch = batches
            elapsed = float(ev.get("elapsed", elapsed))
            if epochs:
                fraction = done / epochs
        else:
            continue
        last_kind = kind
    if phase is None:
        phase = "starting"
    elif phase == "training" and last_kind == "batch" and batches and batch >= batches and done < epoch:
        phase = "validating"
    fraction = min(max(fraction, 0.0), 1.0)
    eta = None
    if phase in _TRAINING_PHASES:
        if first is not None and fraction - first[1] > 1e-9 and elapsed >= first[0]:
            eta = max(0.0, (elapsed - first[0]) / (fraction - first[1]) * (1.0 - fraction))
        else:
            eta = eta_seconds(elapsed, fraction)
    return Progress(phase=phase, epoch=epoch, epochs=epochs, batch=batch, batches=batches, epochs_done=done,
                    fraction=fraction, elapsed=elapsed, eta=eta, loss=loss)


def _num(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


# ------------------------------------------------------------------ curves

def batch_curve(events: list[dict]) -> pd.DataFrame:
    """Running training loss of batch events; ``x`` in epochs, fractional inside an epoch: epoch-1 + batch/batches."""
    rows = [(int(e["epoch"]) - 1 + int(e["batch"]) / int(e["batches"]), _num(e.get("loss")))
            for e in events if e.get("kind") == "batch" and e.get("batches")]
    df = pd.DataFrame(rows, columns=["x", "loss"])
    return df.dropna().reset_index(drop=True)


_EPOCH_COLUMNS = ["epoch", "loss", "val_loss", "pair_accuracy", "val_pair_accuracy", "seconds"]


def epoch_curve(history: list[dict], events: list[dict] | None = None) -> pd.DataFrame:
    """Per-epoch rows (history.csv), or the epoch events of progress.jsonl when history is not written yet."""
    rows = history or [e for e in (events or []) if e.get("kind") == "epoch"]
    df = pd.DataFrame([{k: r.get(k, float("nan")) for k in _EPOCH_COLUMNS} for r in rows], columns=_EPOCH_COLUMNS)
    df = df.astype(float)
    if len(df):
        df["epoch"] = df["epoch"].astype(int)
    return df.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)


def loss_overlay(histories: dict[str, list[dict]]) -> pd.DataFrame:
    """Long frame ``run_id, epoch, series (loss | val_loss), value`` of several runs' histories."""
    parts = []
    for rid, hist in histories.items():
        df = epoch_curve(hist)
        for series in ("loss", "val_loss"):
            parts.append(pd.DataFrame({"run_id": rid, "epoch": df["epoch"], "series": series, "value": df[series]}))
    if not parts:
        return pd.DataFrame(columns=["run_id", "epoch", "series", "value"])
    return pd.concat(parts, ignore_index=True)


# ------------------------------------------------------------------ run tables

#: settings shown for every run
KEY_SETTINGS = ("epochs", "batch_size", "learning_rate", "embedding_dim", "seed")
#: further settings, shown (with "differences only") when they differ between the runs shown
OTHER_SETTINGS = ("twin", "pairing", "normalize", "pairs_per_image", "margin", "lr_schedule",
                  "early_stopping_patience", "plateau_epochs", "stretch_epochs", "work_side", "grid_pool", "augment_shift", "augment", "ema", "register", "split", "k", "threshold_method", "max_escape")
KEY_METRICS = ("good_defect_accuracy", "escape_rate", "overkill_rate", "auroc", "pair_accuracy", "pin_accuracy",
               "drift_held", "train_seconds")
#: which way is better for each metric
BETTER = {"good_defect_accuracy": "higher", "escape_rate": "lower", "overkill_rate": "lower", "auroc": "higher",
          "pair_accuracy": "higher", "pin_accuracy": "higher", "drift_held": "higher", "train_seconds": "lower"}
METRIC_LABELS = {"good_defect_accuracy": "good/defect accuracy", "escape_rate": "escape rate",
                 "overkill_rate": "overkill rate", "auroc": "AUROC", "pair_accuracy": "pair accuracy",
                 "pin_accuracy": "pin accuracy", "drift_held": "camera drift: conditions held (of 9)",
                 "train_seconds": "training time"}
SHORT_LABELS = {"good_defect_accuracy": "good/defect acc."}
_RATES = ("good_defect_accuracy", "escape_rate", "overkill_rate", "pair_accuracy", "pin_accuracy")


def _norm(v):
    """A hashable, comparable form of a setting value (lists -> tuples, NaN/None -> None, 1 == 1.0)."""
    if isinstance(v, list):
        return tuple(_norm(x) for x in v)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return v


def differing_columns(rows: list[dict], columns) -> list[str]:
    """The columns (in the given order) whose values are not all equal across ``rows``."""
    return [c for c in columns if len({_norm(r.get(c)) for r in rows}) > 1]


def runs_frame(summaries: list[dict], diff_only: bool = False) -> pd.DataFrame:
    """The run table: ``run_id, state, preset, <settings>, <metrics>, started, data``, one row per summary.

    Settings: :data:`KEY_SETTINGS`; with ``diff_only``, only those settings (key or other) whose values differ
    between the rows (with fewer than two rows, none). Lists (the split) are shown as text. Beside the
    ``epochs`` setting, ``epochs_run``: the epochs a run actually trained (more than the setting after a
    start-up plateau, fewer after early stopping or a stop; from metrics.json, else from history.csv).
    """
    if diff_only:
        settings = differing_columns(summaries, KEY_SETTINGS + OTHER_SETTINGS)
    else:
        settings = list(KEY_SETTINGS)
    shown = list(settings)
    if "epochs" in shown:
        shown.insert(shown.index("epochs") + 1, "epochs_run")
    elif differing_columns(summaries, ("epochs_run",)):
        shown.append("epochs_run")
    cols = ["run_id", "state", "preset", *shown, *KEY_METRICS, "started", "data"]
    out = []
    for s in summaries:
        row = {c: s.get(c) for c in cols}
        for c in settings:
            if isinstance(row[c], list):
                row[c] = "/".join(f"{x:g}" if isinstance(x, (int, float)) else str(x) for x in row[c])
        out.append(row)
    df = pd.DataFrame(out, columns=cols)
    if "epochs_run" in df:
        df["epochs_run"] = pd.to_numeric(df["epochs_run"], errors="coerce").astype("Int64")
    for c in KEY_METRICS:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def metric_value(metrics: dict, key: str):
    """A key metric from a run's metrics.json: ``drift_held`` is the drift check's count of conditions held."""
    if key == "drift_held":
        return ((metrics or {}).get("drift_check") or {}).get("held")
    return (metrics or {}).get(key)


def verdict(metric: str, delta) -> str | None:
    """``better``, ``worse`` or ``same`` for a change of ``metric`` by ``delta``; None when unknown."""
    d = _num(delta)
    if d is None or metric not in BETTER:
        return None
    if abs(d) < 1e-12:
        return "same"
    return "better" if (d > 0) == (BETTER[metric] == "higher") else "worse"


def compare_metrics(summaries: list[dict], baseline: str, metrics=KEY_METRICS) -> pd.DataFrame:
    """Long frame ``metric, better, run_id, value, delta, verdict``: each run's metric and its change against
    the ``baseline`` run (delta None for the baseline itself or when either value is missing)."""
    by_id = {s["run_id"]: s for s in summaries}
    if baseline not in by_id:
        raise ValueError(f"baseline {baseline!r} is not among the compared runs")
    rows = []
    for m in metrics:
        base = _num(by_id[baseline].get(m))
        for s in summaries:
            v = _num(s.get(m))
            delta = None if s["run_id"] == baseline or v is None or base is None else v - base
            rows.append({"metric": m, "better": BETTER.get(m), "run_id": s["run_id"], "value": v, "delta": delta,
                         "verdict": verdict(m, delta)})
    return pd.DataFrame(rows, columns=["metric", "better", "run_id", "value", "delta", "verdict"])


def comparison_table(long: pd.DataFrame, baseline: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Display form of :func:`compare_metrics`: one row per metric; columns ``metric``, ``better``, then one per
    run (in order; the baseline's header ends in `` (baseline)``) holding its value and, for the other runs,
    the signed change in brackets, e.g. ``75.6 % (+1.5 pp)``. Also returns a same-shaped frame of verdicts
    (``better``/``worse``/``same``/"") for colouring."""
    run_ids = list(dict.fromkeys(long["run_id"]))
    head = {rid: f"{rid} (baseline)" if rid == baseline else rid for rid in run_ids}
    text, marks = [], []
    for m, g in long.groupby("metric", sort=False):
        g = g.set_index("run_id")
        t = {"metric": METRIC_LABELS.get(m, m),
             "better": {"higher": "higher ↑", "lower": "lower ↓"}.get(g["better"].iloc[0], "")}
        k = {"metric": "", "better": ""}
        for rid in run_ids:
            value = format_value(m, g.at[rid, "value"])
            if rid == baseline:
                t[head[rid]], k[head[rid]] = value, ""
            else:
                v = g.at[rid, "verdict"]
                t[head[rid]] = f"{value} ({format_delta(m, g.at[rid, 'delta'])})"
                k[head[rid]] = v if isinstance(v, str) else ""
        text.append(t)
        marks.append(k)
    return pd.DataFrame(text), pd.DataFrame(marks)


# ------------------------------------------------------------------ formatting

def format_value(metric: str, v) -> str:
    v = _num(v)
    if v is None:
        return "–"
    if metric in _RATES:
        return f"{100 * v:.1f} %"
    if metric == "train_seconds":
        return format_duration(v)
    if metric == "drift_held":
        return f"{v:.0f} of 9"
    return f"{v:.3f}"


def format_delta(metric: str, d) -> str:
    """A signed change: percentage points for rates, seconds for times, plain otherwise."""
    d = _num(d)
    if d is None:
        return "–"
    if metric in _RATES:
        return f"{100 * d:+.1f} pp"
    if metric == "train_seconds":
        return f"{d:+.1f} s"
    if metric == "drift_held":
        return f"{d:+.0f}"
    return f"{d:+.3f}"


def format_duration(seconds) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``; ``–`` when unknown."""
    s = _num(seconds)
    if s is None:
        return "–"
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def format_time(iso) -> str:
    """``2026-11-28T15:31:18+00:00`` -> ``2026-11-28 15:31:18 UTC`` (other text unchanged, ``–`` when empty)."""
    if not iso:
        return "–"
    try:
        t = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc)
        return t.strftime("%Y-%m-%d %H:%M:%S UTC")
    return t.strftime("%Y-%m-%d %H:%M:%S")


def tail(text: str, n: int = 40) -> str:
    """The last ``n`` lines of ``text``, carriage-return progress bars collapsed to their last state."""
    lines = [ln.rsplit("\r", 1)[-1] for ln in text.splitlines()]
    return "\n".join(lines[-n:])


def stretch_mark(events) -> tuple[int, str] | None:
    """``(epoch, text)`` for a line on the training curves where the epoch budget grew for a hard surface
    (``stretch`` progress event), or None.

    >>> stretch_mark([{"kind": "phase", "phase": "stretch", "epoch": 6, "extra_epochs": 5}])
    (6, 'budget +5 (hard surface)')
    >>> stretch_mark([{"kind": "phase", "phase": "stretch_check", "epoch": 6, "extra_epochs": 0}]) is None
    True
    """
    for ev in events:
        if ev.get("kind") == "phase" and ev.get("phase") == "stretch":
            return int(ev["epoch"]), f"budget +{int(ev.get('extra_epochs', 0))} (hard surface)"
    return None


def takeoff_mark(events) -> tuple[int, str] | None:
    """``(epoch, text)`` for a line on the training curves where the epoch budget started after a start-up
    plateau (``takeoff`` or ``no_takeoff`` progress event), or None (no plateau, or it ended in epoch 1).

    >>> takeoff_mark([{"kind": "phase", "phase": "takeoff", "epoch": 17}])
    (17, 'take-off')
    >>> takeoff_mark([{"kind": "phase", "phase": "takeoff", "epoch": 1}]) is None
    True
    """
    for ev in events:
        if ev.get("kind") == "phase" and ev.get("phase") in ("takeoff", "no_takeoff") and int(ev.get("epoch", 0)) > 1:
            return int(ev["epoch"]), ("take-off" if ev["phase"] == "takeoff" else "budget starts (no take-off)")
    return None
