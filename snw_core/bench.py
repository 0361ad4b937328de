"""Side-by-side benchmark of training presets on the same data, split and seed, in one process.

``python -m snw_core bench [--data SOURCE] [--presets seed,default] [--json FILE]`` trains every preset into
the run store (runs named ``bench-<preset>``), then prints one table and optionally writes its rows as a
JSON list. Each row holds (the keys are a contract):

========================== ==========================================================================
``preset``                 the preset name
``epochs``                 epochs actually run (early stopping may end a run before its ``epochs``)
``train_seconds``          wall time of fitting (metrics.json ``train_seconds``)
``pair_accuracy``          seed-scheme test pairs, "same" when the distance < 0.5
``good_defect_accuracy``   test items, at the threshold chosen on val
``escape_rate``            defective test items judged good / defective test items
``overkill_rate``          good test items judged defective / good test items
``auroc``                  area under the ROC of the good/defect score on test
``pin_accuracy``           defective test items whose pin address is guessed right
``embed_ms_single``        one image judged alone: embedding + k-NN score (median of repeated calls)
``embed_ms_per_image_batch`` all items embedded and scored in one call, per image
``time_ratio``             ``train_seconds`` / the first preset's ``train_seconds``
========================== ==========================================================================

Extra keys: ``time_to_seed_best_val_loss`` (seconds into training when the preset's per-epoch val loss
first reached the best val loss of the ``seed`` preset, or of the first preset when ``seed`` is not
benchmarked; ``None`` if never), ``reference_best_val_loss``, ``best_val_loss``, ``best_epoch``,
``judge_ms_single`` (the dashboard's full judgement of one image: score, verdict, pin guess, nearest
references), ``litert_ms_single`` (one image embedded by the same model converted to LiteRT, as the line
bundle runs it, one thread, plus the k-NN score; ``None`` with ``litert_error`` if the conversion failed),
``takeoff_epoch``, ``stretch_epochs`` (the epochs the budget grew by halfway for a hard surface, 0; ``None``
where no check was made), ``run_id``, ``data``, ``n_items``, ``image_shape``, ``seed``, ``cores``;
``litert_judge_ms_single`` (LiteRT + score + the not-a-part check and heat map, as the bundle judges);
``not_a_part`` (per kind of :mod:`snw_core.notapart`, seed 1: counts judged GOOD / UNKNOWN / DEFECT),
``not_a_part_good`` / ``_unknown`` / ``_defect`` (shares of all of them; GOOD must be 0), ``not_a_part_held_out``
and ``not_a_part_held_out_good`` (the same for :data:`snw_core.notapart.HELD_OUT_KINDS`, kinds the gate was not
designed on; without the layout kinds where registration found no fixed layout) and the test split's
``unknown_rate``, ``unknown_rate_good``, ``unknown_rate_defect``; ``localisation`` (of the defective test items the
run catches, the share whose pixel of the strongest evidence lies in the defect's cell, 2 px tolerance;
:mod:`snw_core.localisation`; None where the data does not say where its cells are) and ``localisation_caught``.

Timings depend on the machine and on whatever else runs on it; the table prints the core count.

``--seeds 0,1,2`` (:func:`run_bench_seeds`) repeats the whole benchmark once per seed (split, pairs, weights) and
ends with one table per preset over the seeds: the mean, the worst and the best of each number, and on how many
seeds each target of the default data held. One seed can flatter a recipe or sink it (on the strong real-photo
texture the same preset gave 87.1-91.4 %); the JSON then lists every seed's rows, each with its ``seed``.

>>> rows = run_bench("default", ["seed", "default"], json_path="bench.json")     # doctest: +SKIP
"""
from __future__ import annotations

import json
import math
import os
import platform
import sys
import time

import numpy as np

__all__ = ["run_bench", "run_bench_seeds", "format_seeds", "parse_seeds", "bench_row", "time_to_reach", "format_table",
           "text_table", "format_not_a_part", "held_out_kinds", "not_a_part_row", "format_localisation", "machine",
           "ROW_KEYS"]

#: the keys every row has, in table order (the JSON contract)
ROW_KEYS = ("preset", "epochs", "train_seconds", "pair_accuracy", "good_defect_accuracy", "escape_rate",
            "overkill_rate", "auroc", "pin_accuracy", "embed_ms_single", "embed_ms_per_image_batch", "time_ratio")
#: single-image timing: this many calls after warm-up, median reported
SINGLE_CALLS = 50
_WARMUP_CALLS = 5


def machine() -> dict:
    """Where the benchmark ran: usable cores, CPU model, OS, Python."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:      # not Linux
        cores = os.cpu_count() or 1
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cores": cores, "cpu": cpu, "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}


def time_to_reach(history: list[dict], target: float, elapsed: list[float] | None = None):
    """Seconds into training when ``val_loss`` first reached ``target`` (``<=``), else ``None``.

    history : rows of history.csv (``epoch``, ``val_loss``, ``seconds`` per epoch)
    elapsed : optional seconds since the start of training at the end of each epoch (progress.jsonl);
        when missing, the per-epoch ``seconds`` are summed.

    >>> h = [{"epoch": 1, "val_loss": 0.3, "seconds": 2.0}, {"epoch": 2, "val_loss": 0.1, "seconds": 1.5}]
    >>> time_to_reach(h, 0.2), time_to_reach(h, 0.05)
    (3.5, None)
    """
    if target is None or not np.isfinite(target):
        return None
    total = 0.0
    for i, row in enumerate(history):
        total += float(row.get("seconds") or 0.0)
        t = elapsed[i] if elapsed is not None and i < len(elapsed) else total
        v = row.get("val_loss")
        if v is not None and np.isfinite(float(v)) and float(v) <= target + 1e-12:
            return round(float(t), 3)
    return None


def _epoch_elapsed(run) -> list[float]:
    """Seconds since training began at the end of every epoch (incl. that epoch's validation)."""
    return [float(e["elapsed"]) for e in run.progress() if e.get("kind") == "epoch" and "elapsed" in e]


def _clean(v):
    """JSON-safe: numpy scalars -> Python, NaN/inf -> None."""
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def _time_judgement(run, images: np.ndarray, single_calls: int = SINGLE_CALLS) -> dict:
    """Embedding + score timings of a finished run's saved embedder, loaded as the dashboard loads it."""
    from .embed import embed_images
    from .judge import Judge
    from .metrics import knn_scores

    judge = Judge.from_run(run)
    emb_model = judge.embedder
    picks = np.random.default_rng(0).integers(0, images.shape[0], size=_WARMUP_CALLS + single_calls)

    def one(i):
        e = embed_images(emb_model, images[i:i + 1])
        return knn_scores(judge.ref_good, e, k=judge.k) > judge.threshold

    for i in picks[:_WARMUP_CALLS]:
        one(i)
        judge.judge(images[i:i + 1])
    single, full = [], []
    for i in picks[_WARMUP_CALLS:]:
        t = time.perf_counter()
        one(i)
        single.append(time.perf_counter() - t)
        t = time.perf_counter()
        judge.judge(images[i:i + 1])
        full.append(time.perf_counter() - t)
    embed_images(emb_model, images[:512])                 # warm the batch path
    t = time.perf_counter()
    e = embed_images(emb_model, images)
    knn_scores(judge.ref_good, e, k=judge.k)
    batch = time.perf_counter() - t
    return {"embed_ms_single": round(1000 * float(np.median(single)), 3),
            "embed_ms_per_image_batch": round(1000 * batch / images.shape[0], 4),
            "judge_ms_single": round(1000 * float(np.median(full)), 3),
            "batch_seconds": round(batch, 3), **_time_litert(judge, images, picks[_WARMUP_CALLS:])}


def _time_litert(judge, images: np.ndarray, picks) -> dict:
    """One image through the LiteRT conversion of the run's embedder (the line bundle's runtime) + the score."""
    from .export import litert_interpreter, to_tflite
    from .metrics import knn_scores

    from .export import with_patch_features
    from .judge import add_orientation, to_input
    model = with_patch_features(judge.embedder) if judge.patches is not None else judge.embedder
    dim = int(judge.embedder.output_shape[-1])
    try:
        it = litert_interpreter(to_tflite(model), (1,) + images.shape[1:])
    except Exception as e:      # noqa: BLE001 - reported in the row, the Keras numbers still stand
        return {"litert_ms_single": None, "litert_error": f"{type(e).__name__}: {e}"[:300]}
    inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

    def one(i):
        it.set_tensor(inp, images[i:i + 1].astype(np.float32))
        it.invoke()
        return knn_scores(judge.ref_good, it.get_tensor(out)[:, :dim], k=judge.k) > judge.threshold

    def with_gate(i):
        x, applied = judge.prepare(images[i:i + 1])          # registered where the run registers
        it.set_tensor(inp, x.astype(np.float32))
        it.invoke()
        out_ = it.get_tensor(out)
        knn_scores(judge.ref_good, out_[:, :dim], k=judge.k)
        if judge.gate is None:
            return None
        filled = judge.registration.unknown_pixels(applied) if applied is not None else None
        c = add_orientation(judge.gate.check(x, filled=filled), judge.registration, x)
        if judge.patches is not None:
            judge.patches.score(out_[:, dim:].reshape(1, *judge.patches.grid, -1))
        return to_input(c, judge.registration, applied)

    for i in picks[:_WARMUP_CALLS]:
        with_gate(i)
    times, gated = [], []
    for i in picks:
        t = time.perf_counter()
        one(i)
        times.append(time.perf_counter() - t)
        t = time.perf_counter()
        with_gate(i)
        gated.append(time.perf_counter() - t)
    return {"litert_ms_single": round(1000 * float(np.median(times)), 3),
            "litert_judge_ms_single": round(1000 * float(np.median(gated)), 3)}


def bench_row(run, preset: str, images: np.ndarray) -> dict:
    """One table row from a finished run (metrics.json, history) and timings of its saved embedder."""
    m = run.metrics()
    hist = run.history()
    val = [float(r["val_loss"]) for r in hist if r.get("val_loss") is not None]
    row = {"preset": preset, "epochs": int(m.get("epochs_run", len(hist))),
           "train_seconds": m.get("train_seconds"),
           **{k: m.get(k) for k in ("pair_accuracy", "good_defect_accuracy", "escape_rate", "overkill_rate",
                                    "auroc", "pin_accuracy")}}
    row.update(_time_judgement(run, images))
    row.update(not_a_part_row(run, images))
    loc = m.get("localisation")             # measured by training, from the same judgement the dashboard makes
    row["localisation"] = None if loc is None else loc["share"]
    row["localisation_caught"] = None if loc is None else loc["caught"]
    row["best_val_loss"] = min(val) if val else None
    row["best_epoch"] = m.get("best_epoch")
    row["takeoff_epoch"] = m.get("takeoff_epoch")
    row["stretch_epochs"] = (m.get("budget_stretch") or {}).get("extra_epochs")
    row["run_id"] = run.id
    row["state"] = m.get("state", run.state())
    if m.get("p_good"):         # the classifier baseline's own score, 1 - p(good), beside the k-NN rule
        row["p_good"] = m["p_good"]
    return row


def held_out_kinds(metrics: dict) -> tuple:
    """The held-out not-a-part kinds (never looked at while the gate was designed) a run is judged on: the layout
    kinds only where its registration did not find its images without a fixed layout (a surface texture shifted is
    still the surface). ``metrics``: the run's metrics.json."""
    from . import notapart
    reg = (metrics or {}).get("registration") or {}
    no_layout = reg.get("shift_error_px") is not None and not reg.get("used")
    return tuple(k for k in notapart.HELD_OUT_KINDS if not (no_layout and k in notapart.LAYOUT_KINDS))


def not_a_part_row(run, images: np.ndarray, n_per_kind: int = 20, seed: int = 1) -> dict:
    """The run's verdicts on the not-a-part benchmark (:mod:`snw_core.notapart`, seed 1: the design of the
    check was tuned on seed 0 only) and its test split's UNKNOWN rates."""
    from . import notapart
    from .embed import load_embeddings
    from .judge import Judge

    judge = Judge.from_run(run)
    m = run.metrics()
    goods = notapart.fresh_goods(run.config())
    if goods is None:                            # another data set: its own test goods
        e = load_embeddings(run.file("embeddings.npz"))
        goods = images[(e["split"] == "test") & (e["labels"] == judge.good_label)]
    res = notapart.evaluate(judge, goods, n_per_kind=n_per_kind, seed=seed)
    a = res["all"]
    held = notapart.evaluate(judge, goods, n_per_kind=n_per_kind, seed=seed, kinds=held_out_kinds(m))
    return {"not_a_part": res, "not_a_part_n": a["n"], "not_a_part_good": a["GOOD"] / a["n"],
            "not_a_part_unknown": a["UNKNOWN"] / a["n"], "not_a_part_defect": a["DEFECT"] / a["n"],
            "not_a_part_held_out": held, "not_a_part_held_out_good": held["all"]["GOOD"] / held["all"]["n"],
            **{k: m.get(k) for k in ("unknown_rate", "unknown_rate_good", "unknown_rate_defect")}}


def format_not_a_part(rows: list[dict]) -> str:
    """Per preset and kind: how many not-a-part images were judged GOOD (must be 0) / UNKNOWN / DEFECT; then the
    same for the held-out kinds."""
    lines = []
    for r in rows:
        res = r.get("not_a_part") or {}
        if not res:
            continue
        lines.append(f"not-a-part inputs, preset {r['preset']} (GOOD must be 0; test split: UNKNOWN "
                     f"{_pct(r.get('unknown_rate_good'))} of goods, {_pct(r.get('unknown_rate_defect'))} of defects; "
                     f"one whole verdict with the check and heat map: {_ms(r.get('judge_ms_single'))} Keras, "
                     f"{_ms(r.get('litert_judge_ms_single'))} LiteRT)")
        lines += _kind_lines(res)
        held = r.get("not_a_part_held_out") or {}
        if held:
            lines.append(f"held-out not-a-part inputs, preset {r['preset']} (kinds the gate was not designed on; "
                         "GOOD should be 0)")
            lines += _kind_lines(held)
    return "\n".join(lines)


def _kind_lines(res: dict) -> list[str]:
    width = max(len(k) for k in res)
    return [f"  {'kind'.ljust(width)}     n  GOOD  UNKNOWN  DEFECT"] + [
        f"  {kind.ljust(width)}  {c['n']:4d}  {c['GOOD']:4d}  {c['UNKNOWN']:7d}  {c['DEFECT']:6d}"
        for kind, c in res.items()]


def format_localisation(rows: list[dict]) -> str:
    """One line: per preset, the share of caught defective test items whose pixel of the strongest evidence lies
    in the defect's cell (:mod:`snw_core.localisation`)."""
    from .localisation import TOLERANCE
    if all(r.get("localisation") is None for r in rows):
        return "localisation: - (the data does not say where its cells are)"
    return (f"localisation (pixel of the strongest evidence in the defect's cell, {TOLERANCE} px tolerance): "
            + ", ".join(f"{r['preset']} {_pct(r.get('localisation'))} of {r.get('localisation_caught') or 0} caught "
                        "test defects" for r in rows))


def _ms(v) -> str:
    return "-" if v is None else f"{v:.2f} ms"


def _pct(v) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.2%}"


def format_table(rows: list[dict]) -> str:
    """An aligned text table of the rows (rates in %, times in s and ms)."""
    cols = [("preset", "preset", "{}"), ("epochs", "epochs", "{:d}"), ("takeoff_epoch", "take-off", "{:d}"),
            ("stretch_epochs", "stretch", "{:d}"),
            ("train_seconds", "train s", "{:.1f}"),
            ("time_ratio", "time ratio", "{:.2f}"), ("time_to_seed_best_val_loss", "s to seed best val", "{:.1f}"),
            ("pair_accuracy", "pair acc %", "{:.1%}"), ("good_defect_accuracy", "good/defect acc %", "{:.2%}"),
            ("escape_rate", "escape %", "{:.2%}"), ("overkill_rate", "overkill %", "{:.2%}"),
            ("auroc", "AUROC", "{:.4f}"), ("pin_accuracy", "pin acc %", "{:.1%}"),
            ("embed_ms_single", "ms/image single", "{:.2f}"), ("embed_ms_per_image_batch", "ms/image batch", "{:.3f}"),
            ("litert_ms_single", "ms/image LiteRT", "{:.2f}")]
    table = [[title for _, title, _ in cols]]
    for r in rows:
        cells = []
        for key, _, fmt in cols:
            v = r.get(key)
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                cells.append("-")
            else:
                cells.append(fmt.format(v).replace("%", "") if "%" in fmt else fmt.format(v))
        table.append(cells)
    return text_table(table, left=1)


def text_table(table: list[list[str]], left: int = 1) -> str:
    """Aligned text of a table of strings (header row first): the first ``left`` columns left-aligned, the
    rest right-aligned, a rule under the header."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = []
    for j, row in enumerate(table):
        lines.append("  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_bench(data: str = "default", presets=("seed", "default"), json_path=None, epochs: int | None = None,
              seed: int = 0, good_label: str = "0", runs_dir=None, projection: str = "none",
              quiet: bool = False, overrides: dict | None = None, out=None, drift: bool = False,
              unseen_labels=None) -> list[dict]:
    """Train every preset on the same data, split and seed (one process), print a table, return the rows.

    data, good_label : the data source (see data.load)
    presets : preset names; the first is the time reference (``time_ratio``)
    json_path : also write the rows there as a JSON list of objects
    epochs : override every preset's epochs (quick checks); seed : seed of split, pairs, weights
    runs_dir : the run store (default runs/ or $SNW_RUNS_DIR); runs are named ``bench-<preset>``
    projection : ``none`` (default: not part of the benchmark; the dashboard computes UMAP on first view),
        ``pca`` or ``umap``
    overrides : further settings applied to every preset (e.g. ``{"batch_size": 32}`` for tiny data)
    drift : also judge fresh items under camera drift with every run (:mod:`snw_core.drift`): one table per
        preset, and the rows under each row's ``drift`` key
    unseen_labels : labels whose train/val items are held out of training (:func:`snw_core.baselines.hold_out`);
        a table of their test defects caught and the goods passed, under each row's ``open_set`` key

    Bad input (unknown preset or data, out-of-range setting) raises DataError/SettingsError before any
    training starts.
    """
    from .presets import SettingsError, resolve_settings
    from .train import Prepared, prepare, train

    out = out or sys.stdout
    presets = [str(p).strip() for p in presets if str(p).strip()]
    if not presets:
        raise SettingsError("No presets to benchmark; name at least one, e.g. --presets seed,default.")
    extra = dict(overrides or {})
    extra.update({"epochs": epochs, "seed": seed})
    # resolve every preset first: a typo fails before minutes of training
    settings = {p: resolve_settings(p, **extra) for p in presets}
    split = settings[presets[0]]["split"]
    first = prepare(data, presets[0], good_label, **extra)
    preps = {presets[0]: first}
    for p in presets[1:]:
        s = resolve_settings(p, **{**extra, "split": split})
        preps[p] = Prepared(first.ds, s)
        if not np.array_equal(preps[p].split, first.split):       # same fractions + seed -> same split
            raise RuntimeError(f"preset {p} got a different split")   # pragma: no cover
    if unseen_labels:
        from .baselines import hold_out
        preps = {p: hold_out(prep, unseen_labels) for p, prep in preps.items()}
    ds = first.ds
    info = machine()
    if not quiet:
        print(f"bench: data {ds.source} ({ds.n} items, {ds.image_shape[0]}x{ds.image_shape[1]}), seed {seed}, "
              f"split {dict((k, int(v.size)) for k, v in first.idx.items())}, presets {', '.join(presets)}; "
              f"{info['cores']} cores ({info['cpu']})", file=sys.stderr, flush=True)

    rows, histories, runs = [], {}, {}
    for p in presets:
        run, state = train(prepared=preps[p], name=f"bench-{p}", runs_dir=runs_dir, projection=projection,
                           quiet=quiet)
        runs[p] = run
        row = bench_row(run, p, preps[p].ds.images)     # the run's own items (fewer with --unseen-labels)
        histories[p] = (run.history(), _epoch_elapsed(run))
        rows.append(row)

    ref_preset = "seed" if "seed" in presets else presets[0]
    ref_best = next(r["best_val_loss"] for r in rows if r["preset"] == ref_preset)
    t_first = rows[0]["train_seconds"]
    for r in rows:
        hist, elapsed = histories[r["preset"]]
        r["time_to_seed_best_val_loss"] = time_to_reach(hist, ref_best, elapsed)
        r["reference_preset"] = ref_preset
        r["reference_best_val_loss"] = ref_best
        r["time_ratio"] = round(r["train_seconds"] / t_first, 4) if r["train_seconds"] and t_first else None
        r.update({"data": ds.source, "n_items": int(ds.n), "image_shape": list(ds.image_shape), "seed": seed,
                  "cores": info["cores"]})
    rows = [{k: _clean(r.get(k)) for k in ROW_KEYS} | {k: _clean(v) for k, v in r.items() if k not in ROW_KEYS}
            for r in rows]

    print(format_table(rows), file=out)
    print(f"({info['cores']} cores, {info['cpu']}; single = one image embedded and scored alone, median of "
          f"{SINGLE_CALLS} calls; batch = all {ds.n} items in one call; time ratio against {presets[0]}; "
          f"'s to seed best val' = seconds into training until the val loss first reached {ref_preset}'s best, "
          f"{'-' if ref_best is None else f'{ref_best:.4f}'}; 'ms judge' = the whole verdict of one image, the "
          f"not-a-part check and heat map included)", file=out, flush=True)
    print(format_not_a_part(rows), file=out, flush=True)
    print(format_localisation(rows), file=out, flush=True)
    if unseen_labels:
        from .baselines import print_bench_open_set
        print_bench_open_set(rows, runs, unseen_labels, out=out)
    if drift:
        from .drift import print_bench_drift
        print_bench_drift(rows, runs, seed=seed, out=out)
    if json_path:
        from .fsutil import atomic_write_text
        atomic_write_text(json_path, json.dumps(rows, indent=2) + "\n")
    return rows


def parse_seeds(text: str | None) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]`` (repeats dropped, order kept); empty or None -> []. Raises SettingsError on
    anything that is not a non-negative whole number."""
    from .presets import SettingsError
    out = []
    for t in str(text or "").split(","):
        t = t.strip()
        if not t:
            continue
        if not t.isdigit():
            raise SettingsError(f"--seeds takes comma-separated whole numbers such as 0,1,2; got {t!r}")
        if int(t) not in out:
            out.append(int(t))
    return out


#: the default data's targets, as on how many seeds they held: (row key, test, text)
SEED_TARGETS = (("good_defect_accuracy", lambda v: v >= 0.995, "good/defect >= 99.5 %"),
                ("escape_rate", lambda v: v <= 0.005, "escape <= 0.5 %"),
                ("overkill_rate", lambda v: v <= 0.01, "overkill <= 1 %"))


def format_seeds(rows: list[dict]) -> str:
    """One line per preset over the seeds of ``rows``: mean (worst .. best) of the test numbers and the training
    time, and on how many seeds each of the default data's targets held."""
    presets = list(dict.fromkeys(r["preset"] for r in rows))
    table = [["preset", "seeds", "good/defect %", "escape %", "overkill %", "AUROC", "train s"]
             + [t for _, _, t in SEED_TARGETS]]

    def spread(vals, fmt, worst_low: bool) -> str:
        v = [x for x in vals if x is not None and math.isfinite(x)]
        if not v:
            return "-"
        lo, hi = (min(v), max(v)) if worst_low else (max(v), min(v))
        return f"{fmt(sum(v) / len(v))} ({fmt(lo)} .. {fmt(hi)})"

    def column(rs, key, scale=1.0):
        return [None if r.get(key) is None else scale * r[key] for r in rs]

    pct = "{:.2f}".format
    for p in presets:
        rs = [r for r in rows if r["preset"] == p]
        cells = [p, ",".join(str(r.get("seed")) for r in rs),
                 spread(column(rs, "good_defect_accuracy", 100), pct, True),
                 spread(column(rs, "escape_rate", 100), pct, False),
                 spread(column(rs, "overkill_rate", 100), pct, False),
                 spread(column(rs, "auroc"), "{:.4f}".format, True),
                 spread(column(rs, "train_seconds"), "{:.1f}".format, False)]
        for key, ok, _ in SEED_TARGETS:
            vals = [r.get(key) for r in rs]
            cells.append(f"{sum(v is not None and ok(v) for v in vals)} of {len(rs)}")
        table.append(cells)
    return ("over the seeds: mean (worst .. best) of the test split\n" + text_table(table, left=2))


def run_bench_seeds(data: str = "default", presets=("seed", "default"), seeds=(0, 1, 2), json_path=None, out=None,
                    **kwargs) -> list[dict]:
    """:func:`run_bench` once per seed (each seed's tables as usual), then :func:`format_seeds`. Returns every
    seed's rows in order; ``json_path`` gets all of them as one list. ``kwargs`` go to :func:`run_bench`."""
    from .presets import SettingsError
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    if not seeds:       # a preset typo fails in the first seed's run_bench, before anything trains
        raise SettingsError("No seeds to benchmark; name at least one, e.g. --seeds 0,1,2.")
    out = out or sys.stdout
    rows = []
    for s in seeds:
        print(f"== seed {s}", file=out, flush=True)
        rows += run_bench(data, presets, seed=s, out=out, **kwargs)
    print(format_seeds(rows), file=out, flush=True)
    if json_path:
        from .fsutil import atomic_write_text
        atomic_write_text(json_path, json.dumps(rows, indent=2) + "\n")
    return rows
