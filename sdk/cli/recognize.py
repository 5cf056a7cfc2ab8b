"""``lpr-sdk recognize``: read plate crops with a recogniser bundle."""

from __future__ import annotations

import time
from pathlib import Path

import click

from sdk.cli._common import (
    bundle_argument,
    covered_region,
    echo_json,
    json_option,
    recognizer_path,
    second_look_option,
)
from sdk.dataset import read_labels
from sdk.errors import ImageError, LprError
from sdk.image import read_image
from sdk.recognizer import Recognizer


def find_labels(images: tuple[Path, ...]) -> dict[Path, tuple[str, Path]]:
    """The label of each image that a ``labels.csv`` beside it names: (plate text, that labels.csv), by image path.

    A labels.csv is looked for in the image's folder and the folder above it (``samples/labels.csv`` names
    ``cn/cn_0.jpg``; ``lpr-sdk synth OUT`` writes ``OUT/labels.csv`` naming ``cn/0000000.jpg``), with the columns
    of the labelled folders (file, plate_text, region[, source]). A labels.csv that cannot be read is skipped with
    a note on stderr: the reads do not depend on it.
    """
    by_file: dict[Path, tuple[str, Path]] = {}
    seen: set[Path] = set()
    for folder in {d for p in images for d in (p.parent, p.parent.parent)}:
        csv_path = (folder / "labels.csv").resolve()
        if csv_path in seen or not csv_path.is_file():
            continue
        seen.add(csv_path)
        try:
            rows = read_labels(csv_path.parent)
        except (LprError, UnicodeDecodeError) as e:
            click.echo(f"note: not comparing with {folder / 'labels.csv'}: {e}", err=True)
            continue
        for row in rows:
            by_file.setdefault(row.path.resolve(), (row.text, folder / "labels.csv"))
    return {p: by_file[p.resolve()] for p in images if p.resolve() in by_file}


@click.command("recognize")
@bundle_argument
@click.argument("images", metavar="IMG...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--region", help="Region for template post-filtering (cn, us, br, eu); default: the bundle's only one.")
@click.option(
    "--method", type=click.Choice(["beam", "greedy"]), default="beam", show_default=True, help="CTC decoding."
)
@click.option("--top-n", type=click.IntRange(min=1), default=5, show_default=True, help="Candidates kept (beam).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Interpreter threads.")
@second_look_option
@json_option
@click.pass_context
def recognize_cmd(
    ctx: click.Context,
    bundle: Path,
    images: tuple[Path, ...],
    region: str | None,
    method: str,
    top_n: int,
    threads: int,
    second_look: bool,
    as_json: bool,
) -> None:
    """Read plate crops with a recogniser bundle.

    BUNDLE is a bundle directory or archive, or a shipped bundle name such as cn; IMG... are plate crops.

    Prints path, text, confidence and matched format per image, tab-separated (--json: one object per line).
    When a labels.csv in an image's folder or the folder above names it (as samples/labels.csv and the folders
    of `lpr-sdk synth` do), each read is followed by its label and whether it matches, and a last line counts
    the right reads (--json: a "label" field, null for an unlabelled image). A misread is reported, not an error.
    An unreadable image is reported on stderr; the others are still read and the exit code is 1.
    """
    rec = Recognizer(recognizer_path(bundle), threads=threads, method=method, top_n=top_n, second_look=second_look)  # type: ignore[arg-type]
    region = covered_region(region, rec.manifest.regions)
    if not as_json:
        click.echo(f"backend: {rec.backend}", err=True)
    labels = find_labels(images)
    failed = right = labelled = 0
    for path in images:
        try:
            img = read_image(path)
            t0 = time.perf_counter()
            read = rec.recognize(img, region)
            latency = (time.perf_counter() - t0) * 1000
        except ImageError as e:
            click.echo(f"error: {e}" if str(path) in str(e) else f"error: {path}: {e}", err=True)
            failed += 1
            continue
        if as_json:
            echo_json(
                {
                    "image": str(path),
                    "text": read.text,
                    "confidence": round(read.confidence, 6),
                    "region": read.region,
                    "format": read.format,
                    "candidates": [{"text": c.text, "confidence": round(c.confidence, 6)} for c in read.candidates],
                    "looks": read.looks,
                    "latency_ms": round(latency, 3),
                    "label": labels[path][0] if path in labels else None,
                }
            )
            continue
        line = f"{path}\t{read.text}\t{read.confidence:.4f}\t{read.format or '-'}"
        if path in labels:
            label = labels[path][0]
            labelled += 1
            right += read.text == label
            line += f"\tlabel {label}: " + ("right" if read.text == label else "MISREAD")
        click.echo(line)
    if labelled:
        sources = ", ".join(sorted({str(f) for _, f in labels.values()}))
        click.echo(f"{right}/{labelled} read right (labels: {sources})")
    if failed:
        ctx.exit(1)
