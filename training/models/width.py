"""Width multipliers: one rule for how a network's channel counts scale with its ``width``."""

from __future__ import annotations


def scaled_channels(n: int, width: float) -> int:
    """``n`` channels scaled by ``width``, rounded to a multiple of 8 (int8 kernels and the Edge TPU work in groups
    of 8 channels), and never below 8."""
    return max(8, int(round(n * width / 8)) * 8)
