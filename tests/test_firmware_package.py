"""Packages: keygen, package, verify (CLI and sdk.package), and every way a package is refused."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import DRIVE, needs_shipped_detector

from firmware_tools.packager import build_package, manifest_bytes
from firmware_tools.testing import repack
from lpr_cli import main
from sdk.errors import ManifestError
from sdk.package import (
    PackageError,
    SignatureError,
    is_package,
    load_package,
    parse_package_manifest,
    read_package_files,
)

MODEL = "bundles/tiny/model.tflite"
MANIFEST = "bundles/tiny/manifest.json"


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error_line(result: Result) -> str:
    """A refused command: non-zero exit, exactly one ``error:`` line on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    out = {}
    for who in ("fleet", "other"):
        result = run("keygen", d / who)
        assert result.exit_code == 0, result.output
        out[who], out[f"{who}.pub"] = d / f"{who}.key", d / f"{who}.pub"
    return out


@pytest.fixture(scope="module")
def signed(tiny_bundle, keys, tmp_path_factory) -> Path:
    bundle = tmp_path_factory.mktemp("b") / "tiny"
    bundle.symlink_to(tiny_bundle, target_is_directory=True)
    out = tmp_path_factory.mktemp("pkg") / "fleet-1.tar.gz"
    result = run("package", bundle, "--out", out, "--version", "1.0.0", "--sign", keys["fleet"])
    assert result.exit_code == 0, result.output
    assert "version 1.0.0" in result.stdout and "verified" in result.stdout
    return out


def test_keygen_refuses_to_overwrite_a_key(keys):
    assert (keys["fleet"].stat().st_mode & 0o777) == 0o600
    assert "never overwritten" in one_error_line(run("keygen", keys["fleet"].with_suffix("")))


def test_package_holds_bundles_and_a_manifest_of_every_file(signed, tiny_bundle):
    files = read_package_files(signed)
    assert set(files) == {"package.json", "package.sig", MODEL, MANIFEST}
    top = json.loads(files["package.json"])
    assert top["format"] == "lpr-package" and top["version"] == "1.0.0" and top["bundles"] == ["tiny"]
    assert top["files"][MODEL]["size"] == (tiny_bundle / "model.tflite").stat().st_size
    assert files[MODEL] == (tiny_bundle / "model.tflite").read_bytes()
    with tarfile.open(signed) as tar:
        assert all(m.isfile() and m.mtime == 0 for m in tar)  # reproducible archive
    assert is_package(signed) and not is_package(tiny_bundle)


def test_default_version_is_a_timestamp(tiny_bundle, tmp_path):
    pkg = build_package([tiny_bundle], tmp_path / "p.tar.gz")
    assert len(pkg.version) == 16 and pkg.version.endswith("Z") and pkg.key_id is None


def test_verify_with_the_right_key(signed, keys):
    result = run("verify", signed, "--pubkey", keys["fleet.pub"], "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["ok"] and info["signature_checked"] and info["bundles"] == ["tiny"]
    result = run("verify", signed)
    assert result.exit_code == 0 and "not checked" in result.stdout


def test_load_package_returns_verified_bundles(signed, keys):
    pkg = load_package(signed, keys["fleet.pub"])
    assert pkg.signature_checked and pkg.bundles["tiny"].manifest.kind == "recognizer"


def _flip_last_byte(files: dict[str, bytes]) -> None:
    files[MODEL] = files[MODEL][:-1] + bytes([files[MODEL][-1] ^ 1])


def _truncate_model(files: dict[str, bytes]) -> None:
    files[MODEL] = files[MODEL][: len(files[MODEL]) // 2]


def _lie_about_output(files: dict[str, bytes]) -> None:
    m = json.loads(files[MANIFEST])
    n, t, c = m["output"]["shape"]
    m["output"]["shape"] = [n, t + 1, c]  # still a valid manifest, but not this model's
    files[MANIFEST] = json.dumps(m).encode()


def _lie_about_sha(files: dict[str, bytes]) -> None:
    _truncate_model(files)  # the bundle manifest's sha256 is left as it was


def _extra_file(files: dict[str, bytes]) -> None:
    files["bundles/tiny/run.sh"] = b"#!/bin/sh\nrm -rf /\n"


CASES = {
    # name: (edit, rehash, re-sign with fleet key, expected words, error type)
    "tampered file": (_flip_last_byte, False, False, "sha256", PackageError),
    "truncated model": (_truncate_model, False, False, "bytes", PackageError),
    "extra file": (_extra_file, False, False, "not listed", PackageError),
    "re-hashed but model truncated": (_lie_about_sha, True, True, "manifest's sha256", PackageError),
    "manifest lies about tensors": (_lie_about_output, True, True, "disagrees with the model", ManifestError),
    "re-hashed, old signature": (_lie_about_output, True, False, "altered after signing", SignatureError),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_package_is_refused_with_one_line(signed, keys, tmp_path, case):
    edit, rehash, resign, words, error = CASES[case]
    bad = repack(signed, tmp_path / "bad.tar.gz", edit, rehash=rehash, sign_key=keys["fleet"] if resign else None)
    with pytest.raises(error, match=words):
        load_package(bad, keys["fleet.pub"])
    assert words in one_error_line(run("verify", bad, "--pubkey", keys["fleet.pub"]))


def test_wrong_or_missing_signature_is_refused(signed, keys, tmp_path):
    line = one_error_line(run("verify", signed, "--pubkey", keys["other.pub"]))
    assert "signature does not verify" in line and "signed by key" in line
    unsigned = repack(signed, tmp_path / "unsigned.tar.gz", lambda f: None, keep_signature=False)
    assert "not signed" in one_error_line(run("verify", unsigned, "--pubkey", keys["fleet.pub"]))
    assert run("verify", unsigned).exit_code == 0  # no key configured: a signature is not required


def test_truncated_archive_and_unsafe_paths_are_refused(signed, tmp_path):
    data = signed.read_bytes()
    (cut := tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in one_error_line(run("verify", cut))
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        for name in ("package.json", "../escape"):
            info = tarfile.TarInfo(name)
            tar.addfile(info)
    assert "unsafe path" in one_error_line(run("verify", evil))
    assert "does not exist" in one_error_line(run("verify", tmp_path / "nope.tar.gz"))


def test_package_refuses_a_bad_bundle(tmp_path):
    assert "does not exist" in one_error_line(run("package", tmp_path / "nope", "--out", tmp_path / "p.tar.gz"))


@needs_shipped_detector
def test_a_detector_folder_is_packaged_as_its_two_stages(tiny_bundle, tmp_path):
    """The shipped detector goes into a package as bundles detector/proposal and detector/corners, and the
    unpacked package's bundles/detector is a detector folder that finds what the shipped one finds."""
    from sdk.detector import Detector
    from sdk.image import read_image

    pkg = build_package(["detector", tiny_bundle], tmp_path / "p.tar.gz", version="1")
    assert list(pkg.manifest.bundles) == ["detector/proposal", "detector/corners", tiny_bundle.name]
    assert pkg.detectors() == ["detector"] and pkg.bundles["detector/corners"].manifest.kind == "detector"
    unpacked = tmp_path / "unpacked"
    for name, data in read_package_files(pkg.source).items():
        (unpacked / name).parent.mkdir(parents=True, exist_ok=True)
        (unpacked / name).write_bytes(data)
    assert load_package(unpacked).detectors() == ["detector"]
    frame = read_image(sorted(DRIVE.glob("*.jpg"))[0])
    packaged, shipped = Detector(unpacked / "bundles" / "detector").detect(frame), Detector("detector").detect(frame)
    assert packaged and [d.box for d in packaged] == [d.box for d in shipped]
    # a bundle may not lie inside another bundle's folder
    raw = manifest_bytes({"bundles/detector/proposal/model.tflite": b"x"}, ["detector", "detector/proposal"], "1", "")
    with pytest.raises(PackageError, match="lies inside bundle detector"):
        parse_package_manifest(raw, tmp_path)


def test_inspect_a_package(signed, keys):
    result = run("inspect", signed, "--pubkey", keys["fleet.pub"], "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["package"]["version"] == "1.0.0" and info["package"]["signature_checked"]
    assert info["bundles"][0]["macs"] > 0
    assert run("inspect", signed).exit_code == 0


def test_deploy_refuses_a_bad_package_before_any_ssh(signed, tmp_path):
    bad = repack(signed, tmp_path / "bad.tar.gz", _flip_last_byte)
    assert "sha256" in one_error_line(run("deploy", bad, "nobody@device.invalid"))  # never connects
    result = run("deploy", "nobody@device.invalid")
    assert result.exit_code == 2 and "give PKG USER@HOST" in result.output
