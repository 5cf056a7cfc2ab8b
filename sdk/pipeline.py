"""Frame -> plates: detect, rectify from corners, recognise, decode; with per-stage timings and FPS.

>>> from sdk import Pipeline
>>> from sdk.capture import open_source
>>> pipe = Pipeline("detector", ["latin"])
>>> with open_source("/dev/video0") as cam:
...     for result in pipe.run(cam, max_frames=100):
...         print([p.text for p in result.plates])
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, get_args

import numpy as np

from sdk.args import check_bool, check_choice, check_int, check_number, check_region_arg
from sdk.bundle import Bundle
from sdk.capture import Frame
from sdk.decode import Candidate, decode
from sdk.detector import Box, Detection, Detector, iou_matrix
from sdk.errors import ArgumentError, ImageError, LprError
from sdk.formats import match_format
from sdk.image import to_bgr
from sdk.interpreter import Device
from sdk.recognizer import Recognizer
from sdk.rectify import RectifyMethod, rectify
from sdk.second_look import ACCEPT_CONFIDENCE

log = logging.getLogger(__name__)
RECTIFY_METHODS = get_args(RectifyMethod)  # perspective, affine, crop
STAGES = ("capture", "detect", "rectify", "recognise", "decode")
# Margin around the corners when rectifying, as fractions of the plate's width / height: the recognisers were
# trained on crops with a small margin (detector-like jitter), not on crops cut exactly at the plate's edge.
MARGIN = (0.04, 0.10)
# The margins a plate is read at, in turn, until a read fits a plate format at ACCEPT_CONFIDENCE or more (else the
# best read wins). Detected corners are a few pixels off, and another margin often reads a plate the first misread:
# frames of the real us/br/eu scenes read end to end, train split 152 -> 159 of 172, test 44 -> 51 of 63, for
# about 3 reads per detection (benchmarks/compare_scenes.py).
MARGINS = (MARGIN, (0.02, 0.05), (0.08, 0.18), (0.0, 0.0), (0.12, 0.25))
# When no margin's read is accepted, the corners are regressed again from the detection's own box
# (Detector.refine) and the plate is read at every margin once more, unless the new box overlaps the old one by
# more than REFINE_IOU (then the reads would barely differ). Frames read on the us/br/eu scenes: train 159 -> 160
# of 172, test 54 -> 55 of 63, none lost (a loose box beside a plate, a T read as L).
REFINE_IOU = 0.9


def margins_for(single_read: bool) -> tuple[tuple[float, float], ...]:
    """The pipeline's ``margins``: ``(MARGIN,)`` for one read per plate, else ``MARGINS``."""
    return (MARGIN,) if single_read else MARGINS


@dataclass(frozen=True)
class PlateRead:
    """One plate of a frame: where it is, what it says and how sure each stage is."""

    box: Box
    corners: np.ndarray | None
    detection_score: float
    text: str
    confidence: float
    candidates: tuple[Candidate, ...]
    region: str | None
    recognizer: str
    # Every region of the recogniser whose formats the text fits. Without a ``region`` given, a latin read such as
    # ABC1234 fits us and br alike: ``region`` is then the first of these, and this says that it is a guess.
    fits: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "region": self.region,
            "fits": list(self.fits),
            "box": [round(float(v), 1) for v in self.box],
            "corners": None if self.corners is None else np.round(self.corners, 1).tolist(),
            "detection_score": round(self.detection_score, 4),
            "candidates": [{"text": c.text, "confidence": round(c.confidence, 4)} for c in self.candidates],
            "recognizer": self.recognizer,
        }


@dataclass(frozen=True)
class FrameResult:
    """The plates of one frame and the milliseconds each stage took.

    ``stream_index`` is the frame's position in the camera's stream, counting the frames the source dropped
    (:attr:`sdk.capture.Frame.stream_index`; None when not given): the tracker measures motion in it."""

    index: int
    plates: tuple[PlateRead, ...]
    timings_ms: dict[str, float]
    source: str = ""
    frame: np.ndarray | None = field(default=None, repr=False, compare=False)  # the BGR frame read
    stream_index: int | None = None

    @property
    def position(self) -> int:
        """The frame's position in its stream: ``stream_index``, or ``index`` when that is not given."""
        return self.index if self.stream_index is None else self.stream_index

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.index,
            "source": self.source,
            "plates": [p.to_dict() for p in self.plates],
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }


STATS_WINDOW = 1000  # frames whose stage latencies the running medians are taken over


def _window() -> deque[float]:
    return deque(maxlen=STATS_WINDOW)


@dataclass
class RunStats:
    """Running totals of a pipeline: frames, skipped frames, plates and wall time, and the per-stage latencies of
    the last ``STATS_WINDOW`` frames (a camera loop runs for months: nothing here grows with the frames)."""

    frames: int = 0
    skipped: int = 0
    plates: int = 0
    wall_s: float = 0.0
    stage_ms: dict[str, deque[float]] = field(default_factory=lambda: {s: _window() for s in STAGES})

    def add(self, result: FrameResult) -> None:
        self.frames += 1
        self.plates += len(result.plates)
        for k, v in result.timings_ms.items():
            self.stage_ms.setdefault(k, _window()).append(v)

    def summary(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "skipped_frames": self.skipped,
            "plates": self.plates,
            "fps": round(self.frames / self.wall_s, 2) if self.wall_s > 0 else None,
            "latency_ms_median": {k: round(float(np.median(v)), 3) for k, v in self.stage_ms.items() if v},
        }


class Pipeline:
    """Detector + recogniser(s) on whole frames.

    Args:
        detector: a detector folder or lone proposal bundle (default: the shipped ``detector``), or a Detector.
        recognizers: recogniser bundles (paths, shipped names or Bundles); at each margin every one reads the
            plate, a read that fits one of its bundle's plate formats beats one that does not, then the most
            confident wins (pass one bundle, or a ``region``, to save time when the country is known).
        threads: interpreter threads for every model.
        region: a region for template post-filtering (it also drops recognisers that do not cover it).
        method: ``perspective`` (homography from the corners), ``affine`` (RANSAC affine fit) or ``crop`` (box).
        min_confidence: reads below this confidence are dropped.
        margins: (x, y) margins around the corners, as fractions of the plate's size, that each plate is read at
            in turn (``MARGINS``; pass one, e.g. ``(MARGIN,)``, for one read per plate).
        accept_confidence: when the best read at a margin fits a plate format at this confidence or more, it is
            taken at once (no further margin is tried).
        refine: when no read is accepted, regress the corners again and read the plate once more (default: only
            when more than one margin is read, so one margin means one read per plate).
        top_n: candidates kept per plate.
        device: ``cpu`` or ``edgetpu``.
    """

    def __init__(
        self,
        detector: str | Path | Detector = "detector",
        recognizers: Sequence[str | Path | Bundle] = ("latin", "cn"),
        threads: int = 1,
        region: str | None = None,
        method: RectifyMethod = "perspective",
        min_confidence: float = 0.0,
        top_n: int = 5,
        device: Device = "cpu",
        margins: Sequence[tuple[float, float]] = MARGINS,
        accept_confidence: float = ACCEPT_CONFIDENCE,
        refine: bool | None = None,
    ) -> None:
        if not isinstance(detector, (str, Path, Detector)):
            raise ArgumentError(f"detector must be a path, a shipped name or a Detector, got {type(detector).__name__}")
        if isinstance(recognizers, (str, Path, Bundle)) or not isinstance(recognizers, Sequence):
            raise ArgumentError(f"recognizers must be a list of bundles, e.g. ['latin'], got {recognizers!r:.60}")
        check_int("threads", threads)
        self.region = check_region_arg(region)
        check_choice("method", method, RECTIFY_METHODS)
        check_number("min_confidence", min_confidence, 0.0, 1.0)
        check_int("top_n", top_n)
        check_number("accept_confidence", accept_confidence, 0.0, math.inf)  # > 1: never accept
        if refine is not None:
            check_bool("refine", refine)
        for margin in margins:
            if not isinstance(margin, (tuple, list)) or len(margin) != 2:
                raise ArgumentError(f"each margin must be an (x, y) pair of fractions, got {margin!r:.60}")
            for v in margin:
                check_number("a margin", v, 0.0, 1.0)
        self.detector = detector if isinstance(detector, Detector) else Detector(detector, threads, device)
        recs = [Recognizer(b, threads, region=None, top_n=top_n, device=device) for b in recognizers]
        if self.region:
            recs = [r for r in recs if self.region in r.manifest.regions]
            if not recs:
                raise LprError(f"none of the recogniser bundles covers region {self.region!r}")
        if not recs:
            raise LprError("the pipeline needs at least one recogniser bundle")
        self.recognizers = recs
        if not margins:
            raise LprError("the pipeline needs at least one rectification margin")
        self.method, self.min_confidence, self.top_n = method, min_confidence, top_n
        self.margins, self.accept_confidence = tuple(margins), accept_confidence
        self.refine = len(self.margins) > 1 if refine is None else refine
        self.stats = RunStats()
        # The interpreters keep their tensors in the instance: two threads inside one pipeline at once would
        # overwrite each other's inputs (wrong reads) or trip the interpreter's checks. Calls are serialised;
        # for parallel reading make one Pipeline per thread (docs/pipeline.md, "Thread model").
        self._lock = threading.Lock()

    @property
    def model_bytes(self) -> dict[str, int]:
        sizes = {"detector": self.detector.model_bytes}
        for r in self.recognizers:
            sizes[r.manifest.name or str(r.bundle.source)] = len(r.bundle.model)
        return sizes

    def _read(self, rec: Recognizer, logits: np.ndarray) -> PlateRead:
        """Decode one recogniser's output; ``region`` is None when the read fits none of its regions' formats."""
        m = rec.manifest
        region = self.region or (m.regions[0] if len(m.regions) == 1 else None)
        read = decode(logits, m.alphabet, m.blank_index, region=region, top_n=self.top_n)
        fits = tuple(r for r in m.regions if match_format(read.text, r))
        if read.format is None:  # no template given or none matched: name a region whose formats the read fits
            region = fits[0] if fits else None
        return PlateRead((0, 0, 0, 0), None, 0.0, read.text, read.confidence, read.candidates, region, m.name, fits)

    def process(
        self,
        frame: np.ndarray,
        index: int = 0,
        capture_ms: float = 0.0,
        source: str = "",
        stream_index: int | None = None,
    ) -> FrameResult:
        """Detect and read every plate of one frame (BGR, gray or BGRA); ``stream_index``: see :class:`FrameResult`.

        Raises:
            ImageError: the frame is empty or not an image.
        """
        with self._lock:  # one frame at a time per instance (see __init__)
            return self._process(frame, index, capture_ms, source, stream_index)

    def _process(
        self, frame: np.ndarray, index: int, capture_ms: float, source: str, stream_index: int | None
    ) -> FrameResult:
        timings = dict.fromkeys(STAGES, 0.0)
        timings["capture"] = capture_ms
        t = time.perf_counter()
        frame = to_bgr(frame)
        detections = self.detector.detect(frame)
        timings["detect"] = _ms(t)
        plates = []
        for det in detections:
            best, used = self._read_plate(frame, det, timings)
            if best and best.text and best.confidence >= self.min_confidence:
                plates.append(replace(best, box=used.box, corners=used.corners, detection_score=det.score))
        return FrameResult(index, tuple(plates), timings, source, frame, stream_index)

    def _read_plate(
        self, frame: np.ndarray, det: Detection, timings: dict[str, float]
    ) -> tuple[PlateRead | None, Detection]:
        """The best read of one detection and the detection it was read from: the refined one (``refine``) when
        no read of ``det`` is accepted and the refined read ranks higher (adds to ``timings``)."""
        best = self._read_margins(frame, det, timings)
        if not self.refine or (best is not None and self._accepted(best)):
            return best, det
        t = time.perf_counter()
        again = self.detector.refine(frame, det)
        timings["detect"] += _ms(t)
        if again is None or iou_matrix(np.array([again.box]), np.array([det.box]))[0, 0] > REFINE_IOU:
            return best, det
        second = self._read_margins(frame, again, timings)
        if second is not None and (best is None or _rank(second) > _rank(best)):
            return second, again
        return best, det

    def _accepted(self, read: PlateRead) -> bool:
        return read.region is not None and read.confidence >= self.accept_confidence

    def _read_margins(self, frame: np.ndarray, det: Detection, timings: dict[str, float]) -> PlateRead | None:
        """The first accepted read of one detection over the margins, else the best one (adds to ``timings``).

        At each margin every recogniser reads the plate and the best of their reads counts: with ``latin`` and
        ``cn`` together, a latin read of a Chinese plate (its province character dropped) can fit the catch-all us
        format at high confidence, and accepted on its own it would hide the cn read."""
        best = None
        for margin in self.margins:
            here = None
            for rec in self.recognizers:
                t = time.perf_counter()
                crop = rectify(frame, det.corners, det.box, rec.width, rec.height, self.method, margin)
                timings["rectify"] += _ms(t)
                t = time.perf_counter()
                try:
                    logits = rec.logits(rec.prepare(crop))
                except ImageError as e:  # e.g. an all-black crop: no read from this recogniser
                    log.debug("plate at %s not read: %s", det.box, e)
                    continue
                finally:
                    timings["recognise"] += _ms(t)
                t = time.perf_counter()
                read = self._read(rec, logits)
                timings["decode"] += _ms(t)
                if here is None or _rank(read) > _rank(here):
                    here = read
            if here is not None and self._accepted(here):
                return here
            if here is not None and (best is None or _rank(here) > _rank(best)):
                best = here
        return best

    def run(self, frames: Iterable[Frame], max_frames: int | None = None) -> Iterator[FrameResult]:
        """Process frames from a source (e.g. :func:`sdk.capture.open_source`); a bad frame is skipped and
        counted (``stats.skipped``), never fatal. ``stats`` holds FPS and per-stage latency afterwards."""
        start = time.perf_counter()
        it = iter(frames)
        try:
            while max_frames is None or self.stats.frames < max_frames:
                t = time.perf_counter()
                frame = next(it, None)
                if frame is None:
                    break
                try:
                    result = self.process(frame.image, frame.index, _ms(t), frame.source, frame.stream_index)
                except ImageError as e:
                    self.stats.skipped += 1
                    log.warning("frame %s skipped: %s", frame.index, e)
                    continue
                self.stats.add(result)
                self.stats.wall_s = time.perf_counter() - start
                yield result
        finally:
            self.stats.wall_s = time.perf_counter() - start


def _rank(read: PlateRead) -> tuple[bool, float]:
    """A read that fits a plate format beats one that does not, then the more confident one wins."""
    return read.region is not None, read.confidence


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000
