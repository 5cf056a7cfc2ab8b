"""``lpr-sdk run``: frames from a camera, video, stream or folder -> plate reads, one JSON line per frame."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import click
import cv2

from sdk.bench import memory_mib
from sdk.bundle import SAMPLE_DRIVE
from sdk.capture import open_source
from sdk.cli._common import SOURCE_HELP, echo_json, format_sizes, format_stages, pipeline_options
from sdk.draw import draw
from sdk.errors import LprError
from sdk.pipeline import Pipeline
from sdk.tracker import PlateTracker, TrackedPlate


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the frame loop as Ctrl-C does (main thread only; elsewhere nothing changes)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command("run")
@click.option(
    "--source",
    help=f"{SOURCE_HELP}  [default: the sample drive in samples/drive]",
)
@pipeline_options
@click.option(
    "--save-annotated",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each frame with its plates drawn into this folder.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='One JSON object per frame (with --track: a "track" field per plate, and a {"vehicle": ...} object per '
    "vehicle), then a summary object.",
)
def run_cmd(
    source: str | None,
    detector: str,
    recognizers: tuple[str, ...],
    region: str | None,
    threads: int,
    max_frames: int | None,
    min_confidence: float,
    margins: tuple[tuple[float, float], ...],
    track: bool,
    save_annotated: Path | None,
    as_json: bool,
) -> None:
    """Read plates from a camera, video, stream or image folder.

    Prints the reads of every frame, TEXT (CONFIDENCE) per plate, with --track TEXT (CONFIDENCE, vehicle N) and
    a line per vehicle when it has left (--json: one JSON object per frame), and ends
    with a summary: frames, FPS, per-stage median latency in ms, model sizes and peak memory. Ctrl-C (or SIGTERM:
    systemd, docker stop) stops cleanly and still prints the summary.
    """
    if source is None:
        if not SAMPLE_DRIVE.is_dir():
            raise LprError(f"no --source given and the sample drive {SAMPLE_DRIVE} is missing; pass --source")
        source = str(SAMPLE_DRIVE)
    pipe = Pipeline(detector, recognizers, threads, region, min_confidence=min_confidence, margins=margins)
    if save_annotated:
        save_annotated.mkdir(parents=True, exist_ok=True)
    tracker = PlateTracker() if track else None
    vehicles = 0

    def report(ended: tuple[TrackedPlate, ...]) -> None:
        nonlocal vehicles
        vehicles += len(ended)
        for v in ended:
            if as_json:
                echo_json({"vehicle": v.to_dict()})
            else:
                click.echo(
                    f"vehicle {v.track_id}: {v.text} (mean confidence {v.confidence:.2f} over {v.frames} reads), "
                    f"frames {v.first_frame}-{v.last_frame}"
                )

    src = open_source(source)
    try:
        with src, _sigterm_as_interrupt():
            for result in pipe.run(src, max_frames):
                step = tracker.update(result) if tracker else None
                if as_json:
                    echo_json(step.frame_dict(result) if step else result.to_dict())
                else:
                    tags = [f", vehicle {i}" for i in step.ids] if step else [""] * len(result.plates)
                    plates = zip(result.plates, tags, strict=True)
                    reads = ", ".join(f"{p.text} ({p.confidence:.2f}{t})" for p, t in plates)
                    click.echo(f"frame {result.index}: {reads or '-'}")
                if step:
                    report(step.ended)
                if save_annotated:
                    out = save_annotated / f"frame_{result.index:06d}.jpg"
                    cv2.imwrite(str(out), draw(result.frame, result, step.ids if step else ()))
    except KeyboardInterrupt:
        pass
    skipped = src.skipped
    dropped = src.dropped  # a live camera's frames the pipeline was too slow for
    if tracker:
        report(tracker.flush())
    summary = {
        "summary": {
            **pipe.stats.summary(),
            "source_skipped": skipped,
            "source_dropped": dropped,
            "model_bytes": pipe.model_bytes,
            "backend": pipe.detector.backend,
            "threads": threads,
            "peak_rss_mib": memory_mib()["peak_rss_mib"],
            **({"vehicles": vehicles} if tracker else {}),
        }
    }
    if as_json:
        echo_json(summary)
    else:
        s = summary["summary"]
        click.echo(
            f"{s['frames']} frames, {s['plates']} plates"
            + (f", {vehicles} vehicle(s)" if tracker else "")
            + (f", {n} skipped" if (n := s["skipped_frames"] + skipped) else "")
            + (f", {dropped} dropped (the camera is faster than the pipeline)" if dropped else "")
            + f", {s['fps'] or 0:.1f} FPS; median ms per stage: {format_stages(s['latency_ms_median'])}"
            + f"; models: {format_sizes(s['model_bytes'])}; peak memory {s['peak_rss_mib']:.1f} MiB"
        )
