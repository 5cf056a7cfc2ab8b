"""Training throughput of a recogniser config on this machine, on one device or data-parallel over replicas.

Runs the config's first stage for ``--steps`` steps in a scratch folder (no eval, no init) and prints the samples
per second of the median step of each half (the first step's compilation does not move a median).
``--replicas N`` splits the CPU into N logical devices under MirroredStrategy: the same code path as
``--distribute mirrored`` over N GPUs, to see what the split itself costs on a CPU.

    python benchmarks/train_throughput.py configs/lprnet_cn_v3.yaml [--replicas 2] [--steps 120]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--replicas", type=int, default=1, help="logical CPU devices under MirroredStrategy (1: none)")
    ap.add_argument("--steps", type=int, default=120)
    args = ap.parse_args()

    import tensorflow as tf  # after argparse: --help stays fast

    strategy = None
    if args.replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.replicas)
        strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(args.replicas)])

    from training.config import load_config
    from training.train_recognizer import train

    cfg = load_config(args.config)
    stage = dataclasses.replace(cfg.stages[0], steps=args.steps)
    cfg = dataclasses.replace(cfg, stages=(stage,), eval=None, eval_every=max(1, args.steps // 2), init=None)
    with tempfile.TemporaryDirectory() as run:
        history = train(cfg, run, verbose=False, strategy=strategy)["history"]
    rates = [h["samples_per_s"] for h in history]
    print(json.dumps({"config": str(args.config), "replicas": args.replicas, "samples_per_s": rates}))


if __name__ == "__main__":
    main()
