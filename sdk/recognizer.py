"""Plate recognition on the device: bundle -> interpreter -> int8 input -> logits -> CTC decode."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, overload

import numpy as np

from sdk.args import check_bool, check_choice, check_int, check_number, check_region_arg
from sdk.bundle import Bundle, load_bundle
from sdk.decode import Read
from sdk.errors import ArgumentError, BundleError, ImageError
from sdk.image import plate_input, read_image, shrink, to_bgr
from sdk.interpreter import Device, Runner
from sdk.second_look import ACCEPT_CONFIDENCE, read_crop

ImageLike = np.ndarray | str | Path
# A crop larger than this many times the model's input is shrunk (INTER_AREA) before it is read: plate crops are
# ~100-300 px wide, so they are read as before; only oversized ones are bounded.
CROP_SCALE = 4


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
        if not isinstance(bundle, (str, Path, Bundle)):
            raise ArgumentError(
                f"bundle must be a path, a shipped bundle's name or a Bundle, got {type(bundle).__name__}"
            )
        check_int("threads", threads)
        region = check_region_arg(region)
        self.method = check_choice("method", method, ("beam", "greedy"))  # type: ignore[assignment]
        self.top_n = check_int("top_n", top_n)
        self.second_look = check_bool("second_look", second_look)
        # above 1: no read is sure enough to skip the second look
        self.accept_confidence = check_number("accept_confidence", accept_confidence, 0.0, math.inf)
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        m = self.manifest = self.bundle.manifest
        if m.kind != "recognizer":
            raise BundleError(f"{self.bundle.source} is a {m.kind} bundle; a recognizer bundle is needed here")
        self.region = region or (m.regions[0] if len(m.regions) == 1 else None)
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

    @overload
    def recognize(self, image: ImageLike, region: str | None = None) -> Read: ...

    @overload
    def recognize(self, image: list[ImageLike] | tuple[ImageLike, ...], region: str | None = None) -> list[Read]: ...

    def recognize(self, image: ImageLike | Sequence[ImageLike], region: str | None = None) -> Read | list[Read]:
        """Read one plate crop, or a list of them (a list of reads comes back).

        A crop is a BGR/gray/BGRA array (uint8, uint16, 0-1 floats: :func:`sdk.image.to_bgr`) or an image file's
        path. ``region`` overrides the default for template filtering.

        Raises:
            ImageError: a crop is not an image, unreadable, or refused (size, dtype, NaN).
            RegionError: an unknown region.
        """
        region = check_region_arg(region) or self.region
        if isinstance(image, (list, tuple)):
            return [self._recognize(c, region) for c in image]
        return self._recognize(image, region)

    def _recognize(self, image: ImageLike, region: str | None) -> Read:
        if isinstance(image, (str, Path)):
            image = read_image(image)
        elif not isinstance(image, np.ndarray):
            raise ImageError(f"a plate crop must be an image array or a path, got {type(image).__name__}")
        # Converted once, and at most CROP_SCALE times the model's input: the second look shifts and zooms this
        # small crop, never a full-resolution array (a 20000x20000 "crop" would cost GBs four times over).
        crop = shrink(to_bgr(image), CROP_SCALE * self.width, CROP_SCALE * self.height)
        m = self.manifest
        return read_crop(
            lambda img: self.logits(self.prepare(img)),
            crop,
            m.alphabet,
            m.blank_index,
            region=region,
            method=self.method,
            top_n=self.top_n,
            second_look=self.second_look,
            accept_confidence=self.accept_confidence,
        )

    def recognize_batch(self, crops: list[ImageLike], region: str | None = None) -> list[Read]:
        return self.recognize(list(crops), region)
