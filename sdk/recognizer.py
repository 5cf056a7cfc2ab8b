"""Plate recognition on the device: bundle -> interpreter -> int8 input -> logits -> CTC decode."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from sdk.bundle import Bundle, load_bundle
from sdk.decode import Read, decode
from sdk.errors import BundleError
from sdk.formats import check_region
from sdk.image import plate_input
from sdk.interpreter import Device, check_tensors, invoke, make_interpreter


def input_lut(mean: float, std: float, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """Table mapping a uint8 pixel to the model's input value: q = round((p - mean) / std / scale) + zp."""
    real = (np.arange(256, dtype=np.float64) - mean) / std
    if dtype == "float32":
        return real.astype(np.float32)
    info = np.iinfo(np.dtype(dtype))
    return np.clip(np.round(real / scale) + zero_point, info.min, info.max).astype(dtype)


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
    """

    def __init__(
        self,
        bundle: str | Path | Bundle,
        threads: int = 1,
        region: str | None = None,
        method: Literal["greedy", "beam"] = "beam",
        top_n: int = 5,
        device: Device = "cpu",
    ) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        m = self.manifest = self.bundle.manifest
        if m.kind != "recognizer":
            raise BundleError(f"{self.bundle.source} is a {m.kind} bundle; a recognizer bundle is needed here")
        self.region = check_region(region) if region else (m.regions[0] if len(m.regions) == 1 else None)
        self.method, self.top_n = method, top_n
        self.interpreter, self.backend = make_interpreter(self.bundle.model, threads, device)
        check_tensors(self.interpreter, m)
        self._in = self.interpreter.get_input_details()[0]["index"]
        self._out = self.interpreter.get_output_details()[0]["index"]
        self._lut = input_lut(m.mean, m.std, m.input.scale, m.input.zero_point, m.input.dtype)
        self.height, self.width = m.input_hw

    def prepare(self, img_bgr: np.ndarray) -> np.ndarray:
        """A BGR (or gray/BGRA) crop -> the model's uint8 input pixels (H, W, 3) in its colour order."""
        return plate_input(img_bgr, self.height, self.width, self.manifest.color_order)

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """Dequantised output (T, C) for one prepared uint8 (H, W, 3) input."""
        self.interpreter.set_tensor(self._in, self._lut[pixels][None])
        invoke(self.interpreter)
        q = self.interpreter.get_tensor(self._out)[0]
        spec = self.manifest.output
        return (
            q.astype(np.float32) if spec.dtype == "float32" else (q.astype(np.float32) - spec.zero_point) * spec.scale
        )

    def recognize(self, img_bgr: np.ndarray, region: str | None = None) -> Read:
        """Read one plate crop (BGR). ``region`` overrides the default for template filtering."""
        m = self.manifest
        return decode(
            self.logits(self.prepare(img_bgr)),
            m.alphabet,
            m.blank_index,
            region=check_region(region) if region else self.region,
            method=self.method,
            top_n=self.top_n,
        )

    def recognize_batch(self, crops: list[np.ndarray], region: str | None = None) -> list[Read]:
        return [self.recognize(c, region) for c in crops]
