"""Build a package: model bundles + package.json (sha256 and size of every file) + optional Ed25519 signature."""

from __future__ import annotations

import gzip
import io
import json
import os
import platform
import re
import tarfile
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path

from firmware_tools.keys import load_private_key, sign_manifest
from sdk.bundle import (
    DETECTOR_STAGES,
    MANIFEST_NAME,
    Bundle,
    is_detector_folder,
    load_bundle,
    resolve_bundle_path,
    sha256_bytes,
)
from sdk.package import (
    BUNDLES_DIR,
    FORMAT,
    FORMAT_VERSION,
    NAME_RE,
    PACKAGE_MANIFEST,
    SIGNATURE_NAME,
    Package,
    PackageError,
    read_package_files,
    verify_files,
)


def default_version(now: datetime | None = None) -> str:
    """A version from the UTC time, e.g. ``20250101T120000Z``."""
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def bundle_name(path: Path) -> str:
    """The name a bundle gets in a package: its directory name or archive stem, made safe."""
    name = path.name[: -len(".tar.gz")] if path.name.endswith(".tar.gz") else path.stem if path.is_file() else path.name
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "bundle"
    return name[:64]


def _named_bundles(path: str | Path) -> list[tuple[str, Bundle]]:
    """A bundle and its name in the package; a detector folder gives its two stages, ``NAME/proposal`` and
    ``NAME/corners``."""
    root = resolve_bundle_path(path)
    if is_detector_folder(root):
        return [(f"{bundle_name(root)}/{stage}", load_bundle(root / stage)) for stage in DETECTOR_STAGES]
    b = load_bundle(path)
    return [(bundle_name(b.source), b)]


def _tools() -> dict[str, str]:
    try:
        sdk_version = dist_version("lpr-sdk")
    except PackageNotFoundError:
        sdk_version = "0+unknown"
    return {"lpr_sdk": sdk_version, "python": platform.python_version()}


def manifest_bytes(files: dict[str, bytes], bundles: Sequence[str], version: str, created: str) -> bytes:
    """package.json for ``files`` (bundle files by relative path), as the exact bytes that get signed."""
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": version,
        "created": created,
        "bundles": list(bundles),
        "files": {n: {"sha256": sha256_bytes(d), "size": len(d)} for n, d in sorted(files.items())},
        "tools": _tools(),
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_archive(files: dict[str, bytes], out: Path) -> Path:
    """Write ``files`` as a reproducible ``.tar.gz`` (sorted, fixed times and owners); atomic via a temp file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name in sorted(files):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
                tar.addfile(info, io.BytesIO(files[name]))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def assemble(
    bundle_files: dict[str, bytes],
    bundles: Sequence[str],
    out: str | Path,
    version: str | None = None,
    sign_key: str | Path | None = None,
) -> Path:
    """Write a package from bundle files already laid out as ``bundles/<name>/...`` (no checks of their content).

    Args:
        bundle_files: the files by relative path.
        bundles: bundle names, in order.
        out: the ``.tar.gz`` to write.
        version: package version (default: the UTC time).
        sign_key: Ed25519 private key (PEM) to sign package.json with.

    Returns:
        The archive's path.
    """
    version = version or default_version()
    if not NAME_RE.match(version):
        raise PackageError(f"version {version!r} must match {NAME_RE.pattern}")
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    files = dict(bundle_files)
    files[PACKAGE_MANIFEST] = manifest_bytes(bundle_files, bundles, version, created)
    if sign_key is not None:
        files[SIGNATURE_NAME] = sign_manifest(files[PACKAGE_MANIFEST], load_private_key(sign_key))
    return write_archive(files, Path(out))


def build_package(
    bundle_paths: Sequence[str | Path],
    out: str | Path,
    version: str | None = None,
    sign_key: str | Path | None = None,
) -> Package:
    """Package bundles into one versioned, optionally signed artefact, then verify what was written.

    Each bundle is loaded (manifest validated, model hash checked) and stored as ``bundles/<name>/`` where
    ``name`` is its directory name or archive stem. A detector folder (``proposal/`` and ``corners/``, e.g. the
    shipped ``detector``) is stored as ``bundles/<name>/proposal/`` and ``bundles/<name>/corners/``, so
    ``sdk.Detector`` opens ``bundles/<name>`` on the device.

    Args:
        bundle_paths: bundle directories or ``.tar.gz`` archives, detector folders, or shipped bundle names.
        out: the package ``.tar.gz`` to write.
        version: package version (default: the UTC time, ``YYYYMMDDTHHMMSSZ``).
        sign_key: Ed25519 private key (PEM) from ``lpr-sdk keygen``.

    Returns:
        The written package, verified as a device would (models loaded and run once).

    Raises:
        PackageError: no bundles, two bundles with one name, or a bad version.
        BundleError: a bundle fails to load.
    """
    if not bundle_paths:
        raise PackageError("give at least one bundle to package")
    files: dict[str, bytes] = {}
    names: list[str] = []
    for path in bundle_paths:
        for name, b in _named_bundles(path):
            if name in names:
                raise PackageError(f"two bundles would be named {name!r} in the package; rename one directory")
            names.append(name)
            manifest = json.dumps(b.manifest.to_dict(), indent=2, ensure_ascii=False) + "\n"
            files[f"{BUNDLES_DIR}/{name}/{MANIFEST_NAME}"] = manifest.encode("utf-8")
            files[f"{BUNDLES_DIR}/{name}/{b.manifest.model_file}"] = b.model
    out = assemble(files, names, out, version, sign_key)
    public = load_private_key(sign_key).public_key() if sign_key is not None else None
    return verify_files(read_package_files(out), out, public)
