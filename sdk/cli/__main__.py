"""``python -m sdk.cli``: the ``lpr-sdk`` command without its console script."""

from sdk.cli import main

main(prog_name="lpr-sdk")
