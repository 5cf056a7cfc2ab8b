"""Checks of public API arguments: a wrong type or value is one typed error line, never a TypeError deep inside."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sdk.errors import ArgumentError, RegionError


def check_int(name: str, value: Any, least: int = 1) -> int:
    """An int (not a bool) of at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ArgumentError(f"{name} must be an integer >= {least}, got {_show(value)}")
    return value


def check_number(name: str, value: Any, lo: float, hi: float) -> float:
    """An int or float (not a bool, not NaN) in [lo, hi]: infinite only where that bound is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ArgumentError(f"{name} must be a number in [{lo:g}, {hi:g}], got {_show(value)}")
    if not lo <= value <= hi:
        raise ArgumentError(f"{name} must be in [{lo:g}, {hi:g}], got {value:g}")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ArgumentError(f"{name} must be True or False, got {_show(value)}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ArgumentError(f"{name} must be one of {', '.join(choices)}, got {_show(value)}")
    return value


def check_region_arg(region: Any) -> str | None:
    """None, or a known region name (:func:`sdk.formats.check_region`)."""
    if region is None:
        return None
    if not isinstance(region, str):
        raise RegionError(f"region must be a region name such as 'cn' or 'us', got {_show(region)}")
    from sdk.formats import check_region  # local: formats imports this module's errors only

    return check_region(region)


def _show(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."
