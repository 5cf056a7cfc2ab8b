"""The ``lpr-sdk`` command group and the device commands (run, recognize, evaluate, evaluate-detector, bench,
inspect, selftest), one module per subcommand. The training side's commands live in :mod:`training.cli`, the deploy
side's in :mod:`firmware_tools.cli`; :mod:`lpr_cli` (the console script) joins all three, so nothing here imports
either side.

Exit codes: 0 done; 1 when a command ran but a read or check failed (an unreadable image among ``recognize``'s, a
``selftest`` mismatch, ``edgetpu`` without its compiler); 2 for usage and input errors: click's usage errors, and user
errors (:class:`sdk.errors.LprError` and its subclasses, the training side's included) raised by any command, printed
as one ``error: <message>`` line on stderr, never as a traceback.

Logging is configured once per command, by the group: warnings (a skipped frame, a camera reconnecting) as
``warning: ...`` lines on stderr; ``-v`` adds debug messages of the project's own loggers, ``-q`` keeps errors only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

import click

from sdk.cli.bench import bench_cmd
from sdk.cli.evaluate import evaluate_cmd, evaluate_detector_cmd
from sdk.cli.inspect import inspect_cmd
from sdk.cli.recognize import recognize_cmd
from sdk.cli.run import run_cmd
from sdk.cli.selftest import selftest_cmd
from sdk.errors import LprError


def _version() -> str:
    try:
        return version("lpr-sdk")
    except PackageNotFoundError:
        return "0+unknown"


class LprGroup(click.Group):
    """A click group that turns user errors of its (sub)commands into a one-line message and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LprError as e:
            click.echo(f"error: {' '.join(str(e).split())}", err=True)
            ctx.exit(2)


PROJECT_LOGGERS = ("sdk", "training", "firmware_tools")
"""The loggers ``-v`` opens to debug messages (third-party libraries stay at warnings)."""


class EchoHandler(logging.Handler):
    """Writes log records as ``level: message`` lines to the stderr of the moment (click's, so a test runner that
    swaps it captures them too), like the CLI's own ``error:`` and ``note:`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(f"{record.levelname.lower()}: {self.format(record)}", err=True)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


def configure_logging(verbose: bool, quiet: bool) -> Callable[[], None]:
    """Route logging to stderr at the level the flags ask for: warnings by default, the project's debug messages
    too with ``verbose``, errors only with ``quiet``. Returns what undoes it (the group calls it when the command
    ends, so commands invoked in one process, as tests do, do not stack handlers or keep each other's levels)."""
    root = logging.getLogger()
    loggers = [root, *(logging.getLogger(name) for name in PROJECT_LOGGERS)]
    saved = [(lg, lg.level) for lg in loggers]
    handler = EchoHandler()
    root.addHandler(handler)
    root.setLevel(logging.ERROR if quiet else logging.WARNING)
    for lg in loggers[1:]:
        lg.setLevel(logging.ERROR if quiet else logging.DEBUG if verbose else logging.WARNING)

    def restore() -> None:
        root.removeHandler(handler)
        for lg, level in saved:
            lg.setLevel(level)

    return restore


@click.group(cls=LprGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="lpr-sdk")
@click.option("-v", "--verbose", is_flag=True, help="Also log debug messages (e.g. why a detected plate was not read).")
@click.option("-q", "--quiet", is_flag=True, help="Log errors only (no warnings such as skipped frames).")
def main(verbose: bool, quiet: bool) -> None:
    """Licence-plate recognition: run, evaluate, benchmark and build int8 TFLite bundles.

    Exit codes: 0 done, 1 a read or check failed, 2 a usage or input error (one `error:` line on stderr).
    """
    if verbose and quiet:
        raise click.UsageError("give -v or -q, not both")
    click.get_current_context().call_on_close(configure_logging(verbose, quiet))


for _cmd in (
    run_cmd,
    recognize_cmd,
    evaluate_cmd,
    evaluate_detector_cmd,
    bench_cmd,
    inspect_cmd,
    selftest_cmd,
):
    main.add_command(_cmd)
