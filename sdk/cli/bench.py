"""``lpr-sdk bench``: latency of a recogniser bundle on this machine."""

from __future__ import annotations

from pathlib import Path

import click

from sdk.bench import bench_recognizer
from sdk.cli._common import bundle_argument, echo_json, json_option
from sdk.image import read_image


def _thread_list(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        threads = tuple(int(t) for t in value.split(","))
    except ValueError:
        threads = ()
    if not threads or min(threads) < 1:
        raise click.BadParameter(f"expected comma-separated thread counts >= 1 (e.g. 1,2), got {value!r}")
    return threads


@click.command("bench")
@bundle_argument
@click.option(
    "--threads", default="1,2", show_default=True, callback=_thread_list, help="Thread counts, comma-separated."
)
@click.option(
    "--runs", type=click.IntRange(min=1), default=200, show_default=True, help="Timed calls per thread count."
)
@click.option("--warmup", type=click.IntRange(min=0), default=20, show_default=True, help="Untimed calls first.")
@click.option(
    "--image",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Plate crop to read (default: a synthetic gray gradient of the input size).",
)
@json_option
def bench_cmd(
    bundle: Path, threads: tuple[int, ...], runs: int, warmup: int, image: Path | None, as_json: bool
) -> None:
    """Time a bundle on this machine.

    Median and p90 latency of recognize() and the median bare interpreter invoke of BUNDLE, per thread count.
    """
    img = read_image(image) if image is not None else None
    report = bench_recognizer(bundle, threads=threads, warmup=warmup, runs=runs, image=img)
    if as_json:
        echo_json(report)
        return
    click.echo(
        f"bundle {report['bundle']}  {report['model_bytes']} bytes  input {report['input_shape']}  "
        f"backend {report['backend']}"
    )
    click.echo(f"{'threads':>7} {'median ms':>10} {'p90 ms':>10} {'invoke ms':>10}")
    for r in report["results"]:
        click.echo(
            f"{r['threads']:>7} {r['latency_ms_median']:>10.3f} {r['latency_ms_p90']:>10.3f} "
            f"{r['invoke_ms_median']:>10.3f}"
        )
