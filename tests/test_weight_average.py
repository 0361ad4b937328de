"""The moving average of the weights (setting ``ema``): its arithmetic, and that training validates and keeps it."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from snw_core import train as T


def _average_class():
    import keras
    return T._make_callbacks(None, SimpleNamespace(settings={}), keras, None, None)[4]


def _model():
    import keras
    inp = keras.Input((3,))
    return keras.Model(inp, keras.layers.Dense(2)(inp))


def test_the_average_is_bias_corrected_and_swapped_in_for_validation_only():
    model = _model()
    avg = _average_class()(model, 0.5)
    w1 = [np.full(w.shape, 1.0, np.float32) for w in model.get_weights()]
    w2 = [np.full(w.shape, 4.0, np.float32) for w in model.get_weights()]
    model.set_weights(w1)
    avg.on_train_batch_end(0)
    # one batch: the average is those weights (not half of them, as an uncorrected start at zero would give)
    assert all(np.allclose(a, 1.0) for a in avg.averaged())
    model.set_weights(w2)
    avg.on_train_batch_end(1)
    # 0.5 * (0.5 * 1) + 0.5 * 4 = 2.25, over 1 - 0.5 ** 2 = 0.75 -> 3.0 (weights 1/3 and 2/3)
    assert all(np.allclose(a, 3.0) and a.dtype == np.float32 for a in avg.averaged())
    avg.on_epoch_end(0)                       # validation sees the average ...
    assert all(np.allclose(w, 3.0) for w in model.get_weights())
    avg.on_epoch_begin(1)                     # ... and training goes on from the weights themselves
    assert all(np.allclose(w, 4.0) for w in model.get_weights())


def test_settings_accept_and_bound_the_momentum():
    from snw_core.presets import SettingsError, resolve_settings
    assert resolve_settings("seed")["ema"] == 0.0               # the seed study has none
    assert resolve_settings("default", ema=0.99)["ema"] == 0.99
    with pytest.raises(SettingsError, match="ema"):
        resolve_settings("default", ema=1.0)


@pytest.mark.slow
def test_a_run_trained_with_an_average_saves_the_average(tiny_parquet, runs_dir, monkeypatch):
    seen = []
    real = T._make_callbacks

    def spy(*a, **kw):
        classes = list(real(*a, **kw))
        base = classes[4]

        class Recorded(base):
            def __init__(self, *args):
                super().__init__(*args)
                seen.append(self)

        classes[4] = Recorded
        return tuple(classes)

    monkeypatch.setattr(T, "_make_callbacks", spy)
    run, state = T.train(str(tiny_parquet), preset="default", projection="none", quiet=True, epochs=2,
                         early_stopping_patience=0, ema=0.9)
    assert state == "done" and run.config()["settings"]["ema"] == 0.9
    (avg,) = seen
    events = [json.loads(line) for line in run.file("progress.jsonl").read_text().splitlines()]
    assert avg.updates == 2 * next(e["batches"] for e in events if e.get("phase") == "training")
    from snw_core.model import load_embedder
    saved = load_embedder(run.embedder_path).get_weights()
    assert all(np.allclose(s, a, atol=1e-6) for s, a in zip(saved, avg.averaged()))
    # and it is not simply the last weights trained
    assert not all(np.allclose(s, r, atol=1e-6) for s, r in zip(saved, avg.raw))
