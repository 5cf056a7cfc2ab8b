"""Reads per frame against reads per vehicle (PlateTracker) on rendered drives with known plates.

Renders ``--clips`` short drives (``training.synth.scenes.render_clip``: one or two cars coming closer, each
with its own plate), runs the shipped pipeline over every frame and the tracker over the results, and prints:

- ``frame reads``: of the (frame, labelled plate) pairs, the share whose text is among that frame's reads;
- per labelled plate (vehicle), whether a track of it reports the right text, three ways: the tracker's fused
  read (candidate probabilities summed over frames), the majority of the frames' top reads, and the single most
  confident read of the track;
- ``vehicles``: tracks reported, and how many of them match no labelled plate (false detections that lasted two
  frames or more, or a plate whose track split and read wrong).

    python benchmarks/track_clips.py --clips 100                                  # us/br/eu plates, latin
    python benchmarks/track_clips.py --clips 100 --regions cn --recognizer cn     # needs the train extra
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's `sdk`, when run as a script

from sdk.dataset import read_scenes  # noqa: E402
from sdk.image import read_image  # noqa: E402
from sdk.pipeline import Pipeline, PlateRead, margins_for  # noqa: E402
from sdk.tracker import PlateTracker  # noqa: E402
from training.synth.scenes import render_clip  # noqa: E402


def run_clip(pipe: Pipeline, folder: Path, max_age: int) -> dict[str, int]:
    """Counts for one rendered clip (see the module docstring)."""
    scenes = read_scenes(folder)
    labels = {p.text for s in scenes for p in s.plates}
    tracker = PlateTracker(max_age=max_age)
    reads: dict[int, list[PlateRead]] = defaultdict(list)
    vehicles = []
    c = Counter()
    for i, s in enumerate(scenes):
        result = pipe.process(read_image(s.path), i)
        texts = {p.text for p in result.plates}
        c["pairs"] += len(s.plates)
        c["frame_reads"] += sum(p.text in texts for p in s.plates)
        step = tracker.update(result)
        for p, tid in zip(result.plates, step.ids, strict=True):
            reads[tid].append(p)
        vehicles += step.ended
    vehicles += tracker.flush()
    fused = {v.text for v in vehicles}
    majority = {Counter(r.text for r in reads[v.track_id]).most_common(1)[0][0] for v in vehicles}
    confident = {max(reads[v.track_id], key=lambda r: r.confidence).text for v in vehicles}
    c["plates"] += len(labels)
    c["fused"] += len(labels & fused)
    c["majority"] += len(labels & majority)
    c["most_confident"] += len(labels & confident)
    c["vehicles"] += len(vehicles)
    c["unmatched_vehicles"] += sum(v.text not in labels for v in vehicles)
    return dict(c)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Per-frame vs per-vehicle (tracked) reads on rendered drives.")
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--frames", type=int, default=20, help="frames per clip")
    ap.add_argument("--fps", type=float, default=10, help="clip frame rate (how far cars move between frames)")
    ap.add_argument("--seed", type=int, default=1000, help="first clip's seed (clips use seed, seed+1, ...)")
    ap.add_argument("--max-age", type=int, default=8, help="PlateTracker max_age")
    ap.add_argument("--regions", nargs="+", default=["us", "br", "eu"], help="plates the clips show")
    ap.add_argument("--recognizer", nargs="+", default=["latin"], help="recogniser bundle(s) for those regions")
    ap.add_argument("--single-read", action="store_true", help="one margin per plate")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    pipe = Pipeline("detector", args.recognizer, margins=margins_for(args.single_read))
    total: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.clips):
            folder = Path(tmp) / f"clip{k}"
            render_clip(folder, args.frames, args.regions, seed=args.seed + k, fps=args.fps)
            total.update(run_clip(pipe, folder, args.max_age))
    n = total["plates"]
    report = {
        "clips": args.clips,
        "plates": n,
        "frame_reads": round(total["frame_reads"] / total["pairs"], 3),
        "vehicle_reads": {k: round(total[k] / n, 3) for k in ("fused", "majority", "most_confident")},
        "vehicles": total["vehicles"],
        "unmatched_vehicles": total["unmatched_vehicles"],
    }
    if args.json:
        print(json.dumps(report))
    else:
        v = report["vehicle_reads"]
        print(f"{args.clips} clips, {n} plates, {total['pairs']} (frame, plate) pairs")
        print(f"frame reads {report['frame_reads']:.3f}")
        print(f"vehicle reads: fused {v['fused']:.3f}, majority {v['majority']:.3f}, ", end="")
        print(f"most confident {v['most_confident']:.3f}")
        print(f"vehicles reported {report['vehicles']}, matching no plate {report['unmatched_vehicles']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
