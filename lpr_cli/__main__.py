"""``python -m lpr_cli``: the ``lpr-sdk`` command without its console script."""

from lpr_cli import main

main(prog_name="lpr-sdk")
