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
