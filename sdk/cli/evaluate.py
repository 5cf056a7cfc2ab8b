"""``lpr-sdk evaluate``: recognition metrics of a bundle on a labelled folder, per region."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sdk.cli._common import bundle_argument, covered_region, echo_json, json_option, second_look_option
from sdk.dataset import SPLITS, read_labels, read_scenes
from sdk.detector import Detector
from sdk.errors import LprError
from sdk.evaluate import evaluate_detector, evaluate_rows
from sdk.recognizer import Recognizer

_COLUMNS = (
    "n", "plate_accuracy", "char_accuracy", "top3_accuracy", "length_consistency", "second_looks", "latency_ms_median"
)  # fmt: skip


def _data_options(what: str, columns: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--data (a labelled folder) and --split, shared by the evaluate commands."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option(
            "--split",
            type=click.Choice(SPLITS),
            default="all",
            show_default=True,
            help=f"{what} of the deterministic splits to use (fit + val = train; test: report once).",
        )(fn)
        return click.option(
            "--data",
            "data",
            required=True,
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help=f"Folder with labels.csv ({columns}).",
        )(fn)

    return wrap


@click.command("evaluate")
@bundle_argument
@_data_options("Rows", "file, plate_text, region")
@click.option("--region", help="Only rows of this region.")
@click.option(
    "--method", type=click.Choice(["beam", "greedy"]), default="beam", show_default=True, help="CTC decoding."
)
@click.option("--misses", is_flag=True, help="Also list every misread: file, truth, read, confidence, top-3.")
@second_look_option
@json_option
def evaluate_cmd(
    bundle: Path,
    data: Path,
    split: str,
    region: str | None,
    method: str,
    misses: bool,
    second_look: bool,
    as_json: bool,
) -> None:
    """Accuracy and latency of a bundle on a labelled folder.

    Plate, character and top-3 accuracy, length consistency and latency of BUNDLE on --data, per region.

    Rows of regions the bundle does not cover are skipped (noted on stderr).
    """
    rec = Recognizer(bundle, method=method, second_look=second_look)  # type: ignore[arg-type]
    covered = rec.manifest.regions
    region = covered_region(region, covered)
    rows = read_labels(data, split, [region] if region else None)  # type: ignore[arg-type]
    skipped = Counter(r.region for r in rows if r.region not in covered)
    if skipped:
        what = ", ".join(f"{n} {k}" for k, n in sorted(skipped.items()))
        click.echo(
            f"note: skipped rows of regions this bundle does not cover: {what} (it covers {', '.join(covered)})",
            err=True,
        )
    rows = [r for r in rows if r.region in covered]
    if not rows:
        raise LprError(f"{data} has no rows (split {split}) of region(s) {', '.join([region] if region else covered)}")
    result = evaluate_rows(lambda img, reg: rec.recognize(img, reg), rows, misses)
    if as_json:
        echo_json(
            {"bundle": str(rec.bundle.source), "data": str(data), "split": split, "backend": rec.backend, **result}
        )
        return
    click.echo(f"bundle {rec.bundle.source}  data {data} ({split})  backend {rec.backend}")
    click.echo(f"{'region':<8}" + "".join(f"{c:>20}" for c in _COLUMNS))
    for name, m in [*result["regions"].items(), ("overall", result["overall"])]:
        click.echo(f"{name:<8}" + "".join(f"{m.get(c, ''):>20}" for c in _COLUMNS))
    lo, hi = result["overall"].get("plate_accuracy_ci95", (0, 1))
    click.echo(f"plate accuracy 95 % interval (Wilson): [{lo:.3f}, {hi:.3f}]")
    for key, title in (("sources", "source"), ("groups", "province / layout"), ("sizes", "crop width (px)")):
        cells = [f"{k} {v['plate_accuracy']:.3f} of {v['n']}" for k, v in result[key].items()]
        click.echo(f"by {title}: " + "; ".join(cells))
    cal = result["calibration"]
    if cal:
        click.echo("reliability (confidence from: reads, right, mean confidence): " + "; ".join(
            f"{b['from']:.2f}: {b['n']}, {b['accuracy']:.3f}, {b['mean_confidence']:.3f}" for b in cal["reliability"]))
        hi = cal["at_0.99"]
        click.echo(f"reads at >= 0.99 confidence: {hi['coverage']:.3f} of crops, {hi['precision']} right; "
                   f"at 99.5 % precision a threshold of {cal['threshold_for_0.995']} covers "
                   f"{cal['coverage_at_0.995']:.3f} of crops")  # fmt: skip
    for m in result.get("misses", []):
        click.echo(f"miss  {m['file']}  {m['region']}  {m['truth']} read {m['read']} ({m['confidence']:.2f}); "
                   f"top-3 {', '.join(m['top3'])}")  # fmt: skip


_DET_COLUMNS = ("n", "plates", "ap_50", "ap_60", "ap_70", "ap_80", "ap_90", "recall_50", "corner_error_px")


@click.command("evaluate-detector")
@click.argument("detector", type=click.Path(path_type=Path))
@_data_options("Frames", "file, plate_text, region, x1..y4: a scenes folder")
@click.option("--region", "regions", multiple=True, help="Only frames of this region (repeatable).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Interpreter threads.")
@json_option
def evaluate_detector_cmd(
    detector: Path, data: Path, split: str, regions: tuple[str, ...], threads: int, as_json: bool
) -> None:
    """Detection quality and latency of a detector on labelled scenes.

    AP at IoU 0.5-0.9, recall at IoU 0.5 and mean corner error of DETECTOR (a detector folder or the shipped
    name ``detector``) on --data, per region, plus the median latency on 1280x720 frames. In frames where
    not every plate is labelled (all but ro), a detection that matches no label is ignored, not counted false.
    """
    det = Detector(detector, threads=threads)
    scenes = read_scenes(data, split, list(regions) or None)  # type: ignore[arg-type]
    if not scenes:
        raise LprError(f"{data} has no frames (split {split}{', regions ' + ', '.join(regions) if regions else ''})")
    result = evaluate_detector(det, scenes)
    if as_json:
        echo_json({"detector": str(det.source), "data": str(data), "split": split, "backend": det.backend, **result})
        return
    click.echo(f"detector {det.source}  data {data} ({split})  backend {det.backend}")
    click.echo(f"{'region':<8}" + "".join(f"{c:>16}" for c in _DET_COLUMNS))
    for name, m in [*result["regions"].items(), ("overall", result["overall"])]:
        click.echo(f"{name:<8}" + "".join(f"{m.get(c, '')!s:>16}" for c in _DET_COLUMNS))
    click.echo(f"latency (1280x720, median): {result['latency_ms_median']} ms")
