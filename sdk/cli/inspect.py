"""``lpr-sdk inspect``: what a bundle or package holds: manifest, ops, tensor types, sizes, MACs (no TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from sdk.bundle import DETECTOR_STAGES, Bundle, is_detector_folder, load_bundle
from sdk.cli._common import bundle_argument, echo_json, json_option, resolve_shipped
from sdk.interpreter import check_tensors, make_interpreter
from sdk.modelinfo import analyze
from sdk.package import is_package, load_package


def bundle_info(b: Bundle) -> dict[str, Any]:
    """What ``lpr-sdk inspect --json`` reports for one bundle (its model is built on the CPU interpreter)."""
    m = b.manifest
    interp, backend = make_interpreter(b.model)
    if m.kind == "recognizer":
        check_tensors(interp, m)
    try:
        model = analyze(interp, b.model).summary()
    except ValueError:  # a backend that cannot list ops
        model = {"ops": None}
    return {
        "bundle": str(b.source),
        "kind": m.kind,
        "name": m.name,
        "architecture": m.architecture,
        "input": m.to_dict()["input"],
        "output": m.to_dict()["output"],
        "color_order": m.color_order,
        "alphabet_size": len(m.alphabet),
        "blank_index": m.blank_index,
        "regions": list(m.regions),
        "sha256": m.sha256,
        "model_bytes": len(b.model),
        "versions": m.versions,
        "metrics": m.metrics,
        "backend": backend,
        **model,
    }


def _data_name(data: Any) -> Any:
    """The folder name of the data a bundle's metrics were measured on (``crops``), not the build machine's path."""
    return Path(data).name if isinstance(data, str) and data else data


def _metrics_line(metrics: dict[str, Any]) -> str:
    """The manifest's float-vs-int8 metrics in one line: plate accuracy (recogniser) or AP@0.5 (detector stage)."""
    overall = {k: v.get("overall", {}) if isinstance(v, dict) else {} for k, v in metrics.items()}
    int8, flt = overall.get("int8", {}), overall.get("float", {})
    on = f"n={int8.get('n')}, {_data_name(metrics.get('data'))} {metrics.get('split')} split"
    if "plate_accuracy" in int8:
        return f"int8 plate accuracy {int8['plate_accuracy']} (float {flt.get('plate_accuracy')}, {on})"
    if "ap_50" in int8:
        return (
            f"int8 AP@0.5 {int8['ap_50']}, recall@0.5 {int8.get('recall_50')} (float AP@0.5 {flt.get('ap_50')}; "
            f"{on}, of the whole cascade)"
        )
    return json.dumps({**metrics, "data": _data_name(metrics.get("data"))}) if metrics else "-"


def _echo_bundle(info: dict[str, Any], m: Any) -> None:
    for key in ("bundle", "kind", "name", "architecture"):
        click.echo(f"{key:<13} {info[key]}")
    for key in ("input", "output"):
        t = info[key]
        click.echo(f"{key:<13} {t['shape']} {t['dtype']} scale={t['scale']:.6g} zero_point={t['zero_point']}")
    if m.kind == "recognizer":  # a detector stage has no alphabet nor regions
        click.echo(f"{'alphabet':<13} {info['alphabet_size']} characters + blank at {m.blank_index}")
        click.echo(f"{'regions':<13} {', '.join(m.regions) or '-'}")
    click.echo(f"{'sha256':<13} {m.sha256}")
    click.echo(f"{'model bytes':<13} {info['model_bytes']}")
    click.echo(f"{'versions':<13} {json.dumps(m.versions)}")
    click.echo(f"{'metrics':<13} {_metrics_line(m.metrics)}")
    ops = info["ops"]
    click.echo(
        f"ops ({info['backend']}): "
        + (", ".join(f"{o['op']} x{o['count']}" for o in ops) if ops is not None else "not available")
    )
    if ops is None:
        return
    click.echo(f"{'tensors':<13} " + ", ".join(f"{n} {t}" for t, n in info["tensor_types"].items()))
    click.echo(f"{'parameters':<13} {info['parameter_bytes']} bytes (constant tensors)")
    click.echo(f"{'MACs':<13} {info['macs']:,} per inference (conv, depthwise, fully-connected)")
    click.echo(f"{'arena':<13} {info['arena_bytes_estimate']} bytes ({info['arena_note']})")


@click.command("inspect")
@bundle_argument
@click.option(
    "--pubkey",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="For a package: check its signature with this Ed25519 public key.",
)
@json_option
def inspect_cmd(bundle: Path, pubkey: Path | None, as_json: bool) -> None:
    """Show what a bundle, a detector or a package holds.

    BUNDLE is a bundle directory or archive, a detector folder, a package, or a shipped name: cn, latin,
    detector, detector/proposal, detector/corners.

    Manifest summary (tensors, alphabet, regions, hash, size, metrics), the model's ops with counts, tensor types,
    parameter bytes, MACs per inference and an upper bound of the interpreter's tensor arena. A detector folder
    shows each of its stage bundles; a package (from `lpr-sdk package`) is verified first and each of its bundles
    shown.
    """
    bundle = resolve_shipped(bundle)
    if is_detector_folder(bundle):
        stages = {s: load_bundle(bundle / s) for s in DETECTOR_STAGES if (bundle / s).is_dir()}
        stage_infos = {s: bundle_info(b) for s, b in stages.items()}
        if as_json:
            echo_json({"detector": str(bundle), "stages": stage_infos})
            return
        click.echo(f"{'detector':<13} {bundle}: stage bundles {', '.join(stages)}")
        for s, b in stages.items():
            click.echo("")
            _echo_bundle(stage_infos[s], b.manifest)
        return
    if is_package(bundle):
        pkg = load_package(bundle, pubkey)
        infos = [bundle_info(b) for b in pkg.bundles.values()]
        if as_json:
            echo_json({"package": pkg.summary(), "bundles": infos})
            return
        s = pkg.summary()
        signed = (
            f"signed by {s['key_id']}" + (" (verified)" if s["signature_checked"] else "")
            if s["signed"]
            else "unsigned"
        )
        click.echo(f"package       {bundle}: version {s['version']}, {s['files']} files, {s['bytes']} bytes, {signed}")
        for info, b in zip(infos, pkg.bundles.values(), strict=True):
            click.echo("")
            _echo_bundle(info, b.manifest)
        return
    b = load_bundle(bundle)
    info = bundle_info(b)
    if as_json:
        echo_json(info)
        return
    _echo_bundle(info, b.manifest)
