"""sdk.draw: a frame's plate reads drawn on a copy of it."""

from __future__ import annotations

import numpy as np
import pytest

import sdk
from sdk.decode import Candidate
from sdk.pipeline import FrameResult, PlateRead


def _plate(box: tuple[float, float, float, float], corners: np.ndarray | None = None) -> PlateRead:
    return PlateRead(box, corners, 0.9, "AB123CD", 0.87, (Candidate("AB123CD", 0.87),), "eu", "latin")


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(rows, cols) of the pixels that differ."""
    return np.argwhere((a != b).any(axis=2))


def test_draw_outlines_each_plate_and_labels_it_above_on_a_copy():
    frame = np.full((360, 640, 3), 90, np.uint8)
    corners = np.array([[300, 200], [420, 205], [418, 240], [298, 236]], np.float32)
    plates = (_plate((298, 200, 420, 240), corners), _plate((40, 80, 140, 110)))
    result = FrameResult(0, plates, {}, frame=frame)
    out = sdk.draw(frame, result)
    assert out.shape == frame.shape and out is not frame and (frame == 90).all()  # the frame itself is untouched
    rows, cols = _changed(frame, out).T
    # each plate's outline and its label, about 150 px wide, from the plate's left edge up to 30 px above it
    near = ((cols >= 290) & (cols <= 460) & (rows >= 170) & (rows <= 245)) | (
        (cols >= 35) & (cols <= 200) & (rows >= 50) & (rows <= 115)
    )
    assert near.all()  # nothing is drawn away from the plates and their labels
    assert (out[200:240, 296:302] != 90).any() and (out[80:110, 38:43] != 90).any()  # each outline's left edge
    assert (out[175:195, 300:420] != 90).any()  # a label above the first plate
    assert (sdk.draw(frame, plates) == out).all()  # its plates alone draw the same


def test_draw_adds_track_ids_to_the_labels():
    frame = np.zeros((200, 300, 3), np.uint8)
    plates = (_plate((50, 100, 150, 130)),)
    plain, tracked = sdk.draw(frame, plates), sdk.draw(frame, plates, track_ids=(7,))
    rows, cols = _changed(plain, tracked).T
    assert len(rows) and rows.max() < 100  # only the label (above the plate) grows: "... #7"


def test_draw_refuses_what_it_cannot_draw_on():
    plates = (_plate((5, 5, 50, 20)),)
    with pytest.raises(sdk.ArgumentError, match="uint8"):
        sdk.draw(np.zeros((100, 100), np.uint8), plates)
    with pytest.raises(sdk.ArgumentError, match="2 track ids for 1 plates"):
        sdk.draw(np.zeros((100, 100, 3), np.uint8), plates, track_ids=(1, 2))
