import json
import shutil
import subprocess
import sys

import pytest

from sdk.bundle import load_bundle, pack_bundle, sha256_bytes, validate_manifest
from sdk.errors import BundleError, ManifestError
from sdk.recognizer import Recognizer


def _edit(bundle, tmp_path, fn):
    out = tmp_path / "edited"
    shutil.copytree(bundle, out)
    m = json.loads((out / "manifest.json").read_text())
    fn(m, out)
    (out / "manifest.json").write_text(json.dumps(m))
    return out


def test_import_sdk_does_not_import_tensorflow():
    code = "import sys, sdk, sdk.recognizer, sdk.decode, sdk.bundle, sdk.evaluate; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_loads_and_packs(tiny_bundle, tmp_path):
    b = load_bundle(tiny_bundle)
    assert b.manifest.kind == "recognizer" and b.manifest.input.dtype == "int8" and b.manifest.output.dtype == "int8"
    archive = pack_bundle(tiny_bundle, tmp_path / "tiny.tar.gz")
    assert load_bundle(archive).manifest == b.manifest


@pytest.mark.parametrize(
    "edit, error, words",
    [
        (
            lambda m, d: (d / "model.tflite").write_bytes((d / "model.tflite").read_bytes()[:1000]),
            BundleError,
            "sha256",
        ),
        (lambda m, d: (d / "model.tflite").unlink(), BundleError, "missing"),
        (lambda m, d: m.update(blank_index=999), ManifestError, "blank_index"),
        (lambda m, d: m.update(schema_version=99), ManifestError, "schema_version"),
        (lambda m, d: m.pop("alphabet"), ManifestError, "alphabet"),
        (lambda m, d: m.update(regions=["xx"]), ManifestError, "regions"),
    ],
)
def test_bad_bundles_are_refused_with_one_line(tiny_bundle, tmp_path, edit, error, words):
    with pytest.raises(error) as e:
        load_bundle(_edit(tiny_bundle, tmp_path, edit))
    assert words in str(e.value) and "\n" not in str(e.value)


def test_manifest_that_lies_about_tensors_is_refused(tiny_bundle, tmp_path):
    def lie(m, d):
        m["input"]["shape"] = [1, 32, 94, 3]

    with pytest.raises(ManifestError, match="disagrees"):
        Recognizer(_edit(tiny_bundle, tmp_path, lie))


def test_garbage_model_with_matching_hash_is_refused(tiny_bundle, tmp_path):
    def garbage(m, d):
        (d / "model.tflite").write_bytes(b"not a flatbuffer" * 100)
        m["sha256"] = sha256_bytes(b"not a flatbuffer" * 100)

    with pytest.raises(BundleError, match="does not load"):
        Recognizer(_edit(tiny_bundle, tmp_path, garbage))


def test_validate_rejects_non_object():
    with pytest.raises(ManifestError):
        validate_manifest([1, 2])


def test_missing_bundle_names_shipped_ones(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nope")
