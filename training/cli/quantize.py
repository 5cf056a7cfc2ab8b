"""``lpr-sdk quantize``: export a trained run to a full-int8 TFLite bundle, checked against the float model."""

from __future__ import annotations

from pathlib import Path

import click

from sdk.cli._common import echo_json, json_option, need_training
from sdk.dataset import SPLITS

_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


@click.command("quantize")
@click.argument("run_dir", type=_DIR)
@click.option("--calib", required=True, type=_DIR, help="Labelled folder to calibrate the int8 ranges on.")
@click.option(
    "--calib-split",
    type=click.Choice(SPLITS),
    default="all",
    show_default=True,
    help="Split of --calib to calibrate on (use train when --eval is the same folder's test split).",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Bundle directory to write (its model and manifest are replaced; other files there are kept).",
)
@click.option(
    "--eval",
    "eval_dir",
    type=_DIR,
    help="Labelled folder to compare float and int8 on  [default: the run config's eval set]",
)
@click.option(
    "--eval-split",
    type=click.Choice(SPLITS),
    default="test",
    show_default=True,
    help="Split of --eval to use.",
)
@click.option(
    "--allow-drop", is_flag=True, help="Write the bundle even if int8 loses more than 2 pp of plate accuracy."
)
@click.option(
    "--max-calib", type=click.IntRange(min=1), default=400, show_default=True, help="Calibration images used at most."
)
@click.option(
    "--form",
    type=click.Choice(["int8", "dynamic"]),
    default="int8",
    show_default=True,
    help="int8: full integer (ships); dynamic: int8 weights with float activations (recognisers only).",
)
@json_option
def quantize_cmd(
    run_dir: Path,
    calib: Path,
    calib_split: str,
    out: Path,
    eval_dir: Path | None,
    eval_split: str,
    allow_drop: bool,
    max_calib: int,
    form: str,
    as_json: bool,
) -> None:
    """Export a trained run to a full-int8 bundle (or a dynamic-range one: --form dynamic).

    Quantises RUN_DIR's recogniser (or both detector stages), compares float and int8 accuracy (plate accuracy,
    or detection AP) on real data and writes the bundle to --out (needs the training extra). For a detector
    run, --calib and --eval are scenes folders.
    """
    need_training("tensorflow", "yaml")
    from training.config import ConfigError, config_kind

    kind = config_kind(run_dir)
    if kind not in ("recognizer", "detector"):
        raise ConfigError(f"{run_dir} is a {kind} run: only recogniser and detector runs export to bundles")
    args = dict(calib_split=calib_split, eval_dir=eval_dir, eval_split=eval_split, allow_drop=allow_drop)
    if kind == "detector":
        if form != "int8":
            raise ConfigError("detector bundles are full int8 only (--form int8)")
        from training.export_detector import quantize_detector_run

        detector, metrics = quantize_detector_run(run_dir, calib, out, max_calib=min(max_calib, 200), **args)
        if as_json:
            echo_json({"bundle": str(out), "model_bytes": detector.model_bytes, "metrics": metrics})
            return
        for what in ("float", "int8"):
            if what in metrics:
                m = metrics[what]["overall"]
                click.echo(f"  {what:<6} AP@0.5 {m['ap_50']:.4f}  AP@0.7 {m['ap_70']:.4f}  recall@0.5 {m['recall_50']}")
        click.echo(f"detector: {out} (proposal + corners, {detector.model_bytes} bytes)")
        return
    from training.export import quantize_run

    bundle, metrics = quantize_run(run_dir, calib, out, max_calib=max_calib, form=form, **args)
    if as_json:
        echo_json({"bundle": str(bundle.source), "model_bytes": len(bundle.model), "metrics": metrics})
        return
    if metrics:
        click.echo(f"plate accuracy on {metrics['data']} ({metrics['split']}): float vs int8")
        fl, q8 = ({**metrics[k]["regions"], "overall": metrics[k]["overall"]} for k in ("float", "int8"))
        for region, m in fl.items():
            click.echo(
                f"  {region:<8} n={m['n']:<6} float {m.get('plate_accuracy', 0):.4f}  "
                f"int8 {q8.get(region, {}).get('plate_accuracy', 0):.4f}"
            )
        click.echo(f"  int8 drop: {metrics['int8_drop_pp']} pp")
    else:
        click.echo("no eval data: float vs int8 not compared")
    click.echo(f"bundle: {bundle.source} ({len(bundle.model)} bytes)")
