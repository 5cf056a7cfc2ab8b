"""Weight-space averages of recogniser runs: WiSE-FT and model soups (Wortsman et al. 2022).

- **WiSE-FT** (two runs, ``--alpha``): a fine-tune on one camera's plates reads them far better but forgets part of
  what the original read elsewhere; the weights in between often keep most of both (docs/adapt.md).
- **Uniform soup** (two or more runs): the mean of several fine-tunes of one run (other seeds, other data mixes)
  often reads better than any of them, at no cost at run time (docs/methods.md).

The result is a run folder like any other, so ``lpr-sdk quantize`` exports it.

    lpr-sdk train average checkpoints/latin_more runs/adapt_latin --out runs/adapt_latin_wise --alpha 0.5
    lpr-sdk train average runs/cn_v3 runs/cn_splice runs/cn_soup/v3_s1 --out runs/cn_soup3
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from training.config import ConfigError, TrainConfig
from training.train_recognizer import load_trained


def _model_key(cfg: TrainConfig) -> tuple:
    """What fixes a run's weights: the network (dropout and the STN's warm-up change none), alphabet, input size."""
    return replace(cfg.model, dropout=0.0, stn_warmup=0), cfg.alphabet, cfg.input_size


def average_runs(runs: Sequence[str | Path], out: str | Path, shares: Sequence[float] | None = None) -> Path:
    """Write a run folder whose weights are ``sum(share_i * run_i)`` (batch-norm statistics too).

    Args:
        runs: two or more run folders of the same model, e.g. a run and its fine-tune, or fine-tunes of one run.
            The last one's ``config.yaml`` is copied to ``out``.
        out: the run folder to write: ``config.yaml``, ``final.weights.h5`` and ``average.json`` (what was mixed).
        shares: each run's share, non-negative, summing to 1 (default: equal shares, a uniform soup). WiSE-FT of
            ``base`` and ``tuned`` at ``alpha`` is ``runs=[base, tuned], shares=[1 - alpha, alpha]``.

    Returns:
        ``out``.

    Raises:
        ConfigError: fewer than two runs, bad shares, or runs that are not the same model (architecture, alphabet,
            input size).
    """
    if len(runs) < 2:
        raise ConfigError("average needs at least two runs")
    shares = [1.0 / len(runs)] * len(runs) if shares is None else [float(s) for s in shares]
    if len(shares) != len(runs) or min(shares) < 0.0 or abs(sum(shares) - 1.0) > 1e-6:
        raise ConfigError(f"need one non-negative share per run, summing to 1; got {shares} for {len(runs)} runs")
    loaded = [load_trained(r) for r in runs]
    cfg0, model = loaded[0]
    weights = [m.get_weights() for _, m in loaded]
    for run, (cfg, _), w in zip(runs[1:], loaded[1:], weights[1:], strict=True):
        if _model_key(cfg) != _model_key(cfg0) or [x.shape for x in w] != [x.shape for x in weights[0]]:
            raise ConfigError(f"{runs[0]} and {run} are not the same model (architecture, alphabet, input size)")
    model.set_weights([sum(s * w[i] for s, w in zip(shares, weights, strict=True)) for i in range(len(weights[0]))])
    run_dir = Path(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(runs[-1]) / "config.yaml", run_dir / "config.yaml")
    model.save_weights(run_dir / "final.weights.h5")
    record = {"runs": [str(r) for r in runs], "shares": shares}
    (run_dir / "average.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return run_dir
