"""``python -m sdk.cli``: the device commands only (``python -m lpr_cli`` is the whole ``lpr-sdk``)."""

from sdk.cli import main

main(prog_name="lpr-sdk")
