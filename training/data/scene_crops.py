"""Plate crops cut from labelled scenes (``scenes/labels.csv`` with corners), for recogniser training/eval.

The scenes' corners are axis-aligned boxes; each crop is the box with a small margin, so it looks like what a
detector hands the recogniser. Rows without text (detection-only frames) are skipped.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from sdk.image import read_image


def extract_scene_crops(scenes_dir: str | Path, out_dir: str | Path, margin: float = 0.06) -> Path:
    """Write one crop per labelled plate of ``scenes_dir`` plus a ``labels.csv`` into ``out_dir``."""
    src, out = Path(scenes_dir), Path(out_dir)
    rows = []
    with open(src / "labels.csv", newline="", encoding="utf-8") as f:
        for i, r in enumerate(csv.DictReader(f)):
            if not r["plate_text"]:
                continue
            pts = np.array([[float(r[f"x{k}"]), float(r[f"y{k}"])] for k in range(1, 5)])
            (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
            mx, my = (x1 - x0) * margin, (y1 - y0) * margin
            img = read_image(src / r["file"])
            h, w = img.shape[:2]
            crop = img[max(0, int(y0 - my)) : min(h, int(y1 + my)), max(0, int(x0 - mx)) : min(w, int(x1 + mx))]
            if crop.size == 0:
                continue
            rel = Path(r["region"]) / f"{i:05d}.jpg"
            (out / rel.parent).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / rel), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
            rows.append((rel.as_posix(), r["plate_text"], r["region"], f"scene crop of {r['file']}"))
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(("file", "plate_text", "region", "source"))
        w.writerows(rows)
    return out / "labels.csv"


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: python -m training.data.scene_crops SCENES_DIR OUT_DIR")
    print(extract_scene_crops(sys.argv[1], sys.argv[2]))
