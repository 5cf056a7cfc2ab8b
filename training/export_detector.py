"""Export a trained detector run to two full-int8 bundles (``OUT/proposal``, ``OUT/corners``), checked against
the float cascade on real scenes: AP at IoU 0.5 may drop by at most 2 pp unless allowed."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sdk.bundle import write_bundle
from sdk.dataset import Split, read_scenes
from sdk.detector import Detector
from sdk.evaluate import evaluate_detector
from training.config import SceneSource
from training.data.detector_data import build_arrays
from training.export import MAX_DROP_PP, QuantizeError, convert_int8
from training.train_detector import STAGES, float_detector, load_trained_detector, stage_manifest


def quantize_detector_run(
    run_dir: str | Path,
    calib_dir: str | Path,
    out_dir: str | Path,
    calib_split: Split = "all",
    eval_dir: str | Path | None = None,
    eval_split: Split = "test",
    allow_drop: bool = False,
    max_calib: int = 200,
) -> tuple[Detector, dict[str, Any]]:
    """Quantise both stages of ``run_dir``, compare float vs int8 AP on the eval scenes, write ``out_dir``."""
    cfg, models = load_trained_detector(run_dir, batch_size=1)
    source = SceneSource(str(calib_dir), calib_split)
    calib = build_arrays([source], cfg.proposal, cfg.corners, seed=1, limit=max_calib, sample=True)
    if len(calib.frames) == 0:
        raise QuantizeError(f"{calib_dir} ({calib_split}) holds no scenes to calibrate on")
    tflite = {
        "proposal": convert_int8(models["proposal"], calib.frames.astype("float32") / 255.0),
        "corners": convert_int8(models["corners"], calib.crops[: max_calib * 4].astype("float32") / 255.0),
    }
    calibration = {"data": str(calib_dir), "split": calib_split, "n": len(calib.frames)}
    manifests = {stage: stage_manifest(cfg, stage, tflite[stage], calibration) for stage in STAGES}
    if eval_dir is None and cfg.eval is not None:
        eval_dir, eval_split = cfg.eval.path, cfg.eval.split
    metrics: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for stage in STAGES:
            write_bundle(Path(tmp) / stage, tflite[stage], manifests[stage])
        if eval_dir is not None:
            scenes = read_scenes(eval_dir, eval_split)
            metrics = {
                "data": str(eval_dir),
                "split": eval_split,
                "float": evaluate_detector(float_detector(cfg, models), scenes, latency_frames=0),
                "int8": evaluate_detector(Detector(tmp), scenes),
            }
            drop = 100 * (metrics["float"]["overall"]["ap_50"] - metrics["int8"]["overall"]["ap_50"])
            metrics["int8_drop_pp"] = round(drop, 2)
            if drop > MAX_DROP_PP and not allow_drop:
                raise QuantizeError(
                    f"int8 loses {drop:.1f} pp of AP@0.5 against float (limit {MAX_DROP_PP}); "
                    "calibrate on more/other scenes or pass --allow-drop"
                )
    for stage in STAGES:
        write_bundle(Path(out_dir) / stage, tflite[stage], {**manifests[stage], "metrics": metrics})
    return Detector(out_dir), metrics
