"""Recognition metrics on a labelled folder, per region and overall (float or int8, same code)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sdk.dataset import LabelRow
from sdk.decode import Read
from sdk.image import read_image

ReadFn = Callable[[np.ndarray, str], Read]


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def summarize(pairs: Sequence[tuple[str, Read]], latencies_ms: Sequence[float]) -> dict[str, Any]:
    """Metrics of (truth, read) pairs: plate, char and top-3 accuracy, length consistency, median latency."""
    n = len(pairs)
    if n == 0:
        return {"n": 0}
    chars = sum(len(t) for t, _ in pairs)
    return {
        "n": n,
        "plate_accuracy": round(sum(r.text == t for t, r in pairs) / n, 4),
        "char_accuracy": round(sum(max(0, len(t) - edit_distance(t, r.text)) for t, r in pairs) / max(1, chars), 4),
        "top3_accuracy": round(sum(any(c.text == t for c in r.candidates[:3]) or r.text == t for t, r in pairs) / n, 4),
        "length_consistency": round(sum(len(r.text) == len(t) for t, r in pairs) / n, 4),
        "latency_ms_median": round(float(np.median(latencies_ms)), 3) if len(latencies_ms) else None,
    }


def evaluate_rows(read: ReadFn, rows: Sequence[LabelRow]) -> dict[str, Any]:
    """Run ``read(image_bgr, region)`` on every row; metrics ``overall`` and per region (``regions``).

    Latency covers ``read`` only (preprocess + inference + decode), not the file read.
    """
    by_region: dict[str, list[tuple[str, Read]]] = defaultdict(list)
    lat: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        img = read_image(row.path)
        t0 = time.perf_counter()
        r = read(img, row.region)
        lat[row.region].append((time.perf_counter() - t0) * 1000)
        by_region[row.region].append((row.text, r))
    all_pairs = [p for v in by_region.values() for p in v]
    all_lat = [x for v in lat.values() for x in v]
    return {
        "overall": summarize(all_pairs, all_lat),
        "regions": {k: summarize(v, lat[k]) for k, v in sorted(by_region.items())},
    }
