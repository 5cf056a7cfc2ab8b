"""Size, compute and latency of every recogniser architecture as a full-int8 bundle (seed 000 Table IX style).

Cost does not depend on training, so each model is built fresh, calibrated on real crops (or the shipped
samples when ``../shared/data`` is absent), exported through the same ``quantize_run`` as a trained run and
timed with ``lpr-sdk bench``'s benchmark (1 thread, median after warm-up). Accuracy lives in the ablation table.

    python benchmarks/recognizer_costs.py [--calib ../shared/data/crops] [--only LightCRNN] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

from sdk.bench import bench_recognizer
from sdk.interpreter import make_interpreter
from sdk.modelinfo import analyze
from training.config import parse_config, save_config
from training.export import quantize_run
from training.train_recognizer import build_model

REPO = Path(__file__).resolve().parent.parent
# (label, model config) at the ablation's 32x128 Latin input
MODELS = (
    ("LPRNet reduced w0.75", {"architecture": "lprnet", "variant": "reduced", "width": 0.75}),
    ("LPRNet reduced w0.75 + STN", {"architecture": "lprnet", "variant": "reduced", "width": 0.75, "stn": True}),
    ("LightCRNN α=0.5 h128", {"architecture": "lightcrnn", "width": 0.5, "hidden": 128}),
    ("LightCRNN α=1.0 h128", {"architecture": "lightcrnn", "width": 1.0, "hidden": 128}),
    ("LightCRNN α=1.2 h128", {"architecture": "lightcrnn", "width": 1.2, "hidden": 128}),
    ("CRNN h256", {"architecture": "crnn", "width": 1.0, "hidden": 256}),
)


def measure(label: str, model_cfg: dict, calib: Path, root: Path) -> dict:
    cfg = parse_config(
        {
            "name": label,
            "alphabet": "latin",
            "regions": ["us", "br", "eu"],
            "input_size": [32, 128],
            "model": model_cfg,
            "stages": [{"name": "none", "steps": 1, "data": [{"path": str(calib)}]}],
        }
    )
    run = root / label.replace(" ", "_")
    run.mkdir()
    save_config(cfg, run / "config.yaml")
    build_model(cfg).save_weights(run / "final.weights.h5")
    bundle, _ = quantize_run(run, calib, run / "bundle", max_calib=100)
    info = analyze(make_interpreter(bundle.model)[0], bundle.model)
    b = bench_recognizer(bundle, threads=(1,), warmup=20, runs=100)
    return {
        "model": label,
        "params": int(build_model(cfg).count_params()),
        "model_bytes": b["model_bytes"],
        "macs": info.macs,
        "invoke_ms_median": b["results"][0]["invoke_ms_median"],
        "latency_ms_median": b["results"][0]["latency_ms_median"],
        "ops": sorted({o.name for o in info.ops}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = REPO.parent / "shared" / "data" / "crops"
    ap.add_argument("--calib", type=Path, default=default if default.is_dir() else REPO / "samples" / "latin")
    ap.add_argument("--only", default="", help="only the models whose label contains this (e.g. LightCRNN)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    # the converter's chatter ("Saved artifact at ...") goes to stderr, so stdout is only the table or the JSON
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        rows = [measure(label, m, a.calib, Path(tmp)) for label, m in MODELS if a.only in label]
    if a.json:
        print(json.dumps(rows, indent=1))
        return
    print("| model | params | int8 bytes | MMAC | invoke ms | recognize() ms | float islands |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        islands = "yes" if {"QUANTIZE", "DEQUANTIZE"} & set(r["ops"]) else "no"
        print(
            f"| {r['model']} | {r['params']:,} | {r['model_bytes']:,} | {r['macs'] / 1e6:.1f} | "
            f"{r['invoke_ms_median']:.2f} | {r['latency_ms_median']:.2f} | {islands} |"
        )


if __name__ == "__main__":
    main()
