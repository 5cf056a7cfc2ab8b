"""The ``lpr-sdk`` console script: the device commands of :mod:`sdk.cli` joined with the training side's
(:mod:`training.cli`) and the deploy side's (:mod:`firmware_tools.cli`).

This package sits above all three, so the arrows point one way: ``lpr_cli`` imports ``sdk``, ``training`` and
``firmware_tools``; ``sdk`` imports neither of the other two (tests/test_architecture.py). The group itself (its
options, logging and error handling) is :data:`sdk.cli.main`'s; this module only adds commands to a copy of it.
"""

from __future__ import annotations

from firmware_tools.cli import COMMANDS as DEPLOY_COMMANDS
from sdk.cli import LprGroup
from sdk.cli import main as device_main
from training.cli import COMMANDS as TRAINING_COMMANDS

main = LprGroup(
    name=device_main.name,
    commands={**device_main.commands, **{c.name: c for c in (*TRAINING_COMMANDS, *DEPLOY_COMMANDS)}},
    callback=device_main.callback,
    params=device_main.params,
    help=device_main.help,
    context_settings=device_main.context_settings,
)
"""``lpr-sdk``: every command, in the order the help lists them (device, training, deploy)."""
