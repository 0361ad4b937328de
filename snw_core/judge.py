"""Judge items with a trained run: good/defect verdict, score, pin-address guess, nearest references.

>>> j = Judge.from_run(run)                 # doctest: +SKIP
>>> out = j.judge(images)                   # doctest: +SKIP
>>> out["verdict"][0], out["score"][0]      # doctest: +SKIP
('GOOD', 0.21)
>>> records(out, names=["a.png"])[0]["verdict"]   # doctest: +SKIP
'GOOD'

Images to inspect come from files or uploads through :func:`read_images`, which refuses what the run
cannot judge (not an image, too large, 16-bit, another size) with one clear message per file.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

from .metrics import nearest, vote_labels

__all__ = ["Judge", "evaluate_run", "records", "RECORD_FIELDS", "VERDICTS", "combine", "read_images", "expand_paths",
           "InspectImages", "resize_is_safe", "ASPECT_TOLERANCE"]

#: the fields of one judged item, in this order, as printed by ``inspect`` and by the line bundle's script
RECORD_FIELDS = ("file", "verdict", "reason", "defect", "score", "threshold", "pin", "pin_confidence", "nearest_good",
                 "nearest_good_distance", "nearest_defect", "nearest_defect_label", "nearest_defect_distance",
                 "defect_y", "defect_x", "appearance", "local", "patch")
#: the verdicts: GOOD and DEFECT from the twin (and the local evidence), UNKNOWN = not recognised as the part
VERDICTS = ("GOOD", "DEFECT", "UNKNOWN")
#: largest relative difference of aspect ratio (width / height) for which a resize is offered
ASPECT_TOLERANCE = 0.01
#: PIL modes refused: converting 16-bit or float images to 8 bits would clip or rescale silently
#: batches up to this size are judged with numpy's BLAS on one thread (see :func:`_few_images`)
FEW_IMAGES = 8
_BLAS = []


def _few_images():
    """A context in which numpy's BLAS uses one thread. The products of one image (1 x pixels against the good
    references, the appearance model) are so small that waking a second BLAS thread costs more than it saves:
    the gate's check of one image took 1.6 ms with two threads and 0.4 ms with one on a busy 2-core machine.
    Without threadpoolctl (a scikit-learn dependency) nothing changes."""
    import contextlib
    try:
        if not _BLAS:
            from threadpoolctl import ThreadpoolController
            _BLAS.append(ThreadpoolController())
        return _BLAS[0].limit(limits=1, user_api="blas")
    except Exception:                                   # noqa: BLE001 - an optimisation only
        return contextlib.nullcontext()


class Judge:
    """Everything needed to judge an image, taken from a finished run.

    ref_good : float32 (m, d), embeddings of the good train items (the reference set; without those training left
        out as lying among the defects, embeddings.npz ``ref_left_out``)
    ref_good_idx : int (m,), their row indices in the run's data set
    ref_defect, ref_defect_labels, ref_defect_idx : embeddings, labels and row indices of the defective
        train items (pin guesses, nearest defect)
    threshold : score above which an item is a defect; k : neighbours averaged into the score;
    pin_k : neighbours voting on the pin address
    gate : the run's :class:`~snw_core.gate.Gate` (UNKNOWN verdict, local evidence, heat map), or None for a
        run trained before it existed (then only GOOD/DEFECT, no heat map)
    """

    def __init__(self, embedder, ref_good, ref_good_idx, ref_defect, ref_defect_labels, ref_defect_idx,
                 threshold, k=3, pin_k=5, good_label="0", image_shape=None, gate=None, patches=None,
                 registration=None, ref_defect_yx=None, noise_rule=None):
        self.gate = gate
        #: the run's rule for images noisier than its train and val images (metrics.json ``noise_rule``, used only
        #: where it was learned: :func:`apply_noise_rule`), or None
        self.noise_rule = noise_rule if noise_rule and noise_rule.get("used") else None
        self.registration = registration  # the run's Registration (snw_core.register) or None
        self.patches = patches            # the run's PatchBank (snw_core.patches) or None
        self.embedder = embedder
        self.ref_good, self.ref_good_idx = ref_good, ref_good_idx
        self.ref_defect, self.ref_defect_labels, self.ref_defect_idx = ref_defect, ref_defect_labels, ref_defect_idx
        # the defect references' classes, once: np.unique of the labels costs a tenth of a ms every verdict
        self._classes = np.unique(np.asarray(ref_defect_labels).astype(str), return_inverse=True)
        # where the gate placed each defective train item's strongest evidence (None: a run without a gate)
        self.ref_defect_yx = None if ref_defect_yx is None else np.asarray(ref_defect_yx, np.float64).reshape(-1, 2)
        self.threshold, self.k, self.pin_k = float(threshold), int(k), int(pin_k)
        self.good_label = good_label
        self.image_shape = tuple(image_shape) if image_shape is not None else None

    @classmethod
    def from_run(cls, run, embedder=None):
        from .embed import load_embeddings
        cfg, m = run.config(), run.metrics()
        if not m or m.get("threshold") is None:
            raise ValueError(f"Run '{run.id}' has no metrics yet (state: {run.state()}).")
        if embedder is None:
            from .model import load_embedder
            embedder = load_embedder(run.embedder_path)
        return cls.from_parts(cfg, m, load_embeddings(run.file("embeddings.npz")), embedder=embedder,
                              gate=load_gate(run), patches=load_patches(run), registration=load_registration(run))

    @classmethod
    def from_parts(cls, config: dict, metrics: dict, embeddings: dict, embedder=None, gate=None, patches=None,
                   registration=None):
        """A Judge from a run's config.json, metrics.json and embeddings.npz contents (already loaded).

        ``embedder`` may be None when only :meth:`judge_embeddings` is used (e.g. the dashboard embeds
        with its shared, cached model).
        """
        if not metrics or metrics.get("threshold") is None:
            raise ValueError("This run has no threshold yet (metrics.json is missing).")
        e = embeddings
        good_label = config["data"]["good_label"]
        tr = e["split"] == "train"
        left_out = np.asarray(e["ref_left_out"], bool) if "ref_left_out" in e else False   # older runs: none
        g = np.flatnonzero(tr & (e["labels"] == good_label) & ~left_out)
        d = np.flatnonzero(tr & (e["labels"] != good_label))
        ref_good, ref_idx = e["embeddings"][g], g
        if "ref_extra" in e and len(e["ref_extra"]):      # drifted copies of train goods (training augmentation)
            ref_good = np.concatenate([ref_good, np.asarray(e["ref_extra"], ref_good.dtype)])
            ref_idx = np.concatenate([ref_idx, np.asarray(e["ref_extra_rows"], ref_idx.dtype)])
        yx = np.stack([e["defect_y"][d], e["defect_x"][d]], 1) if "defect_y" in e else None
        return cls(embedder, ref_good, ref_idx, e["embeddings"][d], e["labels"][d], d, metrics["threshold"],
                   k=config["settings"].get("k", 3), pin_k=config["settings"].get("pin_k", 5),
                   good_label=good_label, image_shape=config["data"]["image_shape"], gate=gate, patches=patches,
                   registration=registration, ref_defect_yx=yx, noise_rule=metrics.get("noise_rule"))

    def check_images(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        if self.image_shape and tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"images are {images.shape[1]} x {images.shape[2]} px but this model was trained on "
                             f"{self.image_shape[0]} x {self.image_shape[1]} px")
        return images

    def prepare(self, images):
        """The images as the run judges them: checked, then registered where the run registers
        (:mod:`snw_core.register`). Returns ``(images, applied)``; ``applied`` (n, 3) is the correction made
        (None without registration)."""
        images = self.check_images(images)
        if self.registration is None:
            return images, None
        registered, _, applied = self.registration.apply(images)
        return registered, applied

    def embed(self, images):
        from .embed import embed_images
        return embed_images(self.embedder, self.prepare(images)[0])

    def judge_embeddings(self, emb: np.ndarray, images=None, patch=None, patch_maps=None, applied=None) -> dict:
        """Verdicts for embeddings (n, d): score, verdict, pin guess + confidence, nearest good/defect refs.

        With the items' ``images`` (uint8 (n, h, w)) and a gate, the appearance check (UNKNOWN), the local
        evidence and the heat map (``heatmap``, ``defect_y``, ``defect_x``) come too; without, GOOD/DEFECT only.
        ``patch`` (n,) are the items' patch scores (:mod:`snw_core.patches`; :meth:`judge` computes them, the
        pages pass the stored ones) and ``patch_maps`` (n, fh, fw) their maps, which then place the heat map
        where the patch evidence is the stronger. ``images`` are the input images as given; with ``applied``
        (from :meth:`prepare`) they are already registered. Heat maps and locations refer to the input's pixels.
        """
        gd, gi = nearest(self.ref_good, emb, self.k)        # one search serves the score and the nearest good
        scores = gd.mean(axis=1).astype(np.float64)
        checks = None
        if self.gate is not None and images is not None:
            if applied is None:
                images, applied = self.prepare(images)
            filled = self.registration.unknown_pixels(applied) if applied is not None else None
            checks = add_orientation(self.gate.check(images, filled=filled), self.registration, images)
        if checks is not None and patch is not None and self.patches is not None:
            checks = add_patch_evidence(checks, np.asarray(patch, np.float64), self.patches, patch_maps)
        if checks is not None and applied is not None:
            checks = to_input(checks, self.registration, applied)
        scaled = np.zeros(len(scores), bool)
        if checks is not None and self.noise_rule is not None:
            scores, scaled = apply_noise_rule(scores, self.threshold, checks, self.noise_rule)
        verdict, reason = combine(scores, self.threshold, checks)
        if scaled.any():
            by_score = np.isin(reason, ["score above the threshold", "score within the threshold"]) & scaled
            reason = np.where(by_score, np.char.add(reason.astype(str), NOISE_RULE_NOTE), reason)
        defect = verdict != "GOOD"
        out = {"score": scores, "threshold": self.threshold, "defect": defect, "verdict": verdict, "reason": reason,
               "pin": np.full(len(emb), ""), "pin_confidence": np.zeros(len(emb)),
               "nearest_good": self.ref_good_idx[gi[:, 0]], "nearest_good_distance": gd[:, 0]}
        if len(self.ref_defect):
            dd, di = nearest(self.ref_defect, emb, self.pin_k)   # the pin vote and the nearest defect
            out["pin"], out["pin_confidence"] = vote_labels(dd, di, *self._classes)
            out["nearest_defect"] = self.ref_defect_idx[di[:, 0]]
            out["nearest_defect_distance"] = dd[:, 0]
            out["nearest_defect_label"] = self.ref_defect_labels[di[:, 0]]
        if checks is not None and len(self.ref_defect) and self.ref_defect_yx is not None:
            # a defect only the local or patch evidence saw: the twin put it among the goods, so its defective
            # neighbours say little; where the evidence is says which pin
            from .register import FLIP_REASON
            by_place = (verdict == "DEFECT") & ~(scores > self.threshold) & (reason != FLIP_REASON)
            if by_place.any():
                pin, conf = place_vote(checks["defect_y"][by_place], checks["defect_x"][by_place],
                                       self.ref_defect_yx, *self._classes)
                known = conf > 0
                rows = np.flatnonzero(by_place)[known]
                out["pin"], out["pin_confidence"] = out["pin"].copy(), out["pin_confidence"].copy()
                out["pin"][rows], out["pin_confidence"][rows] = pin[known], conf[known]
        if checks is not None:
            out.update({k: checks[k] for k in ("defect_y", "defect_x", "heatmap", "appearance", "local")})
            if "patch" in checks:
                out["patch"] = checks["patch"]
        return out

    def _embed_with_patches(self, images):
        """Embeddings, patch scores and maps in one pass of the model (a second model costs ~10 ms an image)."""
        if getattr(self, "_combined", None) is None:
            from .export import with_patch_features
            self._combined = with_patch_features(self.embedder)
        from .embed import predict
        out = predict(self._combined, images)
        d = int(self.embedder.output_shape[-1])
        patch, maps = self.patches.score(out[:, d:].reshape(len(out), *self.patches.grid, -1))
        return out[:, :d], patch, maps

    def judge(self, images) -> dict:
        images = np.asarray(images)
        if images.ndim == 2 or len(images) <= FEW_IMAGES:
            with _few_images():
                return self._judge(images)
        return self._judge(images)

    def _judge(self, images) -> dict:
        from .embed import embed_images
        images, applied = self.prepare(images)
        if self.patches is not None and self.embedder is not None:
            emb, patch, maps = self._embed_with_patches(images)
            return self.judge_embeddings(emb, images=images, patch=patch, patch_maps=maps, applied=applied)
        return self.judge_embeddings(embed_images(self.embedder, images), images=images, applied=applied)

    def references(self) -> dict:
        """The reference arrays as a dict for ``np.savez`` (no object arrays, so no pickles)."""
        refs = {"good": np.asarray(self.ref_good, np.float32), "good_idx": np.asarray(self.ref_good_idx, np.int64),
                "defect": np.asarray(self.ref_defect, np.float32).reshape(len(self.ref_defect), -1),
                "defect_labels": np.asarray(self.ref_defect_labels).astype(str),
                "defect_idx": np.asarray(self.ref_defect_idx, np.int64)}
        if self.ref_defect_yx is not None:
            refs["defect_yx"] = np.asarray(self.ref_defect_yx, np.int64)
        return refs


#: the place vote's reach (px): a defective train item counts with weight exp(-d^2 / (2 PLACE_SIGMA^2)) at a
#: distance d from the evidence; where the summed weight is below PLACE_MIN no train defect was seen there
PLACE_SIGMA = 1.5
PLACE_MIN = 1e-6


def place_vote(y, x, ref_yx, classes, inv):
    """The pin address where the evidence is: every defective train item votes for its label with a weight that
    falls off with the distance of its strongest evidence (``ref_yx`` (m, 2), the gate's ``defect_y``,
    ``defect_x`` of the train items) from the item's (``y``, ``x``), a Gaussian of :data:`PLACE_SIGMA` px.
    Returns labels and the winner's share of the weight; share 0 (and the first label) where no train defect's
    evidence lay within reach. ``classes``, ``inv`` as ``np.unique(ref_labels, return_inverse=True)`` gives them."""
    q = np.stack([np.asarray(y, np.float64), np.asarray(x, np.float64)], 1)
    d2 = ((q[:, None, :] - np.asarray(ref_yx, np.float64)[None]) ** 2).sum(-1)         # (n, m)
    w = np.exp(-d2 / (2.0 * PLACE_SIGMA ** 2))
    votes = np.zeros((len(q), len(classes)))
    for c in range(len(classes)):
        votes[:, c] = w[:, inv == c].sum(1)
    total = votes.sum(1)
    win = votes.argmax(1)
    conf = np.where(total >= PLACE_MIN, votes[np.arange(len(q)), win] / np.maximum(total, PLACE_MIN), 0.0)
    return classes[win], conf


def load_gate(run):
    """The run's :class:`~snw_core.gate.Gate`, or None when the run has none (trained before it existed)."""
    from .gate import GATE_FILE, Gate
    path = run.file(GATE_FILE)
    return Gate.load(path) if path.exists() else None


def load_registration(run):
    """The run's :class:`~snw_core.register.Registration`, or None when it registers nothing."""
    from .register import REGISTER_FILE, Registration
    path = run.file(REGISTER_FILE)
    return Registration.load(path) if path.exists() else None


def to_input(checks: dict, registration, applied) -> dict:
    """The gate's checks of registered images with the heat map and location mapped back onto the input
    images' pixels (``applied`` from :meth:`Judge.prepare`)."""
    if registration is None or applied is None or not np.any(applied):
        return checks
    out = dict(checks)
    out["heatmap"] = registration.to_input(checks["heatmap"], applied)
    out["defect_y"], out["defect_x"] = registration.point_to_input(checks["defect_y"], checks["defect_x"], applied)
    return out


def add_orientation(checks: dict, registration, registered) -> dict:
    """The gate's checks of registered images with ``flipped`` added: the part sits flipped top to bottom or
    turned round in the fixture (:meth:`snw_core.register.Registration.flipped`)."""
    if registration is None or registration.flip is None:
        return checks
    return dict(checks, flipped=registration.flipped(registered))


def gate_checks(gate, registration, images, bank=None, patch_scores=None) -> dict:
    """The gate's checks of input images as a run judges them: registered first, the patch evidence added where
    the run keeps a patch ``bank`` (``patch_scores(registered images) -> (scores, maps)``), mapped back after."""
    registered, applied = (registration.apply(images)[::2] if registration is not None else (images, None))
    filled = registration.unknown_pixels(applied) if registration is not None else None
    checks = add_orientation(gate.check(registered, filled=filled), registration, registered)
    if bank is not None and patch_scores is not None:
        patch, maps = patch_scores(registered)
        checks = add_patch_evidence(checks, patch, bank, maps)
    return to_input(checks, registration, applied)


def load_patches(run):
    """The run's :class:`~snw_core.patches.PatchBank`, or None when it has none."""
    from .patches import PATCH_FILE, PatchBank
    path = run.file(PATCH_FILE)
    return PatchBank.load(path) if path.exists() else None


def add_patch_evidence(checks: dict, patch, bank, maps=None) -> dict:
    """The gate's checks with the patch evidence added: ``patch`` (score / threshold), ``patch_defect``, and,
    where the patch map's peak (relative to its threshold, or to the bank's ``scale`` where the threshold is not
    used: :meth:`~snw_core.patches.PatchBank.location_unit`) beats the pixel local evidence, the heat map and
    location taken from the patch map (scaled up to the image). Where the pixel comparison is blind on most val
    defects (a random texture, whose grain it points at as often as at the defect: the bank's ``places_weak``), the
    patch map places every verdict whose pixel evidence stays within the good parts' (local <= 1), whichever peak is
    the higher."""
    from .patches import upsample
    out = dict(checks)
    t = bank.threshold
    rel = patch / t if np.isfinite(t) and t > 0 else np.zeros_like(patch)
    out["patch"] = rel
    out["patch_defect"] = patch > t
    t = bank.location_unit()
    if maps is not None and np.isfinite(t):
        shape = out["heatmap"].shape[1:]
        use = patch / t > out["local"]
        if getattr(bank, "places_weak", False):
            use = use | (np.asarray(out["local"]) <= 1.0)
        if use.any():
            m = np.asarray(maps)[use] / t
            up = upsample(m, shape)
            heat = out["heatmap"].copy()
            heat[use] = up.astype(heat.dtype)
            out["heatmap"] = heat
            # the location: the centre of the strongest position's block (its first pixel lay up to 3 px off)
            i, j = np.unravel_index(m.reshape(len(m), -1).argmax(1), m.shape[1:])
            ry, rx = -(-shape[0] // m.shape[1]), -(-shape[1] // m.shape[2])
            y, x = np.minimum(i * ry + ry // 2, shape[0] - 1), np.minimum(j * rx + rx // 2, shape[1] - 1)
            dy, dx = out["defect_y"].copy(), out["defect_x"].copy()
            dy[use], dx[use] = y, x
            out["defect_y"], out["defect_x"] = dy, dx
    return out


#: appended to the reason of a verdict the score gave where the noise rule scaled the score
NOISE_RULE_NOTE = " (noisy image: score scaled, no local difference from the good parts)"


def apply_noise_rule(scores, threshold: float, checks: dict, rule: dict):
    """The rule a run learned for images noisier than its own (``rule``: metrics.json ``noise_rule``, see
    :func:`snw_core.train.fit_noise_rule`): where an image's relative noise (``checks["noise"]``) is above
    ``rule["min_noise"]`` and the gate's local evidence (``checks["local"]``) is at most ``rule["local"]``, the twin's
    score is scaled by ``threshold / rule["twin"]``, so that such an image is DEFECT by its score only above
    ``rule["twin"]``. Noise moves a good part's embedding away from the good references; a real defect under noise
    either scores above ``rule["twin"]`` or leaves local evidence. Only up to ``rule["max_noise"]``, the noisiest
    copy the rule was learned on (rules recorded before it: no upper end): noisier images are judged by the plain
    threshold, as the noise guard that let them through had judged them. Returns ``(scores, scaled bool (n,))``."""
    scores = np.asarray(scores, np.float64)
    if "noise" not in checks:
        return scores, np.zeros(len(scores), bool)
    noise = np.asarray(checks["noise"])
    scaled = ((noise > rule["min_noise"]) & (noise <= rule.get("max_noise", np.inf))
              & (np.asarray(checks["local"]) <= rule["local"]))
    return np.where(scaled, scores * (threshold / rule["twin"]), scores), scaled


def combine(scores, threshold: float, checks: dict | None = None):
    """The verdict of each item from the twin's score and the gate's checks -> (verdict, reason) str arrays.

    UNKNOWN when the gate does not recognise the part (flat frame or appearance), whatever the score;
    DEFECT when the score is above the threshold, or when the local evidence is (a concentrated difference
    from the good parts the twin did not weigh), or when the part sits flipped in the fixture
    (``flipped``, with registration); GOOD otherwise.
    """
    from .gate import (BLUR_REASON, EXPOSURE_REASON, FLAT_REASON, GLARE_REASON, INVERTED_REASON, LOCAL_REASON,
                       NOISE_REASON, UNKNOWN_REASON)
    from .patches import PATCH_REASON
    scores = np.asarray(scores, np.float64)
    twin = scores > threshold
    verdict = np.where(twin, "DEFECT", "GOOD").astype("<U7")
    reason = np.where(twin, "score above the threshold", "score within the threshold").astype(object)
    if checks is not None:
        if "patch_defect" in checks:
            patch = checks["patch_defect"] & ~twin
            verdict[patch] = "DEFECT"
            reason[patch] = PATCH_REASON
        local = checks["local_defect"] & ~twin
        verdict[local] = "DEFECT"
        reason[local] = LOCAL_REASON
        if "flipped" in checks:                      # the part sits flipped in the fixture: that says it all
            from .register import FLIP_REASON
            flipped = np.asarray(checks["flipped"], bool)
            verdict[flipped] = "DEFECT"
            reason[flipped] = FLIP_REASON
        verdict[checks["unknown"]] = "UNKNOWN"
        reason[checks["unknown"]] = UNKNOWN_REASON
        if "exposure" in checks:
            reason[np.asarray(checks["exposure"], bool)] = EXPOSURE_REASON
        if "clipped" in checks:
            reason[np.asarray(checks["clipped"], bool)] = GLARE_REASON
        if "noisy" in checks:
            reason[np.asarray(checks["noisy"], bool)] = NOISE_REASON
        if "blurred" in checks:
            reason[np.asarray(checks["blurred"], bool)] = BLUR_REASON
        if "inverted" in checks:
            reason[np.asarray(checks["inverted"], bool)] = INVERTED_REASON
        reason[checks["flat"]] = FLAT_REASON
    return verdict, reason.astype(str)


def records(out: dict, names=None) -> list[dict]:
    """One JSON-friendly dict per judged item (keys :data:`RECORD_FIELDS`) from :meth:`Judge.judge` output.

    ``pin`` is the guessed pin address, the vote of the nearest defective references; it is given for
    every item but means something only when the verdict is DEFECT. Row indices refer to the run's data set.
    """
    n = len(out["score"])
    names = list(names) if names is not None else [None] * n
    rows = []
    has_def, has_map = "nearest_defect" in out, "defect_y" in out
    for i in range(n):
        rows.append({
            "file": names[i],
            "verdict": str(out["verdict"][i]),
            "reason": str(out["reason"][i]) if "reason" in out else None,
            "defect": bool(out["defect"][i]),
            "score": float(out["score"][i]),
            "threshold": float(out["threshold"]),
            "pin": str(out["pin"][i]) or None,
            "pin_confidence": float(out["pin_confidence"][i]),
            "nearest_good": int(out["nearest_good"][i]),
            "nearest_good_distance": float(out["nearest_good_distance"][i]),
            "nearest_defect": int(out["nearest_defect"][i]) if has_def else None,
            "nearest_defect_label": str(out["nearest_defect_label"][i]) if has_def else None,
            "nearest_defect_distance": float(out["nearest_defect_distance"][i]) if has_def else None,
            "defect_y": int(out["defect_y"][i]) if has_map else None,
            "defect_x": int(out["defect_x"][i]) if has_map else None,
            "appearance": float(out["appearance"][i]) if has_map else None,
            "local": float(out["local"][i]) if has_map else None,
            "patch": float(out["patch"][i]) if "patch" in out else None,
        })
    return rows


# ------------------------------------------------------------------ images to inspect

def resize_is_safe(size_hw, image_shape, tolerance: float = ASPECT_TOLERANCE) -> bool:
    """True when an image of ``size_hw`` (height, width) has the aspect ratio of ``image_shape`` (within
    ``tolerance``, relative), so scaling it changes the scale only, never the geometry of the part."""
    h, w = size_hw
    H, W = image_shape
    if min(h, w, H, W) <= 0:
        return False
    return abs((w / h) / (W / H) - 1.0) <= tolerance


@dataclass
class InspectImages:
    """Images read for inspection.

    images : uint8 (n, h, w); names : one per image; notes : one per image ('' or e.g. 'resized from ...')
    problems : images that cannot be judged, dicts {name, message, resizable} (only with ``on_error="collect"``)
    """

    images: np.ndarray
    names: list
    notes: list = field(default_factory=list)
    problems: list = field(default_factory=list)


class _Refused(Exception):
    def __init__(self, message: str, resizable: bool = False):
        super().__init__(message)
        self.resizable = resizable


def _read_one(name: str, blob: bytes, H: int, W: int, resize: bool):
    """Decode one image for judging -> (uint8 (H, W), note). Raises _Refused with a message for the user."""
    from PIL import Image

    from .data import HIGH_BIT_MODES, MAX_SIDE, decode_images

    try:
        with Image.open(io.BytesIO(blob)) as im:          # the header only: no pixel is decoded here
            mode, (w, h), fmt = im.mode, im.size, im.format
    except Exception:
        raise _Refused(f"'{name}' is not an image that can be read (PNG, JPEG or BMP expected).") from None
    if w > MAX_SIDE or h > MAX_SIDE or w * h == 0:
        raise _Refused(f"'{name}' is {h} x {w} px (height x width); images larger than {MAX_SIDE} px per side "
                       "are refused before decoding.")
    if mode in HIGH_BIT_MODES:
        raise _Refused(f"'{name}' is a {'floating-point' if mode == 'F' else '16/32-bit'} image (mode {mode}); "
                       "the model was trained on 8-bit grayscale. Convert it to 8-bit grayscale first "
                       "(scaling its range deliberately), so that no value is clipped.")
    safe = resize_is_safe((h, w), (H, W))
    if (h, w) != (H, W) and not (resize and safe):
        if safe:
            how = (" It has the same aspect ratio, so it can be resized safely: pass --resize (command line) "
                   "or tick 'Resize' (Inspect page).")
        else:
            how = (f" Its aspect ratio ({w / h:.3f}) differs from the model's ({W / H:.3f}), so it is not "
                   "resized automatically: crop it to the part first.")
        raise _Refused(f"'{name}' is {h} x {w} px (height x width) but this run's model was trained on "
                       f"{H} x {W} px.{how}", resizable=safe)
    try:
        img = decode_images([blob], where=f"'{name}'")[0]     # the data loader's decoding, grayscale
    except Exception:   # header fine, pixels not (e.g. a truncated file)
        raise _Refused(f"'{name}' could not be decoded (truncated or corrupt {fmt or 'image'} file).") from None
    notes = []
    if mode not in ("L", "P", "1"):
        notes.append(f"{mode} converted to grayscale")
    if img.shape != (H, W):
        shrink = h >= H and w >= W
        img = np.asarray(Image.fromarray(img).resize((W, H), Image.BOX if shrink else Image.BILINEAR))
        notes.append(f"resized from {h} x {w} px ({'area average' if shrink else 'bilinear'})")
    return img, "; ".join(notes)


def expand_paths(paths) -> list[str]:
    """Command-line image arguments -> image files: a folder stands for every image file under it (sub-folders
    too, hidden ones left out), in natural order of the path below it, so that an archive of a line's images can
    be judged without listing each file (and without the shell's limit on the length of a command). Other
    arguments are kept as given. Raises :class:`~snw_core.data.DataError` for a folder without images."""
    import os
    from pathlib import Path

    from .data import IMAGE_EXTENSIONS, DataError, natural_key
    out = []
    for arg in map(str, paths):
        root = Path(arg)
        if not root.is_dir():
            out.append(arg)
            continue
        found = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found += [Path(folder, f) for f in files
                      if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
        if not found:
            raise DataError(f"The folder '{arg}' holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
        found.sort(key=lambda f: tuple(natural_key(part) for part in f.relative_to(root).parts))
        out += [str(f) for f in found]
    return out


def read_images(items, image_shape, resize: bool = False, on_error: str = "raise") -> InspectImages:
    """Read image files or uploads for judging by a run trained on ``image_shape`` (height, width).

    items : paths, or ``(name, bytes)`` pairs (uploads)
    resize : scale images of another size to ``image_shape`` when that is safe (same aspect ratio,
        :func:`resize_is_safe`): area averaging when shrinking, bilinear when enlarging.
    on_error : ``"raise"``: any problem raises one :class:`~snw_core.data.DataError` that lists every
        refused file (one line each) and nothing is returned; ``"collect"``: the readable images are
        returned and the others listed in ``.problems``.

    Colour images become grayscale (as when a data set is loaded). Refused: missing files, files that are
    not images, images larger than ``data.MAX_SIDE`` per side (from the header, before decoding), 16-bit
    and float images, and images of another size (the message says whether a resize is possible).
    """
    from pathlib import Path

    from .data import DataError

    if on_error not in ("raise", "collect"):
        raise ValueError(f"on_error must be 'raise' or 'collect', got {on_error!r}")
    H, W = int(image_shape[0]), int(image_shape[1])
    out = InspectImages(np.zeros((0, H, W), np.uint8), [], [], [])
    images = []
    for item in items:
        try:
            if isinstance(item, tuple):
                name, blob = str(item[0]), item[1]
            else:
                name, p = str(item), Path(item)
                if not p.is_file():
                    raise _Refused(f"'{name}' does not exist or is not a file.")
                if p.stat().st_size > 64 * 2**20:
                    raise _Refused(f"'{name}' is {p.stat().st_size / 2**20:.0f} MB, far too large for an "
                                   "inspection image.")
                blob = p.read_bytes()
            img, note = _read_one(name, blob, H, W, resize)
        except _Refused as e:
            out.problems.append({"name": name, "message": str(e), "resizable": e.resizable})
            continue
        images.append(img)
        out.names.append(name)
        out.notes.append(note)
    if out.problems and on_error == "raise":
        n = len(out.problems)
        head = "This image cannot be judged:" if n == 1 else f"{n} of {n + len(images)} images cannot be judged:"
        raise DataError(head + "\n" + "\n".join("- " + p["message"] for p in out.problems))
    if images:
        out.images = np.stack(images).astype(np.uint8)
    return out


def evaluate_run(run, source: str | None = None) -> dict:
    """Recompute a run's metrics from its saved embedder.

    With no ``source`` (or the run's own data): re-embed the training data and evaluate on the run's split.
    With another data set: judge every item with the run's references and threshold, report the rates.
    """
    from .data import load
    from .embed import embed_images, load_embeddings
    from .metrics import evaluate_embeddings
    from .model import load_embedder

    cfg = run.config()
    if not cfg:
        raise ValueError(f"Run '{run.id}' has no config.json.")
    good_label = cfg["data"]["good_label"]
    ds = load(source or cfg["data"]["source"], good_label=good_label)
    if source is None and cfg.get("corrections"):      # trained with a corrections file: its labels and rows
        from .corrections import dataset_for_run
        ds = dataset_for_run(ds, cfg)
    embedder = load_embedder(run.embedder_path)
    if ds.content_hash != cfg["data"]["content_hash"]:
        return _evaluate_other(run, ds, embedder, good_label)
    registration = load_registration(run)
    images, applied = ds.images, None
    if registration is not None:
        images, _, applied = registration.apply(ds.images)
    emb = embed_images(embedder, images)
    gate = load_gate(run)
    stored = load_embeddings(run.file("embeddings.npz"))
    split, left_out = stored["split"], stored.get("ref_left_out")
    s = cfg["settings"]
    filled = registration.unknown_pixels(applied) if registration is not None else None
    checks = gate.check(images, filled=filled) if gate is not None else {}
    if gate is not None and registration is not None:      # as training counted it
        checks["local_defect"] = checks["local_defect"] | registration.flipped(images)
    drift = {}
    if gate is not None:                  # the same drifted copies as training made (seeded)
        from .train import drift_copies
        drift = drift_copies(embedder, gate, images, ds.labels, split, good_label, s.get("augment", "none"),
                             s["seed"], left_out=left_out, filled=filled)
        if registration is not None:
            from .train import delivered_val
            drift = delivered_val(embedder, gate, ds.images, ds.labels, split, good_label, drift)
    m, _ = evaluate_embeddings(emb, ds.labels, split, good_label=good_label, k=s["k"],
                               threshold_method=s["threshold_method"], max_escape=s["max_escape"],
                               unknown=checks.get("unknown"), local_defect=checks.get("local_defect"),
                               ref_extra=drift.get("ref_extra"), val_extra=drift.get("val_extra"),
                               left_out=left_out)
    return {"run_id": run.id, "data": ds.source, "evaluated_on": "test split", **m}


def _evaluate_other(run, ds, embedder, good_label: str) -> dict:
    """Every item of another data set ``ds`` judged as ``inspect`` judges it (registration, gate, patch bank)."""
    from .data import DataError
    from .metrics import auroc, per_label_rates, pin_accuracy, rates, unknown_rates

    j = Judge.from_run(run, embedder=embedder)
    if j.image_shape and tuple(ds.images.shape[1:]) != tuple(j.image_shape):
        h, w = ds.images.shape[1:]
        raise DataError(f"The data set '{ds.source}' holds images of {h} x {w} px, but run '{run.id}' was trained on "
                        f"{j.image_shape[0]} x {j.image_shape[1]} px: evaluate it on a set of its own image size.")
    out = j.judge(ds.images)
    is_def = ds.labels != good_label
    rejected = (np.asarray(out["verdict"]) != "GOOD").astype(np.float64)    # the verdicts, as inspect gives them
    extra = unknown_rates(out["verdict"] == "UNKNOWN", is_def) if "appearance" in out else {}
    return {"run_id": run.id, "data": ds.source, "evaluated_on": "all items (other data set)", "n": ds.n,
            **rates(rejected, is_def, 0.5), **extra, "auroc": auroc(out["score"], is_def),
            "threshold": j.threshold, "per_label": per_label_rates(ds.labels, rejected > 0, good_label),
            "pin_accuracy": pin_accuracy(ds.labels, out["pin"], good_label)}
