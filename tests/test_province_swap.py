"""Province-swapped cn crops (training/data/province_swap.py): the rest of the plate kept, the first glyph new."""

import numpy as np
import pytest

from sdk.dataset import read_labels
from sdk.image import read_image

pytestmark = pytest.mark.train  # the training side's renderer (Pillow)
pytest.importorskip("PIL")
from training.data.province_swap import render_province, text_ink, write_swapped  # noqa: E402
from training.synth.plates import render_dataset  # noqa: E402


def _blue_plate() -> np.ndarray:
    """A 24x94 blue plate with white 'glyphs': a blob left of column 16 and bars to its right."""
    img = np.zeros((24, 94, 3), np.uint8)
    img[:] = (160, 60, 20)  # BGR blue
    img[5:19, 4:13] = (235, 235, 235)
    img[8:16, 7:10] = (160, 60, 20)  # a hole: the old glyph is not a plain box
    for x in range(20, 90, 10):
        img[5:19, x : x + 4] = (235, 235, 235)
    return img


def test_render_province_redraws_only_left_of_the_cut_in_the_plates_colours() -> None:
    import random

    img = _blue_plate()
    out = render_province(img, 16, "粤", random.Random(0))
    np.testing.assert_array_equal(out[:, 16:], img[:, 16:])  # the rest of the plate untouched
    assert not np.array_equal(out[:, :16], img[:, :16])
    _, _, ink = text_ink(out)
    y0, _, _ = text_ink(img)
    left = out[y0 : y0 + ink.shape[0], :16][ink[:, :16]]
    assert len(left) > 10 and left.mean(axis=0)[0] > 180  # the new glyph is drawn in the plate's white
    plate = out[y0 : y0 + ink.shape[0], :16][~ink[:, :16]]
    assert np.abs(np.median(plate, axis=0) - (160, 60, 20)).max() < 30  # on the plate's blue


def test_swapped_crops_keep_the_text_after_the_province(tmp_path) -> None:
    """End to end with the shipped cn bundle on rendered cn plates: every written crop's label is its source plate's
    text with another province first, and its image is that plate's (the right side unchanged where rendered)."""
    src = tmp_path / "synth"
    render_dataset(src, ["cn"], 24, seed=3)
    out = tmp_path / "swap"
    write_swapped(src, out, "cn", 12, split="all", seed=0)
    rows = read_labels(out)
    assert len(rows) == 12
    originals = {r.text: r for r in read_labels(src)}
    for r in rows:
        before = r.source.split()[0]
        assert before in originals and r.text[0] != before[0] and r.text[1:] == before[1:]
        assert read_image(r.path).shape[0] > 0


def test_leave_out_keeps_those_plates_out_of_targets_and_donors(tmp_path) -> None:
    src = tmp_path / "synth"
    render_dataset(src, ["cn"], 24, seed=3)
    texts = [r.text for r in read_labels(src)]
    gone = texts[0][0]
    write_swapped(src, tmp_path / "swap", "cn", 6, split="all", leave_out=(gone,), seed=0)
    assert all(not r.source.startswith(gone) for r in read_labels(tmp_path / "swap"))
