"""The ``lpr-sdk`` command line: one click group, one module per subcommand.

User errors (:class:`sdk.errors.LprError` and its subclasses, the training side's included) raised by any command are
printed as one ``error: <message>`` line on stderr with exit code 2, never as a traceback.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import click

from sdk.cli.ablate import ablate_cmd
from sdk.cli.bench import bench_cmd
from sdk.cli.deploy import deploy_cmd
from sdk.cli.edgetpu import edgetpu_cmd
from sdk.cli.evaluate import evaluate_cmd, evaluate_detector_cmd
from sdk.cli.inspect import inspect_cmd
from sdk.cli.package import keygen_cmd, package_cmd, verify_cmd
from sdk.cli.quantize import quantize_cmd
from sdk.cli.recognize import recognize_cmd
from sdk.cli.run import run_cmd
from sdk.cli.selftest import selftest_cmd
from sdk.cli.synth import synth_cmd
from sdk.cli.train import train_group
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


@click.group(cls=LprGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="lpr-sdk")
def main() -> None:
    """Licence-plate recognition: run, evaluate, benchmark and build int8 TFLite bundles."""


for _cmd in (
    run_cmd,
    recognize_cmd,
    evaluate_cmd,
    evaluate_detector_cmd,
    bench_cmd,
    inspect_cmd,
    selftest_cmd,
    synth_cmd,
    train_group,
    quantize_cmd,
    ablate_cmd,
):
    main.add_command(_cmd)
for _cmd in (keygen_cmd, package_cmd, verify_cmd, edgetpu_cmd, deploy_cmd):  # firmware_tools: package, deploy
    main.add_command(_cmd)
