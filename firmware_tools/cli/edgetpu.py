"""``lpr-sdk edgetpu``: compile a bundle for the Coral Edge TPU, or pre-check it when the compiler is absent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sdk.cli._common import bundle_argument, echo_json, json_option


def _echo_precheck(d: dict[str, Any]) -> None:
    click.echo(d["label"])
    for issue in d["model_issues"]:
        click.echo(f"  model: {issue}")
    first = d["first_unsupported"]
    click.echo(f"  ops: {d['ops_mapped_estimate']} of {d['ops_total']} would map to the Edge TPU (estimate)")
    if first is None:
        click.echo("  every op is in the supported list")
    else:
        click.echo(f"  first unsupported: op #{first['index']} {first['op']}: {first['why']}")
        click.echo(f"  it and the {d['ops_on_cpu_estimate'] - 1} ops after it would run on the CPU")
    by_type: dict[str, list[int]] = {}
    for o in d["ops"]:
        mapped, total = by_type.setdefault(o["op"], [0, 0])
        by_type[o["op"]] = [mapped + o["mapped"], total + 1]
    for op, (mapped, total) in sorted(by_type.items(), key=lambda kv: -kv[1][1]):
        click.echo(f"  {op:<24} x{total:<3} mapped {mapped}")


@click.command("edgetpu", short_help="Compile a bundle for the Edge TPU, or pre-check its ops.")
@bundle_argument
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Output bundle.  [default: BUNDLE_edgetpu]"
)
@click.option("--precheck", "precheck_only", is_flag=True, help="Only pre-check the ops; do not compile.")
@json_option
def edgetpu_cmd(bundle: Path, out: Path | None, precheck_only: bool, as_json: bool) -> None:
    """Compile BUNDLE with edgetpu_compiler into a *_edgetpu bundle (op-mapping report in its manifest).

    Without the compiler on PATH, say so, print a pre-check of the ops against the Edge TPU's documented op list
    and constraints, and exit 1. --precheck prints only the pre-check (exit 0).
    """
    from firmware_tools.edgetpu import COMPILER, compile_bundle, find_compiler, precheck_bundle

    compiler = None if precheck_only else find_compiler()
    if compiler is None:
        report = precheck_bundle(bundle).to_dict()
        if not precheck_only:
            click.echo(
                f"{COMPILER} is not on PATH: no *_edgetpu bundle written (it runs on x86-64 Linux, from Coral's "
                "apt repository); pre-check follows",
                err=True,
            )
        if as_json:
            echo_json(report)
        else:
            _echo_precheck(report)
        if not precheck_only:
            click.get_current_context().exit(1)
        return
    b = compile_bundle(bundle, out, compiler)
    report = b.manifest.extra["edgetpu"]
    if as_json:
        echo_json({"bundle": str(b.source), **report})
        return
    click.echo(
        f"wrote {b.source}: {report['ops_mapped']} ops mapped to the Edge TPU, {report['ops_on_cpu']} on the CPU "
        f"(compiler {report['compiler_version']})"
    )
    for row in report["ops"]:
        click.echo(f"  {row['op']:<24} x{row['count']:<3} {row['status']}")
