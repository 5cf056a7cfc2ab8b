"""Our int8 LPR bundles against a general OCR engine (RapidOCR, PP-OCR ONNX models) on the same plate crops.

Prints plate accuracy and median latency per region side by side, and both engines' model sizes on disk.
Needs the ``bench`` extra (``pip install -e '.[bench]'``); see benchmarks/README.md for the scoring rule.

    python benchmarks/compare_ocr.py --data ../shared/data/crops --split test --limit 40
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's `sdk`, when run as a script

import numpy as np

from sdk.dataset import read_labels
from sdk.errors import LprError
from sdk.formats import alphabet_for, normalise_text
from sdk.image import read_image
from sdk.recognizer import Recognizer

WARMUP = 3


def ocr_correct(lines: Sequence[str], truth: str, alphabet: str) -> bool:
    """Correct if any single normalised line, or all lines concatenated (in reading order), equals ``truth``."""
    norm = [normalise_text(s, alphabet) for s in lines]
    return truth in norm or "".join(norm) == truth


def timed(fn: Callable[[np.ndarray], Any], imgs: Sequence[np.ndarray]) -> tuple[list[Any], float]:
    """``fn`` on every image after WARMUP calls on the first; the outputs and the median latency in ms."""
    for _ in range(WARMUP):
        fn(imgs[0])
    outs, ms = [], []
    for img in imgs:
        t0 = time.perf_counter()
        outs.append(fn(img))
        ms.append((time.perf_counter() - t0) * 1000)
    return outs, statistics.median(ms)


def load_bundles(specs: Sequence[str], threads: int, second_look: bool = True) -> list[tuple[str, Recognizer]]:
    """``name=path`` specs (or a bare path/shipped name) -> recognisers; a missing/bad bundle is skipped."""
    out = []
    for spec in specs:
        name, _, path = spec.rpartition("=")
        try:
            out.append((name or path, Recognizer(path, threads=threads, second_look=second_look)))
        except LprError as e:
            print(f"ours: bundle {spec} skipped ({e})", file=sys.stderr)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Our LPR bundles vs RapidOCR on the same plate crops.")
    ap.add_argument("--data", required=True, help="folder holding labels.csv (file,plate_text,region)")
    ap.add_argument("--split", default="test", choices=["all", "train", "test"])
    ap.add_argument("--bundle", action="append", help="name=path of one of our bundles (default: cn=cn, latin=latin)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for both engines")
    ap.add_argument("--limit", type=int, default=0, help="first N crops of each region (0: all)")
    ap.add_argument("--rec-only", action="store_true", help="RapidOCR recogniser on the whole crop, no detection")
    ap.add_argument("--no-second-look", action="store_true", help="our bundles read each crop once")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument(
        "--misses",
        action="store_true",
        help="also list the crops our bundle misreads with RapidOCR's read: where both engines read the same "
        "other text, or nothing, the label or the crop deserves a look",
    )
    args = ap.parse_args(argv)

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    try:
        import rapidocr_onnxruntime
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        print(
            "rapidocr-onnxruntime is missing: pip install -e '.[bench]' (or pip install rapidocr-onnxruntime)",
            file=sys.stderr,
        )
        return 2
    engine = RapidOCR(intra_op_num_threads=args.threads, inter_op_num_threads=1)  # models ship in the wheel
    ocr_dir = Path(rapidocr_onnxruntime.__file__).parent
    used = [p for p in ocr_dir.rglob("*.onnx") if not args.rec_only or "_rec_" in p.name]  # the models this mode runs
    ocr_bytes = sum(p.stat().st_size for p in used)

    def ocr_lines(img: np.ndarray) -> list[str]:
        res, _ = engine(img, use_det=not args.rec_only, use_cls=not args.rec_only)
        return [str(r[-2]) for r in res or []]  # [box, text, score] with detection, [text, score] without

    try:
        rows = read_labels(args.data, args.split)
    except LprError as e:
        print(e, file=sys.stderr)
        return 2
    ours = load_bundles(args.bundle or ["cn=cn", "latin=latin"], args.threads, not args.no_second_look)
    regions: dict[str, Any] = {}
    for region in sorted({r.region for r in rows}):
        sel = [r for r in rows if r.region == region][: args.limit or None]
        imgs, truths = [read_image(r.path) for r in sel], [r.text for r in sel]
        res: dict[str, Any] = {"n": len(sel)}
        rec = next(((n, r) for n, r in ours if region in r.manifest.regions), None)
        if rec is None and ours:
            print(f"ours: no bundle covers region {region}; only RapidOCR runs", file=sys.stderr)
        reads: list[Any] = []
        if rec is not None:
            reads, ms = timed(lambda img, rec=rec[1], region=region: rec.recognize(img, region), imgs)
            hits = sum(r.text == t for r, t in zip(reads, truths, strict=True))
            res |= {"ours_bundle": rec[0], "ours_plate_accuracy": round(hits / len(sel), 4), "ours_ms": round(ms, 3)}
        lines, ms = timed(ocr_lines, imgs)
        hits = sum(ocr_correct(s, t, alphabet_for(region)) for s, t in zip(lines, truths, strict=True))
        res |= {"rapidocr_plate_accuracy": round(hits / len(sel), 4), "rapidocr_ms": round(ms, 3)}
        if args.misses and reads:
            res["misses"] = misses(sel, reads, lines, alphabet_for(region))
        if "ours_ms" in res:
            res["speedup"] = round(res["rapidocr_ms"] / max(res["ours_ms"], 1e-9), 1)
        regions[region] = res
        print(f"done {region}: {len(sel)} crops", file=sys.stderr)

    mode = "rec" if args.rec_only else "det+cls+rec"
    report = {
        "data": str(args.data),
        "split": args.split,
        "threads": args.threads,
        "limit": args.limit,
        "rapidocr": {"version": metadata.version("rapidocr-onnxruntime"), "mode": mode, "model_bytes": ocr_bytes},
        "ours": {
            n: {"source": str(r.bundle.source), "model_bytes": len(r.bundle.model), "regions": list(r.manifest.regions)}
            for n, r in ours
        },
        "regions": regions,
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print_table(report, ocr_dir)
    return 0


def misses(rows: Sequence[Any], reads: Sequence[Any], lines: Sequence[Sequence[str]], alphabet: str) -> list[dict]:
    """Our misreads with RapidOCR's read (its lines joined) and whether it read the same text as ours."""
    out = []
    for row, read, ocr in zip(rows, reads, lines, strict=True):
        if read.text != row.text:
            other = "".join(normalise_text(s, alphabet) for s in ocr)
            out.append(
                {
                    "file": row.path.name,
                    "label": row.text,
                    "ours": read.text,
                    "rapidocr": other,
                    "same_read": other == read.text,
                }
            )
    return out


def print_table(report: dict[str, Any], ocr_dir: Path) -> None:
    def cell(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    ocr = report["rapidocr"]
    print(f"split={report['split']} threads={report['threads']} rapidocr {ocr['version']} ({ocr['mode']})")
    print(f"{'region':<7}{'n':>5}{'ours acc':>10}{'ours ms':>10}{'ocr acc':>10}{'ocr ms':>10}{'speed-up':>10}")
    for region, r in report["regions"].items():
        g = r.get
        print(
            f"{region:<7}{r['n']:>5}{cell(g('ours_plate_accuracy'), '.3f'):>10}{cell(g('ours_ms'), '.2f'):>10}"
            f"{r['rapidocr_plate_accuracy']:>10.3f}{r['rapidocr_ms']:>10.1f}{cell(g('speedup'), '.1f'):>10}"
        )
    for region, r in report["regions"].items():
        for m in r.get("misses", []):
            note = "  <- both engines read this" if m["same_read"] else ""
            print(f"miss {region} {m['file']}: label {m['label']}, ours {m['ours']}, rapidocr {m['rapidocr']}{note}")
    for n, o in report["ours"].items():
        print(f"ours {n}: {o['model_bytes']:,} bytes ({o['source']})")
    print(f"rapidocr: {ocr['model_bytes']:,} bytes of .onnx models used ({ocr_dir / 'models'})")


if __name__ == "__main__":
    sys.exit(main())
