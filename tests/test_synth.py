import random

import cv2
import numpy as np
import pytest

from sdk.dataset import read_labels
from sdk.formats import formats_for, match_format

pytestmark = pytest.mark.train  # the training side's renderer (Pillow)
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
    from PIL import Image, ImageDraw

    from training.synth.plates import LATIN_FONTS, _draw_text_fit, _font

    img = Image.new("L", (1000, 100), 0)
    _draw_text_fit(ImageDraw.Draw(img), (0, 10, 1000, 90), "1W1W1", LATIN_FONTS[0], 255, random.Random(0), pitch=pitch)
    n, _, stats, _ = cv2.connectedComponentsWithStats((np.asarray(img) > 127).astype(np.uint8))
    widths = [int(w) for _, _, w, _, _ in sorted(stats[1:].tolist())]  # left to right
    assert n - 1 == 5
    one, w = widths[0], widths[1]
    if pitch:  # the cell is the median glyph width (a "1"'s box); the W is squeezed into it
        b = _font(LATIN_FONTS[0], 80).getbbox("1")
        assert w <= b[2] - b[0] + 1
    else:
        assert w > 2 * one


def test_dull_look_lowers_saturation_and_contrast():
    from training.synth.plates import degrade

    img = np.zeros((60, 200, 3), np.uint8)
    img[:, ::20] = (255, 255, 255)
    img[:, 10::20] = (230, 20, 20)  # saturated red and white stripes

    def look(dull: bool) -> tuple[float, float]:
        outs = [degrade(img, random.Random(i), 200, 60, min_scale=1.0, dull=dull) for i in range(30)]
        sat = np.mean([cv2.cvtColor(o, cv2.COLOR_RGB2HSV)[..., 1].mean() for o in outs])
        return float(sat), float(np.mean([o.std() for o in outs]))

    (sat, contrast), (dull_sat, dull_contrast) = look(False), look(True)
    assert dull_sat < 0.7 * sat and dull_contrast < 0.8 * contrast


def test_old_br_w_is_drawn_as_an_upside_down_m():
    from PIL import Image, ImageDraw

    from training.synth.plates import LATIN_FONTS, _draw_text_fit

    def draw(text: str, flip: bool) -> np.ndarray:
        img = Image.new("L", (400, 100), 0)
        box = (0, 10, 400, 90)
        _draw_text_fit(ImageDraw.Draw(img), box, text, LATIN_FONTS[0], 255, random.Random(0), flipped_m_w=flip)
        return np.asarray(img, np.float32)[10:90] / 255

    m = draw("M", False)[::-1]

    def mismatch(a: np.ndarray) -> float:  # pixels that differ, per pixel of ink
        return float(np.abs(a - m).sum() / m.sum())

    assert mismatch(draw("W", True)) < 0.05  # the M, flipped top to bottom, in the same place
    assert mismatch(draw("W", False)) > 0.3  # the font's own W is another shape
    assert np.array_equal(draw("AB1", True), draw("AB1", False))  # other glyphs as before


def test_cn_cells_follow_the_gb_layout():
    from PIL import Image

    from training.synth.plates import LATIN_FONTS, _draw_cn_cells

    img = Image.new("RGB", (440, 140), 0)
    _draw_cn_cells(img, "皖A·B3058", LATIN_FONTS[1], (255, 255, 255), random.Random(0))
    ink = np.asarray(img)[..., 0] > 127
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8))
    glyphs = sorted(s for s in stats[1:].tolist() if s[3] > 0.5 * 140)  # left to right; the province may split
    latin = glyphs[-6:]  # A, B, 3, 0, 5, 8
    heights = [h for _, _, _, h, _ in latin]
    assert min(heights) >= 0.6 * 140 and max(heights) - min(heights) <= 3  # tall glyphs, all of one height
    assert all(w <= 0.55 * h for _, _, w, h, _ in latin)  # narrow: the 45x90 mm cell
    lefts = [x for x, *_ in latin]
    steps = np.diff(lefts[1:])  # B to 8: one pitch (cell + gap)
    assert steps.max() - steps.min() <= 3
    dot = [s for s in stats[1:].tolist() if 4 < s[4] < 400 and s[0] > lefts[0] + latin[0][2] and s[0] < lefts[1]]
    assert len(dot) == 1  # the separator dot, between the 2nd and 3rd character


@pytest.mark.parametrize("ratio", [0.10, 0.13])
def test_cn_stroke_thins_the_bold_fonts_stems_to_the_asked_share_of_the_height(ratio):
    from training.synth.plates import LATIN_FONTS, _glyph, _stem, _thinned

    for font in LATIN_FONTS:
        stem, cap = _stem(font)
        assert stem > 0.14 * cap  # the bundled fonts are bold
        ink = np.asarray(_thinned(_glyph("H", font, 160, 0), font, ratio)) > 127
        row = ink[ink.shape[0] // 4]
        runs = np.diff(np.flatnonzero(np.diff(np.r_[0, row.astype(int), 0])))[::2]
        assert len(runs) == 2 and all(abs(r / cap - ratio) <= 0.02 for r in runs), (font, runs / cap)


def test_cn_stroke_off_renders_as_before(monkeypatch):
    import training.synth.plates as plates

    before = [render_plate("cn", random.Random(seed)).image for seed in range(4)]
    monkeypatch.setattr(plates, "CN_STROKE", (0.10, 0.10))
    thin = [render_plate("cn", random.Random(seed)).image for seed in range(4)]
    monkeypatch.setattr(plates, "CN_STROKE", None)
    assert all(np.array_equal(render_plate("cn", random.Random(s)).image, before[s]) for s in range(4))
    assert not all(np.array_equal(a, b) for a, b in zip(thin, before, strict=True))
