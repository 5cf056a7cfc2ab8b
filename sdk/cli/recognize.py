"""``lpr-sdk recognize``: read plate crops with a recogniser bundle."""

from __future__ import annotations

import time
from pathlib import Path

import click

from sdk.cli._common import bundle_argument, covered_region, echo_json, json_option, second_look_option
from sdk.errors import ImageError
from sdk.image import read_image
from sdk.recognizer import Recognizer


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
    An unreadable image is reported on stderr; the others are still read and the exit code is 1.
    """
    rec = Recognizer(bundle, threads=threads, method=method, top_n=top_n, second_look=second_look)  # type: ignore[arg-type]
    region = covered_region(region, rec.manifest.regions)
    if not as_json:
        click.echo(f"backend: {rec.backend}", err=True)
    failed = 0
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
                }
            )
        else:
            click.echo(f"{path}\t{read.text}\t{read.confidence:.4f}\t{read.format or '-'}")
    if failed:
        ctx.exit(1)
