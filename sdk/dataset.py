"""Labelled folders and the deterministic splits.

Every plate text falls on one side of the **test** split (about 25 %, reported once per recipe) or the **train**
split. The train split is itself cut into **val** (about a fifth of its texts: the split that chooses recipes,
thresholds and checkpoints) and **fit** (the rest: what a recipe trains on when val must stay unseen). ``train``
keeps meaning fit + val, as the shipped models were trained on it.

Plate crops: ``labels.csv`` with file, plate_text, region, source. Scenes (whole frames): ``labels.csv`` with
file, plate_text, region, x1..y4 (corners TL, TR, BR, BL in pixels), source; one row per plate.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from sdk.errors import LprError
from sdk.types import Split

SPLITS: tuple[str, ...] = get_args(Split)  # for argument choices
TEST_PERCENT = 25
VAL_PERCENT = 20  # of the train split's texts


@dataclass(frozen=True)
class LabelRow:
    path: Path
    text: str
    region: str
    source: str = ""


def split_of(text: str) -> Literal["train", "test"]:
    """``test`` for about 25 % of plate texts, by hash: every crop of one plate lands on the same side."""
    h = int(hashlib.md5(text.encode("utf-8")).hexdigest()[:8], 16)
    return "test" if h % 100 < TEST_PERCENT else "train"


def in_val(text: str) -> bool:
    """Whether a train-split text is in the validation split (about ``VAL_PERCENT`` % of them), by a hash
    independent of :func:`split_of` and :func:`in_fraction`."""
    h = int(hashlib.md5(f"val:{text}".encode()).hexdigest()[:8], 16)
    return split_of(text) == "train" and h % 100 < VAL_PERCENT


def in_split(text: str, split: Split) -> bool:
    """Whether a plate text belongs to ``split`` (``all``, ``train`` = ``fit`` + ``val``, ``test``)."""
    if split == "all":
        return True
    if split in ("train", "test"):
        return split_of(text) == split
    if split in ("fit", "val"):
        return split_of(text) == "train" and in_val(text) == (split == "val")
    raise LprError(f"unknown split {split!r}: one of {', '.join(SPLITS)}")


def in_fraction(text: str, fraction: float) -> bool:
    """Whether a plate text is among a ``fraction`` of all texts, by a hash independent of :func:`split_of`.
    The subsets nest: a text kept at 0.25 is kept at 0.5 (learning curves over the amount of real data)."""
    h = int(hashlib.md5(f"fraction:{text}".encode()).hexdigest()[:8], 16)
    return h / 2**32 < fraction


_CROP = ("file", "plate_text", "region")
_SCENE = (*_CROP, "x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4")


def _csv_rows(d: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    f = d / "labels.csv"
    if not f.is_file():
        raise LprError(f"{d} holds no labels.csv (columns: {','.join(columns)})")
    try:
        with open(f, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = set(columns) - set(reader.fieldnames or ())
            if missing:
                raise LprError(f"{f} lacks column(s) {', '.join(sorted(missing))}")
            return list(reader)
    except UnicodeDecodeError as e:
        raise LprError(f"{f} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except csv.Error as e:
        raise LprError(f"{f} is not a readable CSV ({e})") from None


def read_labels(
    data_dir: str | Path, split: Split = "all", regions: list[str] | tuple[str, ...] | None = None
) -> list[LabelRow]:
    """Rows of ``data_dir/labels.csv`` (paths made absolute), filtered by split and regions.

    Raises:
        LprError: the folder or its labels.csv is missing or lacks the needed columns.
    """
    d = Path(data_dir)
    rows = [LabelRow(d / r["file"], r["plate_text"], r["region"], r.get("source") or "") for r in _csv_rows(d, _CROP)]
    return [r for r in rows if in_split(r.text, split) and (regions is None or r.region in regions)]


def write_labels(data_dir: str | Path, rows: list[tuple[str, str, str, str]]) -> Path:
    """Write ``data_dir/labels.csv`` from (file relative to ``data_dir``, plate_text, region, source) rows."""
    d = Path(data_dir)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow((*_CROP, "source"))
        w.writerows(rows)
    return d / "labels.csv"


# --- scenes -------------------------------------------------------------------------------------------------------

FULLY_LABELLED_REGIONS = ("ro",)
"""Real scene regions whose frames have every visible plate labelled (the rest label one plate per frame)."""
SYNTH_SOURCE = "synth scene"
"""``source`` prefix of rendered scenes: they label every plate they contain."""


@dataclass(frozen=True, eq=False)
class ScenePlate:
    """One labelled plate of a frame: (4, 2) float32 corners TL, TR, BR, BL in pixels (rendered plates may extend
    outside the frame), its text (empty for detection-only labels) and region."""

    corners: np.ndarray
    text: str
    region: str


@dataclass(frozen=True, eq=False)
class SceneFrame:
    """One frame of a scenes folder: absolute path, labelled plates, region (``mixed`` when its plates differ)
    and ``partial``: True when plates in view may be unlabelled (single-plate real sources)."""

    path: Path
    plates: tuple[ScenePlate, ...]
    region: str
    partial: bool


def scene_split(file: str | Path, text: str = "") -> Literal["train", "test"]:
    """The split of a scene frame: by its labelled plate text when it has one (the same side as that plate's
    crops, so a recogniser trained on the train split never saw a test frame's plate), else by its file stem
    without a trailing ``_t<digits>``, so all frames of one dashcam ride land on the same side."""
    return split_of(_scene_key(file, text))


def _scene_key(file: str | Path, text: str) -> str:
    return text or re.sub(r"_t\d+$", "", Path(str(file)).stem)


def read_scenes(
    scenes_dir: str | Path, split: Split = "all", regions: list[str] | tuple[str, ...] | None = None
) -> list[SceneFrame]:
    """Frames of ``scenes_dir/labels.csv`` (real or rendered): rows grouped by file, in order of first appearance.

    Args:
        scenes_dir: folder with ``labels.csv`` and the images it names.
        split: ``all``, or the side of :func:`scene_split` (by the first plate's text; ``fit``/``val`` cut its
            train side as :func:`in_split` does crops).
        regions: keep frames with at least one plate of these regions (None: all).

    Raises:
        LprError: labels.csv is missing, lacks columns or has corners that are not numbers.
    """
    d = Path(scenes_dir)
    grouped: dict[str, list[tuple[ScenePlate, str]]] = {}
    for line, r in enumerate(_csv_rows(d, _SCENE), start=2):
        try:
            corners = np.array([[float(r[f"x{k}"]), float(r[f"y{k}"])] for k in range(1, 5)], np.float32)
        except (TypeError, ValueError):
            raise LprError(f"{d / 'labels.csv'}:{line}: corners x1..y4 must be numbers") from None
        grouped.setdefault(r["file"], []).append(
            (ScenePlate(corners, r["plate_text"] or "", r["region"]), r.get("source") or "")
        )
    frames = []
    for file, items in grouped.items():
        plates = tuple(p for p, _ in items)
        if split != "all" and not in_split(_scene_key(file, plates[0].text), split):
            continue
        if regions is not None and not any(p.region in regions for p in plates):
            continue
        plate_regions = {p.region for p in plates}
        region = plate_regions.pop() if len(plate_regions) == 1 else "mixed"
        synthetic = all(src.startswith(SYNTH_SOURCE) for _, src in items)
        frames.append(SceneFrame(d / file, plates, region, not (synthetic or region in FULLY_LABELLED_REGIONS)))
    return frames
