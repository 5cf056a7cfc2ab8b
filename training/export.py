"""Export a trained recogniser run to a full-int8 TFLite bundle, checked against the float model on real data."""

from __future__ import annotations

import platform
import tempfile
import warnings
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from sdk.bundle import Bundle, write_bundle
from sdk.dataset import Split, read_labels
from sdk.errors import LprError
from sdk.evaluate import evaluate_rows
from sdk.formats import ALPHABETS
from sdk.image import plate_input, read_image
from sdk.interpreter import make_interpreter
from sdk.recognizer import Recognizer
from sdk.second_look import read_crop
from sdk.types import blank_index_for
from training.config import TrainConfig
from training.models.lprnet import SampleNorm
from training.train_recognizer import load_trained

MIN_CALIB = 100
MAX_DROP_PP = 2.0


class QuantizeError(LprError):
    """int8 export refused (accuracy drop) or impossible."""


# LPRNet's per-sample norms divide by a mean square that int8 must never round to zero: each is floored at this
# fraction of its largest value on the calibration images (about 4 steps of the divisor's int8 range).
NORM_FLOOR = 1 / 64


def set_norm_floors(model: keras.Model, calib: np.ndarray) -> dict[str, float]:
    """Floor every :class:`SampleNorm` divisor of ``model`` at ``NORM_FLOOR`` of its largest value on ``calib``
    (float images in [0, 1]); returns the floors by layer name. Only images whose features are nearly all zero
    there are affected: their int8 divisor would otherwise be zero."""
    norms = [layer for layer in model.layers if isinstance(layer, SampleNorm)]
    if not norms:
        return {}
    probe = keras.Model(model.inputs, [layer.input for layer in norms])
    feats = probe.predict(calib.astype(np.float32), batch_size=32, verbose=0)
    for layer, f in zip(norms, feats if len(norms) > 1 else [feats], strict=True):
        layer.floor = float(NORM_FLOOR * np.mean(np.square(f), axis=(1, 2, 3)).max())
    return {layer.name: layer.floor for layer in norms}


def convert_int8(model: keras.Model, calib: np.ndarray) -> bytes:
    """Full-int8 TFLite (int8 input and output, TFLITE_BUILTINS_INT8 only) calibrated on float images in [0, 1]."""

    def representative():  # the converter's calibration pass: one image at a time, shown as a progress bar
        for x in tqdm(calib, desc="calibrating", unit="image", disable=None):
            yield [x[None].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def convert_dynamic(model: keras.Model) -> bytes:
    """Dynamic-range TFLite: int8 weights, float activations, float input and output (no calibration)."""
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return conv.convert()


FORMS = ("int8", "dynamic")  # full-int8 (the default, what ships) or dynamic-range


def _versions() -> dict[str, str]:
    def v(pkg: str) -> str:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return "unknown"

    return {
        "lpr_sdk": v("lpr-sdk"),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def _spec(d: dict[str, Any]) -> dict[str, Any]:
    scale, zp = d["quantization"]
    if np.dtype(d["dtype"]) == np.float32:  # a float tensor (dynamic-range form): identity "quantisation"
        scale, zp = 1.0, 0
    return {
        "shape": [int(s) for s in d["shape"]],
        "dtype": np.dtype(d["dtype"]).name,
        "scale": float(scale),
        "zero_point": int(zp),
    }


def base_manifest(
    tflite: bytes, kind: str, name: str, architecture: str, output_layout: str, calibration: dict[str, Any]
) -> dict[str, Any]:
    """The manifest fields every exported bundle shares: tensors and quantisation read from the converted model,
    RGB input in [0, 1], versions, creation time and what it was calibrated on (``extra``)."""
    interp, _ = make_interpreter(tflite)
    return {
        "kind": kind,
        "name": name,
        "architecture": architecture,
        "input": _spec(interp.get_input_details()[0]),
        "output": _spec(interp.get_output_details()[0]),
        "color_order": "RGB",
        "mean": 0.0,
        "std": 255.0,
        "output_layout": output_layout,
        "versions": _versions(),
        "extra": {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "calibration": calibration},
    }


def float_reader(
    model: keras.Model, alphabet: str, size: tuple[int, int], method: str = "beam", templates: bool = True
):
    """``read(image_bgr, region)`` with the float model, decoded like the runtime (``method``, the second look;
    the region's templates unless ``templates`` is False), for :func:`sdk.evaluate.evaluate_rows`."""

    def logits_of(img: np.ndarray) -> np.ndarray:
        x = plate_input(img, *size)[None].astype(np.float32) / 255.0
        return np.asarray(model(x, training=False))[0]

    def read(img: np.ndarray, region: str):
        region = region if templates else None
        return read_crop(logits_of, img, alphabet, blank_index_for(alphabet), region=region, method=method)

    return read


def architecture_name(cfg: TrainConfig) -> str:
    """The manifest's ``architecture``: e.g. ``lprnet-reduced-w0.75`` (``-stn`` with the transformer) or
    ``lightcrnn-a0.5-h128``."""
    m = cfg.model
    if m.architecture == "lprnet":
        return f"lprnet-{m.variant}-w{m.width:g}" + ("-stn" if m.stn else "")
    return f"{m.architecture}-a{m.width:g}-h{m.hidden}" + ("" if m.lstm_layers == 2 else f"-l{m.lstm_layers}")


def quantize_run(
    run_dir: str | Path,
    calib_dir: str | Path,
    out_dir: str | Path,
    calib_split: Split = "all",
    eval_dir: str | Path | None = None,
    eval_split: Split = "test",
    allow_drop: bool = False,
    max_calib: int = 400,
    form: str = "int8",
) -> tuple[Bundle, dict[str, Any]]:
    """Quantise ``run_dir``'s model, measure float vs int8 on the eval data, write the bundle to ``out_dir``.

    The eval data defaults to the run config's eval set. Raises :class:`QuantizeError` when int8 loses more than
    2 pp of plate accuracy against float, unless ``allow_drop``. ``form``: ``int8`` (full integer, calibrated on
    ``calib_dir``) or ``dynamic`` (dynamic-range: int8 weights, float activations and I/O; for the LSTM models,
    whose int8 error sits in the recurrences); the metrics' ``int8`` entry is the quantised model either way.
    """
    if form not in FORMS:
        raise QuantizeError(f"quantisation form {form!r}: choose {' or '.join(FORMS)}")
    cfg, model = load_trained(run_dir, for_export=True)
    alphabet = ALPHABETS[cfg.alphabet]
    h, w = cfg.input_size
    if form == "dynamic":  # weights only: nothing to calibrate
        tflite = convert_dynamic(model)
        calibration: dict[str, Any] = {"form": form, "note": "dynamic-range: weights only, no activation calibration"}
    else:
        calib_rows = read_labels(calib_dir, calib_split, cfg.regions)
        rng = np.random.default_rng(0)
        calib_rows = [calib_rows[i] for i in rng.permutation(len(calib_rows))[:max_calib]]
        if not calib_rows:
            raise QuantizeError(f"{calib_dir} has no images of regions {', '.join(cfg.regions)} to calibrate on")
        if len(calib_rows) < MIN_CALIB:
            warnings.warn(
                f"only {len(calib_rows)} calibration images (< {MIN_CALIB}): int8 ranges may be poor", stacklevel=2
            )
        calib = np.stack([plate_input(read_image(r.path), h, w) for r in calib_rows]).astype(np.float32) / 255.0
        floors = set_norm_floors(model, calib)
        tflite = convert_int8(model, calib)
        calibration = {"data": str(calib_dir), "split": calib_split, "n": len(calib_rows), "form": form}
        if floors:
            calibration["norm_floors"] = {k: float(f"{v:.6g}") for k, v in floors.items()}
    architecture = architecture_name(cfg)
    manifest = {
        **base_manifest(tflite, "recognizer", cfg.name, architecture, "NTC", calibration),
        "alphabet": alphabet,
        "blank_index": blank_index_for(alphabet),
        "regions": list(cfg.regions),
    }
    if eval_dir is None and cfg.eval is not None:
        eval_dir, eval_split = cfg.eval.path, cfg.eval.split
    metrics: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        staged = write_bundle(Path(tmp) / "bundle", tflite, manifest)
        if eval_dir is not None:
            rows = read_labels(eval_dir, eval_split, cfg.regions)

            rec = Recognizer(staged)
            metrics = {
                "data": str(eval_dir),
                "split": eval_split,
                "decode": "beam+template+second-look",
                "float": evaluate_rows(float_reader(model, alphabet, cfg.input_size), rows),
                "int8": evaluate_rows(lambda img, region: rec.recognize(img, region), rows),
            }
            drop = 100 * (metrics["float"]["overall"]["plate_accuracy"] - metrics["int8"]["overall"]["plate_accuracy"])
            metrics["int8_drop_pp"] = round(drop, 2)
            if drop > MAX_DROP_PP and not allow_drop:
                raise QuantizeError(
                    f"int8 loses {drop:.1f} pp of plate accuracy against float (limit {MAX_DROP_PP}); "
                    "calibrate on more/other images or pass --allow-drop"
                )
        manifest["metrics"] = metrics
        # overwrite model + manifest only: notes kept next to a bundle (REBUILD.md, metrics) survive
        bundle = write_bundle(out_dir, tflite, manifest)
    return bundle, metrics
