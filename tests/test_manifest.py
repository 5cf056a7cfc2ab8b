"""Every manifest field validated: a bad value is one ManifestError line, never a traceback or a silent accept.

Each case edits a copy of a shipped bundle's manifest (real bundles, real models) and loads it as a device would,
from a folder and from an archive."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest
from conftest import REPO

from sdk.bundle import load_bundle, validate_manifest
from sdk.errors import ManifestError
from sdk.package import PackageError, parse_package_manifest

LATIN = REPO / "models" / "latin"
PROPOSAL = REPO / "models" / "detector" / "proposal"
DEEP = 100_000


def _set(key, value):
    return lambda m: m.update({key: value})


def _tensor(key, field, value):
    return lambda m: m[key].update({field: value})


CASES = {
    # name: (edit of the latin manifest, words in the error)
    "std is a string": (_set("std", "abc"), "'std'"),
    "std is NaN": (_set("std", float("nan")), "finite"),
    "std is Infinity": (_set("std", float("inf")), "finite"),
    "mean is Infinity": (_set("mean", float("inf")), "finite"),
    "mean is -Infinity": (_set("mean", float("-inf")), "finite"),
    "mean is a list": (_set("mean", [0.5]), "'mean'"),
    "std is a bool": (_set("std", True), "'std'"),
    "std is zero": (_set("std", 0), "std must be > 0"),
    "metrics is a list": (_set("metrics", [1, 2]), "'metrics'"),
    "extra is a string": (_set("extra", "oops"), "'extra'"),
    "versions is a number": (_set("versions", 5), "'versions'"),
    "versions holds an object": (_set("versions", {"tf": {"x": 1}}), "'versions'"),
    "regions nested": (_set("regions", [["cn"]]), "regions"),
    "regions a string": (_set("regions", "cn"), "regions"),
    "regions an object": (_set("regions", {"cn": 1}), "regions"),
    "unknown output_layout": (_set("output_layout", "NCT"), "output_layout"),
    "output_layout a list": (_set("output_layout", ["NTC"]), "output_layout"),
    "model_file climbs out": (_set("model_file", "../latin/model.tflite"), "model_file"),
    "model_file absolute": (_set("model_file", "/etc/passwd"), "model_file"),
    "model_file in a subfolder": (_set("model_file", "sub/model.tflite"), "model_file"),
    "model_file a number": (_set("model_file", 7), "model_file"),
    "model_file empty": (_set("model_file", ""), "model_file"),
    "name a list": (_set("name", ["latin"]), "'name'"),
    "color_order a list": (_set("color_order", ["RGB"]), "color_order"),
    "input scale NaN": (_tensor("input", "scale", float("nan")), "finite"),
    "output scale a string": (_tensor("output", "scale", "0.1"), "'scale'"),
    "zero_point out of range": (_tensor("input", "zero_point", 1000), "zero_point"),
    "zero_point a float": (_tensor("input", "zero_point", 0.5), "'zero_point'"),
    "shape holds a bool": (_tensor("input", "shape", [True, 24, 94, 3]), "shape"),
    "shape holds a string": (_tensor("input", "shape", [1, "24", 94, 3]), "shape"),
    "input not an object": (_set("input", [1, 24, 94, 3]), "'input'"),
    "alphabet a list": (_set("alphabet", ["A"]), "'alphabet'"),
    "alphabet with a repeat": (lambda m: m.update(alphabet=m["alphabet"][:-1] + m["alphabet"][0]), "twice"),
    "blank_index a float": (_set("blank_index", 1.0), "'blank_index'"),
    "kind unknown": (_set("kind", "ocr"), "kind"),
    "kind a list": (_set("kind", ["recognizer"]), "'kind'"),
    "sha256 upper case": (lambda m: m.update(sha256=m["sha256"].upper()), "sha256"),
    "schema_version a string": (_set("schema_version", "1"), "'schema_version'"),
}


def _latin() -> dict:
    return json.loads((LATIN / "manifest.json").read_text())


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_manifest_field_is_one_manifest_error(tmp_path, case):
    edit, words = CASES[case]
    m = _latin()
    edit(m)
    with pytest.raises(ManifestError) as e:
        validate_manifest(m)
    assert words in str(e.value) and "\n" not in str(e.value) and len(str(e.value)) < 300
    bundle = tmp_path / "latin"  # the same, loaded from a folder and from an archive, as a device would
    shutil.copytree(LATIN, bundle)
    (bundle / "manifest.json").write_text(json.dumps(m))  # NaN/Infinity as JSON's NaN/Infinity
    archive = tmp_path / "latin.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(bundle, arcname="latin")
    for path in (bundle, archive):
        with pytest.raises(ManifestError) as e:
            load_bundle(path)
        assert words in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"[" * DEEP + b"]" * DEEP, "nests too deep"),
        (b'{"a":' * DEEP + b"1" + b"}" * DEEP, "nests too deep"),
        (b"\xff\xfe not utf-8", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"null", "JSON object"),
    ],
)
def test_manifest_json_that_cannot_be_one_is_refused(tmp_path, raw, words):
    bundle = tmp_path / "latin"
    shutil.copytree(LATIN, bundle)
    (bundle / "manifest.json").write_bytes(raw)
    with pytest.raises(ManifestError) as e:
        load_bundle(bundle)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_deeply_nested_package_json_is_refused(tmp_path):
    with pytest.raises(PackageError, match="nests too deep"):
        parse_package_manifest(b"[" * DEEP + b"]" * DEEP, tmp_path / "p.tar.gz")


def test_the_shipped_manifests_still_validate_and_detector_layouts_are_kept():
    for d in (LATIN, REPO / "models" / "cn", PROPOSAL, REPO / "models" / "detector" / "corners"):
        assert load_bundle(d).manifest.output_layout in ("NTC", "NHWC", "NC")
    m = json.loads((PROPOSAL / "manifest.json").read_text())
    m["output_layout"] = "NTC"  # a recogniser's layout on a detector stage
    with pytest.raises(ManifestError, match="output_layout"):
        validate_manifest(m)
