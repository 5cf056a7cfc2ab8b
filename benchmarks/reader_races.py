#!/usr/bin/env python3
"""Close/submit races of sdk.PlateReader, iterated: several producer threads submit frames (dropping and waiting,
good and empty frames) while two threads close the reader at random moments. A hang fails: every thread is joined
with a timeout. tests/test_reader.py runs 200 iterations of the same race; this script runs 1,000 by default.

    python benchmarks/reader_races.py                  # 1,000 iterations, shipped detector + latin, one margin
    python benchmarks/reader_races.py --iterations 50 --json

Checked in every iteration: no thread is still alive after the join timeout (a hang), producers only ever see
``ReaderError`` (closed) and nothing else, and every frame submitted is accounted for
(submitted = processed + skipped + dropped). Prints the iterations, hangs, frames and seconds taken.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdk.errors import ReaderError  # noqa: E402
from sdk.pipeline import MARGIN, Pipeline  # noqa: E402
from sdk.reader import PlateReader  # noqa: E402

JOIN_TIMEOUT_S = 60.0  # far beyond any iteration's work: only a hang reaches it


def race(
    pipe: Pipeline, frames: list[np.ndarray], seed: int, producers: int = 3, per_producer: int = 4
) -> dict[str, Any]:
    """One race on a new reader over ``pipe``; returns its counters. Raises AssertionError on a hang or a broken
    invariant."""
    rng = random.Random(seed)
    reader = PlateReader(pipeline=pipe, buffer=2, max_pending=rng.choice((1, 2)), on_result=lambda r: None)
    unexpected: list[BaseException] = []
    start = threading.Barrier(producers + 2)
    plans = [[(rng.random() < 0.5, rng.randrange(len(frames))) for _ in range(per_producer)] for _ in range(producers)]
    delays = [rng.random() * 0.03 for _ in range(2)]  # the closes land before, among or after the submits

    def produce(plan: list[tuple[bool, int]]) -> None:
        start.wait(JOIN_TIMEOUT_S)
        for wait, k in plan:
            try:
                reader.submit(frames[k], wait=wait, timeout=JOIN_TIMEOUT_S / 2)
            except ReaderError as e:  # closed under us: the only error a producer may see
                if "closed" not in str(e):
                    unexpected.append(e)
                return
            except BaseException as e:
                unexpected.append(e)
                return

    def close(delay: float) -> None:
        start.wait(JOIN_TIMEOUT_S)
        time.sleep(delay)
        try:
            reader.close(timeout=JOIN_TIMEOUT_S / 2)
        except BaseException as e:
            unexpected.append(e)

    threads = [threading.Thread(target=produce, args=(plan,), daemon=True) for plan in plans]
    threads += [threading.Thread(target=close, args=(d,), daemon=True) for d in delays]
    for t in threads:
        t.start()
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0.0))
    hung = [t.name for t in threads if t.is_alive()]
    assert not hung, f"seed {seed}: threads still running after {JOIN_TIMEOUT_S} s (a hang): {hung}"
    assert not unexpected, f"seed {seed}: unexpected {unexpected[0]!r}"
    reader.close()  # idempotent, and by now instant
    try:
        reader.submit(frames[0], wait=True, timeout=1.0)
        raise AssertionError(f"seed {seed}: submit after close was accepted")
    except ReaderError:
        pass
    counts = reader.stats()
    accounted = counts["processed"] + counts["skipped"] + counts["dropped"]
    assert counts["submitted"] == accounted, f"seed {seed}: frames lost: {counts}"
    return counts


def race_frames() -> list[np.ndarray]:
    """Small frames for the races: the sample drive's first frames at a quarter size, and an empty frame (skipped)."""
    import cv2

    from sdk.bundle import SAMPLE_DRIVE

    paths = sorted(SAMPLE_DRIVE.glob("*.jpg"))[:3]
    frames = [cv2.resize(cv2.imread(str(p)), (320, 180), interpolation=cv2.INTER_AREA) for p in paths]
    return [*frames, np.zeros((0, 0, 3), np.uint8)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--producers", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    logging.getLogger("sdk.reader").setLevel(logging.ERROR)  # the empty frames' "skipped" warnings
    pipe = Pipeline("detector", ["latin"], margins=(MARGIN,))
    frames = race_frames()
    totals = dict.fromkeys(("submitted", "processed", "dropped", "skipped"), 0)
    t0 = time.perf_counter()
    failures = []
    for i in range(args.iterations):
        try:
            counts = race(pipe, frames, seed=i, producers=args.producers)
        except AssertionError as e:
            failures.append(str(e))
            continue
        for k in totals:
            totals[k] += counts[k]
    out = {
        "iterations": args.iterations,
        "failures": len(failures),
        **totals,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(out) if args.json else "  ".join(f"{k} {v}" for k, v in out.items()))
    for f in failures[:5]:
        print(f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
