"""Train a CTC recogniser through a curriculum of stages; resumable from the run folder's last checkpoint.

A run folder holds ``config.yaml``, ``state.json`` (step and history), ``checkpoint/`` (weights + optimizer, and
the glyph decoder's weights when ``glyph_weight`` > 0), ``final.weights.h5`` (the recogniser alone: the glyph
decoder is not part of it), ``metrics.json`` and ``curves.png``. ``init: RUN_DIR`` starts a new run from another
run's weights; ``model.stn`` runs switch the spatial transformer on at step ``model.stn_warmup``;
``average_from: STEP`` makes the final weights the mean of the weights at every eval point from STEP on (the
running mean is kept in ``checkpoint/average.npz``).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from sdk.decode import decode_batch
from sdk.formats import ALPHABETS
from sdk.types import blank_index_for
from training.config import ConfigError, TrainConfig, load_config, open_run
from training.data.pipeline import PlateArrays, load_arrays, make_dataset, oversample_rare
from training.distribute import check_batch_split, check_same_step, distribute, is_chief
from training.models.crnn import build_crnn
from training.models.glyph import build_glyph_decoder, decoder_layers, glyph_labels, text_box
from training.models.lprnet import build_lprnet, split_weights
from training.models.stn import set_stn_gate

CKPT = "checkpoint"
AVERAGE = "average.npz"  # the running weight average (config average_from)


def build_model(cfg: TrainConfig, batch_size: int | None = None, for_export: bool = False) -> keras.Model:
    """The recogniser a config describes (float, logits out).

    ``for_export``: the same function in its int8-export form (LPRNet: context branches mixed separately, see
    :func:`split_weights`; CRNNs: unrolled LSTMs), normally with ``batch_size=1``.
    """
    m = cfg.model
    h, w = cfg.input_size
    n = blank_index_for(ALPHABETS[cfg.alphabet]) + 1  # the characters, then the blank
    if m.architecture in ("crnn", "lightcrnn"):
        light = m.architecture == "lightcrnn"
        return build_crnn(n, (h, w, 3), light, m.width, m.hidden, batch_size, for_export, m.lstm_layers)
    return build_lprnet(n, (h, w, 3), m.variant, m.width, m.dropout, batch_size, split_context=for_export, stn=m.stn)


def predict_logits(model: keras.Model, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Float logits for uint8 RGB images (N, H, W, 3)."""
    out = [
        model(images[i : i + batch].astype(np.float32) / 255.0, training=False) for i in range(0, len(images), batch)
    ]
    return np.concatenate([np.asarray(o) for o in out])


def plate_accuracy(model: keras.Model, arrays: PlateArrays, alphabet: str) -> float:
    reads = decode_batch(predict_logits(model, arrays.images), alphabet, blank_index_for(alphabet), method="greedy")
    return float(np.mean([r.text == t for r, t in zip(reads, arrays.texts, strict=True)]))


def _lr_at(step: int, steps: int, peak: float) -> float:
    warm = max(1, steps // 30)
    if step < warm:
        return peak * (step + 1) / warm
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm))))


def _save_checkpoint(
    run: Path,
    models: dict[str, keras.Model],
    opt: keras.optimizers.Optimizer,
    state: dict[str, Any],
    average: list[np.ndarray] | None = None,
) -> None:
    """``models``: weights file name -> model (the recogniser, and the glyph decoder when there is one);
    ``average``: the running mean of the recogniser's weights (``average_from``)."""
    ck = run / CKPT
    ck.mkdir(exist_ok=True)
    for file, model in models.items():
        model.save_weights(ck / file)
    np.savez(ck / "optimizer.npz", *[v.numpy() for v in opt.variables])
    if average is not None:
        np.savez(ck / AVERAGE, *average)
    tmp = run / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(run / "state.json")  # atomic: a crash never leaves a half-written state


def _load_checkpoint(
    run: Path, models: dict[str, keras.Model], opt: keras.optimizers.Optimizer, variables: list[Any]
) -> dict[str, Any]:
    ck = run / CKPT
    for file, model in models.items():
        model.load_weights(ck / file)
    opt.build(variables)
    saved = np.load(ck / "optimizer.npz")
    for v, k in zip(opt.variables, _in_order(saved), strict=True):
        v.assign(saved[k])
    return json.loads((run / "state.json").read_text())


def _in_order(saved: Any) -> list[str]:
    """The array names of an ``np.savez(*arrays)`` file in their saved order (arr_0, arr_1, ... arr_10, ...)."""
    return sorted(saved.files, key=lambda s: int(s.split("_")[1]))


def _load_average(run: Path, state: dict[str, Any]) -> list[np.ndarray] | None:
    if not state.get("averaged"):
        return None
    saved = np.load(run / CKPT / AVERAGE)
    return [saved[k] for k in _in_order(saved)]


def _add_to_average(average: list[np.ndarray] | None, weights: list[np.ndarray], n: int) -> list[np.ndarray]:
    """The running mean of ``n`` snapshots updated with one more."""
    if average is None:
        return [w.astype(np.float64) for w in weights]
    return [a + (w - a) / (n + 1) for a, w in zip(average, weights, strict=True)]


def init_from(model: keras.Model, run_dir: str | Path) -> int:
    """Copy a trained run's weights into ``model`` layer by layer (same name and shapes); return how many."""
    _, trained = load_trained(run_dir)
    by_name = {layer.name: layer for layer in trained.layers}
    copied = 0
    for layer in model.layers:
        src = by_name.get(layer.name)
        if layer.weights and src is not None:
            w = src.get_weights()
            if [a.shape for a in w] == [tuple(v.shape) for v in layer.weights]:
                layer.set_weights(w)
                copied += 1
    if not copied:
        raise ValueError(f"no layer of {run_dir} matches this model (init needs the same architecture)")
    return copied


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = [h["step"] for h in history]
    ax[0].plot(steps, [h["loss"] for h in history])
    ax[0].set(title="CTC loss (train)", xlabel="step", yscale="log")
    ev = [h for h in history if "eval_plate_accuracy" in h]
    ax[1].plot([h["step"] for h in ev], [h["eval_plate_accuracy"] for h in ev], marker="o")
    ax[1].set(title="plate accuracy (eval, greedy)", xlabel="step", ylim=(0, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _glyph_box(cfg: TrainConfig, alphabet: str) -> list[float]:
    """The average training plate's text box (:func:`text_box`) over the first stage's data."""
    images = np.concatenate([load_arrays(s, alphabet, cfg.input_size, cfg.regions).images for s in cfg.stages[0].data])
    return [round(float(v), 4) for v in text_box(images)]


def train(
    cfg: TrainConfig | None,
    run_dir: str | Path,
    resume: bool = False,
    verbose: bool = True,
    strategy: tf.distribute.Strategy | None = None,
) -> dict[str, Any]:
    """Run every stage of ``cfg`` in ``run_dir``, or resume the run there (its own config); return the final metrics.

    ``strategy`` (:mod:`training.distribute`) spreads each step's batch over its replicas; on a multi-worker
    cluster only the chief writes the run folder. Default: one device.
    """
    strategy = strategy or tf.distribute.get_strategy()
    chief = is_chief(strategy)
    verbose = verbose and chief
    cfg, run = open_run(cfg, run_dir, resume, load_config)
    check_batch_split(cfg.batch_size, strategy.num_replicas_in_sync)
    keras.utils.set_random_seed(cfg.seed)
    alphabet = ALPHABETS[cfg.alphabet]
    blank = blank_index_for(alphabet)
    with strategy.scope():  # every variable (model, optimizer) is mirrored over the replicas
        model = build_model(cfg)
        opt = keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=1e-4, clipnorm=5.0)
        models = {"model.weights.h5": model}
        variables = list(model.trainable_variables)
        glyph = build_glyph_decoder(model) if cfg.glyph_weight > 0 else None
        if glyph is not None:  # one optimizer for both steps: the shared backbone keeps one set of moments
            models["glyph.weights.h5"] = glyph
            variables += [v for layer in decoder_layers(glyph) for v in layer.trainable_variables]
        state: dict[str, Any] = {"step": 0, "history": []}
        average = None
        if resume and (run / "state.json").is_file():
            state = _load_checkpoint(run, models, opt, variables)
            average = _load_average(run, state)
            if verbose:
                print(f"resumed {run} at step {state['step']}")
        else:
            opt.build(variables)
            if cfg.init:
                n = init_from(model, cfg.init)
                if verbose:
                    print(f"initialised {n} layers from {cfg.init}")
    check_same_step(strategy, state["step"])
    if glyph is not None and "glyph_box" not in state:
        state["glyph_box"] = _glyph_box(cfg, alphabet)
    eval_arrays = load_arrays(cfg.eval, alphabet, cfg.input_size, cfg.regions) if cfg.eval else None

    # Each replica's loss is its share of the global batch mean (summed over the batch, divided by the global
    # batch), so the optimizer's sum of the replicas' gradients is the gradient of the global mean.
    def ctc_step(x, y, n):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            t = tf.fill([tf.shape(logits)[0]], tf.shape(logits)[1])
            per_plate = tf.nn.ctc_loss(y, logits, n, t, logits_time_major=False, blank_index=blank)
            loss = tf.reduce_sum(per_plate) / cfg.batch_size
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    def glyph_aux_step(x, g):
        """The auxiliary step on the same batch: squared error to the glyph image, summed over its pixels (the
        per-plate scale of the CTC loss) and averaged over the batch, through the shared backbone."""
        with tf.GradientTape() as tape:
            err = glyph(x, training=True) - tf.cast(g, tf.float32) / 255.0
            loss = cfg.glyph_weight * tf.reduce_sum(tf.square(err)) / cfg.batch_size
        grads = tape.gradient(loss, glyph.trainable_variables)
        opt.apply_gradients(zip(grads, glyph.trainable_variables, strict=True))
        return loss

    train_step, glyph_step = _on_replicas(strategy, ctc_step), _on_replicas(strategy, glyph_aux_step)

    if cfg.model.stn:  # identity during the warm-up (a resumed run may already be past it)
        set_stn_gate(model, state["step"] >= cfg.model.stn_warmup)
    start = 0
    for stage in cfg.stages:
        end = start + stage.steps
        if state["step"] >= end:
            start = end
            continue
        parts = [
            (oversample_rare(load_arrays(s, alphabet, cfg.input_size, cfg.regions), s.balance), s) for s in stage.data
        ]
        glyphs = None
        if glyph is not None:
            size, box = tuple(glyph.output_shape[1:3]), tuple(state["glyph_box"])
            glyphs = [glyph_labels(p[0].texts, size, box) for p in parts]
        if verbose:
            print(f"stage {stage.name}: {stage.steps} steps on {sum(len(p[0].images) for p in parts)} images")
        it = iter(distribute(strategy, make_dataset(parts, cfg.batch_size, cfg.seed + state["step"], glyphs)))
        bar = keras.utils.Progbar(stage.steps, verbose=1 if verbose else 0, stateful_metrics=["loss", "eval_acc"])
        bar.update(state["step"] - start)
        losses: list[float] = []
        glyph_losses: list[float] = []
        step_seconds: list[float] = []
        while state["step"] < end:
            local = state["step"] - start
            lr = _lr_at(local, stage.steps, stage.lr)
            opt.learning_rate.assign(lr)
            if cfg.model.stn and state["step"] == cfg.model.stn_warmup:
                set_stn_gate(model, True)  # the warm-up is over: the transformer starts warping
            t0 = time.perf_counter()
            batch = next(it)
            losses.append(float(train_step(*batch[:3])))
            if glyph is not None:
                glyph_losses.append(float(glyph_step(batch[0], batch[3])))
            step_seconds.append(time.perf_counter() - t0)
            state["step"] += 1
            shown = [("loss", float(np.mean(losses[-50:])))]
            if state["step"] % cfg.eval_every == 0 or state["step"] == end:
                entry: dict[str, Any] = {
                    "step": state["step"],
                    "stage": stage.name,
                    "loss": float(np.mean(losses[-cfg.eval_every :])),
                }
                if glyph_losses:
                    entry["glyph_loss"] = float(np.mean(glyph_losses[-cfg.eval_every :]))
                # the median step of the window: neither the first step's tracing nor eval and checkpoints count
                entry["samples_per_s"] = round(cfg.batch_size / float(np.median(step_seconds[-cfg.eval_every :])), 1)
                if eval_arrays is not None and chief:
                    entry["eval_plate_accuracy"] = plate_accuracy(model, eval_arrays, alphabet)
                    shown.append(("eval_acc", entry["eval_plate_accuracy"]))
                state["history"].append(entry)
                if cfg.average_from and state["step"] >= cfg.average_from:
                    average = _add_to_average(average, model.get_weights(), state.get("averaged", 0))
                    state["averaged"] = state.get("averaged", 0) + 1
                if chief:
                    _save_checkpoint(run, models, opt, state, average)
            bar.update(local + 1, shown)
        start = end
    metrics: dict[str, Any] = {"steps": state["step"], "history": state["history"]}
    if average is not None:
        if eval_arrays is not None:
            metrics["last_weights_plate_accuracy_float_greedy"] = plate_accuracy(model, eval_arrays, alphabet)
        model.set_weights([a.astype(w.dtype) for a, w in zip(average, model.get_weights(), strict=True)])
        metrics["averaged_snapshots"] = state["averaged"]
    if not chief:  # the chief writes the run folder
        return metrics
    model.save_weights(run / "final.weights.h5")
    if eval_arrays is not None:
        metrics["eval"] = {
            "data": cfg.eval.path,
            "split": cfg.eval.split,
            "n": len(eval_arrays.texts),
            "plate_accuracy_float_greedy": plate_accuracy(model, eval_arrays, alphabet),
        }
    (run / "metrics.json").write_text(json.dumps(metrics, indent=1))
    if state["history"]:
        plot_curves(state["history"], run / "curves.png")
    return metrics


def _on_replicas(strategy: tf.distribute.Strategy, step: Any) -> Any:
    """``step`` (one replica's share of a batch -> its loss) as a compiled step over a distributed batch that
    returns the summed loss (the global batch mean)."""

    @tf.function(reduce_retracing=True)
    def run(*batch):
        return strategy.reduce("SUM", strategy.run(step, args=batch), axis=None)

    return run


def load_trained(run_dir: str | Path, for_export: bool = False) -> tuple[TrainConfig, keras.Model]:
    """The config and the trained float model of a run (its final weights, else its last checkpoint).

    ``for_export`` returns the same function built for int8 export (:func:`build_model`) with the batch fixed at
    1 (static shapes).
    """
    run = Path(run_dir)
    cfg = load_config(run / "config.yaml")
    model = build_model(cfg)
    weights = run / "final.weights.h5"
    if not weights.is_file():
        weights = run / CKPT / "model.weights.h5"
    if not weights.is_file():
        raise ConfigError(f"{run} holds no trained weights (final.weights.h5 or {CKPT}/model.weights.h5): train it")
    model.load_weights(weights)
    if for_export:
        export = build_model(cfg, batch_size=1, for_export=True)
        if cfg.model.architecture == "lprnet":
            split_weights(model, export)
        else:  # unrolling changes no weights
            export.set_weights(model.get_weights())
        model = export
    return cfg, model
