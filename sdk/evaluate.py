"""Recognition metrics on a labelled folder, per region and overall (float or int8, same code)."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from sdk.dataset import LabelRow
from sdk.decode import Read
from sdk.detector import iou_matrix
from sdk.formats import match_format
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


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``k / n`` (95 % for ``z`` = 1.96): honest at small ``n`` and at
    proportions near 0 or 1, where the normal approximation's interval leaves [0, 1]."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def summarize(pairs: Sequence[tuple[str, Read]], latencies_ms: Sequence[float]) -> dict[str, Any]:
    """Metrics of (truth, read) pairs: plate accuracy with its 95 % interval, char and top-3 accuracy, length
    consistency, the share of reads that took a second look, median latency."""
    n = len(pairs)
    if n == 0:
        return {"n": 0}
    chars = sum(len(t) for t, _ in pairs)
    right = sum(r.text == t for t, r in pairs)
    return {
        "n": n,
        "plate_accuracy": round(right / n, 4),
        "plate_accuracy_ci95": list(wilson_interval(right, n)),
        "char_accuracy": round(sum(max(0, len(t) - edit_distance(t, r.text)) for t, r in pairs) / max(1, chars), 4),
        "top3_accuracy": round(sum(any(c.text == t for c in r.candidates[:3]) or r.text == t for t, r in pairs) / n, 4),
        "length_consistency": round(sum(len(r.text) == len(t) for t, r in pairs) / n, 4),
        "second_looks": round(sum(r.looks > 1 for _, r in pairs) / n, 4),
        "latency_ms_median": round(float(np.median(latencies_ms)), 3) if len(latencies_ms) else None,
    }


# Confidence bins of the reliability table (lower edges); the last bin holds the reads at or above 0.99.
RELIABILITY_EDGES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)
# The precision an integrator auto-accepts at: the share of reads right among those above a threshold.
TARGET_PRECISION = 0.995


def calibration(pairs: Sequence[tuple[str, Read]], target: float = TARGET_PRECISION) -> dict[str, Any]:
    """How far a read's confidence can be trusted: the reliability table (per confidence bin: reads, share right,
    mean confidence), the precision and coverage of reads at >= 0.99, and the lowest confidence threshold whose
    reads are at least ``target`` right, with the share of reads it covers (0 when none is)."""
    conf = np.array([r.confidence for _, r in pairs], np.float64)
    right = np.array([r.text == t for t, r in pairs], bool)
    bins = []
    for lo, hi in zip(RELIABILITY_EDGES, (*RELIABILITY_EDGES[1:], 1.01), strict=True):
        inside = (conf >= lo) & (conf < hi)
        if inside.any():
            bins.append({"from": lo, "n": int(inside.sum()), "accuracy": round(float(right[inside].mean()), 4),
                         "mean_confidence": round(float(conf[inside].mean()), 4)})  # fmt: skip
    order = np.argsort(-conf, kind="stable")
    precision = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(precision >= target)
    k = int(ok[-1]) + 1 if len(ok) else 0  # the most reads, highest confidence first, still at the target
    high = conf >= 0.99
    return {
        "reliability": bins,
        "at_0.99": {"coverage": round(float(high.mean()), 4),
                    "precision": round(float(right[high].mean()), 4) if high.any() else None},  # fmt: skip
        f"threshold_for_{target}": round(float(conf[order][k - 1]), 4) if k else None,
        f"coverage_at_{target}": round(k / len(order), 4) if len(order) else 0.0,
    }


# Crop widths (pixels, as given to the reader) at which the ``sizes`` breakdown starts a new bucket.
SIZE_EDGES = (60, 120, 240)


def size_bucket(width: int) -> str:
    """``width``'s bucket of ``SIZE_EDGES``: ``<60``, ``60-119``, ``120-239`` or ``>=240`` (px)."""
    lo = 0
    for edge in SIZE_EDGES:
        if width < edge:
            return f"<{edge}" if lo == 0 else f"{lo}-{edge - 1}"
        lo = edge
    return f">={lo}"


def plate_group(text: str, region: str) -> str:
    """The group a plate generalises over: a cn plate's province character, else its region's layout (the first
    of the region's formats it fits, ``other`` when none)."""
    if region == "cn" and text:
        return text[0]
    fmt = match_format(text, region)
    return fmt.name if fmt is not None else "other"


def source_name(source: str) -> str:
    """A labels.csv ``source`` shortened to its origin (its first word: ``CCPD``, ``liuruoze/EasyPR``)."""
    return source.split()[0] if source.strip() else "unknown"


def evaluate_rows(read: ReadFn, rows: Sequence[LabelRow], misses: bool = False) -> dict[str, Any]:
    """Run ``read(image_bgr, region)`` on every row; metrics ``overall``, per region (``regions``), and broken
    down by ``sources`` (:func:`source_name`), ``groups`` (``region/``:func:`plate_group`: province or layout)
    and crop width (``sizes``, :func:`size_bucket`), each with the plate accuracy's 95 % interval; and how far
    the confidence can be trusted (``calibration``, :func:`calibration`).

    Latency covers ``read`` only (preprocess + inference + decode), not the file read. With ``misses``, the result
    also lists every misread row (``misses``: file, region, truth, read, confidence, top-3 candidates).
    """
    by: dict[str, dict[str, list[tuple[str, Read]]]] = {
        k: defaultdict(list) for k in ("regions", "sources", "groups", "sizes")
    }
    lat: dict[str, list[float]] = defaultdict(list)
    wrong = []
    for row in rows:
        img = read_image(row.path)
        t0 = time.perf_counter()
        r = read(img, row.region)
        lat[row.region].append((time.perf_counter() - t0) * 1000)
        pair = (row.text, r)
        by["regions"][row.region].append(pair)
        by["sources"][source_name(row.source)].append(pair)
        by["groups"][f"{row.region}/{plate_group(row.text, row.region)}"].append(pair)
        by["sizes"][size_bucket(img.shape[1])].append(pair)
        if r.text != row.text:
            top3 = [c.text for c in r.candidates[:3]]
            wrong.append({"file": row.path.name, "region": row.region, "truth": row.text, "read": r.text,
                          "confidence": round(r.confidence, 3), "top3": top3})  # fmt: skip
    all_pairs = [p for v in by["regions"].values() for p in v]
    all_lat = [x for v in lat.values() for x in v]
    result: dict[str, Any] = {
        "overall": summarize(all_pairs, all_lat),
        "regions": {k: summarize(v, lat[k]) for k, v in sorted(by["regions"].items())},
    }
    for key in ("sources", "groups", "sizes"):
        result[key] = {k: _brief(v) for k, v in sorted(by[key].items())}
    result["calibration"] = calibration(all_pairs) if all_pairs else {}
    return {**result, "misses": wrong} if misses else result


def _brief(pairs: Sequence[tuple[str, Read]]) -> dict[str, Any]:
    """Plate accuracy of a breakdown cell, with its 95 % interval."""
    right = sum(r.text == t for t, r in pairs)
    return {
        "n": len(pairs),
        "plate_accuracy": round(right / len(pairs), 4),
        "plate_accuracy_ci95": list(wilson_interval(right, len(pairs))),
    }


# --- detection ----------------------------------------------------------------------------------------------------

IOU_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def average_precision(scored: Sequence[tuple[float, bool]], n_truth: int) -> float:
    """All-point interpolated AP of (score, is true positive) detections against ``n_truth`` labelled plates."""
    if n_truth == 0:
        return 0.0
    order = sorted(scored, key=lambda s: -s[0])
    tp = np.cumsum([t for _, t in order], dtype=np.float64)
    fp = np.cumsum([not t for _, t in order], dtype=np.float64)
    recall = np.concatenate([[0.0], tp / n_truth, [1.0]]) if order else np.array([0.0, 1.0])
    precision = np.concatenate([[1.0], tp / np.maximum(tp + fp, 1e-9), [0.0]]) if order else np.array([1.0, 0.0])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum((recall[1:] - recall[:-1]) * precision[1:]))


def _match(frames: Sequence[tuple[Any, list[Any]]], thr: float) -> tuple[list[tuple[float, bool]], int, list[float]]:
    """Greedy matching by score. In frames where not every plate is labelled (``partial``), an unmatched
    detection may be an unlabelled plate, so it is ignored rather than counted as a false positive."""
    scored: list[tuple[float, bool]] = []
    errors: list[float] = []
    n_truth = 0
    for scene, dets in frames:
        truth = [np.asarray(p.corners, np.float64) for p in scene.plates]
        n_truth += len(truth)
        boxes = np.array([[*c.min(axis=0), *c.max(axis=0)] for c in truth]).reshape(-1, 4)
        used = np.zeros(len(truth), bool)
        for d in sorted(dets, key=lambda d: -d.score):
            ious = iou_matrix(np.array(d.box)[None], boxes)[0] if len(truth) else np.zeros(0)
            ious[used] = -1
            j = int(np.argmax(ious)) if len(ious) else -1
            if j >= 0 and ious[j] >= thr:
                used[j] = True
                scored.append((d.score, True))
                if d.corners is not None:
                    errors.append(float(np.linalg.norm(d.corners - truth[j], axis=1).mean()))
            elif not scene.partial:
                scored.append((d.score, False))
    return scored, n_truth, errors


def detection_metrics(frames: Sequence[tuple[Any, list[Any]]], score_threshold: float = 0.0) -> dict[str, Any]:
    """AP at IoU 0.5–0.9 over all detections of (scene, detections) pairs; recall at 0.5 and mean corner error
    of those scoring at least ``score_threshold`` (the operating point). Matching is greedy by score, so the
    detections above the threshold match the same plates either way."""
    out: dict[str, Any] = {"n": len(frames), "plates": sum(len(s.plates) for s, _ in frames)}
    for thr in IOU_THRESHOLDS:
        scored, n_truth, _ = _match(frames, thr)
        out[f"ap_{round(thr * 100)}"] = round(average_precision(scored, n_truth), 4)
    kept = [(s, [d for d in dets if d.score >= score_threshold]) for s, dets in frames]
    scored, n_truth, errors = _match(kept, 0.5)
    out["recall_50"] = round(sum(t for _, t in scored) / max(1, n_truth), 4)
    out["corner_error_px"] = round(float(np.mean(errors)), 2) if errors else None
    return out


AP_SCORE_FLOOR = 0.01  # AP sweeps every score down to this floor, not only those above the operating threshold


def evaluate_detector(detector: Any, scenes: Sequence[Any], latency_frames: int = 20) -> dict[str, Any]:
    """Detection metrics on labelled scenes (``SceneFrame``s), ``overall`` and per region (``regions``).

    Each: ``n`` frames, ``plates``, AP at IoU 0.5–0.9 (``ap_50`` ...) over the whole precision-recall curve
    (detections down to :data:`AP_SCORE_FLOOR`), ``recall_50`` and ``corner_error_px`` (mean corner distance of
    plates found at IoU 0.5; the real scenes' corners are boxes) at the detector's operating
    ``score_threshold``. ``latency_ms_median``: ``detector.detect`` on frames resized to 1280x720, after 2 warm-up
    runs, at the operating threshold.
    """
    operating = detector.score_threshold
    detector.score_threshold = min(operating, AP_SCORE_FLOOR)
    try:
        frames = [(s, detector.detect(read_image(s.path))) for s in scenes]
    finally:
        detector.score_threshold = operating
    by_region: dict[str, list[tuple[Any, list[Any]]]] = defaultdict(list)
    for f in frames:
        by_region[f[0].region].append(f)
    lat = []
    for i, s in enumerate(scenes[: latency_frames + 2] if latency_frames else []):
        img = cv2.resize(read_image(s.path), (1280, 720))
        t0 = time.perf_counter()
        detector.detect(img)
        if i >= 2:
            lat.append((time.perf_counter() - t0) * 1000)
    return {
        "overall": detection_metrics(frames, operating),
        "regions": {k: detection_metrics(v, operating) for k, v in sorted(by_region.items())},
        "score_threshold": operating,
        "latency_ms_median": round(float(np.median(lat)), 2) if lat else None,
    }
