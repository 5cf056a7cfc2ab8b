"""Rolled copies of a labelled scenes folder: how the pipeline reads plates turned in the image plane.

Each frame of ``SCENES`` (split ``--split``) is rotated about its centre by +DEG and by -DEG (the canvas grows so
nothing is cut off), and its labelled corners with it; the copies and a ``labels.csv`` go to ``OUT``. Read them
with the same command as the originals and compare:

    python benchmarks/roll_scenes.py ../shared/data/scenes runs/rolled12 --degrees 12 --split val
    python benchmarks/compare_scenes.py --data runs/rolled12 --split all --no-rapidocr

Photos of cars taken by hand or on a slope show plates rolled by 10-15 degrees; the real scenes here are mostly
level, so this is how to see what roll costs before a camera meets it.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2
import numpy as np

from sdk.dataset import SPLITS, read_scenes
from training.data.detector_data import roll_frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenes")
    ap.add_argument("out")
    ap.add_argument("--degrees", type=float, default=12.0)
    ap.add_argument("--split", default="val", choices=SPLITS)
    ap.add_argument("--regions", nargs="+", default=["us", "br", "eu"])
    a = ap.parse_args()
    out = Path(a.out)
    rows = []
    for frame in read_scenes(a.scenes, a.split, a.regions):
        img = cv2.imread(str(frame.path))
        for sign in (1, -1):
            rolled, plates = roll_frame(img, frame.plates, sign * a.degrees)
            name = f"{frame.region}/{frame.path.stem}_roll{sign * a.degrees:+g}.jpg"
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / name), rolled, [cv2.IMWRITE_JPEG_QUALITY, 95])
            for p in plates:
                corners = np.round(p.corners.astype(np.float64), 1).ravel().tolist()
                rows.append([name, p.text, p.region, *corners, f"rolled {sign * a.degrees:+g}"])
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(("file", "plate_text", "region", "x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4", "source"))
        w.writerows(rows)
    print(f"{len(rows)} rolled plates -> {out / 'labels.csv'}")


if __name__ == "__main__":
    main()
