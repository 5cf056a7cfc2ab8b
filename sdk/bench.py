"""Latency of a recogniser bundle on this machine: whole ``recognize()`` calls and the interpreter's invoke alone."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sdk.bundle import Bundle, load_bundle
from sdk.pipeline import MARGINS, STAGES, Pipeline
from sdk.recognizer import Recognizer


def sample_crop(height: int, width: int) -> np.ndarray:
    """A deterministic gray gradient BGR image (height, width, 3), uint8: the default benchmark input.

    Args:
        height: image height in pixels.
        width: image width in pixels.

    Returns:
        The image.
    """
    row = np.linspace(0, 255, width, dtype=np.float64)
    gray = np.clip(row[None, :] * 0.7 + np.linspace(0, 76, height)[:, None], 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def memory_mib() -> dict[str, float | None]:
    """This process's resident memory now (``rss_mib``, from /proc: Linux only) and its peak so far
    (``peak_rss_mib``), in MiB; None where the OS does not say."""
    rss = peak = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        rss = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    try:
        import resource  # not on Windows

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    except ImportError:
        pass
    if rss is not None and peak is not None:
        peak = max(peak, rss)  # the two are counted in different units (pages, KiB)
    return {k: None if v is None else round(v, 1) for k, v in (("rss_mib", rss), ("peak_rss_mib", peak))}


def _grown(before: dict[str, float | None]) -> float | None:
    """MiB of resident memory gained since ``before`` (a :func:`memory_mib`)."""
    now = memory_mib()["rss_mib"]
    return None if now is None or before["rss_mib"] is None else round(now - before["rss_mib"], 1)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def _times(fn: Callable[[np.ndarray], object], img: np.ndarray, warmup: int, runs: int) -> list[float]:
    """Milliseconds of ``runs`` calls of ``fn(img)`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn(img)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(img)
        out.append(_ms(t0))
    return out


def bench_recognizer(
    bundle: str | Path | Bundle,
    threads: Sequence[int] = (1, 2),
    warmup: int = 20,
    runs: int = 200,
    image: np.ndarray | None = None,
) -> dict[str, Any]:
    """Time ``Recognizer.recognize()`` and the bare interpreter invoke for each thread count.

    ``recognize()`` is timed twice: as a sure read takes it (one look) and as an unsure one does (a second look
    at four more views, :mod:`sdk.second_look`), whatever ``image`` reads as.

    The bundle is read and verified once; an interpreter is built per thread count. Each measurement is taken
    per call after ``warmup`` untimed calls.

    Args:
        bundle: bundle path, shipped bundle name or loaded :class:`~sdk.bundle.Bundle`.
        threads: interpreter thread counts to try.
        warmup: untimed calls before measuring.
        runs: timed calls per thread count (for both measurements).
        image: BGR crop to read; default :func:`sample_crop` of the model's input size.

    Returns:
        ``{"bundle", "model_bytes", "backend", "input_shape", "results": [{"threads", "latency_ms_median",
        "latency_ms_p90", "second_look_ms_median", "invoke_ms_median"}, ...], "memory": {"recognizer_mib",
        "rss_mib", "peak_rss_mib"}}``: resident memory gained by building and running the first recogniser,
        and the process's at the end and at its peak (:func:`memory_mib`).

    Raises:
        ValueError: ``threads`` empty or below 1, ``runs`` below 1 or ``warmup`` negative.
        BundleError: the bundle fails to load (see :func:`sdk.bundle.load_bundle`).
    """
    if not threads or min(threads) < 1 or runs < 1 or warmup < 0:
        raise ValueError(f"need threads >= 1, runs >= 1 and warmup >= 0; got {list(threads)}, {runs}, {warmup}")
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    img = sample_crop(*b.manifest.input_hw) if image is None else image
    backend, results, grown = "", [], None
    for t in threads:
        before = memory_mib()
        rec = Recognizer(b, threads=int(t), second_look=False)
        backend = rec.backend
        latency = _times(rec.recognize, img, warmup, runs)
        grown = _grown(before) if grown is None else grown  # the first recogniser's interpreter and buffers
        looking = Recognizer(b, threads=int(t), accept_confidence=math.inf)  # every read takes a second look
        second_look = _times(looking.recognize, img, warmup, runs)
        rec.logits(rec.prepare(img))  # sets the input tensor once; the loop below times invoke() alone
        invoke = []
        for _ in range(runs):
            t0 = time.perf_counter()
            rec.interpreter.invoke()
            invoke.append(_ms(t0))
        results.append(
            {
                "threads": int(t),
                "latency_ms_median": round(float(np.median(latency)), 4),
                "latency_ms_p90": round(float(np.percentile(latency, 90)), 4),
                "second_look_ms_median": round(float(np.median(second_look)), 4),
                "invoke_ms_median": round(float(np.median(invoke)), 4),
            }
        )
    return {
        "bundle": str(b.source),
        "model_bytes": len(b.model),
        "backend": backend,
        "input_shape": list(b.manifest.input.shape),
        "results": results,
        "memory": {"recognizer_mib": grown, **memory_mib()},
    }


def bench_pipeline(
    frames: Sequence[np.ndarray],
    detector: str | Path = "detector",
    recognizers: Sequence[str | Path] = ("latin",),
    threads: Sequence[int] = (1, 2),
    warmup: int = 5,
    runs: int = 50,
    margins: Sequence[tuple[float, float]] = MARGINS,
) -> dict[str, Any]:
    """End-to-end frames per second of :class:`~sdk.pipeline.Pipeline` on 1280x720 frames, per thread count.

    Each frame is resized to 1280x720 first; ``runs`` calls of ``process()`` cycle through the frames after
    ``warmup`` untimed ones. ``margins`` as in :class:`~sdk.pipeline.Pipeline`. Reports the median total and
    per-stage latency, FPS (1000 / median total) and plates found per frame, and under ``memory`` the resident
    memory gained by building and running the first pipeline (``pipeline_mib``) and the process's at the end and
    at its peak (which include the frames held for the benchmark).
    """
    if not frames or not threads or min(threads) < 1 or runs < 1 or warmup < 0:
        raise ValueError("need frames, threads >= 1, runs >= 1 and warmup >= 0")
    hd = [cv2.resize(f, (1280, 720)) for f in frames]
    results, sizes, backend, grown = [], {}, "", None
    for t in threads:
        before = memory_mib()
        pipe = Pipeline(detector, recognizers, threads=int(t), margins=margins)
        sizes, backend = pipe.model_bytes, pipe.detector.backend
        for i in range(warmup):
            pipe.process(hd[i % len(hd)])
        total, stage, plates = [], {s: [] for s in STAGES if s != "capture"}, []
        for i in range(runs):
            t0 = time.perf_counter()
            r = pipe.process(hd[i % len(hd)])
            total.append(_ms(t0))
            plates.append(len(r.plates))
            for s in stage:
                stage[s].append(r.timings_ms[s])
        grown = _grown(before) if grown is None else grown  # the first pipeline's models, arenas and buffers
        med = float(np.median(total))
        results.append(
            {
                "threads": int(t),
                "fps": round(1000.0 / med, 1),
                "latency_ms_median": round(med, 3),
                "latency_ms_p90": round(float(np.percentile(total, 90)), 3),
                "stage_ms_median": {s: round(float(np.median(v)), 3) for s, v in stage.items()},
                "plates_per_frame": round(float(np.mean(plates)), 2),
            }
        )
    return {
        "frame_size": [1280, 720],
        "frames": len(hd),
        "margins": [list(m) for m in margins],
        "model_bytes": sizes,
        "backend": backend,
        "results": results,
        "memory": {"pipeline_mib": grown, **memory_mib()},  # the process's rss holds the benchmark's frames too
    }
