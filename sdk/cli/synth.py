"""``lpr-sdk synth``: render a labelled folder of synthetic plate crops."""

from __future__ import annotations

from pathlib import Path

import click

from sdk.cli._common import need_training
from sdk.formats import check_region


@click.command("synth")
@click.option(
    "--region", "regions", multiple=True, required=True, help="Region to render (cn, us, br, eu); repeatable."
)
@click.option("-n", "n", type=click.IntRange(min=1), required=True, help="Number of plates (spread over the regions).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same images).")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
def synth_cmd(regions: tuple[str, ...], n: int, seed: int, out_dir: Path) -> None:
    """Render synthetic plate crops.

    Writes N plates as JPEGs plus labels.csv into OUT_DIR (needs the training extra).
    """
    for r in regions:
        check_region(r)
    need_training("PIL")
    from training.synth.plates import render_dataset

    labels = render_dataset(out_dir, list(dict.fromkeys(regions)), n, seed=seed)
    click.echo(f"wrote {n} plates: {labels}")
