"""Labelled plate folders (``labels.csv``: file, plate_text, region, source) and the deterministic train/test split."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sdk.errors import LprError

Split = Literal["all", "train", "test"]
TEST_PERCENT = 25


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


def read_labels(
    data_dir: str | Path, split: Split = "all", regions: list[str] | tuple[str, ...] | None = None
) -> list[LabelRow]:
    """Rows of ``data_dir/labels.csv`` (paths made absolute), filtered by split and regions.

    Raises:
        LprError: the folder or its labels.csv is missing or lacks the needed columns.
    """
    d = Path(data_dir)
    f = d / "labels.csv"
    if not f.is_file():
        raise LprError(f"{d} holds no labels.csv (columns: file,plate_text,region)")
    with open(f, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"file", "plate_text", "region"} - set(reader.fieldnames or ())
        if missing:
            raise LprError(f"{f} lacks column(s) {', '.join(sorted(missing))}")
        rows = [LabelRow(d / r["file"], r["plate_text"], r["region"], r.get("source") or "") for r in reader]
    return [
        r for r in rows if (split == "all" or split_of(r.text) == split) and (regions is None or r.region in regions)
    ]
