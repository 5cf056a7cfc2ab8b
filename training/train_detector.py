"""Train the detector cascade (proposal, then corners) from a config; resumable, with a record in the run folder.

A run folder holds ``config.yaml``, ``cache/`` (the training arrays, cut once), ``proposal/`` and ``corners/``
(each with ``backup/`` for resuming, ``final.weights.h5`` and ``history.json``), ``proposal_qat/`` likewise when
``proposal.qat_epochs`` > 0 (the proposal stage fine-tuned quantisation-aware; the proposal weights the run mines
with and exports), ``corners_mined/`` likewise
when ``corners.mine_epochs`` > 0 (the corners stage fine-tuned with crops around the proposal stage's own
proposals added; these are the corners weights the run exports; with ``mine_int8`` it holds the int8 proposal
bundle that mined them), ``metrics.json`` (float AP on the eval scenes) and ``curves.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from sdk.bundle import write_bundle
from sdk.dataset import read_scenes
from sdk.detector import Detector
from sdk.evaluate import evaluate_detector
from training.config import ConfigError, DetectorConfig, load_detector_config, open_run
from training.data.detector_data import DetectorArrays, build_arrays, mine_corner_crops
from training.export import base_manifest, convert_int8
from training.models.detector import build_corners, build_proposal

STAGES = ("proposal", "corners")
ARCHITECTURES = {"proposal": "plate-proposal-dws", "corners": "plate-corners-dws"}
LAYOUTS = {"proposal": "NHWC", "corners": "NC"}


def proposal_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Penalty-reduced focal loss on the centre heat map (CenterNet) + L1 box terms at plate centres."""
    heat, negw = y_true[..., 0], y_true[..., 5]
    z = y_pred[..., 0]
    p = tf.sigmoid(z)
    pos = tf.cast(heat >= 0.999, tf.float32)
    pos_loss = tf.nn.softplus(-z) * (1 - p) ** 2 * pos
    neg_loss = tf.nn.softplus(z) * p**2 * (1 - heat) ** 4 * (1 - pos) * negw
    n = tf.maximum(1.0, tf.reduce_sum(pos))
    box = tf.reduce_sum(tf.abs(y_pred[..., 1:5] - y_true[..., 1:5]) * pos[..., None])
    return (tf.reduce_sum(pos_loss) + tf.reduce_sum(neg_loss) + box) / n


def corners_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Plate / not plate (BCE) + Huber on the corners of plates."""
    label = y_true[:, 0]
    cls = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=label, logits=y_pred[:, 0]))
    huber = tf.reduce_sum(keras.losses.huber(y_true[:, 1:, None], y_pred[:, 1:, None], delta=1.0), axis=1)
    return cls + tf.reduce_sum(huber * label) / tf.maximum(1.0, tf.reduce_sum(label))


def _photometric(x: tf.Tensor) -> tf.Tensor:
    x = tf.image.random_brightness(x, 0.25)
    x = tf.image.random_contrast(x, 0.6, 1.4)
    x = tf.image.random_saturation(x, 0.5, 1.5)
    x = x + tf.random.normal(tf.shape(x), stddev=tf.random.uniform([], 0, 0.04))
    return tf.clip_by_value(x, 0.0, 1.0)


def _dataset(images: np.ndarray, targets: np.ndarray, batch: int, seed: int) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((images, targets)).shuffle(min(len(images), 8192), seed=seed)

    def prep(x, y):
        return _photometric(tf.cast(x, tf.float32) / 255.0), y

    return ds.map(prep, num_parallel_calls=2).batch(batch).prefetch(2)


def load_or_build_arrays(cfg: DetectorConfig, run: Path, limit: int | None = None) -> DetectorArrays:
    """The training arrays, from ``run/cache`` when a previous (interrupted) attempt already cut them."""
    cache = run / "cache"
    names = ("frames", "targets", "crops", "crop_targets")
    if all((cache / f"{n}.npy").is_file() for n in names):
        return DetectorArrays(*(np.load(cache / f"{n}.npy") for n in names))
    arrays = build_arrays(cfg.data, cfg.proposal, cfg.corners, cfg.seed, limit=limit)
    cache.mkdir(parents=True, exist_ok=True)
    for n in names:
        np.save(cache / f"{n}.npy", getattr(arrays, n))
    return arrays


def build_stage(
    cfg: DetectorConfig, stage: str, batch_size: int | None = None, fake_quant: bool = False
) -> keras.Model:
    if stage == "proposal":
        return build_proposal(cfg.proposal.input_size, cfg.proposal.width, batch_size, fake_quant)
    return build_corners(cfg.corners.input_size, cfg.corners.width, batch_size)


def stage_weights(cfg: DetectorConfig, run: Path, stage: str) -> Path:
    """The final weights of a stage: those of its fine-tune (quantisation-aware / mined) when the config asks."""
    if stage == "proposal":
        folder = "proposal_qat" if cfg.proposal.qat_epochs > 0 else stage
    else:
        folder = "corners_mined" if cfg.corners.mine_epochs > 0 else stage
    return run / folder / "final.weights.h5"


def _fit(
    cfg: DetectorConfig,
    folder: Path,
    stage: str,
    data: tuple[np.ndarray, np.ndarray],
    epochs: int,
    lr: float,
    verbose: bool,
    init: Path | None = None,
    fake_quant: bool = False,
    strategy: tf.distribute.Strategy | None = None,
) -> list[dict]:
    """Train one stage's network on (x, y) in ``folder`` (resumable per epoch), from ``init`` weights if given.

    ``fake_quant`` trains the quantisation-aware build; its weights are the plain build's (no extra variables).
    A model built in ``strategy``'s scope is fitted by it: each batch split over its replicas.
    """
    x, y = data
    folder.mkdir(parents=True, exist_ok=True)
    if (done := _finished(folder)) is not None:
        return done
    scfg = getattr(cfg, stage)
    steps = max(1, len(x) // scfg.batch_size)
    with (strategy or tf.distribute.get_strategy()).scope():
        model = build_stage(cfg, stage, fake_quant=fake_quant)
        if init is not None:
            model.load_weights(init)
        schedule = keras.optimizers.schedules.CosineDecay(lr, steps * epochs, alpha=0.02)
        model.compile(
            optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4, clipnorm=5.0),
            loss=proposal_loss if stage == "proposal" else corners_loss,
        )
    log = folder / "history.csv"  # appended per epoch, so a resumed run keeps the earlier epochs
    model.fit(
        _dataset(x, y, scfg.batch_size, cfg.seed),
        epochs=epochs,
        verbose=2 if verbose else 0,
        callbacks=[
            keras.callbacks.BackupAndRestore(str(folder / "backup")),
            keras.callbacks.CSVLogger(str(log), append=True),
        ],
    )
    model.save_weights(folder / "final.weights.h5")
    rows = [line.split(",") for line in log.read_text().splitlines()[1:] if line and not line.startswith("epoch")]
    hist = [{"epoch": int(r[0]) + 1, "loss": float(r[1])} for r in rows]
    (folder / "history.json").write_text(json.dumps(hist, indent=1))
    return hist


def _finished(folder: Path) -> list[dict] | None:
    """The history of a stage that already finished in ``folder``, else None."""
    if not (folder / "final.weights.h5").is_file():
        return None
    return json.loads((folder / "history.json").read_text())


def _train_stage(
    cfg: DetectorConfig, run: Path, stage: str, arrays: DetectorArrays, verbose: bool, strategy: tf.distribute.Strategy
) -> list[dict]:
    scfg = getattr(cfg, stage)
    data = (arrays.frames, arrays.targets) if stage == "proposal" else (arrays.crops, arrays.crop_targets)
    init = None
    if cfg.init is not None:  # a fine-tune: start from that run's final weights of this stage
        init = stage_weights(load_detector_config(Path(cfg.init) / "config.yaml"), Path(cfg.init), stage)
    return _fit(cfg, run / stage, stage, data, scfg.epochs, scfg.lr, verbose, init, strategy=strategy)


def _train_qat(
    cfg: DetectorConfig, run: Path, arrays: DetectorArrays, verbose: bool, strategy: tf.distribute.Strategy
) -> list[dict]:
    """Fine-tune the trained proposal stage with its ReLU6 outputs on the int8 grid (quantisation-aware)."""
    p = cfg.proposal
    data = (arrays.frames, arrays.targets)
    init = run / "proposal" / "final.weights.h5"
    return _fit(cfg, run / "proposal_qat", "proposal", data, p.qat_epochs, p.qat_lr, verbose, init, True, strategy)


def _train_mined(
    cfg: DetectorConfig,
    run: Path,
    arrays: DetectorArrays,
    verbose: bool,
    limit: int | None,
    strategy: tf.distribute.Strategy,
) -> list[dict]:
    """Fine-tune the trained corners stage on its crops plus those mined from the proposal stage's proposals."""
    folder = run / "corners_mined"
    if (done := _finished(folder)) is not None:  # before mining, which takes minutes
        return done
    proposal = build_stage(cfg, "proposal", batch_size=1 if cfg.corners.mine_int8 else None)
    proposal.load_weights(stage_weights(cfg, run, "proposal"))
    if cfg.corners.mine_int8:
        detector = _int8_proposal(cfg, proposal, arrays.frames, folder / "proposal_int8")
    else:
        detector = Detector.from_stages(FloatStage(proposal, stage_extra(cfg, "proposal")), None)
    x, y = mine_corner_crops(detector.propose, cfg.data, cfg.corners, limit)
    if verbose:
        print(f"mined {len(x)} corners crops ({int(y[:, 0].sum()) if len(y) else 0} plates) from the proposals")
    data = (np.concatenate([arrays.crops, x]), np.concatenate([arrays.crop_targets, y]))
    c = cfg.corners
    init = run / "corners" / "final.weights.h5"
    return _fit(cfg, folder, "corners", data, c.mine_epochs, c.mine_lr, verbose, init, strategy=strategy)


def _int8_proposal(cfg: DetectorConfig, model: keras.Model, frames: np.ndarray, out: Path, n: int = 200) -> Detector:
    """The proposal stage as the full-int8 bundle the device runs (calibrated on ``n`` of the training frames)."""
    pick = np.random.default_rng(cfg.seed).choice(len(frames), min(n, len(frames)), replace=False)
    tflite = convert_int8(model, frames[np.sort(pick)].astype("float32") / 255.0)
    calibration = {"data": "training frames", "split": "train", "n": len(pick)}
    write_bundle(out, tflite, stage_manifest(cfg, "proposal", tflite, calibration))
    return Detector(out)


def stage_manifest(cfg: DetectorConfig, stage: str, tflite: bytes, calibration: dict[str, Any]) -> dict[str, Any]:
    """A stage bundle's manifest: the shared fields plus the stage's decoding constants in ``extra``."""
    m = base_manifest(tflite, "detector", f"{cfg.name}-{stage}", ARCHITECTURES[stage], LAYOUTS[stage], calibration)
    m["extra"] = {**stage_extra(cfg, stage), **m["extra"]}
    return m


class FloatStage:
    """A trained float stage with the runtime stage's interface, so the float cascade runs the same decoding."""

    def __init__(self, model: keras.Model, extra: dict[str, Any]) -> None:
        self.model, self.extra = model, extra
        self.height, self.width = model.input_shape[1:3]
        self.model_bytes = 0

    def __call__(self, pixels_bgr: np.ndarray) -> np.ndarray:
        x = pixels_bgr[None, ..., ::-1].astype(np.float32) / 255.0
        return np.asarray(self.model(x, training=False))[0]


def stage_extra(cfg: DetectorConfig, stage: str) -> dict[str, Any]:
    """The decoding constants a stage's manifest carries (``extra``)."""
    if stage == "proposal":
        p = cfg.proposal
        return {
            "stage": "proposal",
            "stride": p.stride,
            "box_scale": p.box_scale,
            "score_threshold": p.score_threshold,
            "max_proposals": p.max_proposals,
            "nms_iou": 0.4,
        }
    c = cfg.corners
    return {
        "stage": "corners",
        "crop_aspect": c.crop_aspect,
        "crop_expand": c.crop_expand,
        "coord_scale": c.coord_scale,
        "score": c.score,
        "score_threshold": c.score_threshold,
    }


def load_trained_detector(run_dir: str | Path, batch_size: int | None = None) -> tuple[DetectorConfig, dict]:
    """The config and the trained float models ``{"proposal": ..., "corners": ...}`` of a run."""
    run = Path(run_dir)
    cfg = load_detector_config(run / "config.yaml")
    models = {}
    for stage in STAGES:
        m = build_stage(cfg, stage, batch_size)
        m.load_weights(stage_weights(cfg, run, stage))
        models[stage] = m
    return cfg, models


def float_detector(cfg: DetectorConfig, models: dict[str, keras.Model]) -> Detector:
    return Detector.from_stages(
        FloatStage(models["proposal"], stage_extra(cfg, "proposal")),
        FloatStage(models["corners"], stage_extra(cfg, "corners")),
    )


def plot_curves(run: Path, histories: dict[str, list[dict]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, len(histories), figsize=(5 * len(histories), 3.5))
    for a, (stage, hist) in zip(np.atleast_1d(ax), histories.items(), strict=True):
        a.plot([h["epoch"] for h in hist], [h["loss"] for h in hist], marker="o")
        a.set(title=f"{stage} loss (train)", xlabel="epoch", yscale="log")
    fig.tight_layout()
    fig.savefig(run / "curves.png", dpi=80)
    plt.close(fig)


def train_detector(
    cfg: DetectorConfig | None,
    run_dir: str | Path,
    resume: bool = False,
    verbose: bool = True,
    limit: int | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> dict[str, Any]:
    """Train both stages of ``cfg`` in ``run_dir`` (or resume the run there); return the float eval metrics.

    ``limit`` caps the frames read per data source (for tests and quick trials). ``strategy``
    (:mod:`training.distribute`): one machine's (none or mirrored); the detector does not train across workers.

    Raises:
        ConfigError: a multi-worker strategy.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        raise ConfigError("the detector trains on one machine: --distribute none or mirrored, not multi-worker")
    cfg, run = open_run(cfg, run_dir, resume, load_detector_config)
    keras.utils.set_random_seed(cfg.seed)
    arrays = load_or_build_arrays(cfg, run, limit)
    if verbose:
        print(
            f"detector data: {len(arrays.frames)} frames, {len(arrays.crops)} crops "
            f"({int(arrays.crop_targets[:, 0].sum())} plates)"
        )
    histories = {stage: _train_stage(cfg, run, stage, arrays, verbose, strategy) for stage in STAGES}
    if cfg.proposal.qat_epochs > 0:
        histories["proposal_qat"] = _train_qat(cfg, run, arrays, verbose, strategy)
    if cfg.corners.mine_epochs > 0:
        histories["corners_mined"] = _train_mined(cfg, run, arrays, verbose, limit, strategy)
    plot_curves(run, histories)
    metrics: dict[str, Any] = {"history": histories}
    if cfg.eval is not None:
        _, models = load_trained_detector(run)
        scenes = read_scenes(cfg.eval.path, cfg.eval.split)[:limit]
        metrics["eval"] = {
            "data": cfg.eval.path,
            "split": cfg.eval.split,
            "float": evaluate_detector(float_detector(cfg, models), scenes, latency_frames=0),
        }
    (run / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics
