"""The bundle contract: a directory (or one .tar.gz archive) holding ``model.tflite`` and ``manifest.json``.

The manifest says everything the runtime needs; nothing about a model is hard-coded on the device side.
:func:`validate_manifest` checks a manifest's structure; :func:`load_bundle` also checks the model file's
size and sha256. Whether the manifest agrees with the model's tensors is checked when an interpreter is built
(:func:`sdk.interpreter.check_tensors`).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sdk.archive import read_tar, safe_name
from sdk.errors import ArgumentError, BundleError, ManifestError

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
DETECTOR_STAGES = ("proposal", "corners")  # the two stage bundles of a detector folder, as subfolders
MODEL_NAME = "model.tflite"
_REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
# The shipped default bundles: models/ in a checkout, sdk/default_models in an installed wheel.
MODELS_DIR = _REPO_MODELS if _REPO_MODELS.is_dir() else Path(__file__).resolve().parent / "default_models"
_REPO_DRIVE = Path(__file__).resolve().parent.parent / "samples" / "drive"
# The sample drive (frames rendered by this project): samples/drive in a checkout, sdk/sample_drive in a wheel.
SAMPLE_DRIVE = _REPO_DRIVE if _REPO_DRIVE.is_dir() else Path(__file__).resolve().parent / "sample_drive"

Kind = Literal["recognizer", "detector"]
_KINDS = ("recognizer", "detector")
# What a bundle may hold, checked from sizes (file system or archive headers) before anything is read: the shipped
# models are under 1 MB, so these only stop archive bombs and wrong files.
MAX_BUNDLE_BYTES = 256 << 20
MAX_BUNDLE_MEMBERS = 64
MAX_MANIFEST_BYTES = 1 << 20
_DTYPES = ("int8", "uint8", "float32")
# Output layouts the runtime decodes, per kind (the first is the default): a recogniser's (N, T, C) logits; a
# detector's proposal heat map (N, H, W, C) or corners vector (N, C).
_LAYOUTS = {"recognizer": ("NTC",), "detector": ("NHWC", "NC")}


@dataclass(frozen=True)
class TensorSpec:
    """Shape, dtype and affine quantisation (real = scale * (q - zero_point)) of a model input or output."""

    shape: tuple[int, ...]
    dtype: str
    scale: float = 1.0
    zero_point: int = 0


@dataclass(frozen=True)
class Manifest:
    """A bundle's manifest (schema version 1)."""

    kind: Kind
    name: str
    architecture: str
    input: TensorSpec
    output: TensorSpec
    sha256: str
    color_order: Literal["RGB", "BGR"] = "RGB"
    # float input = (pixel - mean) / std, pixel in [0, 255]
    mean: float = 0.0
    std: float = 255.0
    output_layout: str = "NTC"
    alphabet: str = ""
    blank_index: int = -1
    regions: tuple[str, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    model_file: str = MODEL_NAME
    schema_version: int = SCHEMA_VERSION

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.input.shape[1], self.input.shape[2]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input"]["shape"] = list(self.input.shape)
        d["output"]["shape"] = list(self.output.shape)
        d["regions"] = list(self.regions)
        return d


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: where it came from, its validated manifest and the model bytes (hash checked)."""

    source: Path
    manifest: Manifest
    model: bytes


def _need(d: dict[str, Any], key: str, types: type | tuple[type, ...], where: str = "manifest") -> Any:
    if key not in d:
        raise ManifestError(f"{where} lacks {key!r}: rebuild the bundle with `lpr-sdk quantize`")
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, types):
        raise ManifestError(f"{where} field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _show(value: Any) -> str:
    """A value for a one-line message: its repr, cut to 60 characters."""
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def _number(d: dict[str, Any], key: str, default: float | None = None, where: str = "manifest") -> float:
    """A finite number field (``default`` when absent and one is given)."""
    if key not in d and default is not None:
        return default
    value = _need(d, key, (int, float), where)
    if not math.isfinite(value):
        raise ManifestError(f"{where} field {key!r} must be a finite number, got {_show(value)}")
    return float(value)


def _object(d: dict[str, Any], key: str) -> dict[str, Any]:
    """An optional JSON object field (``{}`` when absent)."""
    value = d.get(key, {})
    if not isinstance(value, dict):
        raise ManifestError(f"manifest field {key!r} must be a JSON object, got {type(value).__name__}")
    return dict(value)


def _tensor(d: Any, where: str) -> TensorSpec:
    if not isinstance(d, dict):
        raise ManifestError(f"manifest field {where!r} must be an object")
    shape = _need(d, "shape", list, where)
    if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ManifestError(f"{where}.shape must be a list of positive integers, got {_show(shape)}")
    dtype = _need(d, "dtype", str, where)
    if dtype not in _DTYPES:
        raise ManifestError(f"{where}.dtype {_show(dtype)} is not one of {', '.join(_DTYPES)}")
    scale = _number(d, "scale", where=where)
    if scale <= 0:
        raise ManifestError(f"{where}.scale must be > 0, got {scale}")
    zero_point = _need(d, "zero_point", int, where)
    if dtype != "float32":
        info = np.iinfo(np.dtype(dtype))
        if not info.min <= zero_point <= info.max:
            raise ManifestError(f"{where}.zero_point {zero_point} is outside the {dtype} range")
    return TensorSpec(tuple(shape), dtype, scale, zero_point)


def validate_manifest(d: Any) -> Manifest:
    """Check a manifest dict and return it as a :class:`Manifest`; raise :class:`ManifestError` if it fails."""
    if not isinstance(d, dict):
        raise ManifestError("manifest must be a JSON object")
    version = _need(d, "schema_version", int)
    if version != SCHEMA_VERSION:
        raise ManifestError(f"manifest schema_version {version} is not supported (this SDK reads {SCHEMA_VERSION})")
    kind = _need(d, "kind", str)
    if kind not in _KINDS:
        raise ManifestError(f"manifest kind {kind!r} is not one of {', '.join(_KINDS)}")
    sha = _need(d, "sha256", str)
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ManifestError("manifest sha256 must be 64 lowercase hex digits")
    inp, out = _tensor(d.get("input"), "input"), _tensor(d.get("output"), "output")
    if len(inp.shape) != 4 or inp.shape[3] not in (1, 3):
        raise ManifestError(f"input.shape must be [N, H, W, 1|3], got {list(inp.shape)}")
    color = d.get("color_order", "RGB")
    if color not in ("RGB", "BGR"):
        raise ManifestError(f"color_order must be RGB or BGR, got {_show(color)}")
    mean, std = _number(d, "mean", 0.0), _number(d, "std", 255.0)
    if std <= 0:
        raise ManifestError(f"std must be > 0, got {std}")
    layout = d.get("output_layout", _LAYOUTS[kind][0])
    if layout not in _LAYOUTS[kind]:
        raise ManifestError(f"output_layout {_show(layout)} is not one of {', '.join(_LAYOUTS[kind])} for a {kind}")
    model_file = d.get("model_file", MODEL_NAME)
    if not isinstance(model_file, str) or "/" in model_file or safe_name(model_file) != model_file:
        raise ManifestError(f"model_file must be a file name inside the bundle, got {_show(model_file)}")
    name = d.get("name", "")
    if not isinstance(name, str):
        raise ManifestError(f"manifest field 'name' must be a string, got {type(name).__name__}")
    metrics, versions, extra = _object(d, "metrics"), _object(d, "versions"), _object(d, "extra")
    if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in versions.values()):
        raise ManifestError("manifest field 'versions' must map names to version strings")
    alphabet, blank = d.get("alphabet", ""), d.get("blank_index", -1)
    regions = d.get("regions", [])
    if kind == "recognizer":
        alphabet = _need(d, "alphabet", str)
        blank = _need(d, "blank_index", int)
        if len(out.shape) != 3:
            raise ManifestError(f"a recognizer's output.shape must be [N, T, C], got {list(out.shape)}")
        if out.shape[2] != len(alphabet) + 1:
            raise ManifestError(
                f"output has {out.shape[2]} classes but the alphabet has {len(alphabet)} characters + blank"
            )
        if not 0 <= blank < out.shape[2]:
            raise ManifestError(f"blank_index {blank} is outside [0, {out.shape[2]})")
        from sdk.formats import REGIONS  # local: formats imports errors only

        if (
            not isinstance(regions, list)
            or not regions
            or any(not isinstance(r, str) or r not in REGIONS for r in regions)
        ):
            raise ManifestError(f"regions must be a non-empty list of {', '.join(REGIONS)}; got {_show(regions)}")
        if len(set(alphabet)) != len(alphabet):
            raise ManifestError("the alphabet holds a character twice")
    elif not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
        raise ManifestError(f"regions must be a list of region names, got {_show(regions)}")
    return Manifest(
        kind=kind,
        name=name,
        architecture=_need(d, "architecture", str),
        input=inp,
        output=out,
        sha256=sha,
        color_order=color,
        mean=mean,
        std=std,
        output_layout=layout,
        alphabet=alphabet,
        blank_index=blank,
        regions=tuple(regions),
        metrics=metrics,
        versions={str(k): str(v) for k, v in versions.items()},
        extra=extra,
        model_file=model_file,
        schema_version=version,
    )


def parse_json(raw: bytes, what: str, error: type[BundleError] = ManifestError) -> Any:
    """JSON bytes as Python values; ``error`` (one line) when they are not UTF-8 JSON or nest too deep to parse
    (json raises RecursionError at about a thousand levels)."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error(f"{what} is not valid JSON ({e})") from e
    except RecursionError:
        raise error(f"{what} nests too deep to be a manifest") from None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_archive(path: Path) -> tuple[bytes, dict[str, bytes]]:
    """A bundle archive's manifest bytes and files by base name (a bundle packed with its folder reads the same)."""
    members = read_tar(
        path, max_members=MAX_BUNDLE_MEMBERS, max_bytes=MAX_BUNDLE_BYTES, error=BundleError, what="bundle archive"
    )
    files: dict[str, bytes] = {}
    for name, data in members.items():
        base = name.rsplit("/", 1)[-1]
        if base in files:
            raise BundleError(f"{path}: two files named {base} in the bundle archive; refusing it")
        files[base] = data
    if MANIFEST_NAME not in files:
        raise BundleError(f"{path}: archive holds no {MANIFEST_NAME}")
    if len(files[MANIFEST_NAME]) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{path}: {MANIFEST_NAME} is over {MAX_MANIFEST_BYTES} bytes; not a bundle manifest")
    return files[MANIFEST_NAME], files


def _read_capped(path: Path, limit: int, what: str) -> bytes:
    """A file's bytes, refused from its size before reading when it is over ``limit``."""
    size = path.stat().st_size
    if size > limit:
        raise BundleError(f"{path}: {what} is {size} bytes, over the {limit} a bundle may hold; refusing it")
    return path.read_bytes()


def is_detector_folder(path: Path) -> bool:
    """A folder holding a detector's stage bundles (``proposal/`` and ``corners/``), like the shipped ``detector``."""
    return path.is_dir() and (path / DETECTOR_STAGES[0]).is_dir()


def resolve_bundle_path(path: str | Path) -> Path:
    """A bundle path as given, or the name of a shipped default bundle in ``models/`` (e.g. ``cn``, ``latin``)."""
    p = Path(path)
    if not p.exists() and not p.is_absolute() and len(p.parts) == 1 and (MODELS_DIR / p).is_dir():
        return MODELS_DIR / p
    return p


def load_bundle(path: str | Path) -> Bundle:
    """Load and verify a bundle directory or ``.tar.gz`` archive (or a shipped bundle's name).

    Raises:
        BundleError: missing, unreadable, truncated or tampered model.
        ManifestError: the manifest fails validation.
    """
    if not isinstance(path, (str, Path)):
        raise ArgumentError(f"a bundle is given by its path or shipped name, got {type(path).__name__}")
    p = resolve_bundle_path(path)
    if not p.exists():
        shipped = ", ".join(sorted(d.name for d in MODELS_DIR.iterdir() if d.is_dir())) if MODELS_DIR.is_dir() else ""
        hint = f" (shipped bundles: {shipped})" if shipped else ""
        raise BundleError(f"bundle {path} does not exist{hint}")
    if p.is_dir():
        mpath = p / MANIFEST_NAME
        if not mpath.is_file():
            if is_detector_folder(p):
                raise BundleError(
                    f"{p} is a detector (its stage bundles {', '.join(DETECTOR_STAGES)} as subfolders); "
                    "a single model's bundle is needed here, e.g. a recognizer (cn, latin)"
                )
            raise BundleError(f"{p} holds no {MANIFEST_NAME}: not a bundle directory")
        raw, files = _read_capped(mpath, MAX_MANIFEST_BYTES, MANIFEST_NAME), None
    else:
        raw, files = _read_archive(p)
    try:
        manifest = validate_manifest(parse_json(raw, MANIFEST_NAME))
    except ManifestError as e:
        raise ManifestError(f"{p}: {e}") from e
    if files is None:
        model_path = p / manifest.model_file
        if not model_path.is_file():
            raise BundleError(f"{p}: model file {manifest.model_file} is missing")
        model = _read_capped(model_path, MAX_BUNDLE_BYTES, "the model file")
    else:
        if manifest.model_file not in files:
            raise BundleError(f"{p}: archive lacks model file {manifest.model_file}")
        model = files[manifest.model_file]
    if not model:
        raise BundleError(f"{p}: model file {manifest.model_file} is empty")
    if sha256_bytes(model) != manifest.sha256:
        raise BundleError(
            f"{p}: {manifest.model_file} does not match the manifest's sha256 (corrupt, truncated or altered); "
            "rebuild or re-copy the bundle"
        )
    return Bundle(p, manifest, model)


def write_bundle(out_dir: str | Path, model: bytes, manifest: dict[str, Any]) -> Bundle:
    """Write ``model`` and ``manifest`` (sha256 filled in, then validated) into ``out_dir``."""
    out = Path(out_dir)
    manifest = {**manifest, "sha256": sha256_bytes(model), "model_file": MODEL_NAME, "schema_version": SCHEMA_VERSION}
    validated = validate_manifest(manifest)
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_NAME).write_bytes(model)
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Bundle(out, validated, model)


def pack_bundle(bundle_dir: str | Path, archive: str | Path) -> Path:
    """Pack a bundle directory into one ``.tar.gz`` archive."""
    b = load_bundle(bundle_dir)
    archive = Path(archive)
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in ((MANIFEST_NAME, (b.source / MANIFEST_NAME).read_bytes()), (b.manifest.model_file, b.model)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive
