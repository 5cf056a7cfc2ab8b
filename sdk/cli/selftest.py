"""``lpr-sdk selftest``: do this machine's int8 kernels compute the bundles as TFLite's reference kernels do?"""

from __future__ import annotations

from pathlib import Path

import click

from sdk.bundle import MODELS_DIR, load_bundle
from sdk.cli._common import echo_json, json_option
from sdk.interpreter import KERNEL_TOLERANCE_STEPS, frame_inputs, kernel_disagreement, runtime_info, sample_frames


def shipped_bundles() -> list[Path]:
    """Every bundle folder under the shipped ``models/`` (the detector's two stages each count)."""
    return sorted(p.parent for p in MODELS_DIR.rglob("manifest.json"))


@click.command("selftest")
@click.argument("bundles", nargs=-1, type=click.Path(path_type=Path))
@click.option("--frames", default=4, show_default=True, help="Sample-drive frames run through each bundle.")
@json_option
def selftest_cmd(bundles: tuple[Path, ...], frames: int, as_json: bool) -> None:
    """Check that this machine's CPU kernels run the bundles right (default: every shipped bundle).

    Runs each model on frames of the shipped sample drive with the default CPU kernels (XNNPACK) and with
    TFLite's reference kernels and compares the outputs in int8 steps. Run it once on a new device or after
    upgrading the runtime: a kernel that computes wrongly on this CPU shows here, not as quietly worse reads.
    It also names any op of a bundle that this runtime is known to get wrong (an int8 DIV on LiteRT 1.x).
    Exit code 1 on a mismatch or such a fault.
    """
    images = sample_frames(frames)
    results = []
    for path in bundles or shipped_bundles():
        b = load_bundle(path)
        results.append({"bundle": str(b.source), **kernel_disagreement(b.model, frame_inputs(b, images))})
    runtime = runtime_info()
    if as_json:
        echo_json({"tolerance_steps": KERNEL_TOLERANCE_STEPS, "runtime": runtime, "bundles": results})
    else:
        click.echo(f"{runtime['backend']} {runtime['version']} on {runtime['machine']}, Python {runtime['python']}")
        for r in results:
            verdict = "ok" if r["ok"] else "FAULT" if r["faults"] else "MISMATCH"
            click.echo(
                f"{verdict:<9}{r['bundle']}: default vs reference kernels {r['mean_steps']} steps on average, "
                f"{r['max_steps']} at most"
            )
            for fault in r["faults"]:
                click.echo(f"         {fault}")
    bad = [r["bundle"] for r in results if not r["ok"] and not r["faults"]]
    if bad:
        click.echo(
            f"error: {', '.join(bad)} compute differently with this machine's default kernels than with the "
            "reference kernels; reads will be worse here: report it with `lpr-sdk selftest --json`",
            err=True,
        )
    faulty = [r["bundle"] for r in results if r["faults"]]
    if faulty:
        click.echo(f"error: {', '.join(faulty)} run into a known fault of this runtime (above)", err=True)
    if bad or faulty:
        raise SystemExit(1)
