"""A second look at a plate crop the recogniser is unsure of.

A read that fits a plate format at ``ACCEPT_CONFIDENCE`` or more is taken as it is. Otherwise the crop is read
again at four small shifts and zooms (``VIEWS``), and every candidate of the first read is rescored by its exact
CTC probability averaged over the five outputs (geometric mean); the read is then chosen among the rescored
candidates as before (region templates first). A misread that is a near miss under one view is rarely the most
likely reading under all of them. Int8 test crops, beam + templates, shipped bundles: cn 0.923 -> 0.937, br
0.893 -> 0.913, us 0.876 (unchanged), pseudo-labelled Romanian crops 0.677 -> 0.688. A quarter to a third of
crops need it, at about 4.5x one read each, so the median latency per plate rises by up to a third
(``models/README.md``).

The pipeline does not use it: it reads each plate at several margins instead (``sdk.pipeline.MARGINS``), and a
second look at its best read lost frames there.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from sdk.decode import Candidate, Read, choose, ctc_log_likelihoods, decode, labels_of, softmax
from sdk.types import Method

# A read that fits a plate format at this confidence or more is taken without another look (also the
# pipeline's test for accepting a margin's read).
ACCEPT_CONFIDENCE = 0.95
# The extra views: (horizontal shift as a fraction of the crop's width, zoom about the centre).
VIEWS = ((0.02, 1.0), (-0.02, 1.0), (0.0, 1.04), (0.0, 0.96))

LogitsFn = Callable[[np.ndarray], np.ndarray]


def views(img: np.ndarray) -> list[np.ndarray]:
    """``img`` shifted and zoomed as in ``VIEWS`` (edges replicated), same size."""
    h, w = img.shape[:2]
    out = []
    for dx, zoom in VIEWS:
        m = np.array([[zoom, 0, dx * w + (1 - zoom) * w / 2], [0, zoom, (1 - zoom) * h / 2]], np.float32)
        out.append(cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    return out


def is_sure(read: Read, accept_confidence: float = ACCEPT_CONFIDENCE) -> bool:
    """A read taken as it is: confident, and fitting one of its region's formats when it has a region."""
    return read.confidence >= accept_confidence and (read.region is None or read.format is not None)


def rescore(read: Read, outputs: list[np.ndarray], alphabet: str, blank_index: int) -> Read:
    """``read``'s candidates rescored by their CTC probability under every output (logits ``(T, C)``; the
    geometric mean over outputs) and the read chosen again among them (``region`` templates first)."""
    texts = [c.text for c in read.candidates if c.text]
    if not texts:
        return read
    log_probs = np.log(np.maximum(softmax(np.stack(outputs)), 1e-300))
    ll = ctc_log_likelihoods(log_probs, [labels_of(t, alphabet, blank_index) for t in texts], blank_index)
    scores = np.exp(ll.mean(axis=0))
    ranked = sorted(zip(texts, scores.tolist(), strict=True), key=lambda ts: -ts[1])
    return choose(tuple(Candidate(t, min(s, 1.0)) for t, s in ranked), read.region, looks=len(outputs))


def read_crop(
    logits_of: LogitsFn,
    img: np.ndarray,
    alphabet: str,
    blank_index: int,
    *,
    region: str | None = None,
    method: Method = "beam",
    top_n: int = 5,
    second_look: bool = True,
    accept_confidence: float = ACCEPT_CONFIDENCE,
) -> Read:
    """Read one plate crop with a model given as ``logits_of(crop_bgr) -> (T, C) logits``: decode, then a
    second look (beam search only) unless the read is sure (:func:`is_sure`)."""
    first = logits_of(img)
    read = decode(first, alphabet, blank_index, region=region, method=method, top_n=top_n)
    if not second_look or method != "beam" or is_sure(read, accept_confidence):
        return read
    return rescore(read, [first, *(logits_of(v) for v in views(img))], alphabet, blank_index)
