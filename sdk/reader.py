"""Plate reading inside software that owns its camera: the host pushes frames, one worker thread reads them.

Vehicle and drone software usually owns its camera (GStreamer, ROS, a vendor SDK) and cannot hand its loop to a
library. :class:`PlateReader` sits beside it::

    from sdk import PlateReader

    with PlateReader(on_vehicle=lambda v: bus.publish("plate", v.to_dict()), recognizers=("latin",)) as reader:
        for image in host_camera():  # BGR uint8 (H, W, 3)
            reader.submit(image)     # never blocks the camera thread

The contract (docs/pipeline.md, "Thread model"):

- **One worker thread per reader, one pipeline per worker.** The reader builds its :class:`~sdk.pipeline.Pipeline`
  (models load in the constructor, on the caller's thread, so a bad bundle raises :class:`~sdk.errors.LprError`
  there) or takes one it is given; only its worker calls the pipeline and the tracker.
- **Bounded input, newest frame wins.** At most ``max_pending`` frames wait (default 1). ``submit`` never waits:
  when the slot is full the oldest waiting frame is dropped and counted in ``dropped``, so reads never lag behind
  the vehicle. ``submit(wait=True)`` waits for room instead (offline use: every frame is read), at most
  ``timeout`` seconds. The reader keeps a reference to the array: do not overwrite it after submitting.
- **Results by callback and by iterator.** Each frame read gives a :class:`ReaderResult` (the frame's plates,
  their track ids and the vehicles that left the view); ``on_result`` gets every one, ``on_vehicle`` every
  vehicle's read fused over the frames it was seen in, both on the worker thread. The last ``buffer`` results
  are also kept for :meth:`PlateReader.get` / ``for r in reader`` (older ones are dropped, counted in
  ``results_dropped``; ``buffer=0`` keeps none).
- **Errors are delivered, never swallowed.** A frame the pipeline cannot use (:class:`~sdk.errors.ImageError`:
  empty, wrong shape, NaN) is skipped and counted in ``skipped``, and its result carries the error. An exception
  in a callback is logged and counted in ``callback_errors`` (the host's bus failing must not stop reading). Any
  other exception stops the worker: the next ``submit``, ``get`` or ``close`` raises
  :class:`~sdk.errors.ReaderError` chained to it.
- **Every wait has a timeout** (``DEFAULT_TIMEOUT`` unless given) and raises :class:`~sdk.errors.ReaderTimeout`
  when it runs out. ``close()`` (and leaving ``with``) may be called from any thread, any number of times: it
  reads the frames still waiting, reports the vehicles still in view and waits for the worker to end. Called
  from a callback (the worker thread) it only asks the worker to stop. A ``submit`` racing ``close`` either
  queues its frame before the close (it is read) or raises ``ReaderError`` ("closed"); it never hangs.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from sdk.bundle import Bundle
from sdk.errors import ArgumentError, ImageError, ReaderError, ReaderTimeout
from sdk.pipeline import FrameResult, Pipeline, margins_for
from sdk.tracker import PlateTracker, TrackedPlate

log = logging.getLogger(__name__)
# Seconds a PlateReader call waits at most unless told otherwise (submit(wait=True), get, close): long enough for a
# slow board to read a queued frame or two, short enough that a stuck host notices.
DEFAULT_TIMEOUT = 30.0
# The idle worker wakes this often (submit and close wake it at once; this only bounds each wait).
_IDLE_POLL_S = 0.5


@dataclass(frozen=True)
class ReaderResult:
    """What the reader made of one submitted frame, or (``index == -1``) of the source's end at ``close``.

    Attributes:
        index: the frame's submit number (0-based; dropped frames count), -1 for the final flush.
        result: the frame's plates and timings; None when the frame was skipped (then ``error`` says why) or for
            the final flush.
        track_ids: the track id of each plate, in ``result.plates`` order (empty without tracking).
        ended: vehicles whose plate left the view with this frame (at the flush: those still in view).
        error: the :class:`~sdk.errors.ImageError` that made the frame unusable, else None.
    """

    index: int
    result: FrameResult | None
    track_ids: tuple[int, ...] = ()
    ended: tuple[TrackedPlate, ...] = ()
    error: Exception | None = None


def _timeout(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ArgumentError(f"timeout must be a positive number of seconds, got {value!r}")
    return float(value)


def _count(value: int, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ArgumentError(f"{name} must be an integer >= {least}, got {value!r}")
    return value


class PlateReader:
    """Reads plates from frames the host pushes, on one worker thread (see the module's docstring).

    Args:
        on_vehicle: called with each vehicle's fused read (worker thread); None: no callback.
        detector: detector folder or shipped name (ignored when ``pipeline`` is given).
        recognizers: recogniser bundles or shipped names (ignored when ``pipeline`` is given).
        region: region for template post-filtering (cn, us, br, eu), if known.
        threads: interpreter threads.
        single_read: read each plate at one margin (faster; for slow boards).
        max_age: frames read in which a plate may go unseen before its vehicle is reported.
        pipeline: a ready :class:`~sdk.pipeline.Pipeline` to use instead of building one (it serialises callers
            with a lock, so sharing it with other threads only makes them wait for each other).
        track: follow plates across frames and report vehicles (False: per-frame reads only).
        on_result: called with every :class:`ReaderResult` (worker thread); None: no callback.
        max_pending: frames that may wait to be read; beyond that the oldest is dropped (or ``submit(wait=True)``
            waits).
        buffer: results kept for :meth:`get` and iteration (0: none; callbacks only).
    """

    def __init__(
        self,
        on_vehicle: Callable[[TrackedPlate], Any] | None = None,
        detector: str | Path = "detector",
        recognizers: Sequence[str | Path | Bundle] = ("latin", "cn"),
        region: str | None = None,
        threads: int = 1,
        single_read: bool = False,
        max_age: int = 8,
        *,
        pipeline: Pipeline | None = None,
        track: bool = True,
        on_result: Callable[[ReaderResult], Any] | None = None,
        max_pending: int = 1,
        buffer: int = 8,
    ) -> None:
        for name, fn in (("on_vehicle", on_vehicle), ("on_result", on_result)):
            if fn is not None and not callable(fn):
                raise ArgumentError(f"{name} must be callable or None, got {type(fn).__name__}")
        self.max_pending = _count(max_pending, "max_pending", 1)
        self.buffer = _count(buffer, "buffer", 0)
        if pipeline is not None and not isinstance(pipeline, Pipeline):
            raise ArgumentError(f"pipeline must be an sdk.Pipeline, got {type(pipeline).__name__}")
        if pipeline is None:
            pipeline = Pipeline(detector, recognizers, threads, region, margins=margins_for(single_read))
        self.pipeline = pipeline
        self.tracker = PlateTracker(max_age=max_age) if track else None
        self.on_vehicle, self.on_result = on_vehicle, on_result
        # Counters (read them at any time; each is written by one side under the lock or by the worker alone).
        self.submitted = self.dropped = 0  # producers
        self.processed = self.skipped = self.results_dropped = self.callback_errors = 0  # the worker
        # One condition guards all shared state: the pending frames, the kept results and the life-cycle flags.
        # Nothing else is shared (the pipeline and the tracker are the worker's alone), and no callback runs under
        # it, so a callback may call submit or close without deadlock.
        self._cond = threading.Condition()
        self._pending: deque[tuple[int, np.ndarray]] = deque()
        self._results: deque[ReaderResult] = deque()
        self._closing = False  # close() was called: no more frames are taken
        self._done = False  # the worker has ended (drained after close, or failed)
        self._failure: BaseException | None = None  # what stopped the worker, if anything unexpected did
        self._failure_raised = False
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._work, name="plate-reader", daemon=True)
        self._thread.start()

    # -- the host's side -------------------------------------------------------------------------------------

    def __enter__(self) -> PlateReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the worker stopped on an error)."""
        return self._closing or self._done

    @property
    def error(self) -> BaseException | None:
        """The unexpected exception that stopped the worker, if one did."""
        return self._failure

    def submit(self, image: np.ndarray, wait: bool = False, timeout: float = DEFAULT_TIMEOUT) -> bool:
        """Queue one frame (BGR, gray or BGRA array); False when a waiting frame was dropped to make room.

        ``wait=True`` waits (at most ``timeout`` s) for room instead of dropping.

        Raises:
            ImageError: ``image`` is not a numpy array.
            ReaderError: the reader is closed, or its worker stopped on an error (chained).
            ReaderTimeout: ``wait=True`` and no room within ``timeout``.
        """
        if not isinstance(image, np.ndarray):
            raise ImageError(f"a frame must be a numpy array (H, W[, C]), got {type(image).__name__}")
        deadline = time.monotonic() + _timeout(timeout)
        replaced = False
        with self._cond:
            while True:
                self._check_running()
                if len(self._pending) < self.max_pending:
                    break
                if not wait:  # newest frame wins: the oldest waiting one goes
                    self._pending.popleft()
                    self.dropped += 1
                    replaced = True
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ReaderTimeout(f"no room for the frame within {timeout} s: the reader is busy")
                self._cond.wait(left)
            self._pending.append((self.submitted, image))
            self.submitted += 1
            self._cond.notify_all()
        return not replaced

    def get(self, timeout: float = DEFAULT_TIMEOUT) -> ReaderResult | None:
        """The oldest kept result, waiting at most ``timeout`` s for one; None once the reader is closed and every
        result was taken.

        Raises:
            ReaderTimeout: nothing arrived within ``timeout``.
            ReaderError: ``buffer=0``, or the worker stopped on an error (after the results before it).
        """
        if not self.buffer:
            raise ReaderError("this PlateReader keeps no results (buffer=0): use on_result")
        deadline = time.monotonic() + _timeout(timeout)
        with self._cond:
            while not self._results:
                if self._done:
                    self._raise_failure()
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ReaderTimeout(f"no result within {timeout} s")
                self._cond.wait(left)
            return self._results.popleft()

    def results(self, timeout: float = DEFAULT_TIMEOUT) -> Iterator[ReaderResult]:
        """Iterate the results as they come until the reader is closed (each wait at most ``timeout`` s; see
        :meth:`get`)."""
        while (item := self.get(timeout)) is not None:
            yield item

    def __iter__(self) -> Iterator[ReaderResult]:
        return self.results()

    def close(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Stop taking frames, read those still waiting, report the vehicles still in view, and wait (at most
        ``timeout`` s) for the worker to end. Safe from any thread and idempotent.

        Raises:
            ReaderTimeout: the worker is still reading after ``timeout`` (it ends on its own later).
            ReaderError: the worker had stopped on an error that no other call raised yet (chained).
        """
        deadline = time.monotonic() + _timeout(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            if threading.current_thread() is self._thread:  # from a callback: the worker ends after it returns
                return
            while not self._done:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ReaderTimeout(f"the PlateReader was still reading {timeout} s after close()")
                self._cond.wait(left)
            if not self._failure_raised:
                self._raise_failure()
        self._thread.join(max(deadline - time.monotonic(), 0.1))  # it is past its last statement

    def stats(self) -> dict[str, Any]:
        """The reader's counters and its pipeline's summary (FPS, per-stage median latency)."""
        counts = ("submitted", "processed", "dropped", "skipped", "results_dropped", "callback_errors")
        return {**{k: getattr(self, k) for k in counts}, "pipeline": self.pipeline.stats.summary()}

    def _check_running(self) -> None:
        """Under the lock: raise if no frame may be submitted any more."""
        self._raise_failure()
        if self._closing or self._done:
            raise ReaderError("the PlateReader is closed: submit frames before close(), inside `with PlateReader()`")

    def _raise_failure(self) -> None:
        if self._failure is not None:
            self._failure_raised = True
            f = self._failure
            raise ReaderError(f"the PlateReader's worker stopped: {type(f).__name__}: {_first_line(f)}") from f

    # -- the worker's side -----------------------------------------------------------------------------------

    def _work(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._pending and not self._closing:
                        self._cond.wait(_IDLE_POLL_S)
                    if not self._pending:  # closing, and every waiting frame was read
                        break
                    index, image = self._pending.popleft()
                    self._cond.notify_all()  # room for a submit(wait=True)
                self._read(index, image)
            if self.tracker is not None:
                self._deliver(ReaderResult(-1, None, (), self.tracker.flush()))
        except BaseException as e:  # anything unexpected stops the worker and is raised to the host
            log.error("the PlateReader's worker stopped: %s: %s", type(e).__name__, _first_line(e))
            with self._cond:
                self._failure = e
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _read(self, index: int, image: np.ndarray) -> None:
        stats = self.pipeline.stats
        try:
            # frame index = frames read so far (the tracker's age); stream_index = the host's frame number (motion)
            result = self.pipeline.process(image, self.processed + self.skipped, source="host", stream_index=index)
        except ImageError as e:  # an empty or malformed frame from the host: skip it, say why
            self.skipped += 1
            stats.skipped += 1
            log.warning("frame %d skipped: %s", index, e)
            self._deliver(ReaderResult(index, None, error=e))
            return
        self.processed += 1
        stats.add(result)
        stats.wall_s = time.perf_counter() - self._started
        if self.tracker is None:
            self._deliver(ReaderResult(index, result))
            return
        step = self.tracker.update(result)
        self._deliver(ReaderResult(index, result, step.ids, step.ended))

    def _deliver(self, item: ReaderResult) -> None:
        if self.buffer:
            with self._cond:
                if len(self._results) >= self.buffer:  # nobody is taking them: the oldest goes
                    self._results.popleft()
                    self.results_dropped += 1
                self._results.append(item)
                self._cond.notify_all()
        if self.on_result is not None:
            self._call(self.on_result, item, f"on_result failed for frame {item.index}")
        if self.on_vehicle is not None:
            for vehicle in item.ended:
                self._call(self.on_vehicle, vehicle, f"on_vehicle failed for track {vehicle.track_id}")

    def _call(self, fn: Callable[[Any], Any], arg: Any, what: str) -> None:
        try:
            fn(arg)
        except Exception:  # the host's callback failing must not stop the reader: logged with its traceback
            self.callback_errors += 1
            log.exception(what)


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [""])[0]
