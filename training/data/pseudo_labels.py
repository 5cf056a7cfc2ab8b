"""Label unlabelled plate boxes with a bigger reader (a teacher), to fine-tune on footage nobody transcribed.

For every plate box without text in a scenes folder (``labels.csv`` with corners, e.g. the ``ro`` dashcam frames,
or your own camera's frames with boxes), cut the box with a margin, read it with the teacher, and keep the read
when its score is at least ``min_score`` and it fits a plate format of ``region`` (a leading country code read off
the plate's band, such as RO, is dropped first). Writes the kept crops and a ``labels.csv`` in the crops format,
so a training config can use the folder like any other (its ``split`` then splits by plate text). With
``--detector``, the plates the detector finds that overlap no labelled box are read too, and the source may be
raw footage: a plain folder of frames from your camera (no ``labels.csv``) or a video file, of which every
``--every``-th frame is read (the frames that give a kept read are saved under ``OUT/frames``).

Teachers: ``rapidocr`` (PP-OCR's recogniser via rapidocr-onnxruntime, the ``bench`` extra) or a recogniser bundle.

With ``--crops``, the source is a folder of unlabelled plate crops (``labels.csv`` in the crops format with empty
texts, such as ``../shared/data/unlabelled``): each crop of ``--region`` is read whole. ``--agree BUNDLE`` keeps a
read only where a second reader agrees that it is plausible: the teacher's text is among that bundle's top
candidates (two readers that fail differently rarely agree on the same wrong text).

    python -m training.data.pseudo_labels ../shared/data/unlabelled runs/br_pseudo --crops --region br --agree latin

    python -m training.data.pseudo_labels ../shared/data/scenes runs/ro_pseudo --scene-regions ro --region eu
    python -m training.data.pseudo_labels my_frames/ runs/my_plates --region us --detector detector
    python -m training.data.pseudo_labels drive.mp4 runs/my_plates --region eu --detector detector --every 15
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from sdk.capture import open_source
from sdk.dataset import SPLITS, SceneFrame, Split, read_labels, read_scenes, write_labels
from sdk.detector import Detector, iou_matrix
from sdk.errors import ImageError, LprError
from sdk.formats import alphabet_for, check_region, formats_for, match_format, normalise_text
from sdk.image import read_image
from sdk.recognizer import Recognizer
from sdk.rectify import quad_to_box
from training.data.scene_crops import box_crop
from training.synth.scenes import SCENE_COLUMNS

log = logging.getLogger(__name__)

# A detection overlapping a labelled box by less than this IoU is another plate.
NEW_PLATE_IOU = 0.1

Teacher = Callable[[np.ndarray], tuple[str, float]]
"""A reader of one BGR plate crop: (text, score in [0, 1])."""


def rapidocr_teacher(threads: int = 1) -> Teacher:
    """PP-OCR's text recogniser (no detection: the crop is the line), as RapidOCR ships it."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        raise LprError("the rapidocr teacher needs rapidocr-onnxruntime: pip install -e '.[bench]'") from None
    engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)

    def read(crop: np.ndarray) -> tuple[str, float]:
        res, _ = engine(crop, use_det=False, use_cls=False)
        return (str(res[0][0]), float(res[0][1])) if res else ("", 0.0)

    return read


def bundle_teacher(bundle: str | Path, threads: int = 1) -> Teacher:
    """A recogniser bundle's beam-search read and its confidence (no templates: the format check is here)."""
    rec = Recognizer(bundle, threads)

    def read(crop: np.ndarray) -> tuple[str, float]:
        r = rec.recognize(crop)
        return r.text, r.confidence

    return read


def plate_text(read: str, region: str) -> str | None:
    """The teacher's read as a plate text of ``region``: NFKC, uppercase, only the region's alphabet, a leading
    band country code dropped when the rest then fits; None when it fits none of the region's formats."""
    text = normalise_text(read, alphabet_for(region))
    if match_format(text, region):
        return text
    for band in {f.band for f in formats_for(region) if f.band}:
        if text.startswith(band) and match_format(text[len(band) :], region):
            return text[len(band) :]
    return None


def _scene_frames(
    source: Path, split: Split, scene_regions: Sequence[str] | None
) -> Iterator[tuple[SceneFrame, np.ndarray]]:
    """A scenes folder's frames and images; a frame that cannot be read is skipped with a logged warning."""
    for frame in read_scenes(source, split, list(scene_regions) if scene_regions else None):
        try:
            yield frame, read_image(frame.path)
        except ImageError as e:  # one bad frame costs its boxes, not the run
            log.warning("skipped: %s", e)


def _raw_frames(source: Path, every: int, frames_dir: Path) -> Iterator[tuple[SceneFrame, np.ndarray]]:
    """Every ``every``-th frame of an image folder or video (no boxes), named by the file it will be saved to."""
    with open_source(str(source)) as frames:  # unreadable images are skipped and logged by the source
        for f in frames:
            if f.index % every == 0:
                yield SceneFrame(frames_dir / f"{Path(f.source).stem}_{f.index:06d}.jpg", (), "", True), f.image


def _boxes(
    frame: SceneFrame, img: np.ndarray, scene_regions: Sequence[str] | None, detector: Detector | None
) -> list[np.ndarray]:
    """Corners of the frame's boxes without text, then of the detector's plates that overlap no labelled box."""
    boxes = [p.corners for p in frame.plates if not p.text and (not scene_regions or p.region in scene_regions)]
    if detector is None:
        return boxes
    known = np.array([quad_to_box(p.corners) for p in frame.plates]).reshape(-1, 4)
    for d in detector.detect(img):
        if not len(known) or iou_matrix(np.array([d.box]), known).max() < NEW_PLATE_IOU:
            x0, y0, x1, y1 = d.box
            corners = d.corners if d.corners is not None else np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
            boxes.append(np.asarray(corners, np.float32))
    return boxes


def _kept_read(teacher: Teacher, crop: np.ndarray, region: str, min_score: float) -> tuple[str | None, float]:
    """The teacher's read of ``crop`` as a plate text of ``region`` and its score; None for the text when it fits
    no format or scores below ``min_score``."""
    read, score = teacher(crop)
    text = plate_text(read, region)
    return (text if text is not None and score >= min_score else None), score


def _write_crop(path: Path, crop: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])


def pseudo_label(
    scenes_dir: str | Path,
    out_dir: str | Path,
    teacher: Teacher,
    region: str,
    scene_regions: Sequence[str] | None = None,
    split: Split = "all",
    min_score: float = 0.9,
    margin: float = 0.1,
    teacher_name: str = "teacher",
    detector: Detector | None = None,
    every: int = 1,
) -> tuple[int, int]:
    """Read the unlabelled boxes of ``scenes_dir`` with ``teacher``; write the kept crops and ``labels.csv`` (with
    ``region`` as each row's region) into ``out_dir``, and ``out_dir/scenes/labels.csv``: the kept boxes as scene
    rows with their text, naming the frames by absolute path (end-to-end evaluation on the same plates, e.g.
    ``benchmarks/compare_scenes.py --data OUT/scenes --regions REGION``). Returns (crops kept, boxes read).

    With a ``detector`` the plates it finds that overlap no labelled box are read too, and ``scenes_dir`` may
    also be raw footage without ``labels.csv``: a folder of images or a video file, read every ``every``-th
    frame; every plate then comes from the detector, and each frame that gives a kept read is saved under
    ``out_dir/frames`` for the scene rows. A frame that cannot be read is skipped with a logged warning.

    Raises:
        LprError: ``scenes_dir`` has no usable labels.csv (and is not raw footage read with a detector), a video
            cannot be opened, or ``region`` is unknown.
    """
    region = check_region(region)
    if every < 1:
        raise LprError(f"every must be >= 1 (1: every frame), got {every}")
    out, source = Path(out_dir), Path(scenes_dir)
    raw = detector is not None and not (source / "labels.csv").is_file()
    frames = _raw_frames(source, every, out / "frames") if raw else _scene_frames(source, split, scene_regions)
    rows, scene_rows, seen = [], [], 0
    for i, (frame, img) in enumerate(tqdm(frames, desc="frames", unit="frame", disable=None)):
        if detector is None and all(p.text for p in frame.plates):
            continue
        kept_before = len(rows)
        for j, corners in enumerate(_boxes(frame, img, scene_regions, detector)):
            crop = box_crop(img, corners, margin)
            if crop.size == 0:
                continue
            seen += 1
            text, score = _kept_read(teacher, crop, region, min_score)
            if text is None:
                continue
            rel = Path(region) / f"{i:05d}_{j}.jpg"
            _write_crop(out / rel, crop)
            note = f"{teacher_name} {score:.2f} on {frame.path.name}"
            rows.append((rel.as_posix(), text, region, note))
            scene_rows.append((frame.path.resolve(), text, region, *corners.ravel().tolist(), note))
        if raw and len(rows) > kept_before:  # save the frame its scene rows name, once
            frame.path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(frame.path), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    write_labels(out, rows)
    (out / "scenes").mkdir(parents=True, exist_ok=True)
    with open(out / "scenes" / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(SCENE_COLUMNS)
        w.writerows(scene_rows)
    return len(rows), seen


def label_crops(
    crops_dir: str | Path,
    out_dir: str | Path,
    teacher: Teacher,
    region: str,
    min_score: float = 0.9,
    agree: Recognizer | None = None,
    top_k: int = 3,
    teacher_name: str = "teacher",
) -> tuple[int, int]:
    """Read the ``region`` crops of ``crops_dir`` that have no text with ``teacher``; keep a read scored at least
    ``min_score`` that fits one of the region's formats and (with ``agree``) is among that reader's ``top_k``
    candidates; write the kept crops and ``labels.csv`` into ``out_dir``. Returns (crops kept, crops read)."""
    region = check_region(region)
    out = Path(out_dir)
    rows, seen = [], 0
    todo = [r for r in read_labels(crops_dir, "all", [region]) if not r.text]
    for i, row in enumerate(tqdm(todo, desc=f"{region} crops", unit="crop", disable=None)):
        try:
            crop = read_image(row.path)
        except ImageError as e:
            log.warning("skipped: %s", e)
            continue
        seen += 1
        text, score = _kept_read(teacher, crop, region, min_score)
        if text is None:
            continue
        if agree is not None:
            second = agree.recognize(crop, region)
            if text not in [second.text, *(c.text for c in second.candidates[:top_k])]:
                continue
        rel = Path(region) / f"{i:05d}.jpg"
        _write_crop(out / rel, crop)
        rows.append((rel.as_posix(), text, region, f"{teacher_name} {score:.2f} on {row.path.name}"))
    write_labels(out, rows)
    return len(rows), seen


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Label the unlabelled plate boxes of a scenes folder with a teacher.")
    ap.add_argument("scenes_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--region", required=True, help="the plates' region: reads must fit one of its formats")
    ap.add_argument("--scene-regions", nargs="+", help="only boxes of these scene regions (e.g. ro)")
    ap.add_argument("--split", default="all", choices=SPLITS, help="frames of this scene split")
    ap.add_argument("--teacher", default="rapidocr", help="'rapidocr' or a recogniser bundle")
    ap.add_argument("--detector", help="also read the plates this detector finds (needed for raw footage)")
    ap.add_argument("--min-score", type=float, default=0.9, help="keep reads the teacher scores at least this")
    ap.add_argument("--margin", type=float, default=0.1, help="box margin, as a fraction of the box's size")
    ap.add_argument("--every", type=int, default=1, help="raw footage: read every N-th frame (a video: e.g. 15)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--crops", action="store_true", help="the source is a folder of unlabelled crops, read whole")
    ap.add_argument("--agree", help="crops: keep reads among this bundle's top candidates too")
    a = ap.parse_args(argv)
    try:
        teacher = rapidocr_teacher(a.threads) if a.teacher == "rapidocr" else bundle_teacher(a.teacher, a.threads)
        if a.crops:
            agree = Recognizer(a.agree, a.threads) if a.agree else None
            kept, seen = label_crops(a.scenes_dir, a.out_dir, teacher, a.region, a.min_score, agree, 3, a.teacher)
            print(f"{kept} of {seen} crops labelled -> {Path(a.out_dir) / 'labels.csv'}")
            return 0
        detector = Detector(a.detector, a.threads) if a.detector else None
        kept, seen = pseudo_label(
            a.scenes_dir,
            a.out_dir,
            teacher,
            a.region,
            a.scene_regions,
            a.split,
            a.min_score,
            a.margin,
            a.teacher,
            detector,
            a.every,
        )
    except LprError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{kept} of {seen} boxes labelled -> {Path(a.out_dir) / 'labels.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
