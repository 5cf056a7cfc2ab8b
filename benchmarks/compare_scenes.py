"""End to end on whole frames: our pipeline (detector + latin recogniser) against RapidOCR (detection + recognition).

A frame counts as read when the labelled plate's text is among the engine's reads of that frame (RapidOCR: any
normalised line, or all lines joined; see compare_ocr.py). Prints, per region, frames read and median ms per frame.
Needs the ``bench`` extra (``pip install -e '.[bench]'``).

    python benchmarks/compare_scenes.py --data ../shared/data/scenes --split test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's `sdk`, when run as a script
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_ocr import ocr_correct, timed  # noqa: E402

from sdk.dataset import SPLITS, read_scenes  # noqa: E402
from sdk.errors import LprError  # noqa: E402
from sdk.formats import alphabet_for  # noqa: E402
from sdk.image import read_image  # noqa: E402
from sdk.pipeline import Pipeline, margins_for  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Our pipeline vs RapidOCR on whole labelled frames.")
    ap.add_argument("--data", required=True, help="scenes folder (labels.csv with plate_text and corners)")
    ap.add_argument("--split", default="test", choices=SPLITS)
    ap.add_argument("--regions", nargs="+", default=["us", "br", "eu"])
    ap.add_argument("--detector", default="detector")
    ap.add_argument("--recognizer", default="latin")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for both engines")
    ap.add_argument("--limit", type=int, default=0, help="first N frames of each region (0: all)")
    ap.add_argument("--no-rapidocr", action="store_true", help="only our pipeline")
    ap.add_argument("--single-read", action="store_true", help="read each plate at one margin (Pipeline margins)")
    ap.add_argument("--misses", action="store_true", help="also list our missed frames: file, label, our reads")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args(argv)

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    engine = None
    if not args.no_rapidocr:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError:
            print("rapidocr-onnxruntime is missing: pip install -e '.[bench]'", file=sys.stderr)
            return 2
        engine = RapidOCR(intra_op_num_threads=args.threads, inter_op_num_threads=1)
    try:
        scenes = [s for s in read_scenes(args.data, args.split, args.regions) if s.plates[0].text]
    except LprError as e:
        print(e, file=sys.stderr)
        return 2
    regions: dict[str, Any] = {}
    for region in args.regions:
        sel = [s for s in scenes if s.region == region][: args.limit or None]
        if not sel:
            continue
        frames, truths = [read_image(s.path) for s in sel], [s.plates[0].text for s in sel]
        margins = margins_for(args.single_read)
        pipe = Pipeline(args.detector, [args.recognizer], threads=args.threads, region=region, margins=margins)
        results, ms = timed(pipe.process, frames)
        hit = [any(p.text == t for p in r.plates) for r, t in zip(results, truths, strict=True)]
        res: dict[str, Any] = {
            "n": len(sel),
            "ours_frames_read": round(sum(hit) / len(sel), 4),
            "ours_ms": round(ms, 2),
        }
        if args.misses:
            res["misses"] = [
                {"file": s.path.name, "label": t, "reads": [[p.text, round(p.confidence, 3)] for p in r.plates]}
                for s, t, r, ok in zip(sel, truths, results, hit, strict=True)
                if not ok
            ]
        if engine is not None:
            lines, ms = timed(lambda img: [str(r[1]) for r in (engine(img)[0] or [])], frames)
            hits = sum(ocr_correct(s, t, alphabet_for(region)) for s, t in zip(lines, truths, strict=True))
            res |= {"rapidocr_frames_read": round(hits / len(sel), 4), "rapidocr_ms": round(ms, 1)}
        regions[region] = res
        print(f"done {region}: {len(sel)} frames", file=sys.stderr)
    report = {"data": str(args.data), "split": args.split, "threads": args.threads, "regions": regions}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{'region':<8}{'n':>5}{'ours read':>11}{'ours ms':>9}{'rapidocr read':>15}{'rapidocr ms':>13}")
    for region, r in regions.items():
        print(
            f"{region:<8}{r['n']:>5}{r['ours_frames_read']:>11.3f}{r['ours_ms']:>9.1f}"
            f"{r.get('rapidocr_frames_read', float('nan')):>15.3f}{r.get('rapidocr_ms', float('nan')):>13.1f}"
        )
    for region, r in regions.items():
        for m in r.get("misses", []):
            reads = ", ".join(f"{text} {conf:.2f}" for text, conf in m["reads"]) or "no plate read"
            print(f"missed {region} {m['file']}: {m['label']} <- {reads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
