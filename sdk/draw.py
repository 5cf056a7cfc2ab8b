"""Draw a frame's plate reads on it: outline, text and confidence, and track id when given (``sdk.draw``)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from sdk.errors import ArgumentError
from sdk.pipeline import FrameResult, PlateRead

OUTLINE = (0, 255, 0)  # BGR: green plate outline
TEXT = (0, 255, 255)  # BGR: yellow text on a black halo, readable on any background


def draw(
    frame: np.ndarray, result: FrameResult | Sequence[PlateRead], track_ids: Sequence[int] = ()
) -> np.ndarray:
    """A copy of ``frame`` with each plate of ``result`` drawn on it.

    Each plate gets its outline (the detector's four corners, else its box) and a label above it: its text and
    confidence, and ``#N`` with its track id when ``track_ids`` are given (:class:`sdk.PlateTracker`'s
    ``step.ids``, in the order of the plates). OpenCV's fonts have no CJK glyphs: a Chinese province character
    shows as ``?``.

    Args:
        frame: the BGR uint8 image the plates were read from (``result.frame`` of :meth:`sdk.Pipeline.run`).
        result: a :class:`sdk.FrameResult`, or its plates.
        track_ids: one track id per plate, or empty.

    Raises:
        ArgumentError: ``frame`` is not an (H, W, 3) uint8 image, or ``track_ids`` does not match the plates.
    """
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ArgumentError("draw needs the BGR frame as an (H, W, 3) uint8 array")
    plates = result.plates if isinstance(result, FrameResult) else tuple(result)
    if track_ids and len(track_ids) != len(plates):
        raise ArgumentError(f"draw: {len(track_ids)} track ids for {len(plates)} plates")
    out = frame.copy()
    for i, p in enumerate(plates):
        x0, y0, x1, y1 = (int(v) for v in p.box)
        if p.corners is not None:
            cv2.polylines(out, [np.round(p.corners).astype(np.int32)], True, OUTLINE, 2)
        else:
            cv2.rectangle(out, (x0, y0), (x1, y1), OUTLINE, 2)
        label = f"{p.text} {p.confidence:.2f}" + (f" #{track_ids[i]}" if track_ids else "")
        at = (x0, max(12, y0 - 6))
        cv2.putText(out, label, at, cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4)
        cv2.putText(out, label, at, cv2.FONT_HERSHEY_SIMPLEX, 0.7, TEXT, 2)
    return out
