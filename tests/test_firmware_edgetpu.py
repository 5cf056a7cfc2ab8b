"""Model inspection (ops, tensor types, parameters, MACs, arena) and the Edge TPU step."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
from click.testing import CliRunner, Result
from conftest import needs_tf

from firmware_tools.edgetpu import EDGETPU_OPS, parse_compiler_log, precheck
from lpr_cli import main
from sdk.bundle import load_bundle
from sdk.errors import BackendError
from sdk.interpreter import make_interpreter
from sdk.modelinfo import analyze

# The op-mapping table edgetpu_compiler -s writes (its documented layout), for the stub compiler below.
COMPILER_LOG = """Edge TPU Compiler version 16.0.384591198
Input: model.tflite
Output: model_edgetpu.tflite

Operator                       Count      Status

CONV_2D                        16         Mapped to Edge TPU
DEQUANTIZE                     4          Operation is working on an unsupported data type
MEAN                           5          More than one subgraph is not supported
"""


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def model_info(tiny_bundle):
    b = load_bundle(tiny_bundle)
    interp, _ = make_interpreter(b.model)
    return b, analyze(interp, b.model)


def test_inspect_reports_sizes_macs_and_arena(tiny_bundle, model_info):
    result = run("inspect", tiny_bundle, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    ops = {o["op"]: o["count"] for o in info["ops"]}
    assert "DELEGATE" not in ops and ops["CONV_2D"] > 0 and sum(ops.values()) == info["op_total"]
    assert info["tensor_types"]["int8"] > 0
    assert 0 < info["parameter_bytes"] < info["model_bytes"]
    assert info["macs"] > 0 and "upper-bound" in info["arena_note"]
    assert info["constant_source"] == "flatbuffer"
    # the arena bound covers at least the input and output tensors
    assert info["arena_bytes_estimate"] >= int(np.prod(info["input"]["shape"])) + int(np.prod(info["output"]["shape"]))
    text = run("inspect", tiny_bundle).stdout
    assert "MACs" in text and "upper-bound estimate" in text


def test_macs_follow_conv_shapes(model_info):
    _, info = model_info
    for op in info.ops:
        if op.name == "CONV_2D":
            out, w = info.tensors[op.outputs[0]].shape, info.tensors[op.inputs[1]].shape
            assert op.macs == int(np.prod(out)) * w[1] * w[2] * w[3]
    # the flatbuffer's constant buffers and the graph rule agree on this model
    b, _ = model_info
    interp, _ = make_interpreter(b.model)
    assert analyze(interp).parameter_bytes == info.parameter_bytes


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")  # no "Exception ignored" noise
def test_edgetpu_device_fails_clearly_without_libedgetpu(model_info):
    b, _ = model_info
    with pytest.raises(BackendError, match="libedgetpu"):
        make_interpreter(b.model, device="edgetpu")


def test_lprnet_maps_to_the_edgetpu_entirely(model_info):
    """LPRNet's export has only Edge TPU ops (its per-sample norm is RSQRT and MULs, no DIV)."""
    _, info = model_info
    report = precheck(info)
    assert report.first_unsupported is None and all(v.mapped for v in report.verdicts), report
    assert not report.model_issues  # export fixes the batch at 1


@needs_tf
def test_precheck_flags_the_first_unsupported_op():
    """A conv, an int8 DIV (not an Edge TPU op), a conv: everything from the DIV on stays on the CPU."""
    import keras

    from training.export import convert_int8

    x = np.random.default_rng(0).uniform(0.2, 1, (16, 8, 8, 3)).astype(np.float32)
    inp = keras.Input((8, 8, 3), batch_size=1)
    f = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    f = keras.layers.Lambda(lambda t: t / (keras.ops.mean(t, axis=(1, 2, 3), keepdims=True) + 1.0))(f)
    model = convert_int8(keras.Model(inp, keras.layers.Conv2D(2, 1)(f)), x)
    report = precheck(analyze(make_interpreter(model)[0], model))
    first = report.first_unsupported
    assert first is not None and first.op == "DIV" and not first.mapped
    i = [v.index for v in report.verdicts].index(first.index)
    assert i > 0 and all(v.mapped for v in report.verdicts[:i]) and not any(v.mapped for v in report.verdicts[i:])


def test_edgetpu_without_compiler_says_so_and_prechecks(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no edgetpu_compiler anywhere
    result = run("edgetpu", tiny_bundle)
    assert result.exit_code == 1
    assert "edgetpu_compiler is not on PATH" in result.stderr
    assert result.stdout.startswith("Edge TPU PRE-CHECK") and "every op is in the supported list" in result.stdout
    assert not (tiny_bundle.parent / "tiny_edgetpu").exists()
    result = run("edgetpu", tiny_bundle, "--precheck", "--json")
    assert result.exit_code == 0
    d = json.loads(result.stdout)
    assert "PRE-CHECK" in d["label"] and d["ops_total"] == len(d["ops"])


def test_edgetpu_with_a_compiler_writes_a_bundle_with_its_report(tiny_bundle, tmp_path, monkeypatch):
    # edgetpu_compiler is absent here: a stub with its command line and outputs stands in for it.
    stub = tmp_path / "bin" / "edgetpu_compiler"
    stub.parent.mkdir()
    (tmp_path / "compiler.log").write_text(COMPILER_LOG)
    stub.write_text(
        "#!/bin/sh\n# usage: edgetpu_compiler -s -o OUTDIR MODEL\n"
        f'cp "$4" "$3/model_edgetpu.tflite" && cp {tmp_path / "compiler.log"} "$3/model_edgetpu.log"\n'
    )
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{stub.parent}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "tiny_edgetpu"
    result = run("edgetpu", tiny_bundle, "--out", out)
    assert result.exit_code == 0, result.output
    b = load_bundle(out)
    report = b.manifest.extra["edgetpu"]
    assert report["compiler_version"] == "16.0.384591198"
    assert report["ops_mapped"] == 16 and report["ops_on_cpu"] == 9
    assert b.manifest.name.endswith("_edgetpu")


def test_parse_compiler_log_without_table():
    assert parse_compiler_log("garbage") == {"compiler_version": None, "ops": [], "ops_mapped": 0, "ops_on_cpu": 0}


def test_supported_op_table_uses_tflite_op_names():
    assert all(op == op.upper() and " " not in op for op in EDGETPU_OPS)
