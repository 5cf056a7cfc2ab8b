"""The small shared vocabulary of the runtime: the string choices its API takes (as ``Literal`` aliases) and the
one rule about the CTC output both sides rely on. Modules import them from here; each is defined once."""

from __future__ import annotations

from typing import Literal

Split = Literal["all", "train", "test", "fit", "val"]  # a labels.csv split (sdk.dataset.split_of)
Device = Literal["cpu", "edgetpu"]  # where a TFLite model runs (sdk.interpreter)
Method = Literal["greedy", "beam"]  # CTC decoding: best path, or prefix beam search with top-N candidates
RectifyMethod = Literal["perspective", "affine", "crop"]  # how a plate crop is cut from its corners
PiFormat = Literal["RGB888", "XRGB8888", "BGR888", "XBGR8888"]  # picamera2 main-stream pixel formats
Kind = Literal["recognizer", "detector"]  # what a bundle holds (manifest ``kind``)


def blank_index_for(alphabet: str) -> int:
    """The CTC blank's class index for ``alphabet``: the blank comes last, after every character.

    A recogniser's logits have ``len(alphabet) + 1`` classes; training writes this index into the manifest
    (``blank_index``) and the runtime reads it from there.
    """
    return len(alphabet)
