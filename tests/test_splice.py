import csv

import numpy as np

from tests.conftest import SHARED_DATA, needs_shared_data
from training.data.splice import Aligned, cut_columns, splice


def _plate(gaps: list[int], h: int = 30, w: int = 120) -> np.ndarray:
    """A grey plate whose text band (rows 8-21) is bright glyph strokes everywhere except at the ``gaps`` columns
    (each gap 3 px wide, centred there)."""
    img = np.full((h, w, 3), 80, np.uint8)
    for x in range(0, w, 2):
        img[8:22, x] = 220
    for g in gaps:
        img[8:22, g - 1 : g + 2] = 80
    return img


def test_cut_columns_snap_to_the_gap_between_glyphs() -> None:
    img = _plate([40, 70, 100])
    # four characters; their CTC steps (of 12 over 120 px) put the halfway columns 5 px off each gap
    steps = [("A", 1.5), ("B", 4.5), ("C", 7.5), ("D", 10.5)]  # halfway: (3 + 0.5) * 10 = 35, 65, 95
    assert cut_columns(img, steps, 12) == (40, 70, 100)


def test_cut_columns_mark_a_cut_with_no_gap() -> None:
    img = _plate([40, 100])  # characters 2 and 3 touch: no gap near column 70
    steps = [("A", 1.5), ("B", 4.5), ("C", 7.5), ("D", 10.5)]
    cuts = cut_columns(img, steps, 12)
    assert cuts[0] == 40 and cuts[1] == -1 and cuts[2] == 100


def test_cut_columns_of_a_single_character_are_none() -> None:
    assert cut_columns(_plate([40]), [("A", 5.0)], 12) == ()


def test_splice_joins_left_of_one_crop_to_right_of_another_at_the_left_crops_size() -> None:
    a = Aligned(np.full((20, 60, 3), 10, np.uint8), "ABC", "us", (20, 40))
    b = Aligned(np.full((40, 90, 3), 200, np.uint8), "XYZ", "us", (30, 60))
    img, text = splice(a, b, 2)
    assert text == "ABZ"
    assert img.shape == (20, 60, 3)
    # a's first 40 columns (of 40 + 30 * 20/40 = 55) keep a's pixels; the last ones are b's
    assert (img[:, :40] == 10).all() and (img[:, -10:] == 200).all()


@needs_shared_data
def test_spliced_real_crops_fit_the_format_and_are_read_as_labelled(tmp_path) -> None:
    from sdk import Recognizer
    from sdk.formats import match_format
    from sdk.image import read_image
    from training.data.splice import write_spliced

    labels = write_spliced(SHARED_DATA / "crops", tmp_path, "cn", 40, regions=["cn"], seed=1)
    with open(labels, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 40
    rec = Recognizer("cn")
    read = 0
    for row in rows:
        assert match_format(row["plate_text"], "cn") is not None
        img = read_image(tmp_path / row["file"])
        assert img.shape[:2] == (24, 94)
        read += rec.recognize(img).text == row["plate_text"]
    # a cut through a glyph would leave half a character that the label lacks: the shipped model reads ~95 %
    assert read >= 32
