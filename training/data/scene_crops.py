"""Plate crops cut from labelled scenes (``labels.csv`` with corners), for recogniser training/eval.

Default: each crop is the plate's bounding box with a small margin (what a box detector hands the recogniser).
With ``copies`` > 0 each plate is instead cut ``copies`` times through the pipeline's own rectifier
(:func:`sdk.rectify.rectify` with :data:`sdk.pipeline.MARGIN`) from its corners moved by a few percent, as a
corner-regressing detector's errors would move them, so the recogniser learns the crops the pipeline makes.
Rows without text (detection-only frames) are skipped.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import cv2
import numpy as np

from sdk.dataset import SPLITS, Split, read_scenes, write_labels
from sdk.image import read_image
from sdk.pipeline import MARGIN
from sdk.rectify import rectify


def box_crop(img: np.ndarray, corners: np.ndarray, margin: float) -> np.ndarray:
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    h, w = img.shape[:2]
    return img[max(0, int(y0 - my)) : min(h, int(y1 + my)), max(0, int(x0 - mx)) : min(w, int(x1 + mx))]


def _rectified(img: np.ndarray, corners: np.ndarray, rng: random.Random, jitter: float) -> np.ndarray:
    w = float(np.linalg.norm(corners[1] - corners[0]))
    h = float(np.linalg.norm(corners[3] - corners[0]))
    moved = corners + np.array([[rng.gauss(0, jitter) * w, rng.gauss(0, jitter) * h * 2] for _ in range(4)])
    out_w = int(np.clip(w * (1 + 2 * MARGIN[0]), 24, 320))
    out_h = int(np.clip(out_w * h * (1 + 2 * MARGIN[1]) / max(w * (1 + 2 * MARGIN[0]), 1), 12, 160))
    return rectify(img, moved.astype(np.float32), None, out_w, out_h, "perspective", MARGIN)


def extract_scene_crops(
    scenes_dir: str | Path,
    out_dir: str | Path,
    margin: float = 0.06,
    split: Split = "all",
    regions: list[str] | None = None,
    copies: int = 0,
    jitter: float = 0.03,
    seed: int = 0,
) -> Path:
    """Write crops of the labelled plates of ``scenes_dir`` plus a ``labels.csv`` into ``out_dir``.

    ``copies`` = 0: one bounding-box crop with ``margin`` per plate; else that many rectified crops per plate
    with corner noise of ``jitter`` (fraction of the plate's width / height, Gaussian sigma).
    """
    out = Path(out_dir)
    rng = random.Random(seed)
    rows = []
    for i, frame in enumerate(read_scenes(scenes_dir, split, regions)):
        plates = [p for p in frame.plates if p.text and (regions is None or p.region in regions)]
        if not plates:
            continue
        img = read_image(frame.path)
        for j, p in enumerate(plates):
            crops = (
                [box_crop(img, p.corners, margin)]
                if copies == 0
                else [_rectified(img, p.corners, rng, jitter) for _ in range(copies)]
            )
            for k, crop in enumerate(crops):
                if crop.size == 0:
                    continue
                rel = Path(p.region) / f"{i:05d}_{j}_{k}.jpg"
                (out / rel.parent).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(out / rel), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
                rows.append((rel.as_posix(), p.text, p.region, f"scene crop of {frame.path.name}"))
    return write_labels(out, rows)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Cut labelled plate crops out of a scenes folder.")
    ap.add_argument("scenes_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--split", default="all", choices=SPLITS)
    ap.add_argument("--regions", nargs="+")
    ap.add_argument("--copies", type=int, default=0, help="rectified crops per plate with corner noise (0: box crop)")
    ap.add_argument("--jitter", type=float, default=0.03)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(
        extract_scene_crops(
            a.scenes_dir, a.out_dir, split=a.split, regions=a.regions, copies=a.copies, jitter=a.jitter, seed=a.seed
        )
    )
