"""Reading images and turning a plate crop into a recogniser's input, identically on both sides.

Images are bounded before they cost memory: a file is refused from the size in its header when it holds more than
``MAX_IMAGE_PIXELS`` (PNG, JPEG, BMP, WebP and PNM headers are read here; any other format OpenCV decodes is held to
the same limit through ``OPENCV_IO_MAX_IMAGE_PIXELS``, which ``sdk/__init__.py`` sets before OpenCV loads), and an
array holding more is refused before it is converted. Arrays are converted explicitly (:func:`to_bgr`): uint8 as
is, uint16 scaled from 0-65535, floats in 0-1 scaled (0-255 taken as is), other integers only when every value
lies in 0-255; NaN/inf, bool, complex and object arrays are refused with :class:`~sdk.errors.ImageError`.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from sdk.errors import ImageError

# The most pixels an image or frame may have: 50 MP (an 8K frame is 33 MP) is 150 MB as BGR, so no image costs
# more than a few hundred MB however it was made (a 400 KB PNG may claim 20000x20000 = 400 MP, 1.2 GB).
MAX_IMAGE_PIXELS = 50_000_000


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, BMP, WebP or PNM header, without decoding; None for other formats or a
    header too short to say."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            w, h = struct.unpack(">II", data[16:24])
            return w, h
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:2] == b"BM":
            if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 core header: 16-bit sizes
                w, h = struct.unpack("<HH", data[18:22])
            else:
                w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)  # a negative height is a top-down bitmap
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:1] == b"P" and data[1:2] in b"123456":
            fields = [t for line in data[2:1024].split(b"\n") for t in line.split(b"#")[0].split()]
            return int(fields[0]), int(fields[1])
    except (struct.error, IndexError, ValueError):
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xDA)):  # standalone markers carry no length
            i += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        bits = struct.unpack("<I", data[21:25])[0]
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    return None


@contextlib.contextmanager
def opencv_quiet() -> Iterator[None]:
    """OpenCV's own log off for one call (a truncated BMP makes imdecode print an ``[ERROR]`` line to stderr: the
    ImageError raised instead says it in one line)."""
    cv_log = cv2.utils.logging
    level = cv_log.getLogLevel()
    cv_log.setLogLevel(cv_log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv_log.setLogLevel(level)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as BGR uint8 (H, W, 3).

    Raises:
        ImageError: missing, unreadable, empty, not an image, or over ``MAX_IMAGE_PIXELS`` (refused from its
            header, before decoding).
    """
    if not isinstance(path, (str, Path)) or not str(path):
        raise ImageError(f"an image path must be a non-empty str or Path, got {type(path).__name__}")
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"image {p} does not exist")
    try:
        data = np.fromfile(p, dtype=np.uint8)
    except OSError as e:
        raise ImageError(f"image {p} cannot be read ({e.strerror or e})") from e
    size = header_size(data[:65536].tobytes())
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise ImageError(f"image {p} is {size[0]}x{size[1]}, over {MAX_IMAGE_PIXELS} pixels; refusing to decode it")
    img = None
    if data.size:
        try:
            with opencv_quiet():
                img = cv2.imdecode(data, cv2.IMREAD_COLOR)
        except cv2.error as e:  # OPENCV_IO_MAX_IMAGE_PIXELS exceeded, or a decoder that gave up loudly
            raise ImageError(f"image {p} cannot be decoded ({_cv_reason(e)}); over {MAX_IMAGE_PIXELS} pixels?") from e
    if img is None or img.size == 0:
        raise ImageError(f"image {p} is empty or not a readable image")
    return img


def _cv_reason(e: cv2.error) -> str:
    text = str(e).strip().splitlines()
    return text[-1].strip() if text else "OpenCV error"


def to_uint8(img: np.ndarray) -> np.ndarray:
    """An image array's values as uint8 0-255, converted by its dtype (see the module's docstring).

    Raises:
        ImageError: bool, complex, object or other non-numeric arrays; NaN or infinite values; integers or floats
            outside the ranges above.
    """
    kind = img.dtype.kind
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)  # 16-bit camera data: the high byte (0-65535 -> 0-255)
    if kind in "iu":
        lo, hi = int(img.min()), int(img.max())
        if lo < 0 or hi > 255:
            raise ImageError(f"a {img.dtype} image must hold values in 0-255, got {lo}-{hi}; convert it to uint8")
        return img.astype(np.uint8)
    if kind == "f":
        lo, hi = float(np.min(img)), float(np.max(img))  # NaN propagates into both
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ImageError(f"a {img.dtype} image holds NaN or infinite values")
        if lo < 0 or hi > 255:
            raise ImageError(f"a {img.dtype} image must hold values in 0-1 or 0-255, got {lo:g}-{hi:g}")
        scaled = img * 255.0 if hi <= 1.0 else img  # 0-1 floats scaled, 0-255 floats taken as they are
        return np.round(scaled).astype(np.uint8)
    raise ImageError(f"not an image: {img.dtype} arrays are not accepted (uint8, uint16, other integers or floats)")


def to_bgr(img: np.ndarray) -> np.ndarray:
    """Accept grayscale (H, W), (H, W, 1), BGR or BGRA images of any accepted dtype; return BGR uint8 (H, W, 3).

    Raises:
        ImageError: not an array, empty, of another shape, over ``MAX_IMAGE_PIXELS``, or of a refused dtype or range.
    """
    if not isinstance(img, np.ndarray) or img.size == 0 or img.ndim not in (2, 3) or min(img.shape[:2]) < 2:
        raise ImageError(
            f"not an image: expected a non-empty (H, W[, C]) array, got {getattr(img, 'shape', type(img).__name__)}"
        )
    if img.shape[0] * img.shape[1] > MAX_IMAGE_PIXELS:
        raise ImageError(f"image is {img.shape[1]}x{img.shape[0]}, over {MAX_IMAGE_PIXELS} pixels; refusing it")
    if img.ndim == 3 and img.shape[2] not in (1, 3, 4):
        raise ImageError(f"image has {img.shape[2]} channels; expected 1, 3 or 4")
    img = to_uint8(img)
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def shrink(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """``img`` scaled down (INTER_AREA, aspect kept) to fit ``width`` x ``height`` when it is larger; else as is."""
    h, w = img.shape[:2]
    f = min(width / w, height / h)
    if f >= 1.0:
        return img
    return cv2.resize(img, (max(2, round(w * f)), max(2, round(h * f))), interpolation=cv2.INTER_AREA)


def plate_input(img_bgr: np.ndarray, height: int, width: int, color_order: str = "RGB") -> np.ndarray:
    """Resize a plate crop to (height, width) in the model's colour order: uint8 (height, width, 3)."""
    img = to_bgr(img_bgr)
    out = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if img.shape[1] > width else cv2.INTER_LINEAR)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB) if color_order == "RGB" else out


def fast_resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with little aliasing at low cost: halve with INTER_AREA (fast at exactly 1/2) while the target is
    at most half the size, then INTER_LINEAR for the rest (a direct INTER_AREA shrink of a 1280x720 frame costs
    ~5 ms on a small CPU, this ~0.6 ms)."""
    while img.shape[1] >= 2 * width and img.shape[0] >= 2 * height:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
