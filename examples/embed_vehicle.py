#!/usr/bin/env python3
"""Plate reading inside vehicle software: the host pushes frames, a worker thread reads them, vehicles come back.

Vehicle and drone software usually owns its camera (GStreamer, ROS, a vendor SDK) and cannot hand the loop to
a library. ``sdk.PlateReader`` (``sdk/reader.py``) fits beside it:

    from sdk import PlateReader

    with PlateReader(on_vehicle=lambda v: bus.publish("plate", v.to_dict()), recognizers=("latin",)) as reader:
        for image in host_camera():     # leaving `with` reads what is queued and reports the vehicles in view
            reader.submit(image)        # BGR uint8 (H, W, 3); never blocks the camera thread

- ``submit`` never waits: when the reader is still busy, the frame waiting in its one-frame slot is replaced by
  the new one (the latest frame wins, so reads never lag behind the vehicle) and counted in ``dropped``.
  ``submit(wait=True)`` waits for the slot instead (at most ``timeout`` seconds).
- ``on_vehicle`` is called once per vehicle with its read fused over every frame it was seen in (on the worker
  thread); ``on_result`` (or ``for r in reader``) gets every frame's reads. An exception in a callback is logged
  and counted; a frame the pipeline cannot use is skipped and counted; anything else stops the reader and is
  raised by the next ``submit``/``close`` as ``sdk.ReaderError``.
- Models load in the constructor, on the caller's thread, so a bad bundle raises ``sdk.LprError`` there.

Try it on the sample drive, fed as a 30 FPS camera would (``--fps 0``: wait for every frame, drop none):

    python examples/embed_vehicle.py --source samples/drive --fps 30
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from sdk import LprError, PlateReader, TrackedPlate, open_source


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Feed a source to sdk.PlateReader as a host camera would.")
    p.add_argument("--source", default="samples/drive", help="video file, camera, URL or image folder")
    p.add_argument("--fps", type=float, default=30.0, help="rate frames are pushed at (0: wait for each frame)")
    p.add_argument("--region", help="cn, us, br or eu")
    args = p.parse_args(argv)

    def on_vehicle(v: TrackedPlate) -> None:
        d = v.to_dict()
        print(json.dumps({"vehicle": {k: d[k] for k in ("track", "text", "confidence", "frames")}}), flush=True)

    try:
        reader = PlateReader(on_vehicle, region=args.region, buffer=0)
        with reader, open_source(args.source) as frames:
            for frame in frames:
                reader.submit(frame.image, wait=args.fps <= 0)
                if args.fps > 0:
                    time.sleep(1.0 / args.fps)
    except LprError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts = {k: v for k, v in reader.stats().items() if k != "pipeline"}
    print(json.dumps({"summary": counts}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
