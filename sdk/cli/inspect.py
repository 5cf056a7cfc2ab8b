"""``lpr-sdk inspect``: what a bundle holds: manifest summary and the model's ops (no TensorFlow needed)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import click

from sdk.bundle import load_bundle
from sdk.cli._common import bundle_argument, echo_json, json_option
from sdk.interpreter import check_tensors, make_interpreter


def op_counts(interp: Any) -> list[dict[str, Any]] | None:
    """The model's ops with their counts, most frequent first; None if the interpreter cannot list them.

    Args:
        interp: an allocated TFLite interpreter (ai-edge-litert / tflite-runtime / tf.lite).

    Returns:
        ``[{"op": name, "count": n}, ...]`` or None.
    """
    get = getattr(interp, "_get_ops_details", None)  # private but present in ai-edge-litert, tflite-runtime, tf.lite
    if get is None:
        return None
    try:
        counts = Counter(str(d.get("op_name", "?")) for d in get())
    except Exception:  # a private API: never let it break inspect
        return None
    return [{"op": op, "count": n} for op, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


@click.command("inspect")
@bundle_argument
@json_option
def inspect_cmd(bundle: Path, as_json: bool) -> None:
    """Show what a bundle holds.

    Manifest summary (tensors, alphabet, regions, hash, size, metrics) and the model's ops with counts.
    """
    b = load_bundle(bundle)
    m = b.manifest
    interp, backend = make_interpreter(b.model)
    if m.kind == "recognizer":
        check_tensors(interp, m)
    info = {
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
        "ops": op_counts(interp),
    }
    if as_json:
        echo_json(info)
        return
    for key in ("bundle", "kind", "name", "architecture"):
        click.echo(f"{key:<13} {info[key]}")
    for key in ("input", "output"):
        t = info[key]
        click.echo(f"{key:<13} {t['shape']} {t['dtype']} scale={t['scale']:.6g} zero_point={t['zero_point']}")
    click.echo(f"{'alphabet':<13} {info['alphabet_size']} characters + blank at {m.blank_index}")
    click.echo(f"{'regions':<13} {', '.join(m.regions) or '-'}")
    click.echo(f"{'sha256':<13} {m.sha256}")
    click.echo(f"{'model bytes':<13} {len(b.model)}")
    click.echo(f"{'versions':<13} {json.dumps(m.versions)}")
    int8 = m.metrics.get("int8", {}).get("overall", {}) if isinstance(m.metrics.get("int8"), dict) else {}
    if "plate_accuracy" in int8:
        flt = m.metrics.get("float", {}).get("overall", {})
        click.echo(
            f"{'metrics':<13} int8 plate accuracy {int8['plate_accuracy']} (float {flt.get('plate_accuracy')}, "
            f"n={int8.get('n')}, {m.metrics.get('data')} {m.metrics.get('split')})"
        )
    else:
        click.echo(f"{'metrics':<13} {json.dumps(m.metrics) if m.metrics else '-'}")
    ops = info["ops"]
    click.echo(
        f"ops ({backend}): "
        + (", ".join(f"{o['op']} x{o['count']}" for o in ops) if ops is not None else "not available")
    )
