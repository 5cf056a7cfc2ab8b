"""Ed25519 signing keys for packages: make a key pair, load a private key, sign package.json."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from sdk.package import SIGNATURE_ALGORITHM, SignatureError, key_id


def generate_keypair(prefix: str | Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair as ``PREFIX.key`` (private, PKCS#8 PEM, mode 0600) and ``PREFIX.pub``.

    Args:
        prefix: path prefix of the two files.
        overwrite: replace existing files (otherwise refuse, so a signing key is never lost by accident).

    Returns:
        The private and public key paths.

    Raises:
        SignatureError: a file exists and ``overwrite`` is False.
    """
    prefix = Path(prefix)
    priv_path, pub_path = prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub")
    for p in (priv_path, pub_path):
        if p.exists() and not overwrite:
            raise SignatureError(f"{p} exists; pick another prefix (a signing key is never overwritten)")
    priv_path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub_path.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return priv_path, pub_path


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Read an unencrypted Ed25519 private key (PEM) made by :func:`generate_keypair`.

    Raises:
        SignatureError: unreadable, encrypted, or not an Ed25519 private key.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SignatureError(f"signing key {path}: cannot read it ({e.strerror or e})") from e
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise SignatureError(f"{path}: not an unencrypted PEM private key (make one with `lpr-sdk keygen`)") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path}: not an Ed25519 private key (make one with `lpr-sdk keygen`)")
    return key


def sign_manifest(manifest_bytes: bytes, key: Ed25519PrivateKey) -> bytes:
    """The ``package.sig`` document: an Ed25519 signature of package.json's exact bytes, with the key's id."""
    doc = {
        "algorithm": SIGNATURE_ALGORITHM,
        "key_id": key_id(key.public_key()),
        "signature": base64.b64encode(key.sign(manifest_bytes)).decode("ascii"),
    }
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")
