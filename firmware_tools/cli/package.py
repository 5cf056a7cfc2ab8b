"""``lpr-sdk keygen``, ``lpr-sdk package`` and ``lpr-sdk verify``: one signed, versioned artefact per update."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sdk.cli._common import echo_json, json_option

pubkey_option = click.option(
    "--pubkey",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Ed25519 public key (PEM): the package must be signed by it.",
)


def _signature_line(summary: dict[str, Any]) -> str:
    if summary["signature_checked"]:
        return f"verified (key {summary['key_id']})"
    if summary["signed"]:
        return f"present (key {summary['key_id']}), not checked: give --pubkey"
    return "none (unsigned)"


@click.command("keygen", short_help="Make an Ed25519 key pair for signing packages.")
@click.argument("prefix", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
def keygen_cmd(prefix: Path, force: bool) -> None:
    """Make an Ed25519 signing key pair: PREFIX.key (private, keep it secret) and PREFIX.pub (for devices)."""
    from firmware_tools.keys import generate_keypair
    from sdk.package import key_id, load_public_key

    priv, pub = generate_keypair(prefix, overwrite=force)
    click.echo(f"wrote {priv} (private: keep it off devices) and {pub} (key id {key_id(load_public_key(pub))})")


@click.command("package", short_help="Pack bundles into one versioned, optionally signed artefact.")
@click.argument("bundles", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Package .tar.gz.")
@click.option("--version", "version", help="Package version.  [default: UTC time, YYYYMMDDTHHMMSSZ]")
@click.option(
    "--sign",
    "sign_key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Sign with this Ed25519 private key (from `lpr-sdk keygen`).",
)
@json_option
def package_cmd(
    bundles: tuple[Path, ...], out: Path, version: str | None, sign_key: Path | None, as_json: bool
) -> None:
    """Pack bundles into one versioned artefact with every file's sha256 and size, optionally signed.

    The package is verified after writing, as a device would (models loaded and run once).
    """
    from firmware_tools.packager import build_package

    pkg = build_package(list(bundles), out, version, sign_key)
    s = pkg.summary()
    if as_json:
        echo_json(s)
        return
    click.echo(
        f"wrote {out}: version {s['version']}, bundles {', '.join(s['bundles'])}, "
        f"{s['files']} files, {s['bytes']} bytes; signature: {_signature_line(s)}"
    )


@click.command("verify", short_help="Verify a package as a device does.")
@click.argument("package", type=click.Path(path_type=Path))
@pubkey_option
@json_option
def verify_cmd(package: Path, pubkey: Path | None, as_json: bool) -> None:
    """Verify a package as a device does: structure, hashes, signature, manifests, models and their tensors."""
    from sdk.package import load_package

    s = load_package(package, pubkey).summary()
    if as_json:
        echo_json({"ok": True, **s})
        return
    click.echo(
        f"ok: {package} version {s['version']}: bundles {', '.join(s['bundles'])}, {s['files']} files checked, "
        f"models load and match their manifests; signature: {_signature_line(s)}"
    )
