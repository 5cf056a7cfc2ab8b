"""Float metrics of a training run (no export): plate and char accuracy and length consistency, greedy decoding.

The measure of the renderer A/B runs in docs/synthetic.md, which read every real crop of a region with a model
trained on synthetic plates alone:

    python benchmarks/eval_run.py RUN_DIR --data ../shared/data/crops --region cn [--split all|train|test]
"""

from __future__ import annotations

import argparse
import json

from sdk.dataset import SPLITS
from sdk.decode import decode_batch
from sdk.evaluate import summarize
from sdk.formats import ALPHABETS
from training.config import DataSource
from training.data.pipeline import load_arrays
from training.train_recognizer import load_trained, predict_logits


def evaluate_run(run_dir: str, data: str, region: str, split: str = "all") -> dict[str, float]:
    """Greedy float metrics of ``run_dir``'s final weights on the ``region`` crops of ``data``."""
    cfg, model = load_trained(run_dir)
    alphabet = ALPHABETS[cfg.alphabet]
    arrays = load_arrays(DataSource(data, split, (region,), augment=False), alphabet, cfg.input_size)  # type: ignore[arg-type]
    reads = decode_batch(predict_logits(model, arrays.images), alphabet, len(alphabet), method="greedy")
    m = summarize(list(zip(arrays.texts, reads, strict=True)), [0.0])
    return {k: m[k] for k in ("n", "plate_accuracy", "char_accuracy", "length_consistency")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--data", required=True)
    ap.add_argument("--region", required=True)
    ap.add_argument("--split", choices=SPLITS, default="all")
    a = ap.parse_args()
    print(json.dumps(evaluate_run(a.run_dir, a.data, a.region, a.split)))


if __name__ == "__main__":
    main()
