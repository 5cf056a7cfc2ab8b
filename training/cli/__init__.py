"""The training side's ``lpr-sdk`` commands: ``synth``, ``train`` (recognizer, detector, gan, average),
``quantize`` and ``ablate``. Each imports TensorFlow only when it runs, and says ``pip install "lpr-sdk[train]"``
when it is missing. :mod:`lpr_cli` joins them to the device commands of :mod:`sdk.cli`."""

from __future__ import annotations

from training.cli.ablate import ablate_cmd
from training.cli.quantize import quantize_cmd
from training.cli.synth import synth_cmd
from training.cli.train import train_group

COMMANDS = (synth_cmd, train_group, quantize_cmd, ablate_cmd)
