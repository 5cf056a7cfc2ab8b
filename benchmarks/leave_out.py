"""Generalisation to what a run never saw: accuracy on the groups its config left out, next to the validation split.

Each RUN_DIR is a finished recogniser run whose real sources drop some groups (``leave_out: [粤, 湘]`` in its
config: plate-text prefixes such as provinces or layouts; configs/experiments/cn_province_lopo_*.yaml). For each
run this reads, with the run's float weights and greedy decoding:

- ``held out``: every crop of ``--data`` (all splits: the run saw none of them) whose text starts with a prefix
  the run left out, overall and per prefix;
- ``val``: the validation split of ``--data`` (what chooses between recipes), for the same region.

Every accuracy comes with its 95 % (Wilson) interval; two runs whose intervals overlap widely have not been told
apart. Runs that left nothing out get the val row only, so a control and its candidate can be listed together:

    python benchmarks/leave_out.py runs/cn_lopo_control runs/cn_lopo_swap --data ../shared/data/crops --region cn
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from sdk.dataset import read_labels
from sdk.decode import decode_batch
from sdk.evaluate import wilson_interval
from sdk.formats import ALPHABETS
from sdk.image import plate_input, read_image
from training.config import load_config
from training.train_recognizer import load_trained, predict_logits


def left_out(run_dir: str | Path, data: str | Path) -> tuple[str, ...]:
    """The prefixes the run's sources of ``data`` left out (the union over its stages)."""
    root = Path(data).resolve()
    cfg = load_config(Path(run_dir) / "config.yaml")
    sources = [s for stage in cfg.stages for s in stage.data if Path(s.path).resolve() == root]
    return tuple(sorted({p for s in sources for p in s.leave_out}))


def accuracy(right: list[bool]) -> dict[str, Any]:
    lo, hi = wilson_interval(sum(right), len(right))
    return {"n": len(right), "plate_accuracy": round(float(np.mean(right)), 4) if right else None, "ci95": [lo, hi]}


def measure(run_dir: str, data: str, region: str) -> dict[str, Any]:
    """Held-out and val plate accuracy of ``run_dir`` on ``region`` crops of ``data``."""
    cfg, model = load_trained(run_dir)
    alphabet = ALPHABETS[cfg.alphabet]

    def reads(rows) -> list[bool]:
        rows = [r for r in rows if all(c in alphabet for c in r.text)]
        if not rows:
            return []
        x = np.stack([plate_input(read_image(r.path), *cfg.input_size) for r in rows])
        texts = [r.text for r in decode_batch(predict_logits(model, x), alphabet, len(alphabet), method="greedy")]
        return [t == r.text for t, r in zip(texts, rows, strict=True)]

    prefixes = left_out(run_dir, data)
    out: dict[str, Any] = {"run": run_dir, "left_out": list(prefixes)}
    if prefixes:
        held = [r for r in read_labels(data, "all", [region]) if r.text.startswith(prefixes)]
        right = reads(held)
        out["held_out"] = accuracy(right)
        out["held_out_by_prefix"] = {
            p: accuracy([ok for ok, r in zip(right, held, strict=True) if r.text.startswith(p)]) for p in prefixes
        }
    out["val"] = accuracy(reads(read_labels(data, "val", [region])))
    return out


def _fmt(a: dict[str, Any]) -> str:
    if not a["n"]:
        return "n 0"
    return f"{a['plate_accuracy']:.3f} [{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}] of {a['n']}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="finished recogniser run folders")
    ap.add_argument("--data", required=True, help="crops folder with labels.csv")
    ap.add_argument("--region", required=True)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    results = [measure(r, a.data, a.region) for r in a.runs]
    if a.json:
        print(json.dumps(results, ensure_ascii=False, indent=1))
        return
    for m in results:
        print(m["run"])
        if m["left_out"]:
            print(f"  held out ({'/'.join(m['left_out'])}): {_fmt(m['held_out'])}")
            for p, acc in m["held_out_by_prefix"].items():
                print(f"    {p}: {_fmt(acc)}")
        print(f"  val: {_fmt(m['val'])}")


if __name__ == "__main__":
    main()
