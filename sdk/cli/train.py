"""``lpr-sdk train``: training commands (need the training extra; TensorFlow is imported only when they run)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from sdk.cli._common import need_training


@click.group("train")
def train_group() -> None:
    """Train models (needs the training extra)."""


@train_group.command("recognizer")
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Training config (YAML) for a new run.",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder of a new run.  [default: runs/<config name>-<UTC timestamp>]",
)
@click.option(
    "--resume",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Continue this run folder from its last checkpoint (its config.yaml is used).",
)
def train_recognizer_cmd(config: Path | None, run_dir: Path | None, resume: Path | None) -> None:
    """Train a CTC plate recogniser: a new run from --config, or continue one with --resume."""
    if (config is None) == (resume is None):
        raise click.UsageError("give exactly one of --config or --resume")
    if resume is not None and run_dir is not None:
        raise click.UsageError("--run-dir is for a new run; --resume names the run folder itself")
    need_training("tensorflow", "yaml")
    from training.config import load_config
    from training.train_recognizer import train

    if resume is not None:
        run = resume
        cfg = load_config(run / "config.yaml")
    else:
        cfg = load_config(config)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        run = run_dir or Path("runs") / f"{cfg.name}-{stamp}"
    train(cfg, run, resume=resume is not None)
    click.echo(f"metrics: {run / 'metrics.json'}")
