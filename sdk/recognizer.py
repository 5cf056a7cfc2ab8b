"""Plate recognition on the device: bundle -> interpreter -> int8 input -> logits -> CTC decode."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

import numpy as np

from sdk.bundle import Bundle, load_bundle
from sdk.decode import Read
from sdk.errors import BundleError
from sdk.formats import check_region
from sdk.image import plate_input
from sdk.interpreter import Device, Runner
from sdk.second_look import ACCEPT_CONFIDENCE, read_crop


class Recognizer:
    """Reads plate crops with a recogniser bundle.

    The interpreter is built once here; :meth:`recognize` only preprocesses, invokes and decodes.

    Args:
        bundle: a bundle directory/archive path, a shipped bundle's name (``cn``, ``latin``) or a loaded Bundle.
        threads: interpreter threads.
        region: default region for template post-filtering (None: no filtering).
        method: ``beam`` (prefix beam search, top-N) or ``greedy``.
        top_n: number of candidates kept.
        device: ``cpu`` or ``edgetpu``.
        second_look: read an unsure crop again at small shifts and zooms and rescore its candidates over all
            the reads (:mod:`sdk.second_look`; beam search only).
        accept_confidence: a read that fits a plate format at this confidence or more needs no second look.
    """

    def __init__(
        self,
        bundle: str | Path | Bundle,
        threads: int = 1,
        region: str | None = None,
        method: Literal["greedy", "beam"] = "beam",
        top_n: int = 5,
        device: Device = "cpu",
        second_look: bool = True,
        accept_confidence: float = ACCEPT_CONFIDENCE,
    ) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        m = self.manifest = self.bundle.manifest
        if m.kind != "recognizer":
            raise BundleError(f"{self.bundle.source} is a {m.kind} bundle; a recognizer bundle is needed here")
        self.region = check_region(region) if region else (m.regions[0] if len(m.regions) == 1 else None)
        self.method, self.top_n = method, top_n
        self.second_look, self.accept_confidence = second_look, accept_confidence
        self._run = Runner(self.bundle, threads, device)
        self.interpreter, self.backend = self._run.interpreter, self._run.backend
        self.height, self.width = m.input_hw
        # One interpreter holds one input and one output tensor: each set-invoke-get is done under this lock, so
        # threads sharing a Recognizer wait for each other instead of reading each other's crops. For parallel
        # reading make one Recognizer per thread (docs/pipeline.md, "Thread model").
        self._lock = threading.Lock()

    def prepare(self, img_bgr: np.ndarray) -> np.ndarray:
        """A BGR (or gray/BGRA) crop -> the model's uint8 input pixels (H, W, 3) in its colour order."""
        return plate_input(img_bgr, self.height, self.width, self.manifest.color_order)

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """Dequantised output (T, C) for one prepared uint8 (H, W, 3) input."""
        with self._lock:
            return self._run(pixels)

    def recognize(self, img_bgr: np.ndarray, region: str | None = None) -> Read:
        """Read one plate crop (BGR). ``region`` overrides the default for template filtering."""
        m = self.manifest
        return read_crop(
            lambda img: self.logits(self.prepare(img)),
            img_bgr,
            m.alphabet,
            m.blank_index,
            region=check_region(region) if region else self.region,
            method=self.method,
            top_n=self.top_n,
            second_look=self.second_look,
            accept_confidence=self.accept_confidence,
        )

    def recognize_batch(self, crops: list[np.ndarray], region: str | None = None) -> list[Read]:
        return [self.recognize(c, region) for c in crops]
