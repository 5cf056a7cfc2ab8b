"""``lpr-sdk train``: training commands (need the training extra; TensorFlow is imported only when they run)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from sdk.cli._common import need_training


@click.group("train")
def train_group() -> None:
    """Train models (needs the training extra)."""


def _run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--config (a new run), --run-dir (where) and --resume (continue a run folder), shared by every trainer."""
    fn = click.option(
        "--resume",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Continue this run folder from its last checkpoint (its config.yaml is used).",
    )(fn)
    fn = click.option(
        "--run-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Run folder of a new run.  [default: runs/<config name>-<UTC timestamp>]",
    )(fn)
    return click.option(
        "--config",
        "config",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Training config (YAML) for a new run.",
    )(fn)


def _run_folder(config: Path | None, run_dir: Path | None, resume: Path | None, load: Callable[[Path], Any]):
    """Check the options and return (config or None when resuming, run folder)."""
    if (config is None) == (resume is None):
        raise click.UsageError("give exactly one of --config or --resume")
    if resume is not None and run_dir is not None:
        raise click.UsageError("--run-dir is for a new run; --resume names the run folder itself")
    if resume is not None:
        return None, resume
    cfg = load(config)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return cfg, run_dir or Path("runs") / f"{cfg.name}-{stamp}"


def _distribute_option(*names: str) -> Callable[..., Any]:
    """``--distribute`` with the strategies a command accepts; its help names only those."""
    meaning = {
        "mirrored": "mirrored = every local GPU (the CPU if none)",
        "multi-worker": "multi-worker = the cluster in TF_CONFIG (run the same command on each worker)",
    }
    return click.option(
        "--distribute",
        type=click.Choice(names),
        default="none",
        show_default=True,
        help="Data-parallel training with tf.distribute: "
        + ", ".join(meaning[n] for n in names if n in meaning)
        + ". batch_size stays the global batch.",
    )


def _strategy(name: str) -> Any:
    """The tf.distribute strategy, made before any other TensorFlow work (multi-worker needs that)."""
    from training.distribute import make_strategy

    return make_strategy(name)


@train_group.command("recognizer")
@_run_options
@_distribute_option("none", "mirrored", "multi-worker")
def train_recognizer_cmd(config: Path | None, run_dir: Path | None, resume: Path | None, distribute: str) -> None:
    """Train a CTC plate recogniser: a new run from --config, or continue one with --resume."""
    need_training("tensorflow", "yaml")
    strategy = _strategy(distribute)
    from training.config import load_config
    from training.distribute import is_chief
    from training.train_recognizer import train

    cfg, run = _run_folder(config, run_dir, resume, load_config)
    train(cfg, run, resume=resume is not None, strategy=strategy)
    if is_chief(strategy):
        click.echo(f"metrics: {run / 'metrics.json'}")
    else:
        click.echo("done: this worker's steps are in the chief's run folder")


@train_group.command("detector")
@_run_options
@_distribute_option("none", "mirrored")
def train_detector_cmd(config: Path | None, run_dir: Path | None, resume: Path | None, distribute: str) -> None:
    """Train the plate detector cascade (proposal + corners networks): a new run from --config, or --resume one."""
    need_training("tensorflow", "yaml")
    strategy = _strategy(distribute)
    from training.config import load_detector_config
    from training.train_detector import train_detector

    cfg, run = _run_folder(config, run_dir, resume, load_detector_config)
    metrics = train_detector(cfg, run, resume=resume is not None, strategy=strategy)
    if "eval" in metrics:
        m = metrics["eval"]["float"]["overall"]
        click.echo(f"float AP@0.5 {m['ap_50']}  AP@0.7 {m['ap_70']}  recall@0.5 {m['recall_50']}")
    click.echo(f"metrics: {run / 'metrics.json'}")


@train_group.command("gan")
@_run_options
def train_gan_cmd(config: Path | None, run_dir: Path | None, resume: Path | None) -> None:
    """Train a CycleGAN / CycleWGAN (synthetic -> real plate crops): a new run from --config, or --resume one.

    Translate plates with the result: lpr-sdk synth --gan RUN_DIR ... (see docs/gan.md).
    """
    need_training("tensorflow", "yaml")
    from training.config import load_gan_config
    from training.train_gan import train_gan

    cfg, run = _run_folder(config, run_dir, resume, load_gan_config)
    metrics = train_gan(cfg, run, resume=resume is not None)
    last = metrics["last"] or {}
    click.echo(f"{metrics['steps']} steps; last losses: generator {last.get('g_loss')}, critic {last.get('d_loss')}")
    click.echo(f"generator: {run / 'generator.weights.h5'}  samples: {run / 'samples.png'}")


@train_group.command("average")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run folder to write.")
@click.option(
    "--alpha",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="With two runs BASE TUNED: TUNED's share (0 gives BASE's weights, 1 TUNED's).  [default: equal shares]",
)
def train_average_cmd(runs: tuple[Path, ...], out: Path, alpha: float | None) -> None:
    """Average the weights of recogniser runs of one model: a run and its fine-tune (WiSE-FT, --alpha), or
    several fine-tunes of one run (a uniform model soup).

    The result is a run folder: export it with lpr-sdk quantize (see docs/adapt.md, docs/methods.md).
    """
    if alpha is not None and len(runs) != 2:
        raise click.UsageError(f"--alpha needs exactly two runs (BASE TUNED), got {len(runs)}")
    need_training("tensorflow", "yaml")
    from training.average import average_runs

    shares = [1.0 / len(runs)] * len(runs) if alpha is None else [1.0 - alpha, alpha]
    run = average_runs(runs, out, shares)
    mixed = " + ".join(f"{s:.3g} x {r}" for s, r in zip(shares, runs, strict=True))
    click.echo(f"wrote {run / 'final.weights.h5'} ({mixed})")
