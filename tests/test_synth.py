import random

import numpy as np
import pytest

from sdk.dataset import read_labels
from sdk.formats import formats_for, match_format

pytest.importorskip("PIL")
from training.synth.plates import random_text, render_plate  # noqa: E402


@pytest.mark.parametrize("region", ["cn", "us", "br", "eu"])
def test_rendered_labels_match_their_region_formats(region):
    rng = random.Random(0)
    for _ in range(20):
        plate = render_plate(region, rng)
        assert match_format(plate.text, region) is not None, plate.text
        assert plate.image.dtype == np.uint8 and plate.image.ndim == 3 and min(plate.image.shape[:2]) >= 12


def test_random_text_respects_cn_letter_rule():
    rng = random.Random(1)
    blue = formats_for("cn")[0]
    for _ in range(200):
        text, _ = random_text(blue, rng)
        assert sum(c.isalpha() and c.isascii() for c in text[2:]) <= 2
        assert "I" not in text and "O" not in text


def test_render_dataset_writes_labels_csv(synth_dir):
    rows = read_labels(synth_dir)
    assert len(rows) == 48
    assert all(r.path.is_file() and r.region == "cn" and match_format(r.text, "cn") for r in rows)


@pytest.mark.parametrize("pitch", [False, True])
def test_fixed_pitch_squeezes_wide_glyphs_to_the_cell(pitch):
    import cv2
    from PIL import Image, ImageDraw

    from training.synth.plates import LATIN_FONTS, _draw_text_fit

    img = Image.new("L", (1000, 100), 0)
    _draw_text_fit(ImageDraw.Draw(img), (0, 10, 1000, 90), "1W1W1", LATIN_FONTS[0], 255, random.Random(0), pitch=pitch)
    n, _, stats, _ = cv2.connectedComponentsWithStats((np.asarray(img) > 127).astype(np.uint8))
    widths = [int(w) for _, _, w, _, _ in sorted(stats[1:].tolist())]  # left to right
    assert n - 1 == 5
    one, w = widths[0], widths[1]
    if pitch:  # the cell is the median glyph width (a "1"'s box); the W is squeezed into it
        assert w <= _cell_of("1", LATIN_FONTS[0], 80) + 1
    else:
        assert w > 2 * one


def _cell_of(ch: str, font_name: str, size: int) -> int:
    from training.synth.plates import _font

    b = _font(font_name, size).getbbox(ch)
    return b[2] - b[0]
