"""``lpr-sdk synth``: render a labelled folder of synthetic plate crops, optionally translated by a trained GAN."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from sdk.cli._common import need_training
from sdk.formats import check_region


@click.command("synth", options_metavar="--region R -n N [OPTIONS]")
@click.option(
    "--region",
    "regions",
    multiple=True,
    help="Region to render (cn, us, br, eu); repeatable.  [required, except with --from]",
)
@click.option(
    "-n",
    "n",
    type=click.IntRange(min=1),
    help="Number of plates (spread over the regions).  [required, except with --from]",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same images).")
@click.option(
    "--gan",
    "gan_run",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A GAN run folder (lpr-sdk train gan): pass every image through its synthetic->real generator.",
)
@click.option(
    "--from",
    "from_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="With --gan: translate this labelled folder instead of rendering new plates.",
)
@click.option(
    "--keep-gan-size",
    is_flag=True,
    help="With --gan: keep the translated images at the GAN's image size (default: resized back to each source's).",
)
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
def synth_cmd(
    regions: tuple[str, ...],
    n: int | None,
    seed: int,
    gan_run: Path | None,
    from_dir: Path | None,
    keep_gan_size: bool,
    out_dir: Path,
) -> None:
    """Render synthetic plate crops.

    Writes N plates as JPEGs plus labels.csv into OUT_DIR (needs the training extra). With --gan RUN_DIR the
    rendered plates (or, with --from DIR, that folder's images) are translated by the run's generator and written
    under the same names and labels.
    """
    if from_dir is not None:
        if gan_run is None:
            raise click.UsageError("--from needs --gan")
        if regions or n is not None:
            raise click.UsageError("--from translates an existing folder: no --region or -n")
    else:
        if not regions or n is None:
            raise click.UsageError("give --region and -n (or --gan RUN_DIR --from DIR)")
        for r in regions:
            check_region(r)
    if gan_run is None:
        need_training("PIL")
        from training.synth.plates import render_dataset

        labels = render_dataset(out_dir, list(dict.fromkeys(regions)), n, seed=seed)
        click.echo(f"wrote {n} plates: {labels}")
        return
    need_training("tensorflow", "yaml", "PIL")
    from training.train_gan import translate_folder

    if from_dir is not None:
        labels = translate_folder(gan_run, from_dir, out_dir, keep_gan_size=keep_gan_size)
    else:
        from training.synth.plates import render_dataset

        with tempfile.TemporaryDirectory(prefix="lpr-synth-") as tmp:
            render_dataset(tmp, list(dict.fromkeys(regions)), n, seed=seed)
            labels = translate_folder(gan_run, tmp, out_dir, keep_gan_size=keep_gan_size)
    click.echo(f"wrote translated plates ({gan_run}): {labels}")
