"""``lpr-sdk ablate``: train, export and measure every row of an ablation config; write a markdown table."""

from __future__ import annotations

from pathlib import Path

import click

from sdk.cli._common import need_training


@click.command("ablate")
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Ablation config (YAML), e.g. configs/ablation_latin.yaml.",
)
@click.option("--row", "rows", multiple=True, help="Only this row (repeatable).  [default: every row]")
@click.option("--report-only", is_flag=True, help="Only rewrite table.md from the rows measured so far.")
@click.option("--rebench", is_flag=True, help="Time the measured rows' bundles again (on an idle machine).")
def ablate_cmd(config: Path, rows: tuple[str, ...], report_only: bool, rebench: bool) -> None:
    """Run an ablation: each row is a recogniser run, exported to int8 and measured float vs int8 per region.

    Resumable: finished rows are kept, an interrupted row continues from its checkpoint. Writes table.md,
    results.json and the GAN sample grid into the config's output folder.
    """
    need_training("tensorflow", "yaml")
    from training import ablate

    cfg = ablate.load_ablation(config)
    if rebench:
        table = ablate.rebench(cfg)
    else:
        table = ablate.write_report(cfg) if report_only else ablate.run_ablation(cfg, rows)
    click.echo(table.read_text(encoding="utf-8"))
    click.echo(f"table: {table}")
