"""``lpr-sdk bench``: latency of a recogniser bundle on this machine."""

from __future__ import annotations

from pathlib import Path

import click

from sdk.bench import bench_pipeline, bench_recognizer
from sdk.cli._common import echo_json, format_sizes, format_stages, json_option, margins_option
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
@click.argument("bundle", required=False, type=click.Path(path_type=Path))
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
@click.option("--pipeline", is_flag=True, help="Time the whole pipeline (detect + read) on 1280x720 frames instead.")
@click.option("--detector", default="detector", show_default=True, help="Detector for --pipeline.")
@click.option(
    "--recognizer",
    "recognizers",
    multiple=True,
    default=("latin", "cn"),
    show_default=True,
    help="Recogniser(s) for --pipeline; repeat the option for several (the defaults are lpr-sdk run's).",
)
@click.option(
    "--frames",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Image folder for --pipeline  [default: the sample drive].",
)
@margins_option
@json_option
def bench_cmd(
    bundle: Path | None,
    threads: tuple[int, ...],
    runs: int,
    warmup: int,
    image: Path | None,
    pipeline: bool,
    detector: str,
    recognizers: tuple[str, ...],
    frames: Path | None,
    margins: tuple[tuple[float, float], ...],
    as_json: bool,
) -> None:
    """Time a bundle, or the whole pipeline, on this machine.

    Median and p90 latency of recognize() for a sure read (one look), the median for an unsure one (a second
    look at four more views) and the median bare interpreter invoke of BUNDLE, per thread count.
    With --pipeline: end-to-end FPS and per-stage median latency on 1280x720 frames (no BUNDLE needed), with
    the detector and recognisers `lpr-sdk run` uses unless --detector/--recognizer say otherwise.
    Both end with resident memory: what the first recogniser (pipeline) added, the process's, and its peak.
    """
    if pipeline:
        _bench_pipeline(frames, detector, recognizers, threads, min(runs, 100), min(warmup, 5), margins, as_json)
        return
    if bundle is None:
        raise click.UsageError("give a BUNDLE, or --pipeline")
    img = read_image(image) if image is not None else None
    report = bench_recognizer(bundle, threads=threads, warmup=warmup, runs=runs, image=img)
    if as_json:
        echo_json(report)
        return
    click.echo(
        f"bundle {report['bundle']}  {report['model_bytes']} bytes  input {report['input_shape']}  "
        f"backend {report['backend']}"
    )
    click.echo(f"{'threads':>7} {'median ms':>10} {'p90 ms':>10} {'2nd look ms':>12} {'invoke ms':>10}")
    for r in report["results"]:
        click.echo(
            f"{r['threads']:>7} {r['latency_ms_median']:>10.3f} {r['latency_ms_p90']:>10.3f} "
            f"{r['second_look_ms_median']:>12.3f} {r['invoke_ms_median']:>10.3f}"
        )
    click.echo(_memory_line(report["memory"], "recognizer_mib", "the recogniser"))


def _bench_pipeline(
    folder: Path | None,
    detector: str,
    recognizers: tuple[str, ...],
    threads: tuple[int, ...],
    runs: int,
    warmup: int,
    margins: tuple[tuple[float, float], ...],
    as_json: bool,
) -> None:
    from sdk.capture import FolderSource
    from sdk.cli.run import SAMPLE_DRIVE

    with FolderSource(folder or SAMPLE_DRIVE) as src:
        images = [f.image for f in src]
    report = bench_pipeline(images, detector, recognizers, threads, warmup, runs, margins)
    if as_json:
        echo_json(report)
        return
    click.echo(
        f"pipeline on {report['frames']} frames at 1280x720, backend {report['backend']}; "
        f"models: {format_sizes(report['model_bytes'])}"
    )
    for r in report["results"]:
        click.echo(
            f"threads {r['threads']}: {r['fps']:.1f} FPS (median {r['latency_ms_median']:.1f} ms, p90 "
            f"{r['latency_ms_p90']:.1f}); median ms per stage: {format_stages(r['stage_ms_median'])}; "
            f"{r['plates_per_frame']:.1f} plates/frame"
        )
    click.echo(_memory_line(report["memory"], "pipeline_mib", "the pipeline"))


def _memory_line(memory: dict, key: str, what: str) -> str:
    return (
        f"memory: {what} {memory[key]:.1f} MiB; process {memory['rss_mib']:.1f} MiB, "
        f"peak {memory['peak_rss_mib']:.1f} MiB"
    )
