#!/usr/bin/env python3
"""Plate reading inside vehicle software: the host pushes frames, a worker thread reads them, vehicles come back.

Vehicle and drone software usually owns its camera (GStreamer, ROS, a vendor SDK) and cannot hand the loop to
a library. ``PlateReader`` fits beside it:

    reader = PlateReader(on_vehicle=lambda v: bus.publish("plate", v.to_dict()), recognizers=("latin",))
    with reader:                        # starts the worker thread; leaving it reads what is queued and
        for image in host_camera():     # reports the vehicles still in view
            reader.submit(image)        # BGR uint8 (H, W, 3); never blocks the camera thread

- ``submit`` never waits: when the reader is still busy, the frame waiting in its one-frame slot is replaced by
  the new one (the latest frame wins, so reads never lag behind the vehicle) and counted in ``dropped``.
- Plates are followed across frames (:class:`sdk.tracker.PlateTracker`); ``on_vehicle`` is called once per
  vehicle with its read fused over every frame it was seen in: on the worker thread when the vehicle has left
  the view, on the caller's thread at ``close`` for those still in view. An exception in the callback is logged
  and the reader carries on.
- Models load in the constructor, on the caller's thread, so a bad bundle raises :class:`sdk.LprError` there. A
  frame the pipeline cannot read (empty, wrong shape, or any error inside) is logged and counted in ``skipped``;
  the worker never dies of one.

Try it on the sample drive, fed as a 30 FPS camera would (``--fps 0``: wait for every frame, drop none):

    python examples/embed_vehicle.py --source samples/drive --fps 30
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType

import numpy as np

from sdk.capture import open_source
from sdk.errors import ImageError, LprError
from sdk.pipeline import Pipeline, margins_for
from sdk.tracker import PlateTracker, TrackedPlate

log = logging.getLogger("embed_vehicle")


class PlateReader:
    """Reads plates from frames the host pushes, on a worker thread, and reports one read per vehicle.

    Args:
        on_vehicle: called with each vehicle's fused read (on the worker thread; at ``close``, on the caller's).
        detector: detector bundle folder or shipped name.
        recognizers: recogniser bundles or shipped names.
        region: region for template post-filtering (cn, us, br, eu), if known.
        threads: interpreter threads.
        single_read: read each plate at one margin (faster; for slow boards).
        max_age: frames read in which a plate may go unseen before its vehicle is reported.
    """

    def __init__(
        self,
        on_vehicle: Callable[[TrackedPlate], None],
        detector: str = "detector",
        recognizers: Sequence[str] = ("latin", "cn"),
        region: str | None = None,
        threads: int = 1,
        single_read: bool = False,
        max_age: int = 8,
    ) -> None:
        self.on_vehicle = on_vehicle
        self.pipeline = Pipeline(detector, recognizers, threads, region, margins=margins_for(single_read))
        self.tracker = PlateTracker(max_age=max_age)
        self.submitted = self.dropped = self.processed = self.skipped = 0
        self._slot: queue.Queue[tuple[int, np.ndarray] | None] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._work, name="plate-reader", daemon=True)

    def __enter__(self) -> PlateReader:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def submit(self, image: np.ndarray, wait: bool = False) -> bool:
        """Queue one BGR frame; False when it replaced a frame still waiting (that one is dropped).
        ``wait=True`` waits for the slot instead (offline use: every frame is read)."""
        if not self._thread.is_alive():
            raise LprError("the PlateReader is not running: submit frames inside `with PlateReader(...) as reader:`")
        item = (self.submitted, image)
        self.submitted += 1
        if wait:
            self._slot.put(item)
            return True
        replaced = False
        with contextlib.suppress(queue.Empty):
            self._slot.get_nowait()  # the worker is busy: the older frame goes
            replaced = True
            self.dropped += 1
        self._slot.put_nowait(item)  # only this thread puts, and the slot is empty now
        return not replaced

    def close(self) -> None:
        """Read the frame still queued, stop the worker and report the vehicles still in view."""
        if self._thread.is_alive():
            self._slot.put(None)
            self._thread.join()
        for vehicle in self.tracker.flush():
            self._report(vehicle)

    def _work(self) -> None:
        while (item := self._slot.get()) is not None:
            index, image = item  # the host's frame number: motion is measured in it, age in frames read
            try:
                result = self.pipeline.process(image, self.processed + self.skipped, source="host", stream_index=index)
            except ImageError as e:  # an empty or malformed frame from the host: skip it
                self.skipped += 1
                log.warning("frame %d skipped: %s", index, e)
                continue
            except Exception:  # anything else: log it and keep reading (the host's camera thread waits on us)
                self.skipped += 1
                log.exception("frame %d not read", index)
                continue
            self.processed += 1
            self.pipeline.stats.add(result)
            for vehicle in self.tracker.update(result).ended:
                self._report(vehicle)

    def _report(self, vehicle: TrackedPlate) -> None:
        try:
            self.on_vehicle(vehicle)
        except Exception:  # the host's callback failing must not stop the reader
            log.exception("on_vehicle failed for track %d", vehicle.track_id)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Feed a source to PlateReader as a host camera would.")
    p.add_argument("--source", default="samples/drive", help="video file, camera, URL or image folder")
    p.add_argument("--fps", type=float, default=30.0, help="rate frames are pushed at (0: wait for each frame)")
    p.add_argument("--region", help="cn, us, br or eu")
    args = p.parse_args(argv)

    def on_vehicle(v: TrackedPlate) -> None:
        d = v.to_dict()
        print(json.dumps({"vehicle": {k: d[k] for k in ("track", "text", "confidence", "frames")}}))

    try:
        reader = PlateReader(on_vehicle, region=args.region)
        with reader, open_source(args.source) as frames:
            for frame in frames:
                reader.submit(frame.image, wait=args.fps <= 0)
                if args.fps > 0:
                    time.sleep(1.0 / args.fps)
    except LprError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts = {k: getattr(reader, k) for k in ("submitted", "processed", "dropped", "skipped")}
    print(json.dumps({"summary": counts}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
