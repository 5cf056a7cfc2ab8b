"""What a ``.tflite`` model holds, read without TensorFlow: ops, tensor types, parameter bytes, MACs, arena size.

Ops and tensor shapes come from the interpreter (``_get_ops_details()`` / ``get_tensor_details()``); which
tensors are constant (their buffer holds data in the flatbuffer) comes from the flatbuffer schema that
ai-edge-litert ships (``ai_edge_litert.schema_py_generated``). With another backend, a tensor that no op
produces and that is not a model input counts as constant.
"""

from __future__ import annotations

import importlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

ARENA_NOTE = "upper-bound estimate: the sum of all non-constant tensor bytes, with no buffer reuse"
_DELEGATE_OP = "DELEGATE"  # nodes a delegate (XNNPACK) adds on top of the model's own ops


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the model's main subgraph."""

    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: str
    constant: bool

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize if self.shape else 0

    @property
    def dynamic(self) -> bool:
        """True if a dimension is only known at run time (``-1`` in the shape signature)."""
        return any(d < 0 for d in self.shape_signature)


@dataclass(frozen=True)
class OpInfo:
    """One op of the model, in execution order; ``-1`` in ``inputs`` is an omitted optional input."""

    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    macs: int


@dataclass(frozen=True)
class ModelInfo:
    """The model's ops and tensors, and the figures derived from them."""

    ops: tuple[OpInfo, ...]
    tensors: dict[int, TensorInfo]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    constant_source: str

    def op_counts(self) -> list[dict[str, Any]]:
        """``[{"op": name, "count": n}, ...]``, most frequent first."""
        counts = Counter(o.name for o in self.ops)
        return [{"op": op, "count": n} for op, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

    def tensor_types(self) -> dict[str, int]:
        """How many tensors of each dtype the model has."""
        return dict(sorted(Counter(t.dtype for t in self.tensors.values()).items()))

    @property
    def parameter_bytes(self) -> int:
        """Bytes of the constant tensors (weights, biases, shape constants)."""
        return sum(t.nbytes for t in self.tensors.values() if t.constant)

    @property
    def macs(self) -> int:
        """Multiply-accumulates per inference of the conv, depthwise, transpose-conv and fully-connected ops."""
        return sum(o.macs for o in self.ops)

    @property
    def arena_bytes(self) -> int:
        """Upper bound of the tensor arena: see :data:`ARENA_NOTE`."""
        return sum(t.nbytes for t in self.tensors.values() if not t.constant)

    def summary(self) -> dict[str, Any]:
        """The figures ``lpr-sdk inspect`` prints, as a JSON-ready dict."""
        return {
            "ops": self.op_counts(),
            "op_total": len(self.ops),
            "tensor_types": self.tensor_types(),
            "parameter_bytes": self.parameter_bytes,
            "macs": self.macs,
            "arena_bytes_estimate": self.arena_bytes,
            "arena_note": ARENA_NOTE,
            "constant_source": self.constant_source,
        }


def _flatbuffer_constants(model: bytes) -> set[int] | None:
    """Indices of the main subgraph's tensors whose buffer holds data; None without the schema module."""
    try:
        schema = importlib.import_module("ai_edge_litert.schema_py_generated")
        fb = schema.Model.GetRootAs(model, 0)
        graph = fb.Subgraphs(0)
        out = set()
        for i in range(graph.TensorsLength()):
            buf = graph.Tensors(i).Buffer()
            if 0 < buf < fb.BuffersLength():
                b = fb.Buffers(buf)
                if b.DataLength() > 0 or b.Size() > 0:  # Size/Offset: data stored after the flatbuffer (>2 GB)
                    out.add(i)
        return out
    except Exception:  # no schema module or a flatbuffer it cannot read: fall back to the graph rule
        return None


def _macs(name: str, ins: tuple[int, ...], outs: tuple[int, ...], shapes: dict[int, tuple[int, ...]]) -> int:
    def shape(i: int) -> tuple[int, ...]:
        return shapes.get(i, ()) if i >= 0 else ()

    def size(s: tuple[int, ...]) -> int:
        return int(np.prod(s, dtype=np.int64)) if s else 0

    out = shape(outs[0]) if outs else ()
    if name == "CONV_2D" and len(ins) >= 2 and len(w := shape(ins[1])) == 4:  # filter [Cout, kh, kw, Cin]
        return size(out) * w[1] * w[2] * w[3]
    if name == "DEPTHWISE_CONV_2D" and len(ins) >= 2 and len(w := shape(ins[1])) == 4:  # filter [1, kh, kw, Cout]
        return size(out) * w[1] * w[2]
    if name == "FULLY_CONNECTED" and len(ins) >= 2 and len(w := shape(ins[1])) == 2:  # weights [out, in]
        return size(out) * w[1]
    if name == "TRANSPOSE_CONV" and len(ins) >= 3 and len(w := shape(ins[1])) == 4:  # (shape, filter, input)
        return size(shape(ins[2])) * w[0] * w[1] * w[2]
    return 0


def analyze(interp: Any, model: bytes | None = None) -> ModelInfo:
    """Read a built interpreter's ops and tensors.

    Args:
        interp: an allocated TFLite interpreter (ai-edge-litert / tflite-runtime / tf.lite).
        model: the ``.tflite`` bytes it was built from, to read which tensors are constant from the flatbuffer.

    Returns:
        The model's :class:`ModelInfo`.

    Raises:
        ValueError: the interpreter cannot list its ops (a backend without ``_get_ops_details``).
    """
    get_ops = getattr(interp, "_get_ops_details", None)  # private, but in ai-edge-litert, tflite-runtime, tf.lite
    if get_ops is None:
        raise ValueError("this TFLite backend cannot list the model's ops")
    raw_ops = [d for d in get_ops() if str(d.get("op_name")) != _DELEGATE_OP]
    details = {int(d["index"]): d for d in interp.get_tensor_details()}
    shapes = {i: tuple(int(s) for s in d["shape"]) for i, d in details.items()}
    inputs = tuple(int(d["index"]) for d in interp.get_input_details())
    outputs = tuple(int(d["index"]) for d in interp.get_output_details())
    ops = []
    for d in raw_ops:
        ins = tuple(int(i) for i in d.get("inputs", ()))
        outs = tuple(int(i) for i in d.get("outputs", ()))
        name = str(d.get("op_name", "?"))
        ops.append(OpInfo(int(d["index"]), name, ins, outs, _macs(name, ins, outs, shapes)))
    used = {i for o in ops for i in (*o.inputs, *o.outputs) if i >= 0} | set(inputs) | set(outputs)
    constants = _flatbuffer_constants(model) if model is not None else None
    source = "flatbuffer"
    if constants is None:
        produced = {i for o in ops for i in o.outputs}
        constants = {i for i in used if i not in produced and i not in inputs}
        source = "graph"
    tensors = {}
    for i in sorted(used):
        d = details.get(i)
        if d is None:
            continue
        signature = d.get("shape_signature", d["shape"])
        tensors[i] = TensorInfo(
            index=i,
            name=str(d.get("name", "")),
            shape=shapes[i],
            shape_signature=tuple(int(s) for s in signature),
            dtype=np.dtype(d["dtype"]).name,
            constant=i in constants,
        )
    return ModelInfo(tuple(ops), tensors, inputs, outputs, source)
