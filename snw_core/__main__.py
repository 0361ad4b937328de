"""The command line (a contract, see design.md).

    python -m snw_core data synth --out FILE [--n N] [--seed S]
    python -m snw_core data real --kind texture|connector --difficulty moderate|strong --out FILE [--n N] [--seed S] [--sheet PNG] [--photo FILE|skimage:NAME] [--height H --width W]
        [--region all|upper|lower] [--disjoint]
    python -m snw_core data check SOURCE [--good-label L]
    python -m snw_core data import hub:OWNER/NAME --out FILE
    python -m snw_core train --data SOURCE [--preset seed|default] [--epochs N] [--seed S] [--name NAME] ...
    python -m snw_core evaluate RUN_ID [--runs-dir DIR] [--data SOURCE] [--checks]
    python -m snw_core runs [--runs-dir DIR] [--trash] [delete|restore|empty-trash|log] [ID ...]
    python -m snw_core password-hash [--stdin]                               # the engineer password's hash
    python -m snw_core stop RUN_ID|SWEEP_ID [--runs-dir DIR]
    python -m snw_core sweep --data SOURCE --grid KEY=V1,V2 ... [--concurrency K] [--address ADDR]  # last line: sweep id
    python -m snw_core bench [--data SOURCE] [--presets seed,default] [--json FILE] [--drift] [--unseen-labels 11,12]
                               [--seeds 0,1,2]
    python -m snw_core inspect RUN_ID IMAGE|FOLDER... [--resize] [--heatmap DIR] [--runs-dir DIR]  # a JSON line per image
    python -m snw_core export RUN_ID --out DIR [--runs-dir DIR]              # the bundle for the line
    python -m snw_core report RUN_ID --out report.html [--threshold T] [--compare RUN_ID]   # HTML for management
    python -m snw_core audit RUN_ID [--json] [--corrections-out FILE]        # flagged items, one JSON line each
    python -m snw_core train ... --corrections FILE                          # labels corrected on load

Every command takes -v (show TensorFlow's start-up lines, hidden otherwise).
Exit codes: 0 ok, 2 bad input (one paragraph on stderr, no traceback), 130 training stopped, 1 other failure.
The last stdout line of ``train`` is the run id.
"""
from __future__ import annotations

import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import argparse
import json
import sys
import textwrap

from .clilog import add_verbose_flag, quiet_tensorflow

EXIT_BAD_INPUT = 2
EXIT_STOPPED = 130


class BadInput(Exception):
    pass


def _fail(msg: str) -> int:
    print("error: " + textwrap.fill(str(msg), 100), file=sys.stderr)
    return EXIT_BAD_INPUT


def _add_runs_dir(p):
    p.add_argument("--runs-dir", default=None, help="run store folder (default: runs/ or $SNW_RUNS_DIR)")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m snw_core", description="Siamese-network inspection: data, training, runs.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("data", help="make or check data sets").add_subparsers(dest="data_cmd", required=True)
    p = d.add_parser("synth", help="write the embedded synthetic connector set as parquet")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=3600)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--geometry", default="default", choices=("default", "alt"),
                   help="'default' (26x36, 2x6 pins, bright pins) or 'alt' (40x64, 3x8 pins, dark pins on a bright body); "
                        "the options below change single values of it")
    for flag in ("height", "width", "pin-rows", "pin-cols"):
        p.add_argument(f"--{flag}", type=int, default=None)
    p.add_argument("--polarity", default=None, choices=("bright_pins", "dark_pins"))
    from .plant import add_plant_args
    add_plant_args(p)
    p = d.add_parser("real", help="write a benchmark set made from real photographs as parquet (snw_core.realdata)")
    p.add_argument("--kind", default="texture", help="texture (a textured surface, defects in a 3 x 4 grid of cells) "
                   "or connector (the generated connector on real-photo grain, background and light, JPEG)")
    p.add_argument("--difficulty", default="moderate", help="moderate or strong")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sheet", default=None, help="also write a sample sheet PNG of the set here")
    p.add_argument("--photo", default=None, help="texture only: cut the surface from this photograph instead: an "
                   "image file of your own surface, or one shipped with a package (skimage:grass.png); the "
                   "difficulty then sets only the defects' strength range")
    p.add_argument("--height", type=int, default=None, help="image height in px (default 36 for texture, 26 for "
                   "connector); a larger texture is a larger view of the same surface (grain and defects keep their "
                   "size), a larger connector the part drawn larger")
    p.add_argument("--width", type=int, default=None, help="image width in px (default 48 for texture, 36 for "
                   "connector)")
    p.add_argument("--region", default="all", help="texture only: all of the photograph, or its upper or lower half: "
                   "crops of one photograph overlap, so train on one half and `evaluate RUN --data` a set of the "
                   "other half to measure a surface the run has never seen")
    p.add_argument("--disjoint", action="store_true", help="texture only: cut train, val and test from separate bands "
                   "of the photograph (top 60 %%, next 20 %%, bottom 20 %%) and write that split as the set's own "
                   "'split' column, which a run follows: its threshold is chosen, and its test measured, on surface it "
                   "has never seen")
    p = d.add_parser("check", help="load a source and print its summary (exit 2 on bad input)")
    p.add_argument("source")
    p.add_argument("--good-label", default="0")
    p = d.add_parser("import", help="download a Hub data set and write it as one parquet file")
    p.add_argument("source", help="hub:OWNER/NAME")
    p.add_argument("--out", required=True)

    p = sub.add_parser("train", help="train a run; the last stdout line is the run id")
    p.add_argument("--data", default="default")
    p.add_argument("--preset", default="default")
    p.add_argument("--good-label", default="0")
    p.add_argument("--name", default=None)
    _add_runs_dir(p)
    for flag, typ in (("epochs", int), ("seed", int), ("batch-size", int), ("pairs-per-image", int),
                      ("margin", float), ("learning-rate", float), ("embedding-dim", int), ("k", int),
                      ("early-stopping-patience", int), ("plateau-epochs", int), ("stretch-epochs", int), ("work-side", int), ("grid-pool", int), ("max-escape", float),
                      ("presmooth", float), ("ema", float), ("augment-noise", float)):
        p.add_argument(f"--{flag}", type=typ, default=None)
    p.add_argument("--threshold-method", default=None, choices=("best_accuracy", "zero_escape", "max_escape"))
    p.add_argument("--augment", default=None, choices=("none", "line", "camera"),
                   help="training augmentation: 'line' = a line camera's drift (shift, rotation, blur, JPEG, noise, "
                        "light gradient, brightness, contrast), drawn afresh for every image; 'camera' = its light "
                        "and sensor changes only (blur, JPEG, noise, gradient, brightness, contrast)")
    p.add_argument("--register", default=None, choices=("auto", "off"),
                   help="align every image to the taught part before judging: auto (where the data has a fixed "
                        "layout; the default preset) or off")
    p.add_argument("--split", default=None, help="train,val,test fractions, e.g. 0.6,0.2,0.2")
    p.add_argument("--projection", default="umap", choices=("umap", "pca", "none"))
    p.add_argument("--run-id", default=None, help="use this new run id (the dashboard picks it before starting)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--corrections", default=None, help="corrections CSV applied on load (the source is not changed)")

    p = sub.add_parser("evaluate", help="recompute a run's metrics (JSON on stdout)")
    p.add_argument("run_id")
    p.add_argument("--data", default=None,
                   help="another data set of the run's image size: every item judged as inspect judges it (the "
                        "run's references, threshold, gate and patch bank), the rates counted from those verdicts")
    p.add_argument("--checks", action="store_true",
                   help="instead: the camera-drift and not-a-part checks every training now ends with, for a run "
                        "trained before them; stored in its metrics.json and printed")
    _add_runs_dir(p)

    p = sub.add_parser("runs", help="list runs, one line each; delete, restore, the trash, the action log")
    _add_runs_dir(p)
    from . import actions, roles
    actions.add_cli(p)
    roles.add_cli(sub)
    p = sub.add_parser("stop", help="ask a running training to stop (within one batch)")
    p.add_argument("run_id")
    _add_runs_dir(p)

    p = sub.add_parser("bench", help="train presets on the same split and print a side-by-side table")
    p.add_argument("--data", default="default")
    p.add_argument("--presets", default="seed,default")
    p.add_argument("--json", default=None, help="also write the rows as a JSON list to this file")
    p.add_argument("--epochs", type=int, default=None, help="override every preset's epochs (quick checks)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", default=None, help="comma-separated seeds, e.g. 0,1,2: the whole benchmark once per "
                   "seed, then the mean, worst and best of each number (replaces --seed)")
    p.add_argument("--good-label", default="0")
    p.add_argument("--drift", action="store_true", help="also judge fresh items under camera drift (shift, rotation, "
                   "blur, JPEG, noise, light gradient, brightness, contrast): one table per preset")
    p.add_argument("--unseen-labels", default=None, help="comma-separated defect labels held out of training "
                   "(their train/val items), e.g. 11,12; reports the share of their test defects caught and of goods passed")
    _add_runs_dir(p)

    p = sub.add_parser("inspect", help="judge image files with a run: one JSON line per image (exit 2 on bad input)")
    p.add_argument("run_id")
    p.add_argument("images", nargs="+", help="PNG/JPEG/BMP files of the run's image size, or folders of them "
                                             "(every image file inside, sub-folders too, in name order)")
    p.add_argument("--resize", action="store_true", help="scale images of another size with the same aspect ratio")
    p.add_argument("--heatmap", default=None, metavar="DIR",
                   help="also write a heat-map overlay PNG per image into DIR (created if missing)")
    _add_runs_dir(p)
    p = sub.add_parser("export", help="write the run's bundle for a small computer at the line (no TensorFlow)")
    p.add_argument("run_id")
    p.add_argument("--out", required=True, help="bundle folder: new, empty, or an earlier bundle (replaced)")
    _add_runs_dir(p)
    from .report import add_cli as add_report_cli
    add_report_cli(sub)
    from .audit import add_cli as add_audit
    add_audit(sub)
    from .sweep import add_parser as add_sweep_parser      # light: Ray loads only when a sweep runs
    add_sweep_parser(sub)
    add_verbose_flag(ap)
    return ap


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    with quiet_tensorflow(verbose=args.verbose):     # TensorFlow's start-up lines only with -v
        return _main(args)


def _main(args) -> int:
    from .data import DataError
    from .presets import SettingsError
    from .roles import AccessError
    from .runs import RunError
    try:
        return _dispatch(args)
    except (DataError, SettingsError, RunError, BadInput, AccessError) as e:
        return _fail(e)
    except KeyboardInterrupt:
        return EXIT_STOPPED
    except OSError as e:   # disk full, permissions, a file where a folder should be: say so, no traceback
        print("error: " + textwrap.fill(f"could not read or write {e.filename or 'a file'}: {e.strerror or e}. "
                                        "Nothing half-written was left behind; free space or fix the permissions "
                                        "and try again.", 100), file=sys.stderr)
        return 1


def _dispatch(a) -> int:
    if a.cmd == "data":
        return _data(a)
    if a.cmd == "train":
        return _train(a)
    if a.cmd == "evaluate":
        from .judge import evaluate_run
        from .runs import RunStore
        run = RunStore(a.runs_dir).get(a.run_id)
        if a.checks:
            return _checks(run)
        print(json.dumps(evaluate_run(run, a.data), indent=2, allow_nan=True))
        return 0
    if a.cmd == "password-hash":
        from .roles import run_cli
        return run_cli(a)
    if a.cmd == "runs":
        from .actions import run_cli
        if (rc := run_cli(a)) is not None:
            return rc
        from .runs import RunStore
        for r in RunStore(a.runs_dir).list():
            s = r.summary()
            acc = s.get("good_defect_accuracy")
            print(f"{r.id}\t{s['state']}\t{s.get('preset', '')}\t{s.get('data', '')}\t"
                  f"good_defect_accuracy={acc if acc is None else round(float(acc), 4)}\t"
                  f"pair_accuracy={s.get('pair_accuracy') if s.get('pair_accuracy') is None else round(float(s['pair_accuracy']), 4)}")
        return 0
    if a.cmd == "sweep":
        from .sweep import cli
        return cli(a)
    if a.cmd == "stop":
        from .runs import RunStore
        from .sweep import Sweep
        if (Sweep(RunStore(a.runs_dir), a.run_id).path / "sweep.json").exists():     # a sweep id: every trial
            from .roles import LOCAL
            from .sweep import stop_sweep
            n = len(stop_sweep(a.run_id, a.runs_dir, LOCAL))
            print(f"stop requested for sweep {a.run_id} ({n} running trial{'s' if n != 1 else ''})")
            return 0
        run = RunStore(a.runs_dir).get(a.run_id)
        state = run.state()
        if state != "running":
            raise BadInput(f"Run '{a.run_id}' is not running (state: {state}); nothing to stop.")
        from .actions import stop_run
        from .roles import LOCAL
        stop_run(run, LOCAL, RunStore(a.runs_dir))
        print(f"stop requested for {a.run_id}")
        return 0
    if a.cmd == "bench":
        from .baselines import parse_labels
        from .bench import parse_seeds, run_bench, run_bench_seeds
        presets = [p.strip() for p in a.presets.split(",") if p.strip()]
        common = dict(json_path=a.json, epochs=a.epochs, good_label=a.good_label, runs_dir=a.runs_dir, drift=a.drift,
                      unseen_labels=parse_labels(a.unseen_labels))
        if a.seeds is not None:
            run_bench_seeds(a.data, presets, parse_seeds(a.seeds), **common)
        else:
            run_bench(a.data, presets, seed=a.seed, **common)
        return 0
    if a.cmd == "inspect":
        return _inspect(a)
    if a.cmd == "export":
        return _export(a)
    if a.cmd == "report":
        from .report import cli as report_cli
        return report_cli(a)
    if a.cmd == "audit":
        from .audit import cli
        return cli(a)
    raise BadInput(f"unknown command {a.cmd}")


def _warn_if_unusable(run) -> None:
    """One line on stderr for a run that cannot tell good from defective (:func:`snw_core.metrics.unusable_note`)."""
    from .metrics import run_warnings
    for note in run_warnings(run.metrics(), run.id):
        print("WARNING: " + note, file=sys.stderr)


#: ``inspect`` judges this many images at a time and prints their lines before it reads on: an archive of a
#: line's images is judged in bounded memory (heat maps are float64 images), and the camera check speaks of
#: each block of images in file order, so that a drift that began halfway through is not averaged away
INSPECT_BLOCK = 1000


def _inspect(a) -> int:
    from .data import DataError
    from .export import finished_config
    from .judge import Judge, expand_paths, read_images, records
    from .runs import RunStore
    run = RunStore(a.runs_dir).get(a.run_id)
    cfg = finished_config(run)
    try:
        got = read_images(expand_paths(a.images), cfg["data"]["image_shape"], resize=a.resize)
    except DataError as e:      # one line per file: keep the lines
        print("error: " + str(e).replace("\n", "\n  "), file=sys.stderr)
        return EXIT_BAD_INPUT
    for name, note in zip(got.names, got.notes):
        if note:
            print(f"note: {name}: {note}", file=sys.stderr)
    _warn_if_unusable(run)
    judge = Judge.from_run(run)
    from pathlib import Path
    folder = None
    if a.heatmap:
        if judge.gate is None:
            return _fail(f"Run '{run.id}' was trained before heat maps existed (it has no gate.npz); train it again.")
        from .heatmap import write_png
        folder = Path(a.heatmap)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            return _fail(f"cannot create the heat-map folder '{folder}': {e.strerror}.")
    from .acquisition import findings, summary
    m, n = run.metrics(), len(got.names)
    profile, check = m.get("acquisition"), m.get("drift_check")
    for start in range(0, n, INSPECT_BLOCK):
        block = slice(start, min(start + INSPECT_BLOCK, n))
        images, names = got.images[block], got.names[block]
        out = judge.judge(images)
        rows = records(out, names)
        if folder is not None:
            for i, row in enumerate(rows, start):
                stem = Path(str(row["file"])).stem or f"image{i}"
                row["heatmap_file"] = str(folder / f"{i:04d}-{stem}.heatmap.png")
                write_png(row["heatmap_file"], images[i - start], judge.gate.display_map(out["heatmap"][i - start]),
                          (row["defect_y"], row["defect_x"]))
        for row in rows:
            print(json.dumps(row))
        sys.stdout.flush()
        camera = summary(findings(profile, images), check)
        if camera:
            where = f"images {block.start + 1}-{block.stop} of {n} ({names[0]} to {names[-1]}): " if n > INSPECT_BLOCK else ""
            print("WARNING: " + where + camera, file=sys.stderr)
    return 0


def _checks(run) -> int:
    """``evaluate RUN_ID --checks``: the drift check and the not-a-part check of a finished run, stored."""
    from .drift import DriftError, check_summary, run_check
    from .export import finished_config
    from .notapart import check_summary as not_a_part_summary
    from .notapart import run_check as not_a_part_check
    finished_config(run)                                   # a run without results: one paragraph, exit 2
    try:
        drift = run_check(run)
        nap = not_a_part_check(run)
    except (DriftError, ValueError) as e:
        return _fail(f"Run '{run.id}' cannot be checked: {e}")
    run.write_metrics({**run.metrics(), "drift_check": drift, "not_a_part_check": nap})
    print(check_summary(drift), file=sys.stderr)
    print(not_a_part_summary(nap), file=sys.stderr)
    print(json.dumps({"drift_check": drift, "not_a_part_check": nap}, indent=2, allow_nan=True))
    return 0


def _export(a) -> int:
    from .export import ExportError, export_bundle
    from .runs import RunStore
    run = RunStore(a.runs_dir).get(a.run_id)
    try:
        out = export_bundle(run, a.out)
    except ExportError as e:
        raise BadInput(str(e)) from None
    _warn_if_unusable(run)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"bundle of {a.run_id}: {size / 1e6:.2f} MB in {len(list(out.iterdir()))} files", file=sys.stderr)
    print(out)
    return 0


def _data(a) -> int:
    from . import data
    if a.data_cmd == "synth":
        from . import synthetic
        import dataclasses
        base = synthetic.ConnectorSpec() if a.geometry == "default" else synthetic.ALT_SPEC
        changes = {k: v for k, v in (("height", a.height), ("width", a.width), ("pin_rows", a.pin_rows),
                                     ("pin_cols", a.pin_cols), ("polarity", a.polarity)) if v is not None}
        try:
            spec = dataclasses.replace(base, **changes)
        except ValueError as e:
            raise BadInput(f"Cannot draw that connector: {e}") from None
        n_labels = spec.pin_rows * spec.pin_cols + 1
        if a.n < n_labels:
            raise BadInput(f"--n must be at least {n_labels} (one item per label: good and {n_labels - 1} pin "
                           f"addresses); got {a.n}.")
        from .plant import synth_with_faults
        path = synth_with_faults(a, spec) or synthetic.write_parquet(a.out, n=a.n, seed=a.seed, spec=spec)
        print(path)
        return 0
    if a.data_cmd == "real":
        from .realdata import RealDataError, write_parquet
        try:
            shape = None
            if a.height is not None or a.width is not None:
                from .realdata import CONNECTOR_SHAPE, TEXTURE_SHAPE
                base = TEXTURE_SHAPE if a.kind == "texture" else CONNECTOR_SHAPE
                shape = (a.height if a.height is not None else base[0], a.width if a.width is not None else base[1])
            print(write_parquet(a.out, a.kind, a.difficulty, n=a.n, seed=a.seed, sheet=a.sheet, photo=a.photo,
                                shape=shape, region=a.region, disjoint=a.disjoint))
        except RealDataError as e:
            raise BadInput(str(e)) from None
        return 0
    if a.data_cmd == "check":
        ds = data.load(a.source, good_label=a.good_label)
        data.check_trainable(ds)
        print(json.dumps(data.summary(ds), indent=2))
        return 0
    if a.data_cmd == "import":
        if not a.source.startswith("hub:"):
            raise BadInput("data import takes a Hub id: hub:OWNER/NAME")
        name = a.source[4:]
        if not data._HUB_RE.match(name):
            raise BadInput(f"'{name}' is not a Hugging Face data set id (OWNER/NAME).")
        if not data._hub_reachable():
            raise BadInput(f"The Hugging Face Hub cannot be reached (no network), so '{name}' cannot be downloaded here.")
        print(data.download_hub(name, __import__("pathlib").Path(a.out)))
        return 0
    raise BadInput(f"unknown data command {a.data_cmd}")


def _train(a) -> int:
    from .train import prepare, train
    overrides = {k: getattr(a, k) for k in ("epochs", "seed", "batch_size", "pairs_per_image", "margin",
                                             "learning_rate", "embedding_dim", "k", "early_stopping_patience",
                                             "plateau_epochs", "stretch_epochs", "work_side", "grid_pool", "max_escape", "threshold_method", "augment",
                                             "presmooth", "ema", "register", "augment_noise")}
    if a.split:
        try:
            overrides["split"] = [float(x) for x in a.split.split(",")]
        except ValueError:
            raise BadInput(f"--split must be three comma-separated fractions like 0.6,0.2,0.2; got {a.split!r}.") from None
    prep = prepare(a.data, a.preset, a.good_label, **overrides)    # bad input exits 2 before any run folder
    if a.corrections:
        from .corrections import prepare_corrected
        prep = prepare_corrected(prep, a.corrections)
    if a.run_id is not None:
        from .runs import validate_run_id
        validate_run_id(a.run_id)
    run, state = train(prepared=prep, name=a.name, runs_dir=a.runs_dir, projection=a.projection, quiet=a.quiet,
                       run_id=a.run_id)
    # one write per line: with stdout and stderr in one pipe (``2>&1``) the lines must not run together, and the
    # stderr filter forwards a line's text and its newline as they come
    sys.stderr.write(f"{state}: {run.path}\n")
    sys.stdout.write(f"{run.id}\n")
    return 0 if state == "done" else EXIT_STOPPED


if __name__ == "__main__":
    sys.exit(main())
