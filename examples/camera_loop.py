#!/usr/bin/env python3
"""Read licence plates from a camera, headless: the script to copy onto a Raspberry Pi.

Install on the Pi (64-bit Raspberry Pi OS, Bookworm or Trixie: pip finds LiteRT's aarch64 wheels for its
python3; the 32-bit OS has none):

    sudo apt install -y python3-picamera2            # the Pi camera stack (skip for a USB camera)
    python3 -m venv --system-site-packages ~/lpr      # system site packages: picamera2 comes from apt
    ~/lpr/bin/pip install lpr-sdk                     # or: pip install /path/to/lpr-sdk checkout
    ~/lpr/bin/pip install --force-reinstall simplejpeg   # Bookworm: see below
    ~/lpr/bin/lpr-sdk selftest                        # this CPU's int8 kernels compute the models right
    ~/lpr/bin/python camera_loop.py --out /var/tmp/reads.jsonl --out-max-mb 50

On Bookworm, pip puts numpy 2 into the venv (OpenCV's wheels need it) while apt's simplejpeg, which picamera2
imports, was built for the system's numpy 1.24: without the simplejpeg line, importing picamera2 fails with
"numpy.dtype size changed" (the loop says so in one line). Trixie's numpy is 2.x and needs no such step.

It uses picamera2 when it is installed, else /dev/video0 (or --source: a device, video file, RTSP/HTTP URL or
image folder). Its options are `lpr-sdk run`'s, with the same names and defaults (`--recognizer`, repeatable;
`--threads 1`; `--min-confidence 0`; `--track`, ...; `--help` lists them); `--bundle` is still accepted for
`--recognizer`, as units written by earlier deploys pass it. Each frame with plates is printed as one JSON line
(and appended to --out); with --track each plate also carries a track id, and one {"vehicle": ...} line per
vehicle gives its read fused over every frame it was seen in (printed when it has left the view, or when the
loop stops). Every --report-every frames a line
with FPS, per-stage latency and resident memory goes to stderr. SIGINT/SIGTERM stop it cleanly after the current
frame, with a final summary. A camera that drops out is reopened with back-off.

Run it as a service: `lpr-sdk deploy PACKAGE USER@HOST --service` copies this script next to the deployed
bundles and writes a systemd unit that runs it on the package's recogniser (and its detector, when the package
carries one: `lpr-sdk package models/detector models/latin ...`; see docs/deploy.md); by hand, a unit with
`ExecStart=/home/pi/lpr/bin/python /home/pi/camera_loop.py --out /var/tmp/reads.jsonl --out-max-mb 50`,
`Restart=on-failure` and `WantedBy=multi-user.target`, then `sudo systemctl enable --now lpr-camera`
(`--out-max-mb` keeps the file and its one predecessor under 50 MB each). Under `Type=notify` with
`WatchdogSec=120` (as the deployed unit has) it says when the camera is open and pets the watchdog every frame, so
systemd restarts a loop that hangs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from sdk.bench import memory_mib
from sdk.capture import open_source
from sdk.cli._common import SOURCE_HELP, pipeline_options  # the options of `lpr-sdk run`, shared
from sdk.errors import LprError
from sdk.pipeline import Pipeline
from sdk.tracker import PlateTracker


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--source", default="auto", show_default=True, help=f"auto: picamera2 if installed, else /dev/video0; {SOURCE_HELP}"
)
@pipeline_options
@click.option(
    "--bundle", "old_recognizers", multiple=True, hidden=True, help="The old name of --recognizer (deployed units)."
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Append the JSON lines to this file too.")
@click.option(
    "--out-max-mb",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="When --out passes this size it becomes OUT.1 (replacing the previous one) and a new OUT begins, so a "
    "service never fills the disk; 0: never.",
)
@click.option(
    "--report-every",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="A JSON report line (FPS, per-stage latency, memory) on stderr every N frames; 0: none.",
)
@click.option("--all-frames", is_flag=True, help="Print frames without plates too.")
@click.pass_context
def main(ctx: click.Context, old_recognizers: tuple[str, ...], **options: Any) -> None:
    """Headless plate reading from a camera: one JSON line per frame with plates (stdout, and --out)."""
    if old_recognizers:  # --bundle given: it names the recognisers (the default of --recognizer does not add to it)
        given = ctx.get_parameter_source("recognizers") is not ParameterSource.DEFAULT
        options["recognizers"] = old_recognizers + (options["recognizers"] if given else ())
    try:
        loop(**options)
    except LprError as e:
        click.echo(f"error: {' '.join(str(e).split())}", err=True)
        ctx.exit(2)


class RotatingLines:
    """Appends lines to ``path``; past ``max_mb`` (> 0) the file becomes ``path.1`` and a new one begins."""

    def __init__(self, path: Path, max_mb: float = 0) -> None:
        self.path, self.max_bytes = path, int(max_mb * 2**20)
        self.file = path.open("a", encoding="utf-8")

    def write(self, line: str) -> None:
        self.file.write(line + "\n")
        self.file.flush()
        if self.max_bytes and self.file.tell() >= self.max_bytes:
            self.file.close()
            self.path.replace(self.path.with_name(self.path.name + ".1"))
            self.file = self.path.open("a", encoding="utf-8")

    def __enter__(self) -> RotatingLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()


class SystemdNotifier:
    """systemd's sd_notify protocol without libsystemd: under a ``Type=notify`` unit (``NOTIFY_SOCKET`` set)
    :meth:`ready` says the camera is open and :meth:`alive` pets the watchdog (``WatchdogSec``), so systemd
    restarts a loop that stops delivering frames (a camera read that hangs); elsewhere both do nothing."""

    def __init__(self) -> None:
        addr = os.environ.get("NOTIFY_SOCKET", "")
        self.addr = "\0" + addr[1:] if addr.startswith("@") else addr  # "@": Linux's abstract namespace
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) if self.addr else None
        self.last = 0.0

    def send(self, message: str) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):  # systemd gone: nothing to tell
                self.sock.sendto(message.encode(), self.addr)

    def ready(self) -> None:
        self.send("READY=1")

    def alive(self) -> None:
        """Pet the watchdog, at most once a second."""
        now = time.monotonic()
        if now - self.last >= 1.0:
            self.last = now
            self.send("WATCHDOG=1")


def loop(
    *,
    source: str,
    detector: str,
    recognizers: tuple[str, ...],
    region: str | None,
    threads: int,
    max_frames: int | None,
    min_confidence: float,
    margins: tuple[tuple[float, float], ...],
    track: bool,
    out: Path | None,
    out_max_mb: float,
    report_every: int,
    all_frames: bool,
) -> None:
    """The frame loop: reads until the source ends, ``max_frames`` or SIGINT/SIGTERM, then prints a summary.

    Raises:
        LprError: a bundle, the source or an option is wrong (the command prints it as one ``error:`` line).
    """
    stop = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True
        print(f"signal {signum}: stopping after this frame", file=sys.stderr)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    pipe = Pipeline(
        detector, recognizers, threads=threads, region=region, min_confidence=min_confidence, margins=margins
    )
    with contextlib.ExitStack() as stack:
        lines = stack.enter_context(RotatingLines(out, out_max_mb)) if out else None
        src = stack.enter_context(open_source(source))
        print(f"reading {src.name} with {pipe.detector.backend}, {threads} thread(s)", file=sys.stderr)
        tracker = PlateTracker() if track else None
        systemd = SystemdNotifier()
        systemd.ready()

        def emit(obj: dict) -> None:
            line = json.dumps(obj, ensure_ascii=False)
            print(line, flush=True)
            if lines:
                lines.write(line)

        for result in pipe.run(src, max_frames):
            systemd.alive()
            step = tracker.update(result) if tracker else None
            if result.plates or all_frames:
                emit(step.frame_dict(result) if step else result.to_dict())
            for vehicle in step.ended if step else ():
                emit({"vehicle": vehicle.to_dict()})
            if report_every and pipe.stats.frames % report_every == 0:
                # dropped: camera frames the loop was too slow for; a growing rss_mib is a leak
                report = {**pipe.stats.summary(), "dropped": src.dropped, **memory_mib()}
                print(json.dumps({"report": report}), file=sys.stderr, flush=True)
            if stop:
                break
        for vehicle in tracker.flush() if tracker else ():
            emit({"vehicle": vehicle.to_dict()})
    summary = {**pipe.stats.summary(), "dropped": src.dropped, "model_bytes": pipe.model_bytes}
    summary.update(memory_mib())
    print(json.dumps({"summary": summary}), file=sys.stderr)


if __name__ == "__main__":
    main()
