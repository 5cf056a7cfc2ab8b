"""The deploy side's ``lpr-sdk`` commands: ``keygen``, ``package``, ``verify``, ``edgetpu`` and ``deploy``.
:mod:`lpr_cli` joins them to the device commands of :mod:`sdk.cli`."""

from __future__ import annotations

from firmware_tools.cli.deploy import deploy_cmd
from firmware_tools.cli.edgetpu import edgetpu_cmd
from firmware_tools.cli.package import keygen_cmd, package_cmd, verify_cmd

COMMANDS = (keygen_cmd, package_cmd, verify_cmd, edgetpu_cmd, deploy_cmd)
