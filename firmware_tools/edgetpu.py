"""The Edge TPU step: compile a bundle with ``edgetpu_compiler``, or pre-check its ops when the compiler is absent.

The pre-check reads the model's op list and tensors (:mod:`sdk.modelinfo`) against Coral's documented
requirements. It is not a compilation: only ``edgetpu_compiler`` says for sure what maps to the Edge TPU.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.bundle import Bundle, load_bundle, write_bundle
from sdk.errors import BackendError
from sdk.interpreter import make_interpreter
from sdk.modelinfo import ModelInfo, OpInfo, analyze

COMPILER = "edgetpu_compiler"

# Ops the Edge TPU supports, with their documented limitations. Source: Coral, "TensorFlow models on the Edge TPU",
# section "Supported operations" (coral.ai/docs/edgetpu/models-intro/#supported-operations), compiler 16.
# DEQUANTIZE is not in that table: a float result cannot run on the Edge TPU, so it ends the mapped segment.
EDGETPU_OPS: dict[str, str] = {
    "ADD": "",
    "AVERAGE_POOL_2D": "no fused activation",
    "CONCATENATION": "no fused activation; a constant input must be all zeros (2 inputs only)",
    "CONV_2D": "same dilation in x and y",
    "DEPTHWISE_CONV_2D": "same dilation in x and y",
    "EXPAND_DIMS": "",
    "FULLY_CONNECTED": "default weights format only; 1-D output",
    "L2_NORMALIZATION": "",
    "LOGISTIC": "",
    "LSTM": "unidirectional only",
    "MAXIMUM": "",
    "MAX_POOL_2D": "no fused activation",
    "MEAN": "no reduction over the batch; a z-reduction needs z a multiple of 4",
    "MINIMUM": "",
    "MUL": "",
    "PACK": "no packing in the batch dimension",
    "PAD": "no padding in the batch dimension",
    "PRELU": "alpha 1-D (only the innermost dimension > 1)",
    "QUANTIZE": "",
    "REDUCE_MAX": "not over the batch dimension",
    "REDUCE_MIN": "not over the batch dimension",
    "RELU": "",
    "RELU6": "",
    "RELU_N1_TO_1": "",
    "RESHAPE": "large reshapes may stay on the CPU",
    "RESIZE_BILINEAR": "3-D input/output; large sizes may stay on the CPU",
    "RESIZE_NEAREST_NEIGHBOR": "3-D input/output; large sizes may stay on the CPU",
    "RSQRT": "",
    "SLICE": "",
    "SOFTMAX": "1-D input, at most 16,000 elements",
    "SPACE_TO_DEPTH": "",
    "SPLIT": "no split in the batch dimension",
    "SQUARED_DIFFERENCE": "",
    "SQUEEZE": "",
    "STRIDED_SLICE": "strides of 1 only",
    "SUB": "",
    "SUM": "not over the batch dimension",
    "TANH": "",
    "TRANSPOSE": "",
    "TRANSPOSE_CONV": "",
}
_QUANT_DTYPES = ("int8", "uint8")
PRECHECK_LABEL = (
    "Edge TPU PRE-CHECK: read from Coral's documented op list and constraints, not a compilation; "
    "only edgetpu_compiler can say for sure"
)


@dataclass(frozen=True)
class OpVerdict:
    """Whether one op (execution order) would map, and why not."""

    index: int
    op: str
    mapped: bool
    reason: str = ""


@dataclass(frozen=True)
class Precheck:
    """The pre-check's findings."""

    verdicts: tuple[OpVerdict, ...]
    model_issues: tuple[str, ...] = field(default_factory=tuple)

    @property
    def first_unsupported(self) -> OpVerdict | None:
        return next((v for v in self.verdicts if not v.mapped), None)

    @property
    def mapped(self) -> int:
        return sum(v.mapped for v in self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        first = self.first_unsupported
        return {
            "label": PRECHECK_LABEL,
            "ops_total": len(self.verdicts),
            "ops_mapped_estimate": self.mapped,
            "ops_on_cpu_estimate": len(self.verdicts) - self.mapped,
            "first_unsupported": None if first is None else {"index": first.index, "op": first.op, "why": first.reason},
            "model_issues": list(self.model_issues),
            "ops": [{"index": v.index, "op": v.op, "mapped": v.mapped, "why": v.reason} for v in self.verdicts],
        }


def _op_problem(op: OpInfo, info: ModelInfo) -> str:
    if op.name not in EDGETPU_OPS:
        return f"{op.name} is not in the Edge TPU's supported ops"
    for i in (*op.inputs, *op.outputs):
        t = info.tensors.get(i)
        if t is None or t.constant:
            continue
        if t.dtype not in _QUANT_DTYPES:
            return f"tensor {t.name or i} is {t.dtype}; the Edge TPU runs int8/uint8 only"
        if len(t.shape) > 3 and any(d > 1 for d in t.shape[:-3]):
            return f"tensor {t.name or i} {list(t.shape)} has a dimension > 1 outside the 3 innermost"
    return ""


def precheck(info: ModelInfo) -> Precheck:
    """Pre-check a model against the Edge TPU's documented ops and constraints.

    Rules: every op in :data:`EDGETPU_OPS`; its non-constant tensors int8/uint8 and with at most the 3 innermost
    dimensions > 1; static shapes. The compiler maps ops up to the first one it cannot map; that op and every
    op after it run on the CPU.

    Args:
        info: the model's ops and tensors.

    Returns:
        One verdict per op, in execution order, and model-wide issues.
    """
    issues = []
    dynamic = [t for t in info.tensors.values() if t.dynamic]
    if dynamic:
        t = dynamic[0]
        issues.append(
            f"{len(dynamic)} tensor(s) have dynamic shapes (e.g. {t.name or t.index} {list(t.shape_signature)}); "
            "the Edge TPU needs static shapes: convert with a fixed batch size of 1"
        )
    io_types = {info.tensors[i].dtype for i in (*info.inputs, *info.outputs) if i in info.tensors}
    if io_types - set(_QUANT_DTYPES):
        issues.append(f"model input/output types {sorted(io_types)}: full int8 quantisation is needed")
    verdicts: list[OpVerdict] = []
    blocked = False
    for op in info.ops:
        problem = "" if blocked else _op_problem(op, info)
        if problem:
            blocked = True
            verdicts.append(OpVerdict(op.index, op.name, False, problem))
        elif blocked:
            verdicts.append(OpVerdict(op.index, op.name, False, "after the first unsupported op: runs on the CPU"))
        else:
            verdicts.append(OpVerdict(op.index, op.name, True))
    return Precheck(tuple(verdicts), tuple(issues))


def precheck_bundle(bundle: str | Path | Bundle) -> Precheck:
    """Load a bundle (CPU interpreter) and pre-check its model; see :func:`precheck`."""
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    interp, _ = make_interpreter(b.model)
    return precheck(analyze(interp, b.model))


_LOG_ROW = re.compile(r"^(?P<op>[A-Z][A-Z0-9_]+)\s+(?P<count>\d+)\s+(?P<status>\S.*?)\s*$")


def parse_compiler_log(log: str) -> dict[str, Any]:
    """The op-mapping report of ``edgetpu_compiler -s``: compiler version and one row per (op, status)."""
    version = re.search(r"Edge TPU Compiler version\s+(\S+)", log)
    rows = []
    in_table = False
    for line in log.splitlines():
        if line.strip().startswith("Operator") and "Status" in line:
            in_table = True
            continue
        m = _LOG_ROW.match(line.strip()) if in_table else None
        if m:
            rows.append({"op": m["op"], "count": int(m["count"]), "status": m["status"]})
    mapped = sum(r["count"] for r in rows if r["status"].startswith("Mapped to Edge TPU"))
    return {
        "compiler_version": version.group(1) if version else None,
        "ops": rows,
        "ops_mapped": mapped,
        "ops_on_cpu": sum(r["count"] for r in rows) - mapped,
    }


def default_output(bundle: Path) -> Path:
    """``<bundle>_edgetpu`` beside the bundle (``x.tar.gz`` -> ``x_edgetpu``)."""
    name = bundle.name[: -len(".tar.gz")] if bundle.name.endswith(".tar.gz") else bundle.name
    return bundle.with_name(f"{name}_edgetpu")


def find_compiler() -> str | None:
    """The ``edgetpu_compiler`` on PATH, or None."""
    return shutil.which(COMPILER)


def compile_bundle(bundle: str | Path, out: str | Path | None = None, compiler: str | None = None) -> Bundle:
    """Compile a bundle for the Edge TPU and write a ``*_edgetpu`` bundle with the op-mapping report.

    Args:
        bundle: the int8 bundle (directory, archive or shipped name).
        out: output bundle directory (default ``<bundle>_edgetpu``).
        compiler: path of ``edgetpu_compiler`` (default: from PATH).

    Returns:
        The written bundle; its manifest's ``extra.edgetpu`` holds the compiler's report.

    Raises:
        BackendError: no compiler, or it failed.
    """
    b = load_bundle(bundle)
    compiler = compiler or find_compiler()
    if compiler is None:
        raise BackendError(f"{COMPILER} is not on PATH: install it from Coral's apt repository (x86-64 Linux)")
    out = Path(out) if out is not None else default_output(b.source)
    with tempfile.TemporaryDirectory(prefix="lpr-edgetpu-") as tmp:
        src = Path(tmp) / "model.tflite"
        src.write_bytes(b.model)
        try:
            proc = subprocess.run(
                [compiler, "-s", "-o", tmp, str(src)], capture_output=True, text=True, timeout=600, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BackendError(f"{COMPILER} could not run ({e})") from e
        compiled, log_path = Path(tmp) / "model_edgetpu.tflite", Path(tmp) / "model_edgetpu.log"
        if proc.returncode != 0 or not compiled.is_file():
            last = (proc.stderr or proc.stdout).strip().splitlines()
            raise BackendError(f"{COMPILER} failed (exit {proc.returncode}): {last[-1] if last else 'no output'}")
        log = log_path.read_text(encoding="utf-8", errors="replace") if log_path.is_file() else proc.stdout
        model = compiled.read_bytes()
    report = parse_compiler_log(log)
    manifest = b.manifest.to_dict()
    manifest["name"] = f"{b.manifest.name}_edgetpu"
    manifest["extra"] = {**manifest.get("extra", {}), "edgetpu": {**report, "source_sha256": b.manifest.sha256}}
    return write_bundle(out, model, manifest)
