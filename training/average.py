"""Weight-space interpolation of a model and its fine-tune (WiSE-FT, Wortsman et al. 2022).

A fine-tune on one camera's plates reads them far better but forgets part of what the original read elsewhere;
the weights in between often keep most of both (docs/adapt.md). The result is a run folder like any other, so
``lpr-sdk quantize`` exports it.

    lpr-sdk train average checkpoints/latin_more runs/adapt_latin --out runs/adapt_latin_wise --alpha 0.5
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from training.config import ConfigError, TrainConfig
from training.train_recognizer import load_trained


def _model_key(cfg: TrainConfig) -> tuple:
    """What fixes a run's weights: the network (dropout and the STN's warm-up change none), alphabet, input size."""
    return replace(cfg.model, dropout=0.0, stn_warmup=0), cfg.alphabet, cfg.input_size


def average_runs(base: str | Path, tuned: str | Path, out: str | Path, alpha: float = 0.5) -> Path:
    """Write a run folder whose weights are ``(1 - alpha) * base + alpha * tuned`` (batch-norm statistics too).

    Args:
        base: the original run folder (e.g. ``checkpoints/latin_more``).
        tuned: a run fine-tuned from it (its ``config.yaml`` is copied to ``out``).
        out: the run folder to write: ``config.yaml``, ``final.weights.h5`` and ``average.json`` (what was mixed).
        alpha: the fine-tune's share, in [0, 1]: 0 gives the base weights, 1 the fine-tune's.

    Returns:
        ``out``.

    Raises:
        ConfigError: ``alpha`` outside [0, 1], or the runs are not the same model (architecture, alphabet, input).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1] (the fine-tune's share), got {alpha}")
    cfg_a, a = load_trained(base)
    cfg_b, b = load_trained(tuned)
    wa, wb = a.get_weights(), b.get_weights()
    if _model_key(cfg_a) != _model_key(cfg_b) or [w.shape for w in wa] != [w.shape for w in wb]:
        raise ConfigError(f"{base} and {tuned} are not the same model (architecture, alphabet, input size)")
    b.set_weights([(1.0 - alpha) * x + alpha * y for x, y in zip(wa, wb, strict=True)])
    run = Path(out)
    run.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(tuned) / "config.yaml", run / "config.yaml")
    b.save_weights(run / "final.weights.h5")
    record = {"base": str(base), "tuned": str(tuned), "alpha": alpha}
    (run / "average.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return run
