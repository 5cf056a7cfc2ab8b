"""Picking a TFLite interpreter: ai-edge-litert first, then tflite-runtime, then TensorFlow's tf.lite.

TensorFlow is imported only when neither slim runtime is installed, and the chosen backend is always reported.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import platform
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import cv2
import numpy as np

from sdk.bundle import SAMPLE_DRIVE, Bundle, Manifest
from sdk.errors import BackendError, BundleError, ImageError, ManifestError
from sdk.types import Device

BACKENDS = (
    ("ai-edge-litert", "ai_edge_litert.interpreter"),
    ("tflite-runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow.lite"),
)
EDGETPU_LIB = "libedgetpu.so.1"
# The default and the reference int8 kernels round differently by under one output step on average for the shipped
# bundles; the faulty 3-axis MEAN put the old latin and cn bundles 3.3 and 5.1 steps off.
KERNEL_TOLERANCE_STEPS = 2.0


def _interpreter_module() -> tuple[str, Any]:
    for name, module in BACKENDS:
        try:
            return name, importlib.import_module(module)
        except ImportError:
            continue
    raise BackendError("no TFLite interpreter found: pip install ai-edge-litert")


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Hide what native code writes to fd 2 (LiteRT's "Created TensorFlow Lite XNNPACK delegate" INFO line)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured): nothing to hide
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def make_interpreter(model: bytes, threads: int = 1, device: Device = "cpu") -> tuple[Any, str]:
    """Build and allocate an interpreter for ``model`` bytes; return it with the backend's name.

    Args:
        model: the ``.tflite`` flatbuffer.
        threads: CPU threads for the interpreter.
        device: ``cpu``, or ``edgetpu`` to load the Edge TPU delegate (an error if it is absent; never a
            silent CPU fallback).
    """
    name, mod = _interpreter_module()
    delegates = []
    if device == "edgetpu":
        try:
            # Open the library first: a failing load_delegate leaves a half-built Delegate whose __del__ prints an
            # "Exception ignored" traceback when it is collected.
            ctypes.CDLL(EDGETPU_LIB)
            delegates = [mod.load_delegate(EDGETPU_LIB)]
        except (ValueError, OSError, AttributeError) as e:
            raise BackendError(f"Edge TPU delegate {EDGETPU_LIB} could not be loaded ({e}); install libedgetpu") from e
    elif device != "cpu":
        raise BackendError(f"unknown device {device!r}: use cpu or edgetpu")
    try:
        with _native_stderr_silenced():
            interp = mod.Interpreter(model_content=model, num_threads=threads, experimental_delegates=delegates or None)
            interp.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise _does_not_load(name, e) from e
    return interp, name


def _does_not_load(backend: str, e: Exception) -> BundleError:
    return BundleError(f"the model does not load in {backend} ({str(e).splitlines()[0]}); rebuild the bundle")


def sample_frames(n: int = 4) -> list[np.ndarray]:
    """The first ``n`` frames (BGR) of the shipped sample drive, or seeded noise where it is missing."""
    frames = [cv2.imread(str(p)) for p in sorted(SAMPLE_DRIVE.glob("*.jpg"))[:n]]
    frames = [f for f in frames if f is not None]
    rng = np.random.default_rng(0)
    return frames or [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(n)]


def frame_inputs(bundle: Bundle, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``frames`` (BGR uint8) resized to a bundle's input and mapped to its input tensor (batch of one each)."""
    m = bundle.manifest
    lut = input_lut(m.mean, m.std, m.input.scale, m.input.zero_point, m.input.dtype)
    h, w = m.input_hw
    order = slice(None) if m.color_order == "BGR" else slice(None, None, -1)
    return [lut[cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)[..., order]][None] for f in frames]


def kernel_disagreement(model: bytes, inputs: Sequence[np.ndarray]) -> dict[str, Any]:
    """How far this machine's default CPU kernels (XNNPACK) are from TFLite's reference kernels on a model.

    Both run the same ``inputs`` (input tensors, e.g. :func:`frame_inputs` of :func:`sample_frames`: natural
    images, since random noise can miss a faulty kernel). The result holds the mean and largest absolute
    difference of the outputs in output quantisation steps (raw values for a float output), the backend's name,
    ``faults`` (:func:`runtime_faults`) and ``ok``: the mean is within :data:`KERNEL_TOLERANCE_STEPS` and there
    are no faults. The two paths round a little differently
    (under one step on average for the shipped bundles); a wrong kernel is far off: XNNPACK's int8 MEAN over
    three axes once was ~100 % wrong on AVX2 CPUs.

    Raises:
        BackendError: the installed runtime cannot choose its kernels (an old tflite-runtime, or tf.lite).
        BundleError: the model does not load (a corrupt file whose manifest hash was made to match).
    """
    name, mod = _interpreter_module()
    resolvers = getattr(mod, "OpResolverType", None)
    if resolvers is None:
        raise BackendError(f"{name} cannot choose its kernels; install ai-edge-litert to compare them")
    runs = []
    for resolver in (resolvers.AUTO, resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES):
        try:
            with _native_stderr_silenced():
                interp = mod.Interpreter(model_content=model, experimental_op_resolver_type=resolver)
                interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise _does_not_load(name, e) from e
        index, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
        got = []
        for x in inputs:
            interp.set_tensor(index, x)
            invoke(interp)
            got.append(interp.get_tensor(out).astype(np.float64).ravel())
        runs.append(np.concatenate(got))
    diff = np.abs(runs[0] - runs[1])
    mean = float(diff.mean())
    faults = runtime_faults(interp, name)
    return {
        "mean_steps": round(mean, 3),
        "max_steps": round(float(diff.max()), 3),
        "backend": name,
        "faults": faults,
        "ok": mean <= KERNEL_TOLERANCE_STEPS and not faults,
    }


def _release(backend: str) -> str:
    try:
        return version(backend)
    except PackageNotFoundError:
        return "?"


def runtime_info() -> dict[str, str]:
    """The TFLite runtime this process picks and where it runs: ``backend``, its ``version``, the CPU
    ``machine`` and the ``python`` version (for reports from a device)."""
    name, _ = _interpreter_module()
    return {"backend": name, "version": _release(name), "machine": platform.machine(), "python": sys.version.split()[0]}


def runtime_faults(interp: Any, backend: str) -> list[str]:
    """Known faults of the installed runtime that the model's ops run into, one line each (empty: none known).

    One so far: the int8 DIV kernel of LiteRT 1.x (ai-edge-litert < 2: what pip picks where glibc is older than
    2.27), tf.lite and tflite-runtime checks the divisor's raw value against 0, not its zero point, so it refuses
    valid inputs at one of the 256 divisor levels (~3 % of plate crops for recognisers exported before 2026-12-07).
    The reference and default kernels share it, so comparing them cannot show it.
    """
    release = _release(backend)
    major = release.split(".")[0]
    if backend == "ai-edge-litert" and major.isdigit() and int(major) >= 2:
        return []
    types = {int(d["index"]): np.dtype(d["dtype"]).name for d in interp.get_tensor_details()}
    for op in interp._get_ops_details():
        if op.get("op_name") == "DIV" and any(types.get(int(i)) in ("int8", "uint8") for i in op.get("inputs", ())):
            return [
                f"int8 DIV (op {op['index']}): {backend} {release} refuses it for some inputs; re-export the model "
                "with lpr-sdk quantize (no DIV since 2026-12-07) or install ai-edge-litert >= 2"
            ]
    return []


def check_tensors(interp: Any, manifest: Manifest) -> None:
    """Raise :class:`ManifestError` if the model's input/output tensors disagree with the manifest."""
    for what, details, spec in (
        ("input", interp.get_input_details(), manifest.input),
        ("output", interp.get_output_details(), manifest.output),
    ):
        if len(details) != 1:
            raise ManifestError(f"model has {len(details)} {what}s; the manifest describes one")
        d = details[0]
        shape, dtype = tuple(int(s) for s in d["shape"]), np.dtype(d["dtype"]).name
        scale, zp = d["quantization"]
        if shape != spec.shape or dtype != spec.dtype:
            raise ManifestError(
                f"manifest {what} {list(spec.shape)} {spec.dtype} disagrees with the model's {list(shape)} {dtype}"
            )
        if dtype != "float32" and (not np.isclose(scale, spec.scale, rtol=1e-5) or zp != spec.zero_point):
            raise ManifestError(
                f"manifest {what} quantisation ({spec.scale}, {spec.zero_point}) "
                f"disagrees with the model's ({scale}, {zp})"
            )


def invoke(interp: Any) -> None:
    """Run the interpreter; a kernel that refuses this input becomes an :class:`~sdk.errors.ImageError`.

    Recognisers exported before 2026-12-07 divide by the crop's mean square with an int8 DIV: an all-black crop
    makes the divisor zero, and LiteRT 1.x (and tf.lite, tflite-runtime) also refuses about 3 % of real crops there.
    The interpreter stays usable for the next input.
    """
    try:
        interp.invoke()
    except RuntimeError as e:
        raise ImageError(
            f"the model cannot read this input ({str(e).splitlines()[0]}); if this is a recogniser exported "
            "before 2026-12-07, re-export it with lpr-sdk quantize"
        ) from e


def input_lut(mean: float, std: float, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """Table mapping a uint8 pixel to the model's input value: q = round((p - mean) / std / scale) + zp."""
    real = (np.arange(256, dtype=np.float64) - mean) / std
    if dtype == "float32":
        return real.astype(np.float32)
    info = np.iinfo(np.dtype(dtype))
    return np.clip(np.round(real / scale) + zero_point, info.min, info.max).astype(dtype)


class Runner:
    """One bundle's model, built once: uint8 pixels -> input through a lookup table -> invoke -> float output.

    Args:
        bundle: the loaded bundle (manifest checked against the model's tensors here).
        threads: interpreter threads.
        device: ``cpu`` or ``edgetpu``.
    """

    def __init__(self, bundle: Bundle, threads: int = 1, device: Device = "cpu") -> None:
        m = self.manifest = bundle.manifest
        self.model_bytes = len(bundle.model)
        self.interpreter, self.backend = make_interpreter(bundle.model, threads, device)
        check_tensors(self.interpreter, m)
        self._in = self.interpreter.get_input_details()[0]["index"]
        self._out = self.interpreter.get_output_details()[0]["index"]
        self._lut = input_lut(m.mean, m.std, m.input.scale, m.input.zero_point, m.input.dtype)
        self.height, self.width = m.input_hw

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """Dequantised output (batch dimension dropped) for one uint8 (H, W, 3) input in the model's colour order."""
        self.interpreter.set_tensor(self._in, self._lut[pixels][None])
        invoke(self.interpreter)
        q = self.interpreter.get_tensor(self._out)[0]
        spec = self.manifest.output
        if spec.dtype == "float32":
            return q.astype(np.float32)
        return (q.astype(np.float32) - spec.zero_point) * spec.scale
