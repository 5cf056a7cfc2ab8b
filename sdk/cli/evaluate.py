"""``lpr-sdk evaluate``: recognition metrics of a bundle on a labelled folder, per region."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from sdk.cli._common import bundle_argument, covered_region, echo_json, json_option
from sdk.dataset import read_labels
from sdk.errors import LprError
from sdk.evaluate import evaluate_rows
from sdk.recognizer import Recognizer

_COLUMNS = ("n", "plate_accuracy", "char_accuracy", "top3_accuracy", "length_consistency", "latency_ms_median")


@click.command("evaluate")
@bundle_argument
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder with labels.csv (file, plate_text, region).",
)
@click.option(
    "--split",
    type=click.Choice(["all", "train", "test"]),
    default="all",
    show_default=True,
    help="Rows of the deterministic train/test split to use.",
)
@click.option("--region", help="Only rows of this region.")
@click.option(
    "--method", type=click.Choice(["beam", "greedy"]), default="beam", show_default=True, help="CTC decoding."
)
@json_option
def evaluate_cmd(bundle: Path, data: Path, split: str, region: str | None, method: str, as_json: bool) -> None:
    """Accuracy and latency of a bundle on a labelled folder.

    Plate, character and top-3 accuracy, length consistency and latency of BUNDLE on --data, per region.

    Rows of regions the bundle does not cover are skipped (noted on stderr).
    """
    rec = Recognizer(bundle, method=method)  # type: ignore[arg-type]
    covered = rec.manifest.regions
    region = covered_region(region, covered)
    rows = read_labels(data, split, [region] if region else None)  # type: ignore[arg-type]
    skipped = Counter(r.region for r in rows if r.region not in covered)
    if skipped:
        what = ", ".join(f"{n} {k}" for k, n in sorted(skipped.items()))
        click.echo(f"note: skipped rows of regions this bundle does not cover ({', '.join(covered)}): {what}", err=True)
    rows = [r for r in rows if r.region in covered]
    if not rows:
        raise LprError(f"{data} has no rows (split {split}) of region(s) {', '.join([region] if region else covered)}")
    result = evaluate_rows(lambda img, reg: rec.recognize(img, reg), rows)
    if as_json:
        echo_json(
            {"bundle": str(rec.bundle.source), "data": str(data), "split": split, "backend": rec.backend, **result}
        )
        return
    click.echo(f"bundle {rec.bundle.source}  data {data} ({split})  backend {rec.backend}")
    click.echo(f"{'region':<8}" + "".join(f"{c:>20}" for c in _COLUMNS))
    for name, m in [*result["regions"].items(), ("overall", result["overall"])]:
        click.echo(f"{name:<8}" + "".join(f"{m.get(c, ''):>20}" for c in _COLUMNS))
