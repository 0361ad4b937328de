"""Training: data -> split -> pairs -> fit -> embeddings, metrics, projection, all written to a run folder.

Callbacks (one per concern) append progress to the run folder while ``fit`` runs:
:class:`ProgressWriter` (progress.jsonl), :class:`StopOnRequest` (stop file or SIGTERM, honoured within one
batch), :class:`PairValidation` (seed-scheme validation pair loss/accuracy, history.csv, early stopping),
:class:`EpochBudget` (learning rate, epoch budget) and, with the setting ``ema``, :class:`WeightAverage` (the
moving average of the weights that is validated and kept).

>>> run, state = train("default", preset="seed", epochs=1)     # doctest: +SKIP
"""
from __future__ import annotations

import os
import platform
import signal
import sys
import time
import traceback
from importlib import metadata

import numpy as np

from .data import DataError, check_trainable, load
from .pairs import make_pairs
from .presets import SettingsError, resolve_settings
from .runs import RunStore, _proc_start, now_iso
from .splits import stratified_split

__all__ = ["prepare", "train", "Prepared", "EVAL_PAIRS_PER_IMAGE", "TrainingStopped", "package_versions", "twin_pool_side"]

#: pairs per image of the fixed seed-scheme validation/test pairs, the same for every preset
EVAL_PAIRS_PER_IMAGE = 10
#: take-off: the first epoch whose val pair accuracy (seed-scheme pairs, half positive: chance is 0.5) reaches this,
#: and the same pair accuracy of the train images too (:func:`took_off`)
TAKEOFF_PAIR_ACCURACY = 0.6
#: the cosine schedule decays to this fraction of the peak learning rate
COSINE_FLOOR = 0.05
#: a hard surface: halfway through the epoch budget the twin ranks the val items below this AUROC, and the budget
#: grows by ``stretch_epochs`` (:func:`stretch_decision`)
STRETCH_BELOW_AUROC = 0.95
_VERSIONED = ("numpy", "keras", "tensorflow-cpu", "tensorflow", "scikit-learn", "umap-learn", "datasets", "pandas",
              "pyarrow", "pillow")


def package_versions(names=_VERSIONED) -> dict:
    """Python and the installed versions of ``names`` (missing packages left out), for config.json/bundles."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


class Prepared:
    """Everything decided before any model exists: data, settings, split, class ids. Cheap (no TensorFlow)."""

    def __init__(self, ds, settings):
        self.ds, self.settings = ds, settings
        # a data set that fixes its own split (a ``split`` column) is followed; otherwise a seeded stratified one
        own = getattr(ds, "splits", None)
        self.split = np.asarray(own).astype(str) if own is not None else \
            stratified_split(ds.labels, settings["split"], seed=settings["seed"])
        self.classes = ds.label_names
        self.class_ids = np.searchsorted(np.array(sorted(self.classes)), ds.labels)
        self.idx = {s: np.flatnonzero(self.split == s) for s in ("train", "val", "test")}
        n_train = self.idx["train"].size
        unit = n_train * 2 * settings["pairs_per_image"] if settings["pairing"] == "pairs" else n_train
        if settings["batch_size"] > unit:
            raise SettingsError(f"Setting batch_size = {settings['batch_size']} is larger than one epoch of training "
                                f"data ({unit} {'pairs' if settings['pairing'] == 'pairs' else 'images'} from "
                                f"{n_train} training images); choose at most {unit}.")
        for s in ("val", "test"):
            lab = ds.labels[self.idx[s]]
            if len(set(lab.tolist())) < 2 or not (lab == ds.good_label).any():
                raise DataError(f"The {s} split has {self.idx[s].size} items but lacks "
                                f"{'good items' if not (lab == ds.good_label).any() else 'defects'}, so the "
                                f"threshold and the test metrics cannot be computed; use more data or a larger {s} fraction.")


def prepare(source: str = "default", preset: str = "default", good_label: str = "0", **overrides) -> Prepared:
    """Load and validate everything; raises DataError / SettingsError on bad input, writes nothing."""
    settings = resolve_settings(preset, **overrides)
    ds = load(source, good_label=good_label)
    check_trainable(ds)
    return Prepared(ds, settings)


class TrainingStopped(Exception):
    pass


def _make_callbacks(run, prep, keras, eval_pairs, log):
    """The callback classes; built inside a function so keras is imported lazily."""
    settings = prep.settings

    class ProgressWriter(keras.callbacks.Callback):
        """Appends a throttled batch event (at most every 0.25 s) and every epoch event to progress.jsonl."""

        def __init__(self, budget, steps):
            super().__init__()
            self.budget, self.steps = budget, steps
            self.t0 = time.time()
            self.last = 0.0
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1
            self.t_epoch = time.time()

        def on_train_batch_end(self, batch, logs=None):
            now = time.time()
            if now - self.last >= 0.25 or batch + 1 == self.steps:
                self.last = now
                total = self.budget.total(self.epoch)
                run.append_progress({"kind": "batch", "epoch": self.epoch, "epochs": total, "batch": batch + 1,
                                     "batches": self.steps, "loss": float((logs or {}).get("loss", np.nan)),
                                     "elapsed": round(now - self.t0, 3)})
                log.batch(self.epoch, total, batch + 1, self.steps, (logs or {}).get("loss"))

    class StopOnRequest(keras.callbacks.Callback):
        """Stops within one batch when the run's stop file appears or the process gets SIGTERM."""

        def __init__(self):
            super().__init__()
            self.stopped = False
            self.signalled = False

        def on_train_batch_end(self, batch, logs=None):
            if self.signalled or run.stop_requested():
                self.stopped = True
                self.model.stop_training = True

    class PairValidation(keras.callbacks.Callback):
        """Seed-scheme pair loss and accuracy on fixed train/val pairs after every epoch; history.csv; early stop."""

        def __init__(self, embedder, budget, stopper):
            super().__init__()
            self.embedder, self.budget, self.stopper = embedder, budget, stopper
            self.rows = []
            self.best = np.inf
            self.best_weights = None
            self.wait = 0
            #: epochs without a better val pair loss before training stops (0: never; see :func:`early_stopping`)
            self.patience = settings["early_stopping_patience"]
            self.t0 = time.time()
            self.t_epoch = time.time()

        def on_epoch_begin(self, epoch, logs=None):
            self.t_epoch = time.time()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            from .embed import embed_images
            from .metrics import pair_accuracy
            fit_seconds = time.time() - self.t_epoch
            vals, embs = {}, {}
            for part in ("train", "val"):
                ia, ib, y = eval_pairs[part]
                idx = prep.idx[part]
                e = embs[part] = embed_images(self.embedder, prep.ds.images[idx])
                d = np.linalg.norm(e[ia] - e[ib], axis=1)
                vals[part] = (float(_np_contrastive(y, d, settings["margin"]).mean()), pair_accuracy(d, y))
            row = {"epoch": epoch + 1, "loss": float(logs.get("loss", np.nan)), "val_loss": vals["val"][0],
                   "pair_accuracy": float(logs.get("pair_accuracy", vals["train"][1])),
                   "val_pair_accuracy": vals["val"][1], "seconds": round(fit_seconds, 3)}
            self.rows.append(row)
            run.write_history(self.rows)
            self.budget.epoch_done(epoch + 1, row, vals["train"][1])
            if self.budget.stretch_due(epoch + 1):
                lab = prep.ds.labels
                self.budget.decide_stretch(epoch + 1, val_twin_auroc(
                    embs["train"], lab[prep.idx["train"]], embs["val"], lab[prep.idx["val"]], prep.ds.good_label,
                    settings["k"]))
            total = self.budget.total(epoch + 1)
            run.append_progress({"kind": "epoch", **row, "epochs": total, "elapsed": round(time.time() - self.t0, 3)})
            log.epoch(row, total)
            if self.budget.finished(epoch + 1):
                self.model.stop_training = True
            patience = self.patience
            if patience and self.budget.takeoff is not None:
                if row["val_loss"] < self.best - 1e-6:
                    self.best, self.wait = row["val_loss"], 0
                    self.best_weights = self.embedder.get_weights()
                else:
                    self.wait += 1
                    if self.wait >= patience:
                        self.model.stop_training = True
                        run.append_progress({"kind": "phase", "phase": "early_stopping", "epoch": epoch + 1})

        def restore_best(self):
            if self.best_weights is not None:
                self.embedder.set_weights(self.best_weights)
                return True
            return False

    class EpochBudget(keras.callbacks.Callback):
        """The learning rate of every batch, and the epoch budget counted from take-off.

        A twin can sit on a plateau for its first epochs: every pair at about the same distance, val pair
        accuracy at chance, before it finds the features that tell the labels apart (a harder geometry, e.g.
        more and smaller pins, takes longer). With ``plateau_epochs`` > 0 those epochs do not count against
        ``epochs``: the learning rate stays at its peak until the val pair accuracy first reaches
        :data:`TAKEOFF_PAIR_ACCURACY`, and from that epoch on the schedule (constant or cosine) runs over
        ``epochs`` epochs. After ``plateau_epochs`` epochs without take-off the budget starts anyway.
        ``plateau_epochs`` = 0: the budget starts with the first batch (a plain schedule over ``epochs``).
        """

        def __init__(self, steps):
            super().__init__()
            self.steps = steps
            self.epochs, self.plateau = settings["epochs"], settings["plateau_epochs"]
            self.takeoff = 0 if self.plateau == 0 else None   # epochs before the budget started
            self.forced = False                                # the budget started without a take-off
            self.step = 0                                      # batches since the budget started
            self.base = float(settings["learning_rate"])
            self.stretch = None                                # the half-budget check, once made

        def lr(self) -> float:
            return scheduled_lr(self.base, settings["lr_schedule"], self.step if self.takeoff is not None else None,
                                self.steps * self.epochs)

        def on_train_batch_begin(self, batch, logs=None):
            self.model.optimizer.learning_rate.assign(self.lr())

        def on_train_batch_end(self, batch, logs=None):
            if self.takeoff is not None:
                self.step += 1

        def epoch_done(self, epoch: int, row: dict, train_pair_accuracy: float) -> None:
            if self.takeoff is not None:
                return
            if took_off(row["val_pair_accuracy"], train_pair_accuracy):
                self.takeoff = epoch
                log.msg(f"take-off after epoch {epoch}: val pair accuracy {row['val_pair_accuracy']:.3f} (train "
                        f"images {train_pair_accuracy:.3f}); {self.epochs} more epochs")
                run.append_progress({"kind": "phase", "phase": "takeoff", "epoch": epoch})
            elif epoch >= self.plateau:
                self.takeoff, self.forced = epoch, True
                log.msg(f"no take-off in {epoch} epochs (val pair accuracy {row['val_pair_accuracy']:.3f}, train "
                        f"images {train_pair_accuracy:.3f}); the epoch budget starts now")
                run.append_progress({"kind": "phase", "phase": "no_takeoff", "epoch": epoch})

        def stretch_due(self, epoch: int) -> bool:
            """Halfway through the budget (a budget of 2 epochs or more, with ``stretch_epochs`` > 0), once."""
            return (self.stretch is None and settings["stretch_epochs"] > 0 and self.epochs >= 2
                    and self.takeoff is not None and epoch == self.takeoff + self.epochs // 2)

        def decide_stretch(self, epoch: int, val_auroc: float) -> None:
            """Grow the budget by ``stretch_epochs`` where the val AUROC says the surface is hard; the cosine
            schedule then runs over the longer budget from here on (its learning rate rises a little)."""
            extra = stretch_decision(val_auroc, settings["stretch_epochs"])
            self.stretch = {"epoch": epoch, "val_auroc": None if not np.isfinite(val_auroc) else round(val_auroc, 4),
                            "below": STRETCH_BELOW_AUROC, "extra_epochs": extra}
            if extra:
                self.epochs += extra
                log.msg(f"halfway (epoch {epoch}) the twin ranks the val items at AUROC {val_auroc:.3f}, below "
                        f"{STRETCH_BELOW_AUROC}: a hard surface; the epoch budget grows by {extra} to {self.epochs}")
            run.append_progress({"kind": "phase", "phase": "stretch" if extra else "stretch_check", "epoch": epoch,
                                 "val_auroc": self.stretch["val_auroc"], "extra_epochs": extra})

        def total(self, epoch: int) -> int:
            """Epochs this run will take as far as known now (it grows while on the plateau)."""
            if self.takeoff is None:
                return max(epoch, 1) + self.epochs
            return self.takeoff + self.epochs

        def finished(self, epoch: int) -> bool:
            return self.takeoff is not None and epoch >= self.takeoff + self.epochs

    class WeightAverage(keras.callbacks.Callback):
        """An exponential moving average of the embedder's weights, ``momentum`` per batch (setting ``ema``).

        After every batch ``avg = momentum * avg + (1 - momentum) * weights``, started at zero and divided by
        ``1 - momentum ** batches`` (Adam's bias correction: early on it is the plain mean of the batches so far).
        Placed before :class:`PairValidation`: at the end of each epoch the average goes into the embedder, so the
        validation, the early stopping and the best weights kept are the average's; the next epoch trains on from
        the weights themselves. After the last epoch the embedder holds the average.
        """

        def __init__(self, embedder, momentum: float):
            super().__init__()
            self.embedder, self.momentum = embedder, float(momentum)
            self.avg, self.raw, self.updates = None, None, 0

        def on_epoch_begin(self, epoch, logs=None):
            if self.raw is not None:
                self.embedder.set_weights(self.raw)
                self.raw = None

        def on_train_batch_end(self, batch, logs=None):
            w = self.embedder.get_weights()
            if self.avg is None:
                self.avg = [np.zeros_like(x, dtype=np.float64) for x in w]
            m = self.momentum
            for a, x in zip(self.avg, w):
                a *= m
                a += (1.0 - m) * x
            self.updates += 1

        def averaged(self) -> list:
            c = 1.0 - self.momentum ** self.updates
            return [(a / c).astype(x.dtype) for a, x in zip(self.avg, self.embedder.get_weights())]

        def on_epoch_end(self, epoch, logs=None):
            if self.updates:
                self.raw = self.embedder.get_weights()
                self.embedder.set_weights(self.averaged())

    return ProgressWriter, StopOnRequest, PairValidation, EpochBudget, WeightAverage


#: the gate's per-item results kept in embeddings.npz (the Accuracy page recomputes verdicts from them)
GATE_ITEM_KEYS = ("unknown", "flat", "appearance", "local", "local_defect", "defect_y", "defect_x")


def fit_gate(images, labels, split, good_label, augment: str = "none", seed: int = 0, doubtful=None, filled=None):
    """Fit the run's :class:`~snw_core.gate.Gate` (train split, thresholds on val) and check every item.
    ``filled``: the pixels registration filled (bool (n, h, w)) or None.

    Returns ``(gate, checks)`` (checks without heat maps). Train goods are among their own references, so
    their local evidence is near 0; thresholds come from val and reported numbers from test."""
    from .gate import Gate
    gate = Gate.fit(images, labels, split, good_label=good_label, augment=augment, seed=seed, doubtful=doubtful,
                    filled=filled)
    checks = {}
    for i in range(0, len(images), 2048):            # bounded memory: (batch, goods) distance blocks
        part = gate.check(images[i:i + 2048], filled=None if filled is None else filled[i:i + 2048])
        for k, v in part.items():
            if k != "heatmap":
                checks.setdefault(k, []).append(v)
    return gate, {k: np.concatenate(v) for k, v in checks.items()}


#: the focus guard's test: val items blurred by this Gaussian sigma (px, the drift benchmark's "blur 1 px"); a run
#: that catches fewer than GUARD_CAUGHT of the blurred val defects gets the guard
GUARD_BLUR = 1.0
GUARD_CAUGHT = 0.9
#: the limit lies halfway between the blurred val items' and the clean train and val items' sharpness, each taken
#: at this quantile from its far end (not the extremes: registration's turn softens a few clean parts a little)
GUARD_QUANTILE = 0.99


def focus_guard(gate, embedder, registration, raw_images, images, labels, split, good_label, refs, k: int,
                threshold: float, bank=None) -> dict:
    """Does this run pass defects when the focus softens? If so, judge such images UNKNOWN instead.

    The val items are blurred by :data:`GUARD_BLUR` px (registered as the judge would) and judged with the run's
    references, threshold, gate and patch bank. Where fewer than :data:`GUARD_CAUGHT` of the blurred defects are
    caught (a twin never trained on blur may read a blurred part as a clean one), the gate's focus limit
    ``min_sharp`` rises to halfway between the blurred val items' sharpness and the clean train and val items' (the
    99th and the 1st percentile): the line then gets "out of focus" (UNKNOWN) for a blurred part rather than a
    verdict the run cannot give. A run that catches them, e.g. one trained with the camera augmentation, keeps its limit.
    Changes ``gate.min_sharp`` in place; returns what was found (metrics.json key ``focus_guard``).
    """
    from .drift import blur
    from .gate import sharpness

    val = np.flatnonzero(split == "val")
    is_def = labels[val] != good_label
    report = {"blur_sigma": GUARD_BLUR, "min_caught": GUARD_CAUGHT, "used": False}
    if not is_def.any():
        return {**report, "reason": "no defective val items to test with"}
    blurred, caught = _judged_changed(blur(raw_images[val], GUARD_BLUR), gate, embedder, registration, refs, k,
                                      threshold, bank)
    rate = float(caught[is_def].mean())
    report["blurred_val_defects_caught"] = round(rate, 4)
    if rate >= GUARD_CAUGHT:
        return {**report, "reason": f"the run catches {rate:.0%} of the blurred val defects"}
    fit = (split == "train") | (split == "val")
    clean = float(np.quantile(sharpness(images[fit]), 1.0 - GUARD_QUANTILE))
    soft = float(np.quantile(sharpness(blurred), GUARD_QUANTILE))
    if soft >= clean:
        return {**report, "reason": f"the run catches {rate:.0%} of the blurred val defects, but blurred images are "
                                    "as sharp as clean ones here: no limit between them"}
    limit = 0.5 * (soft + clean)
    if limit <= gate.min_sharp:
        return {**report, "reason": "the focus limit already lies above the blurred images"}
    gate.min_sharp = limit
    return {**report, "used": True, "min_sharpness": round(limit, 4),
            "reason": f"the run catches only {rate:.0%} of the blurred val defects: images less sharp than "
                      f"{limit:.3f} are judged UNKNOWN (out of focus)"}


def _judged_parts(changed, gate, embedder, registration, refs, k: int, bank=None):
    """Images the camera changed (uint8 (n, h, w), as delivered) registered as the judge registers them and judged
    in parts: ``(registered images, the gate's checks, the twin's scores, forced)``, forced = rejected whatever the
    score (the gate's UNKNOWN and local evidence, a flipped part, the patch bank)."""
    from .embed import embed_images
    from .metrics import knn_scores
    filled = None
    if registration is not None:
        changed, _, applied = registration.apply(changed)
        filled = registration.unknown_pixels(applied)
    c = gate.check(changed, filled=filled)
    forced = c["unknown"] | c["local_defect"]
    if registration is not None:
        forced |= registration.flipped(changed)
    if bank is not None and np.isfinite(bank.threshold):
        from .embed import feature_maps
        from .patches import feature_layer
        forced |= bank.score(feature_maps(embedder, changed, feature_layer(embedder)))[0] > bank.threshold
    return changed, c, knn_scores(refs, embed_images(embedder, changed), k=k), forced


def _judged_changed(changed, gate, embedder, registration, refs, k: int, threshold: float, bank=None):
    """:func:`_judged_parts` as one verdict: ``(registered images, rejected bool (n,))``."""
    changed, _, twin, forced = _judged_parts(changed, gate, embedder, registration, refs, k, bank)
    return changed, forced | (twin > threshold)


#: the not-a-part inputs per kind (the design kinds, seed 0) a surface's appearance check is decided on
SURFACE_NOT_A_PART = 20


def surface_appearance(gate, embedder, images, labels, split, good_label, refs, k: int, threshold: float,
                       bank=None) -> dict:
    """On a surface without a fixed layout, does the pixel appearance check keep anything that is not the part from
    passing? If not, it is switched off (``gate.t_app`` infinite) and the texture check alone says whether an image
    is this surface.

    Every crop of a surface shares grain with others, and the appearance check's model (the train images' principal
    components) and its threshold (set on val crops) learn the very surface the run was shown: good parts cut from
    surface it has not seen fail it (docs/real-data.md, section 31). On a smooth surface it still stops inputs
    nothing else stops. So the run judges the not-a-part design kinds (:data:`snw_core.notapart.KINDS` but the
    surface turned upside down, :data:`SURFACE_NOT_A_PART` of each, seed 0: the not-a-part check of training draws
    seed 1) with its references, threshold, gate and patch bank, with the appearance check and without it. Where
    not one more input passes without it, it is switched off. Changes ``gate.t_app`` in place; returns what was
    found (metrics.json key ``surface_appearance``)."""
    from . import notapart
    goods = images[(split == "train") & (labels == good_label)]
    x, _ = notapart.not_a_part(gate.image_shape, goods, n_per_kind=SURFACE_NOT_A_PART, seed=0,
                               kinds=notapart.SURFACE_KINDS)
    _, caught_with = _judged_changed(x, gate, embedder, None, refs, k, threshold, bank)
    t_app = gate.t_app
    gate.t_app = float("inf")
    _, caught_without = _judged_changed(x, gate, embedder, None, refs, k, threshold, bank)
    more = int((caught_with & ~caught_without).sum())
    report = {"used": more == 0, "n": int(len(x)), "passed_without": int((~caught_without).sum()),
              "passed_with": int((~caught_with).sum())}
    if more:
        gate.t_app = t_app
        return {**report, "reason": f"kept: without it {more} more of {len(x)} not-a-part inputs would pass"}
    return {**report, "reason": f"off: a surface without a fixed layout, and without it no more of {len(x)} "
                                "not-a-part inputs pass; the texture check says whether an image is this surface"}


#: the noise guard's ladder: Gaussian sensor noise of these sds (grey levels) on the val items, in turn, until
#: the run catches fewer than GUARD_CAUGHT of the noisy val defects
NOISE_LADDER = (8.0, 16.0, 24.0, 32.0, 48.0)
#: where the run has no appearance check (a surface whose run switched it off: :func:`surface_appearance`), a noise
#: level also fails where fewer than this share of the noisy val goods pass: the run then rejects most good parts
#: under that noise, no longer tells them from defects, and its few GOOD verdicts there are guesses. With the check,
#: the heaviest noise is not recognised as the part; without it, gravel under noise of sd 30 passed as GOOD
GUARD_GOODS = 0.5


def noise_guard(gate, embedder, registration, raw_images, images, labels, split, good_label, refs, k: int,
                threshold: float, bank=None, seed: int = 0) -> dict:
    """Up to what sensor noise does this run still catch its defects? Noisier images are judged UNKNOWN.

    The val items get Gaussian noise of each sd of :data:`NOISE_LADDER` in turn (seeded; registered as the judge
    would) and are judged with the run's references, threshold, gate and patch bank. At the first sd where fewer
    than :data:`GUARD_CAUGHT` of the noisy val defects are caught (noise hides a defect, or makes the twin guess),
    or, for a run without its appearance check (``gate.t_app`` infinite), fewer than :data:`GUARD_GOODS` of the
    noisy val goods pass (the twin guesses the other way),
    the gate's ``max_noise`` becomes the relative noise (:func:`~snw_core.gate.relative_noise`, measured as the gate
    measures it, after registration) that best tells that level's val items from the last level the run held (the
    clean train and val items where none held): the fewest of either on the wrong side. Never below the clean
    items' 99.9th percentile. A part under such noise is UNKNOWN, "too noisy", instead of a verdict the run cannot
    give. A run that holds every level keeps no limit (its gate's appearance check, or its goods, see the heaviest
    noise).
    Changes ``gate.max_noise`` in place; returns what was found (metrics.json key ``noise_guard``).
    """
    from .drift import apply as drift_apply
    from .gate import relative_noise

    val = np.flatnonzero(split == "val")
    is_def = labels[val] != good_label
    goods_too = not np.isfinite(getattr(gate, "t_app", 0.0)) and bool((~is_def).any())
    report = {"ladder": list(NOISE_LADDER), "min_caught": GUARD_CAUGHT, "used": False, "caught": {}}
    if goods_too:
        report.update(min_goods_passed=GUARD_GOODS, goods_passed={})
    if not is_def.any():
        return {**report, "reason": "no defective val items to test with"}
    fit = (split == "train") | (split == "val")
    clean = relative_noise(images[fit])
    held = clean
    floor = float(np.quantile(clean, 0.999))
    for j, sd in enumerate(NOISE_LADDER):
        noisy, caught = _judged_changed(drift_apply(raw_images[val], "noise", sd, seed=(seed + 1) * 7919 + j), gate,
                                        embedder, registration, refs, k, threshold, bank)
        rate = float(caught[is_def].mean())
        report["caught"][f"{sd:g}"] = round(rate, 4)
        passed = float(1.0 - caught[~is_def].mean()) if goods_too else 1.0
        if goods_too:
            report["goods_passed"][f"{sd:g}"] = round(passed, 4)
        rel = relative_noise(noisy)
        if rate < GUARD_CAUGHT or passed < GUARD_GOODS:
            limit = max(_boundary(held, rel), floor)
            if gate.max_noise and gate.max_noise <= limit:
                return {**report, "reason": "the noise limit already lies below the images it fails on"}
            gate.max_noise = limit
            why = (f"the run catches only {rate:.0%} of the val defects under noise of sd {sd:g}" if rate < GUARD_CAUGHT
                   else f"without its appearance check the run passes only {passed:.0%} of the val goods under noise "
                        f"of sd {sd:g} (it no longer tells them from defects)")
            return {**report, "used": True, "failed_sd": sd, "max_noise": round(limit, 4),
                    "reason": f"{why}: images noisier than {limit:.3f} (noise sd over grey-level spread) are judged "
                              "UNKNOWN (too noisy)"}
        held = rel
    return {**report, "reason": f"the run catches at least {GUARD_CAUGHT:.0%} of the val defects up to noise of sd "
                                f"{NOISE_LADDER[-1]:g}" + (f" and passes at least {GUARD_GOODS:.0%} of its goods"
                                                           if goods_too else "")}


def _boundary(low, high) -> float:
    """The value that best tells two samples apart (``low`` below it, ``high`` above): the fewest of ``low`` above
    plus ``high`` at or below it, each as a share of its sample; the middle of the best run of candidates."""
    low, high = np.sort(np.asarray(low, np.float64)), np.sort(np.asarray(high, np.float64))
    cand = np.unique(np.concatenate([low, high]))
    below_low = np.searchsorted(low, cand, side="right") / len(low)
    err = (1.0 - below_low) + np.searchsorted(high, cand, side="right") / len(high)
    best = np.flatnonzero(err == err.min())
    i, j = best[0], best[-1]
    nxt = cand[j + 1] if j + 1 < len(cand) else cand[j]
    return float(0.5 * (cand[i] + nxt))


#: the noise rule's val copies: Gaussian sensor noise of an sd drawn uniformly from this range for each val item
NOISE_RULE_SD = (4.0, 16.0)


def fit_noise_rule(gate, embedder, registration, raw_images, images, labels, split, good_label, refs, k: int,
                   threshold: float, bank=None, seed: int = 0) -> dict:
    """A rule of its own for images noisier than the run's train and val images (see
    :func:`snw_core.judge.apply_noise_rule`), learned on noisy copies of the val items.

    Sensor noise moves a good part's embedding away from the good references, so the twin's score alone rejects
    noisy good parts, while the gate's local evidence, divided by its own mean, stays calm on them. Every val item
    gets noise of an sd drawn from :data:`NOISE_RULE_SD` (seeded), is registered and judged as the judge would; of
    the copies noisier than the clean train and val images' 99.9th percentile (``min_noise``, relative noise), the
    pair (``twin`` >= the threshold, ``local`` in [0, 1]) is chosen with the best accuracy for the rule "DEFECT when
    the gate rejects, or the score is above ``twin``, or above the threshold with local evidence above ``local``"
    (ties: the lowest ``twin``, then ``local``: the fewest escapes). Used only where it is more accurate on those
    copies than the plain threshold. Returns the record for metrics.json's ``noise_rule``.
    """
    from .gate import relative_noise

    val = np.flatnonzero(split == "val")
    is_def = labels[val] != good_label
    report = {"used": False, "sd": list(NOISE_RULE_SD)}
    if not is_def.any() or is_def.all():
        return {**report, "reason": "the val split needs goods and defects"}
    fit = (split == "train") | (split == "val")
    min_noise = float(np.quantile(relative_noise(images[fit]), 0.999))
    rng = np.random.default_rng([seed, 15485863])
    sds = rng.uniform(*NOISE_RULE_SD, len(val))
    noisy = np.clip(np.rint(raw_images[val] + rng.normal(0.0, 1.0, raw_images[val].shape) * sds[:, None, None]),
                    0, 255).astype(np.uint8)
    _, c, twin, forced = _judged_parts(noisy, gate, embedder, registration, refs, k, bank)
    above = c["noise"] > min_noise
    if above.sum() < 10 or not is_def[above].any() or is_def[above].all():
        return {**report, "min_noise": round(min_noise, 4), "reason": "too few noisy val copies above the clean images"}
    twin, local, forced, d = twin[above], np.asarray(c["local"])[above], forced[above], is_def[above]
    plain = float(np.mean((forced | (twin > threshold)) == d))
    best = (plain, threshold, 0.0)
    t_cand = np.unique(twin[twin > threshold])
    l_cand = np.unique(np.concatenate([[0.0], local[(local > 0) & (local <= 1)]]))
    over = twin[None, :] > threshold
    for t in t_cand[::max(1, len(t_cand) // 300)]:
        rej = forced[None, :] | (twin[None, :] > t) | (over & (local[None, :] > l_cand[:, None]))
        acc = np.mean(rej == d[None, :], axis=1)
        j = int(np.argmax(acc))                   # the first maximum: the lowest local
        if acc[j] > best[0]:
            best = (float(acc[j]), float(t), float(l_cand[j]))
    accuracy, t_hi, l_mid = best
    record = {**report, "min_noise": round(min_noise, 4), "copies": int(above.sum()),
              "max_noise": float(np.ceil(c["noise"][above].max() * 1e4) / 1e4),   # the noisiest copy, rounded up
              "val_accuracy_plain": round(plain, 4), "val_accuracy": round(accuracy, 4)}
    if accuracy <= plain:
        return {**record, "reason": f"on {int(above.sum())} noisy val copies no rule beats the plain threshold "
                                    f"({plain:.1%})"}
    return {**record, "used": True, "twin": t_hi, "local": l_mid,
            "reason": f"on {int(above.sum())} noisy val copies: {plain:.1%} -> {accuracy:.1%} right when a noisy "
                      f"image's score counts above {t_hi:.3f}, or above the threshold with local evidence above "
                      f"{l_mid:.2f}"}


#: the pixel comparison places the heat map by itself where at least this share of the val defects show pixel
#: evidence above its threshold; below it the patch bank is kept for the location too
LOCATION_PIXEL_SHARE = 0.9
#: below this share the pixel comparison is blind on most val defects: the patch map then places every verdict
#: whose pixel evidence stays within the good parts' (``PatchBank.places_weak``), whether or not its threshold is
#: used (where it was left to the higher peak, gravel whose test is new surface lost 1-15 % of its caught defects'
#: locations to grain: docs/real-data.md, section 32)
PIXEL_BLIND_SHARE = 0.5


def patch_location(patch: dict, local, labels, split, good_label) -> dict:
    """Is the patch bank kept? Where its threshold is used (it changes verdicts), and where the gate's pixel
    comparison with the most similar good parts shows evidence above its threshold on fewer than
    :data:`LOCATION_PIXEL_SHARE` of the val defects (a random texture: the pixel map points at grain as often as at
    the defect), so that the heat map and the location come from the more unusual of the two maps
    (:func:`snw_core.judge.add_patch_evidence`). Returns what was found (metrics.json key ``patch_location``)."""
    val_def = (split == "val") & (labels != good_label)
    share = float(np.mean(np.asarray(local)[val_def] > 1.0)) if val_def.any() else 1.0
    used = bool(np.isfinite(patch["bank"].threshold))
    kept = used or share < LOCATION_PIXEL_SHARE
    weak = kept and share < PIXEL_BLIND_SHARE
    why = ("its threshold is used for the verdict" + (f"; the pixel comparison shows evidence on only {share:.0%} of "
                                                      "the val defects" if weak else "") if used else
           f"the pixel comparison shows evidence on only {share:.0%} of the val defects" if kept else
           f"the pixel comparison shows evidence on {share:.0%} of the val defects and places the heat map alone")
    if weak:
        why += ": the patch map places every verdict whose pixel evidence stays within the good parts'"
    return {"kept": kept, "threshold_used": used, "val_defects_with_pixel_evidence": round(share, 4),
            "places_weak": weak, "reason": ("patch bank kept: " if kept else "patch bank not kept: ") + why}


def drift_copies(embedder, gate, images, labels, split, good_label, augment: str, seed: int, left_out=None,
                 filled=None) -> dict:
    """With a training augmentation, one drifted copy of every train good and val item: one change of the
    envelope at half to full strength (:func:`snw_core.augment.envelope_copies`).

    The train goods' copies join the good references (``ref_extra``: embeddings, ``ref_extra_rows``: the row of
    the item each was made from), so a drifted part at the line finds drifted good parts near it; the val
    copies (``val_extra``: embeddings, is_defect, forced = the gate's rejections) join the val split when the
    threshold is chosen, so it holds under the drift the twin was trained for. Empty dict without augmentation.
    ``filled``: the pixels registration filled in ``images`` (bool (n, h, w)) or None; a copy keeps its item's.
    """
    if augment == "none":
        return {}
    from .augment import envelope_copies
    from .embed import embed_images
    tr_good = (split == "train") & (labels == good_label)
    tr_good = np.flatnonzero(tr_good if left_out is None else tr_good & ~np.asarray(left_out, bool))
    val = np.flatnonzero(split == "val")
    rows = np.concatenate([tr_good, val])
    drifted = envelope_copies(images[rows], np.random.default_rng([seed, 104729]), augment)
    emb = embed_images(embedder, drifted)
    c = gate.check(drifted[len(tr_good):], filled=None if filled is None else filled[val]) if len(val) else None
    out = {"ref_extra": emb[:len(tr_good)], "ref_extra_rows": tr_good.astype(np.int64)}
    if c is not None:
        out["val_extra"] = {"emb": emb[len(tr_good):], "is_defect": labels[val] != good_label,
                            "forced": c["unknown"] | c["local_defect"]}
    return out


def delivered_val(embedder, gate, raw_images, labels, split, good_label, drift: dict) -> dict:
    """With registration, the val items also as the camera delivered them (not registered) join the val split
    when the threshold is chosen (``val_extra``, merged with the drifted copies of an augmentation): aligned val
    goods sit closer to the references than parts at the line do before they are aligned, and a threshold chosen
    on aligned items alone would leave no room for blur, noise or JPEG. Returns ``drift`` with them added."""
    from .embed import embed_images
    val = np.flatnonzero(split == "val")
    if not len(val):
        return drift
    c = gate.check(raw_images[val])
    extra = {"emb": embed_images(embedder, raw_images[val]), "is_defect": labels[val] != good_label,
             "forced": c["unknown"] | c["local_defect"]}
    out = dict(drift)
    if "val_extra" in drift:
        out["val_extra"] = {k: np.concatenate([drift["val_extra"][k], extra[k]]) for k in extra}
    else:
        out["val_extra"] = extra
    return out


def fit_patches(embedder, images, labels, split, good_label, emb, checks, settings, ref_extra=None,
                fitted=None, left_out=None) -> dict:
    """The run's patch memory bank (:mod:`snw_core.patches`) and every item's patch score, with the patch
    threshold chosen together with the twin's on val. Empty dict for a twin without conv features.

    ``fitted`` : ``(bank, scores)`` of an earlier call for the same twin and images: only the threshold is chosen
    again (with the gate's checks as they are now). Scoring every item against the bank is the costly part (5.5 s
    for 3,000 items on 2 cores)."""
    from .embed import feature_maps
    from .metrics import knn_scores
    from .patches import PatchBank, choose_patch_threshold, feature_layer

    tr_good = (split == "train") & (labels == good_label)
    if fitted is not None:
        bank, pscore = fitted
    else:
        layer = feature_layer(embedder)
        if layer is None:
            return {}
        feats = feature_maps(embedder, images, layer)
        bank = PatchBank.fit(feats[tr_good], seed=settings["seed"])
        pscore, _ = bank.score(feats)
    val = split == "val"
    if not val.any() or tr_good.sum() < 1:
        return {"bank": bank, "scores": pscore, "defect": np.zeros(len(pscore), bool)}
    twin_refs = tr_good if left_out is None else tr_good & ~np.asarray(left_out, bool)   # the twin's references
    refs = emb[twin_refs] if ref_extra is None else np.concatenate([emb[twin_refs], ref_extra])
    twin_val = knn_scores(refs, emb[val], k=settings["k"])
    forced = checks["unknown"][val] | checks["local_defect"][val]
    bank.threshold, _, _ = choose_patch_threshold(pscore[val], twin_val, labels[val] != good_label, forced,
                                                  settings["threshold_method"], settings["max_escape"])
    return {"bank": bank, "scores": pscore, "defect": pscore > bank.threshold}


def val_twin_auroc(train_emb, train_labels, val_emb, val_labels, good_label: str, k: int) -> float:
    """How well the twin ranks the val items as it stands: AUROC of the mean distance to the ``k`` nearest train
    goods, defects against goods (NaN without both)."""
    from .metrics import auroc, knn_scores
    good = np.asarray(train_labels) == good_label
    is_def = np.asarray(val_labels) != good_label
    if not good.any() or is_def.all() or not is_def.any():
        return float("nan")
    return float(auroc(knn_scores(train_emb[good], val_emb, k=min(k, int(good.sum()))), is_def))


def early_stopping(settings: dict, registration) -> dict:
    """Whether a run stops early on its val pair loss and keeps the best weights (metrics.json ``early_stopping``).

    Not on a surface without a fixed layout (:func:`snw_core.register.no_layout`) where the twin is convolutional:
    its verdict rests on the patch bank, the twin's local features (:mod:`snw_core.patches`), and those go on
    improving after the val pair loss, which measures the embedding of whole images, has turned. Measured on gravel
    whose val and test are surface the run has never seen (``data real --disjoint``): the best-val-loss weights,
    restored at epoch 5, 85.57 % good/defect and patch AUROC 0.936 on test; the whole budget (15 epochs), 91.61 %
    and 0.974 (docs/real-data.md, section 32). Everywhere else the preset's ``early_stopping_patience`` holds.
    """
    from .register import no_layout
    patience = int(settings["early_stopping_patience"])
    if not patience:
        return {"used": False, "patience": 0, "reason": "early_stopping_patience = 0"}
    if settings.get("twin") == "conv" and no_layout(settings.get("register", "off"), registration):
        return {"used": False, "patience": 0,
                "reason": "a surface without a layout: its verdict rests on the patch bank, whose local features go "
                          "on improving after the val pair loss has turned; the whole epoch budget is trained"}
    return {"used": True, "patience": patience, "reason": f"the val pair loss, patience {patience} epochs"}


def stretch_decision(val_auroc: float, stretch_epochs: int) -> int:
    """Extra epochs for a run whose twin, halfway through its budget, ranks the val items below
    :data:`STRETCH_BELOW_AUROC`: a surface it has not learnt yet (a strongly grained texture ranks at 0.1-0.9 there,
    a connector or a smooth surface at 0.97-1.0; docs/real-data.md, section 27). No AUROC, no stretch.

    >>> stretch_decision(0.77, 5), stretch_decision(0.98, 5), stretch_decision(float("nan"), 5), stretch_decision(0.5, 0)
    (5, 0, 0, 0)
    """
    return int(stretch_epochs) if np.isfinite(val_auroc) and val_auroc < STRETCH_BELOW_AUROC else 0


def took_off(val_pair_accuracy: float, train_pair_accuracy: float) -> bool:
    """Whether a twin has left its plateau: the seed-scheme pair accuracy of the val items *and* of the train
    items reaches :data:`TAKEOFF_PAIR_ACCURACY`. The val split alone decides on a large data set (a twin tells
    its own training images apart first); on a small one (a few dozen val items) the val pair accuracy jumps
    from epoch to epoch and can reach the level by chance while the twin has learnt nothing yet, and the
    budget would then run out before it does (``docs/what-was-tried.md``, "Take-off on a small data set").

    >>> took_off(0.62, 0.55), took_off(0.62, 0.70), took_off(0.58, 0.90)
    (False, True, False)
    """
    return min(float(val_pair_accuracy), float(train_pair_accuracy)) >= TAKEOFF_PAIR_ACCURACY


def scheduled_lr(base: float, schedule: str, step: int | None, total_steps: int) -> float:
    """The learning rate of one batch: ``base`` before the budget starts (``step`` None) or with a constant
    schedule; cosine from ``base`` down to ``COSINE_FLOOR * base`` over ``total_steps`` batches otherwise.

    >>> scheduled_lr(0.002, "cosine", None, 100), scheduled_lr(0.002, "cosine", 0, 100)
    (0.002, 0.002)
    >>> round(scheduled_lr(0.002, "cosine", 100, 100), 6), scheduled_lr(0.002, "constant", 50, 100)
    (0.0001, 0.002)
    """
    if step is None or schedule == "constant":
        return float(base)
    t = min(1.0, step / max(1, total_steps))
    return float(base * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + np.cos(np.pi * t))))


def _np_contrastive(y, d, margin):
    y = np.asarray(y, np.float64)
    return (1 - y) / 2 * d ** 2 + y / 2 * np.maximum(0.0, margin - d) ** 2


class _Log:
    """Terminal progress (a one-line bar on a TTY, a line per epoch otherwise)."""

    def __init__(self, quiet=False, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()

    def msg(self, text):
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def batch(self, epoch, epochs, b, nb, loss):
        if self.quiet or not self.tty:
            return
        w = 30
        done = int(w * b / max(nb, 1))
        loss_s = f" loss {loss:.4f}" if loss is not None else ""
        print(f"\repoch {epoch}/{epochs} [{'#' * done}{'.' * (w - done)}] {b}/{nb}{loss_s}   ", end="",
              file=self.stream, flush=True)

    def epoch(self, row, epochs):
        if self.tty and not self.quiet:
            print(file=self.stream)
        self.msg(f"epoch {int(row['epoch'])}/{epochs}: loss {row['loss']:.4f}  val_loss {row['val_loss']:.4f}  "
                 f"pair_acc {row['pair_accuracy']:.3f}  val_pair_acc {row['val_pair_accuracy']:.3f}  ({row['seconds']:.1f} s)")


def twin_pool_side(settings: dict, registration) -> int:
    """The ``pool_side`` the twin is built with (:func:`snw_core.model.build_embedder`): the ``grid_pool`` setting
    where the surface has no layout (registration ``auto`` found none to align to) and the twin is convolutional,
    else 0. A part with a layout keeps every position of its feature map: where a pin sits is what it is judged on."""
    from .register import no_layout
    surface = no_layout(settings.get("register", "off"), registration)
    return int(settings.get("grid_pool", 0)) if surface and settings.get("twin") == "conv" else 0


def train(source: str = "default", preset: str = "default", good_label: str = "0", name: str | None = None,
          runs_dir=None, projection: str = "umap", quiet: bool = False, prepared: Prepared | None = None,
          run_id: str | None = None, sweep: dict | None = None, **overrides):
    """Train one run end to end. Returns ``(run, state)`` with state ``done`` or ``stopped``.

    ``sweep``: ``{"id": ..., "trial": ...}`` of a sweep trial, stored as ``config["sweep"]``.

    Bad input raises DataError/SettingsError before the run folder exists. Any later error marks the run
    ``failed`` (with the error text) and is re-raised.
    """
    log = _Log(quiet)
    prep = prepared or prepare(source, preset, good_label, **overrides)
    settings = prep.settings
    store = RunStore(runs_dir)
    run = store.create(name=name or settings["preset"], run_id=run_id)
    ds = prep.ds
    config = {
        "run_id": run.id, "name": name or "", "preset": settings["preset"], "settings": settings,
        "data": {"source": ds.source, "content_hash": ds.content_hash, "good_label": ds.good_label, "n": ds.n,
                 "image_shape": list(ds.image_shape), "labels": ds.label_names,
                 "own_split": ds.splits is not None},
        "split_counts": {k: int(v.size) for k, v in prep.idx.items()},
        "eval_pairs_per_image": EVAL_PAIRS_PER_IMAGE, "projection": projection,
        "versions": package_versions(), "command": sys.argv, "host": platform.node(), "created": now_iso(),
    }
    config.update(getattr(prep, "extra_config", None) or {})     # e.g. the corrections applied on load
    if sweep:
        config["sweep"] = dict(sweep)
    run.write_config(config)
    run.write_status("running", pid=os.getpid(), pid_start=_proc_start(os.getpid()), host=platform.node(),
                     started=now_iso())
    log.msg(f"run {run.id}: preset {settings['preset']}, data {ds.source} ({ds.n} items, {ds.image_shape[0]}x"
            f"{ds.image_shape[1]}), split {config['split_counts']}"
            + (" (the data set's own: its 'split' column)" if ds.splits is not None else ""))
    for warning in ds.warnings:
        log.msg(f"data: {warning}")
    prev = signal.getsignal(signal.SIGTERM) if _main_thread() else None
    try:
        state = _fit_and_evaluate(run, prep, projection, log)
    except BaseException as e:
        state = "stopped" if isinstance(e, KeyboardInterrupt) else "failed"
        run.write_status(state, error=None if state == "stopped" else f"{type(e).__name__}: {e}",
                         traceback=None if state == "stopped" else traceback.format_exc(limit=8), ended=now_iso())
        raise
    finally:
        if prev is not None:
            signal.signal(signal.SIGTERM, prev)
    return run, state


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def _fit_and_evaluate(run, prep, projection, log) -> str:
    settings, ds = prep.settings, prep.ds
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t_import = time.time()
    import keras
    from . import model as M
    from .embed import embed_images, project_pca, project_umap, save_embeddings, save_projection
    from .gate import GATE_FILE
    from .metrics import doubtful_goods, evaluate_embeddings, pair_accuracy
    from .patches import PATCH_FILE
    log.msg(f"keras {keras.__version__} ready in {time.time() - t_import:.1f} s")
    keras.utils.set_random_seed(settings["seed"])

    seed = settings["seed"]
    labels = ds.labels
    eval_pairs = {part: make_pairs(labels[prep.idx[part]], EVAL_PAIRS_PER_IMAGE, seed=seed + i + 1)
                  for i, part in enumerate(("train", "val", "test"))}
    factor = M.working_factor(settings.get("work_side", 0), ds.image_shape)
    if factor > 1:
        h, w = ds.image_shape
        log.msg(f"working size: the twin sees the {h} x {w} px images averaged down to {-(-h // factor)} x "
                f"{-(-w // factor)} px ({factor} x {factor} px a pixel, work_side {settings['work_side']}); "
                "registration, the pixel checks and the heat maps keep the full resolution")
    tr = prep.idx["train"]
    x_train = ds.images[tr]
    # the layout first: where there is none to align to, a surface's mirror images are training data too, and the
    # twin pools its feature map by regions (the grid pool)
    from .register import REGISTER_FILE, fit_registration
    if settings.get("register", "off") != "off":    # minutes on large images (a pose search of every image, twice)
        run.append_progress({"kind": "phase", "phase": "registration"})
    registration, reg_report = fit_registration(ds.images, labels, prep.split, ds.good_label,
                                                settings.get("register", "off"), seed=seed)
    pool_side = twin_pool_side(settings, registration)
    embedder = (M.build_classifier(settings, ds.image_shape, len(prep.classes), pool_side=pool_side)
                if settings["pairing"] == "classify" else M.build_embedder(settings, ds.image_shape, pool_side=pool_side))
    grid_pool_report = {"used": False, "pool_side": pool_side}
    if "grid_pool" in [layer.name for layer in embedder.layers]:
        layer = embedder.get_layer("grid_pool")
        (mh, mw), (ph, pw) = layer.input.shape[1:3], layer.output.shape[1:3]
        grid_pool_report = {"used": True, "pool_side": pool_side, "factor": int(layer.pool_size[0]),
                            "map": [int(mh), int(mw)], "pooled": [int(ph), int(pw)]}
        log.msg(f"grid pool: a surface without a layout: the twin max-pools its {mh} x {mw} feature map by "
                f"{layer.pool_size[0]} to {ph} x {pw} cells before its projection (grid_pool {pool_side})")
    mirror, mirror_report = {}, {"used": False, "axes": [], "reason": "the seed scheme's pairs are not mirrored"}
    if settings["pairing"] != "pairs":
        from .mirror import decide
        mirror, mirror_report = decide(run.config(), sorted(prep.classes), ds.good_label, ds.image_shape,
                                       settings.get("register", "off"), registration)
    if mirror:
        log.msg(f"mirror images: on ({mirror_report['reason']})")
    if settings["pairing"] == "pairs":
        ia, ib, y = make_pairs(labels[tr], settings["pairs_per_image"], seed=seed)
        fit_x, fit_y = [x_train[ia], x_train[ib]], y.astype(np.float32)
        net = M.build_siamese(embedder)
        loss, metrics = M.ContrastiveLoss(settings["margin"]), [M.PairAccuracy()]
        n_units = y.size
    else:
        # class-balanced batches of single images (K of every label), all pairs inside a batch
        from .sampling import balanced_sequence
        fit_x, fit_y = balanced_sequence(x_train, prep.class_ids[tr].astype(np.int32), settings["batch_size"], seed=seed,
                                         augment=settings.get("augment", "none"), mirror=mirror,
                                         augment_noise=settings.get("augment_noise", 0.0)), None
        net = embedder
        loss, metrics = M.InBatchContrastiveLoss(settings["margin"]), []
        if settings["pairing"] == "classify":       # the classifier baseline: same batches, cross-entropy
            loss = keras.losses.SparseCategoricalCrossentropy()
        n_units = None
    steps = len(fit_x) if n_units is None else int(np.ceil(n_units / settings["batch_size"]))
    net.compile(optimizer=keras.optimizers.Adam(learning_rate=settings["learning_rate"]), loss=loss, metrics=metrics)

    ProgressWriter, StopOnRequest, PairValidation, EpochBudget, WeightAverage = _make_callbacks(run, prep, keras,
                                                                                                eval_pairs, log)
    stopper = StopOnRequest()
    budget = EpochBudget(steps)
    validation = PairValidation(embedder, budget, stopper)
    stopping = early_stopping(settings, registration)
    validation.patience = stopping["patience"]
    if settings["early_stopping_patience"] and not stopping["used"]:
        log.msg(f"early stopping: off ({stopping['reason']})")
    # the average's callback before the validation's: each epoch is validated (and its best kept) as averaged
    average = [WeightAverage(embedder, settings["ema"])] if settings.get("ema", 0.0) > 0 else []
    if _main_thread():
        def on_term(signum, frame):
            stopper.signalled = True
        signal.signal(signal.SIGTERM, on_term)
    max_epochs = settings["epochs"] + settings["plateau_epochs"] + settings["stretch_epochs"]
    run.append_progress({"kind": "phase", "phase": "training", "epochs": budget.total(0), "batches": steps,
                         "max_epochs": max_epochs})
    t0 = time.time()
    batching = {} if fit_y is None else {"batch_size": settings["batch_size"], "shuffle": True}
    net.fit(fit_x, fit_y, epochs=max_epochs, verbose=0,
            callbacks=[budget, ProgressWriter(budget, steps), stopper, *average, validation], **batching)
    train_seconds = time.time() - t0
    state = "stopped" if stopper.stopped else "done"
    restored = validation.restore_best()
    log.msg(f"training {state} after {train_seconds:.1f} s" + (" (best-val-loss weights restored)" if restored else ""))

    run.append_progress({"kind": "phase", "phase": "evaluating"})
    M.save_embedder(embedder, run.embedder_path)
    # every image as the judge will see it: registered where the data has a layout to align to
    if registration is not None:
        images, _, applied = registration.apply(ds.images)
        registration.save(run.file(REGISTER_FILE))
    else:
        images, applied = ds.images, None
    filled = registration.unknown_pixels(applied) if registration is not None else None
    log.msg("registration: " + ("on" if registration is not None else "off") + f" ({reg_report['reason']})")
    if registration is None and settings.get("augment", "none") != "none":
        log.msg("note: a training augmentation on images without a fixed layout; on a random surface texture it was "
                "measured worse than none (docs/real-data.md, section 7): compare with a run of the default preset")
    t_emb = time.time()
    emb = embed_images(embedder, images)
    embed_seconds = time.time() - t_emb
    # train goods the twin places among the defects (a defect filed as good) are not the twin's good references;
    # val goods it places there leave the local threshold more easily
    doubtful = doubtful_goods(emb, labels, prep.split, ds.good_label, parts=("train", "val"))
    left_out = doubtful & (prep.split == "train")
    if left_out.any():
        log.msg(f"references: {int(left_out.sum())} train item(s) filed as good lie among defects in the embedding "
                "and are not used as good references")
    run.append_progress({"kind": "phase", "phase": "gate"})
    gate, checks = fit_gate(images, labels, prep.split, ds.good_label, augment=settings.get("augment", "none"),
                            seed=seed, doubtful=doubtful, filled=filled)
    gate.save(run.file(GATE_FILE))
    if registration is not None:              # a part flipped in the fixture is DEFECT, as the judge says
        checks["local_defect"] = checks["local_defect"] | registration.flipped(images)
    if applied is not None:                   # locations on the source images' pixels
        checks["defect_y"], checks["defect_x"] = registration.point_to_input(checks["defect_y"], checks["defect_x"],
                                                                             applied)
    fitted = {}

    def downstream():
        """The drifted and delivered val copies, the patch bank and the metrics, from the gate as it stands (a
        second call, after the focus guard moved the gate's limit, reuses the bank and its scores)."""
        d = drift_copies(embedder, gate, images, labels, prep.split, ds.good_label, settings.get("augment", "none"),
                         seed, left_out=left_out, filled=filled)
        if registration is not None:
            d = delivered_val(embedder, gate, ds.images, labels, prep.split, ds.good_label, d)
        p = fit_patches(embedder, images, labels, prep.split, ds.good_label, emb, checks, settings, d.get("ref_extra"),
                        fitted=fitted.get("patches"), left_out=left_out)
        if p:
            fitted["patches"] = (p["bank"], p["scores"])
        m, sc = evaluate_embeddings(emb, labels, prep.split, good_label=ds.good_label, k=settings["k"],
                                    threshold_method=settings["threshold_method"], max_escape=settings["max_escape"],
                                    unknown=checks["unknown"],
                                    local_defect=checks["local_defect"] | p["defect"] if p else checks["local_defect"],
                                    ref_extra=d.get("ref_extra"), val_extra=d.get("val_extra"), left_out=left_out)
        return d, p, m, sc

    drift, patch, metrics_, scores = downstream()
    tr_good = (prep.split == "train") & (labels == ds.good_label) & ~left_out

    def good_refs(d):
        return emb[tr_good] if "ref_extra" not in d else np.concatenate([emb[tr_good], d["ref_extra"]])

    refs = good_refs(drift)
    from .register import no_layout
    surface = None
    if no_layout(settings.get("register", "off"), registration):
        surface = surface_appearance(gate, embedder, images, labels, prep.split, ds.good_label, refs, settings["k"],
                                     metrics_["threshold"], patch["bank"] if patch else None)
        log.msg("appearance check: " + surface["reason"])
        if surface["used"]:                   # off: in the gate file and in every item's verdict
            gate.save(run.file(GATE_FILE))
            from .gate import unknown_of
            checks["appearance"] = np.zeros(len(images))
            checks["unknown"] = unknown_of(checks)
            drift, patch, metrics_, scores = downstream()
            refs = good_refs(drift)
    # the guards' limits, like the gate's, are not set by images far from every other image (a camera fault)
    guard_split = prep.split if gate.set_aside_mask is None else np.where(gate.set_aside_mask, "set_aside", prep.split)
    guard = focus_guard(gate, embedder, registration, ds.images, images, labels, guard_split, ds.good_label, refs,
                        settings["k"], metrics_["threshold"], patch["bank"] if patch else None)
    log.msg("focus guard: " + guard["reason"])
    if guard["used"]:                         # the new focus limit, in the gate file and in every item's verdict
        gate.save(run.file(GATE_FILE))
        from .gate import sharpness
        blurred = ~checks["flat"] & (sharpness(images) < gate.min_sharp)
        checks["blurred"], checks["unknown"] = blurred, checks["unknown"] | blurred
        drift, patch, metrics_, scores = downstream()
    noise = noise_guard(gate, embedder, registration, ds.images, images, labels, guard_split, ds.good_label, refs,
                        settings["k"], metrics_["threshold"], patch["bank"] if patch else None, seed)
    log.msg("noise guard: " + noise["reason"])
    if noise["used"]:                         # the new noise limit, in the gate file and in every item's verdict
        gate.save(run.file(GATE_FILE))
        from .gate import relative_noise
        noisy = ~checks["flat"] & (relative_noise(images) > gate.max_noise)
        checks["noisy"], checks["unknown"] = noisy, checks["unknown"] | noisy
        drift, patch, metrics_, scores = downstream()
    rule = fit_noise_rule(gate, embedder, registration, ds.images, images, labels, prep.split, ds.good_label, refs,
                          settings["k"], metrics_["threshold"], patch["bank"] if patch else None, seed)
    log.msg("noise rule: " + rule["reason"])
    location = patch_location(patch, checks["local"], labels, prep.split, ds.good_label) if patch else None
    if location:
        log.msg(location["reason"])
    if location and location["kept"]:         # it costs time per image: kept where it is used
        if not location["threshold_used"]:    # for the heat map alone: a smaller bank places the same defects
            from .embed import feature_maps
            from .patches import feature_layer
            goods = labels == ds.good_label
            rows = goods & (prep.split == "val") if (goods & (prep.split == "val")).any() else goods
            patch["bank"] = patch["bank"].for_location(
                feature_maps(embedder, images[rows], feature_layer(embedder)), seed)
            location["bank_vectors"] = int(len(patch["bank"].bank))
        patch["bank"].places_weak = location["places_weak"]     # threshold used or not (the bank file keeps it)
        patch["bank"].save(run.file(PATCH_FILE))
    te = prep.idx["test"]
    ia, ib, y = eval_pairs["test"]
    e_te = emb[te]
    metrics_ = {"pair_accuracy": pair_accuracy(np.linalg.norm(e_te[ia] - e_te[ib], axis=1), y), **metrics_,
                "train_seconds": round(train_seconds, 3), "epochs_run": len(validation.rows),
                "best_epoch": int(np.argmin([r["val_loss"] for r in validation.rows]) + 1) if validation.rows else 0,
                "best_weights_restored": restored, "takeoff_epoch": None if budget.forced else budget.takeoff, "budget_stretch": budget.stretch, "embed_ms_per_image": round(1000 * embed_seconds / ds.n, 4),
                "state": state}
    if settings["pairing"] == "classify":
        from .baselines import probability_metrics
        metrics_["p_good"] = probability_metrics(emb, labels, prep.split, prep.classes, ds.good_label)
    metrics_["gate"] = gate.thresholds()
    metrics_["surface_appearance"] = surface or {"used": False, "reason": "kept: the images have a fixed layout, or "
                                                 "registration was not asked to look for one"}
    metrics_["references_left_out"] = int(left_out.sum())
    metrics_["registration"] = reg_report
    metrics_["mirror"] = mirror_report
    metrics_["early_stopping"] = {k: v for k, v in stopping.items() if k != "patience"}
    metrics_["grid_pool"] = grid_pool_report
    metrics_["focus_guard"] = guard
    metrics_["noise_guard"] = noise
    metrics_["noise_rule"] = rule
    if location:
        metrics_["patch_location"] = location
    from .acquisition import profile as acquisition_profile
    metrics_["acquisition"] = acquisition_profile(ds.images[(prep.split == "train") | (prep.split == "val")])
    # the twin's score alone at its own val threshold: what a training run changes (the gate's checks do not
    # depend on the twin), so runs and sweeps can be compared on it too
    plain, _ = evaluate_embeddings(emb, labels, prep.split, good_label=ds.good_label, k=settings["k"],
                                   threshold_method=settings["threshold_method"], max_escape=settings["max_escape"],
                                   ref_extra=drift.get("ref_extra"), val_extra=drift.get("val_extra"),
                                   left_out=left_out)
    metrics_.update({f"score_only_{k}": plain[k] for k in ("good_defect_accuracy", "escape_rate", "overkill_rate",
                                                          "threshold")})
    if patch:
        te_ = prep.split == "test"
        metrics_["patch_threshold"] = patch["bank"].threshold if np.isfinite(patch["bank"].threshold) else None
        metrics_["patch_defect_rate"] = float(np.mean(patch["defect"][te_] & ~checks["unknown"][te_]
                                                      & ~(scores[te_] > metrics_["threshold"])))
        from .metrics import auroc as _auroc
        try:
            metrics_["patch_auroc"] = _auroc(patch["scores"][te_], labels[te_] != ds.good_label)
        except ValueError:          # a test split without goods or defects
            metrics_["patch_auroc"] = None
    save_embeddings(run.file("embeddings.npz"), emb, labels, prep.split, scores,
                    **{k: checks[k] for k in GATE_ITEM_KEYS},
                    **({"ref_extra": drift["ref_extra"], "ref_extra_rows": drift["ref_extra_rows"]} if "ref_extra" in drift else {}),
                    **({"patch": patch["scores"], "patch_defect": patch["defect"]} if patch else {}),
                    ref_left_out=left_out)
    run.write_metrics(metrics_)
    log.msg("test: " + ", ".join(f"{k} {metrics_[k]:.4f}" for k in
                                  ("pair_accuracy", "good_defect_accuracy", "escape_rate", "overkill_rate", "auroc")))
    # where the data says where its cells are: do the verdicts point there? (judges the test defects as the
    # dashboard does, from the files written above)
    from .localisation import evaluate as localise
    loc = localise(run, ds.images)
    if loc is not None:
        metrics_["localisation"] = loc
        run.write_metrics(metrics_)
        log.msg(f"localisation: {loc['share']:.1%} of {loc['caught']} caught test defects shown in their cell")
    # how the run holds when the camera drifts (fresh items of its kind, or its test split, under every condition of
    # `bench --drift`), and what it does with inputs that are not the part (none may pass): on every page and in
    # the report, so that a team knows before the line does
    run.append_progress({"kind": "phase", "phase": "drift_check"})
    from . import drift as camera_drift
    from . import notapart
    checks_after = (("drift_check", "camera drift", lambda: camera_drift.run_check(run, data=(ds.images, ds.labels)),
                     camera_drift.check_summary, lambda c: f"{c['items']}; "),
                    ("not_a_part_check", "not the part", lambda: notapart.run_check(run, ds.images),
                     notapart.check_summary, lambda c: ""))
    for key, what, check, summary, where in checks_after:
        t_c = time.time()
        try:
            metrics_[key] = check()
        except Exception as e:      # noqa: BLE001 - a check after the fact never costs the run its results
            log.msg(f"{what}: not checked ({type(e).__name__}: {e})")
        else:
            run.write_metrics(metrics_)
            log.msg(f"{summary(metrics_[key])} ({where(metrics_[key])}{time.time() - t_c:.1f} s)")
    from .metrics import run_warnings
    for note in run_warnings(metrics_, run.id):
        log.msg("WARNING: " + note)
    if projection != "none":
        run.append_progress({"kind": "phase", "phase": "projection"})
        t_p = time.time()
        xy, method = (project_umap(emb, seed=settings["seed"]), "umap") if projection == "umap" else \
            (project_pca(emb), "pca")
        save_projection(run.file("projection.parquet"), xy, method)
        log.msg(f"{method} projection in {time.time() - t_p:.1f} s")
    run.append_progress({"kind": "phase", "phase": state})
    run.write_status(state, ended=now_iso(), train_seconds=round(train_seconds, 3))
    return state
