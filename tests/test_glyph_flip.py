"""The glyph-flip augmentation: CTC alignment of a read, the text band of a crop, and the flipped box."""

import numpy as np

from training.data.glyph_flip import char_steps, flip_glyph, greedy_runs, text_band

ALPHABET = "AMW"
BLANK = 3


def _logits(path: list[int]) -> np.ndarray:
    out = np.full((len(path), 4), -5.0)
    out[np.arange(len(path)), path] = 5.0
    return out


def test_char_steps_give_each_character_the_mean_step_of_its_run() -> None:
    # A A - M M M - - A  ->  "AMA"; a repeat after a blank is a new character
    steps = char_steps(_logits([0, 0, 3, 1, 1, 1, 3, 3, 0]), ALPHABET, BLANK)
    assert steps == [("A", 0.5), ("M", 4.0), ("A", 8.0)]


def test_greedy_runs_give_class_and_first_and_last_step() -> None:
    # M A A - A: a class change starts a new run without a blank in between
    assert greedy_runs(_logits([1, 0, 0, 3, 0]), BLANK) == [(1, 0, 0), (0, 1, 2), (0, 4, 4)]


def test_char_steps_map_classes_above_the_blank_one_down() -> None:
    assert [c for c, _ in char_steps(_logits([1, 3, 0]), "ABC", 2)] == ["B", "C", "A"]


def _plate(h: int = 40, w: int = 120) -> np.ndarray:
    """A grey plate with vertical strokes (glyphs) on rows 12-31 and a plain border elsewhere."""
    img = np.full((h, w, 3), 90, np.uint8)
    for x in range(8, w - 8, 6):
        img[12:32, x : x + 3] = 230
    return img


def test_text_band_finds_the_rows_of_the_strokes() -> None:
    y0, y1 = text_band(_plate()[..., 0])
    assert abs(y0 - 12) <= 1 and abs(y1 - 32) <= 1


def test_flip_glyph_flips_only_the_glyph_box() -> None:
    img = _plate()
    img[12:18, 56:64] = 20  # a dark mark at the top of the middle character's cell
    steps = [("A", 3.5), ("M", 7.5), ("A", 11.5)]  # 16 time steps over 120 px: pitch 4 steps = 30 px
    out = flip_glyph(img, steps, 1, 16)
    # the middle cell (x 45-75) is flipped within the band (rows 12-31, padded to 11-32): the mark moves to rows 26-31
    assert (out[26:32, 56:64] == 20).all() and (out[12:26, 56:64] != 20).all()
    # everything outside the cell is untouched
    assert (out[:, :44] == img[:, :44]).all() and (out[:, 76:] == img[:, 76:]).all()
    assert (out[:10] == img[:10]).all()
