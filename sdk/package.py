"""Deployable packages: one versioned artefact holding model bundles, checked before a device uses them.

A package is a ``.tar.gz`` (or the directory it unpacks to) laid out as::

    package.json                  top-level manifest: version, bundle names, sha256 and size of every file
    package.sig                   optional Ed25519 signature of package.json's exact bytes (JSON)
    bundles/<name>/manifest.json  one bundle per name (see sdk.bundle)
    bundles/<name>/model.tflite
    bundles/<det>/proposal/...    a detector's two stages are the bundles <det>/proposal and <det>/corners, so
    bundles/<det>/corners/...     bundles/<det> is a detector folder that sdk.Detector opens

:func:`load_package` is what a device runs before it uses a package: it checks the structure, the signature
(required when a public key is given), every file's size and sha256, each bundle's manifest, and that each model
loads in the interpreter with tensors that match its manifest. Anything that fails raises :class:`PackageError`
(or :class:`sdk.errors.ManifestError`) with a one-line message. Packing and signing live in ``firmware_tools``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdk.archive import read_tar, safe_name, tar_names
from sdk.bundle import DETECTOR_STAGES, MANIFEST_NAME, Bundle, parse_json, sha256_bytes, validate_manifest
from sdk.errors import BundleError, ManifestError

PACKAGE_MANIFEST = "package.json"
SIGNATURE_NAME = "package.sig"
BUNDLES_DIR = "bundles"
FORMAT = "lpr-package"
FORMAT_VERSION = 1
SIGNATURE_ALGORITHM = "ed25519"
MAX_FILES = 256
MAX_BYTES = 1 << 30
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
BUNDLE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$")  # NAME or NAME/NAME
_REBUILD = "rebuild it with `lpr-sdk package`"


class PackageError(BundleError):
    """A package is unreadable, malformed, altered, or fails its checks."""


class SignatureError(PackageError):
    """A package's signature is missing, malformed, or does not verify with the configured public key."""


@dataclass(frozen=True)
class FileEntry:
    """Size and sha256 of one file as listed in package.json."""

    sha256: str
    size: int


@dataclass(frozen=True)
class PackageManifest:
    """The validated top-level manifest (package.json)."""

    version: str
    created: str
    bundles: tuple[str, ...]
    files: dict[str, FileEntry]
    tools: dict[str, str]


@dataclass(frozen=True)
class Package:
    """A verified package.

    Attributes:
        source: where it was read from.
        manifest: its package.json.
        bundles: the loaded bundles by name (manifests validated, model hashes checked).
        files: every file's bytes by relative path, package.json and package.sig included: what was verified.
        key_id: id of the key that signed it, or None if unsigned.
        signature_checked: True if the signature was verified with a configured public key.
    """

    source: Path
    manifest: PackageManifest
    bundles: dict[str, Bundle]
    files: dict[str, bytes]
    key_id: str | None
    signature_checked: bool

    @property
    def version(self) -> str:
        return self.manifest.version

    def detectors(self) -> list[str]:
        """Folders under ``bundles/`` that hold a whole detector (both stages), e.g. ``["detector"]``."""
        names = set(self.manifest.bundles)
        parents = dict.fromkeys(n.split("/")[0] for n in self.manifest.bundles if "/" in n)
        return [p for p in parents if all(f"{p}/{stage}" in names for stage in DETECTOR_STAGES)]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (no file contents)."""
        return {
            "package": str(self.source),
            "version": self.version,
            "created": self.manifest.created,
            "bundles": list(self.manifest.bundles),
            "files": len(self.manifest.files),
            "bytes": sum(e.size for e in self.manifest.files.values()),
            "signed": self.key_id is not None,
            "key_id": self.key_id,
            "signature_checked": self.signature_checked,
        }


def _safe_name(name: str, where: Path) -> str:
    clean = safe_name(name)
    if clean is None:
        raise PackageError(f"{where}: unsafe path {name!r} in the package; refusing it")
    return clean


def _read_archive(path: Path) -> dict[str, bytes]:
    # MAX_FILES files plus the directories a hand-made archive may list for them
    return read_tar(path, max_members=2 * MAX_FILES, max_bytes=MAX_BYTES, error=PackageError, what="package archive")


def _read_directory(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path).as_posix()
        if p.is_symlink():
            raise PackageError(f"{path}: {rel} is a link (links are not allowed in a package)")
        if p.is_dir():
            continue
        if not p.is_file():
            raise PackageError(f"{path}: {rel} is not a regular file")
        if len(files) >= MAX_FILES:
            raise PackageError(f"{path}: more than {MAX_FILES} files; not a package")
        total += p.stat().st_size  # checked before reading, as an archive's header is
        if total > MAX_BYTES:
            raise PackageError(f"{path}: more than {MAX_BYTES} bytes of files ({rel}); not a package")
        files[rel] = p.read_bytes()
    return files


def read_package_files(path: str | Path) -> dict[str, bytes]:
    """Every file of a package archive or directory, by relative POSIX path (nothing is checked but the layout).

    Raises:
        PackageError: missing, unreadable, or with links, unsafe paths or duplicate names.
    """
    p = Path(path)
    if not p.exists():
        raise PackageError(f"package {p} does not exist")
    try:
        files = _read_directory(p.resolve()) if p.is_dir() else _read_archive(p)
    except OSError as e:
        raise PackageError(f"{p}: cannot read the package ({e.strerror or e})") from e
    if PACKAGE_MANIFEST not in files:
        raise PackageError(f"{p} holds no {PACKAGE_MANIFEST}: not a package ({_REBUILD})")
    return files


def is_package(path: str | Path) -> bool:
    """True if ``path`` is a package directory or an archive holding ``package.json`` (not checked further)."""
    p = Path(path)
    if p.is_dir():
        return (p / PACKAGE_MANIFEST).is_file()
    if not p.is_file():
        return False
    return PACKAGE_MANIFEST in tar_names(p, 2 * MAX_FILES)


def parse_package_manifest(raw: bytes, where: Path) -> PackageManifest:
    """Validate package.json's bytes.

    Raises:
        PackageError: not JSON, wrong format or version, or malformed fields.
    """
    d = parse_json(raw, f"{where}: {PACKAGE_MANIFEST}", PackageError)
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise PackageError(f"{where}: {PACKAGE_MANIFEST} is not an {FORMAT} manifest")
    if d.get("format_version") != FORMAT_VERSION:
        raise PackageError(
            f"{where}: package format_version {d.get('format_version')!r} is not supported "
            f"(this SDK reads {FORMAT_VERSION}); update lpr-sdk on this device"
        )
    version, created = d.get("version"), d.get("created", "")
    if not isinstance(version, str) or not NAME_RE.match(version):
        raise PackageError(f"{where}: package version {version!r} must match {NAME_RE.pattern}")
    bundles = d.get("bundles")
    names_ok = isinstance(bundles, list) and all(isinstance(b, str) and BUNDLE_RE.match(b) for b in bundles)
    if not names_ok or not bundles:
        raise PackageError(f"{where}: package bundles must be a non-empty list of names matching {BUNDLE_RE.pattern}")
    if len(set(bundles)) != len(bundles):
        raise PackageError(f"{where}: package lists a bundle name twice")
    if nested := sorted(b for b in bundles if b.split("/")[0] in bundles and "/" in b):
        raise PackageError(f"{where}: bundle {nested[0]} lies inside bundle {nested[0].split('/')[0]}")
    raw_files = d.get("files")
    if not isinstance(raw_files, dict) or not raw_files:
        raise PackageError(f"{where}: package files must be a non-empty object")
    files = {}
    for name, e in raw_files.items():
        sha, size = (e.get("sha256"), e.get("size")) if isinstance(e, dict) else (None, None)
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise PackageError(f"{where}: {PACKAGE_MANIFEST} entry {name!r} lacks a sha256 of 64 lowercase hex digits")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise PackageError(f"{where}: {PACKAGE_MANIFEST} entry {name!r} lacks a size")
        files[_safe_name(name, where)] = FileEntry(sha, size)
    tools = d.get("tools", {})
    tools = {str(k): str(v) for k, v in tools.items()} if isinstance(tools, dict) else {}
    return PackageManifest(version, str(created), tuple(bundles), files, tools)


def load_public_key(key: str | Path | bytes | Any) -> Any:
    """An Ed25519 public key from a PEM file path, PEM bytes, or a key object (returned as is).

    Raises:
        SignatureError: unreadable, not PEM, or not an Ed25519 key.
    """
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
    except ImportError as e:  # a runtime dependency; only a broken install lacks it
        raise SignatureError("checking signatures needs the cryptography package: pip install cryptography") from e
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, (str, Path)):
        try:
            data = Path(key).read_bytes()
        except OSError as e:
            raise SignatureError(f"public key {key}: cannot read it ({e.strerror or e})") from e
        where = str(key)
    else:
        data, where = bytes(key), "public key"
    try:
        pub = load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise SignatureError(f"{where}: not a PEM public key (make one with `lpr-sdk keygen`)") from e
    if not isinstance(pub, Ed25519PublicKey):
        raise SignatureError(f"{where}: not an Ed25519 public key (make one with `lpr-sdk keygen`)")
    return pub


def key_id(public_key: Any) -> str:
    """A short id of an Ed25519 public key: the first 16 hex digits of the sha256 of its raw 32 bytes."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def _signature(files: dict[str, bytes], where: Path) -> tuple[str, bytes] | None:
    raw = files.get(SIGNATURE_NAME)
    if raw is None:
        return None
    try:
        d = json.loads(raw.decode("utf-8"))
        if d.get("algorithm") != SIGNATURE_ALGORITHM:
            raise ValueError(f"algorithm {d.get('algorithm')!r}")
        sig = base64.b64decode(d["signature"], validate=True)
        kid = str(d["key_id"])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise SignatureError(f"{where}: {SIGNATURE_NAME} is malformed ({e}); re-sign the package") from e
    return kid, sig


def _check_signature(files: dict[str, bytes], where: Path, public_key: Any | None) -> tuple[str | None, bool]:
    sig = _signature(files, where)
    if public_key is None:
        return (sig[0] if sig else None), False
    pub = load_public_key(public_key)
    want = key_id(pub)
    if sig is None:
        raise SignatureError(f"{where} is not signed, but a public key ({want}) is configured; sign it with --sign")
    kid, raw = sig
    from cryptography.exceptions import InvalidSignature

    try:
        pub.verify(raw, files[PACKAGE_MANIFEST])
    except InvalidSignature as e:
        detail = f"signed by key {kid}, expected {want}" if kid != want else "package.json was altered after signing"
        raise SignatureError(f"{where}: signature does not verify ({detail}); refusing the package") from e
    return kid, True


def _check_files(files: dict[str, bytes], m: PackageManifest, where: Path) -> None:
    present = set(files) - {PACKAGE_MANIFEST, SIGNATURE_NAME}
    if missing := sorted(set(m.files) - present):
        raise PackageError(f"{where}: {missing[0]} is listed in {PACKAGE_MANIFEST} but missing (truncated copy?)")
    if extra := sorted(present - set(m.files)):
        raise PackageError(f"{where}: {extra[0]} is not listed in {PACKAGE_MANIFEST} (added after packing?)")
    for name in sorted(m.files):
        entry, data = m.files[name], files[name]
        if len(data) != entry.size:
            raise PackageError(
                f"{where}: {name} has {len(data)} bytes, {PACKAGE_MANIFEST} says {entry.size} (truncated or altered)"
            )
        if sha256_bytes(data) != entry.sha256:
            raise PackageError(f"{where}: {name} does not match its sha256 in {PACKAGE_MANIFEST} (altered or corrupt)")
    owned = {f"{BUNDLES_DIR}/{b}/" for b in m.bundles}
    if stray := sorted(n for n in m.files if not any(n.startswith(o) for o in owned)):
        raise PackageError(f"{where}: {stray[0]} belongs to no bundle listed in {PACKAGE_MANIFEST}")


def _bundle(files: dict[str, bytes], name: str, where: Path) -> Bundle:
    prefix = f"{BUNDLES_DIR}/{name}/"
    raw = files.get(prefix + MANIFEST_NAME)
    if raw is None:
        raise PackageError(f"{where}: bundle {name} has no {MANIFEST_NAME}")
    try:
        manifest = validate_manifest(parse_json(raw, MANIFEST_NAME))
    except ManifestError as e:
        raise ManifestError(f"{where}: bundle {name}: {e}") from e
    model = files.get(prefix + manifest.model_file)
    if not model:
        raise PackageError(f"{where}: bundle {name}: model file {manifest.model_file} is missing or empty")
    if sha256_bytes(model) != manifest.sha256:
        raise PackageError(f"{where}: bundle {name}: {manifest.model_file} does not match its manifest's sha256")
    return Bundle(where / BUNDLES_DIR / name, manifest, model)


def check_model(bundle: Bundle, where: str) -> None:
    """Build the bundle's interpreter, check its tensors against the manifest, and run it once on zeros.

    Raises:
        BundleError: the model does not load or run.
        ManifestError: its input/output tensors disagree with the manifest.
    """
    from sdk.interpreter import check_tensors, make_interpreter

    try:
        interp, _ = make_interpreter(bundle.model)
        if bundle.manifest.kind == "recognizer":
            check_tensors(interp, bundle.manifest)
        inp = interp.get_input_details()[0]
        interp.set_tensor(inp["index"], np.zeros(inp["shape"], dtype=inp["dtype"]))
        interp.invoke()
    except BundleError as e:
        raise type(e)(f"{where}: {e}") from e
    except (ValueError, RuntimeError, IndexError) as e:
        raise BundleError(f"{where}: the model does not run ({str(e).splitlines()[0]})") from e


def verify_files(
    files: dict[str, bytes], source: str | Path, public_key: Any | None = None, check_models: bool = True
) -> Package:
    """Verify a package given as its files (see :func:`load_package`)."""
    where = Path(source)
    if PACKAGE_MANIFEST not in files:
        raise PackageError(f"{where} holds no {PACKAGE_MANIFEST}: not a package ({_REBUILD})")
    kid, checked = _check_signature(files, where, public_key)
    manifest = parse_package_manifest(files[PACKAGE_MANIFEST], where)
    _check_files(files, manifest, where)
    bundles = {name: _bundle(files, name, where) for name in manifest.bundles}
    if check_models:
        for name, b in bundles.items():
            check_model(b, f"{where}: bundle {name}")
    return Package(where, manifest, bundles, files, kid, checked)


def load_package(path: str | Path, public_key: Any | None = None, check_models: bool = True) -> Package:
    """Load and verify a package archive or directory; a device refuses anything this refuses.

    Args:
        path: the ``.tar.gz`` or its unpacked directory.
        public_key: an Ed25519 public key (PEM path, PEM bytes or key object). When given, the package must be
            signed by it; when None, a signature is not checked (only reported).
        check_models: also build each model's interpreter, check its tensors and run it once.

    Returns:
        The verified :class:`Package` with its bundles.

    Raises:
        PackageError: unreadable, malformed, altered, truncated, or extra files.
        SignatureError: unsigned (with a key configured), or a signature that does not verify.
        ManifestError: a bundle manifest fails validation or disagrees with its model's tensors.
        BundleError: a model does not load or run.
    """
    return verify_files(read_package_files(path), Path(path), public_key, check_models)
