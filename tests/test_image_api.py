"""Image limits and dtypes (sdk/image.py) and public API argument checks: every bad input is one typed LprError,
nothing is decoded or converted that would cost more than its limit. Shipped bundles only (no training)."""

from __future__ import annotations

import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO

from sdk import (
    ArgumentError,
    CaptureError,
    ImageError,
    LprError,
    Pipeline,
    PlateTracker,
    Recognizer,
    RegionError,
    load_bundle,
    open_source,
)
from sdk.image import MAX_IMAGE_PIXELS, header_size, read_image, to_bgr

CROPS = sorted((REPO / "samples" / "latin").glob("*.jpg"))[:3]


@pytest.fixture(scope="module")
def rec() -> Recognizer:
    return Recognizer("latin")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".ppm", ".pgm"])
def test_header_size_reads_the_common_formats(ext):
    img = np.zeros((37, 91, 3 if ext != ".pgm" else 1), np.uint8)
    ok, buf = cv2.imencode(ext, img)
    assert ok and header_size(buf.tobytes()) == (91, 37)


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` (its data is a few bytes of zeros)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 4096))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def test_a_huge_png_is_refused_from_its_header_before_decoding(tmp_path, rec):
    path = tmp_path / "huge.png"
    path.write_bytes(_png_claiming(20000, 20000))
    tracemalloc.start()
    try:
        for read in (read_image, rec.recognize):
            with pytest.raises(ImageError, match="20000x20000, over") as e:
                read(path)
            assert "\n" not in str(e.value)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20
    (tmp_path / "ok.jpg").write_bytes(CROPS[0].read_bytes())
    with open_source(str(tmp_path)) as frames:  # a folder with it: skipped and counted, not decoded
        assert len(list(frames)) == 1 and frames.skipped == 1


def test_a_format_without_a_parsed_header_is_held_to_the_limit_by_opencv(tmp_path):
    """TIFF: OpenCV refuses it from OPENCV_IO_MAX_IMAGE_PIXELS, which importing sdk sets before cv2 loads."""
    side = int(MAX_IMAGE_PIXELS**0.5) + 10
    path = tmp_path / "big.tiff"
    ok, buf = cv2.imencode(".tiff", np.zeros((side, side), np.uint8))
    assert ok and header_size(buf.tobytes()) is None
    path.write_bytes(buf.tobytes())
    code = f"import sdk; from sdk.image import read_image; read_image({str(path)!r})"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "ImageError" in r.stderr and "cannot be decoded" in r.stderr


def test_a_truncated_bmp_is_one_error_and_opencv_prints_nothing(tmp_path):
    ok, buf = cv2.imencode(".bmp", np.full((64, 64, 3), 128, np.uint8))
    path = tmp_path / "cut.bmp"
    path.write_bytes(buf.tobytes()[:200])
    code = (
        "import sys; from sdk.image import read_image\n"
        f"try:\n    read_image({str(path)!r})\nexcept Exception as e:\n    print(type(e).__name__, e)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.startswith("ImageError") and r.stderr == ""


def test_huge_arrays_are_refused_before_they_are_touched(rec):
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (20000, 20000, 3))  # 1.2 GB if it were real
    pipe = Pipeline("detector", ["latin"], margins=((0.04, 0.1),))
    for call in (to_bgr, rec.recognize, pipe.process):
        with pytest.raises(ImageError, match="over"):
            call(huge)


BASE = np.random.default_rng(0).integers(0, 256, (24, 94, 3)).astype(np.uint8)

CONVERTED = {
    "uint8": BASE,
    "uint16 scaled": BASE.astype(np.uint16) * 257,
    "float32 in 0-1 scaled": BASE.astype(np.float32) / 255,
    "float64 in 0-255": BASE.astype(np.float64),
    "int16 in 0-255": BASE.astype(np.int16),
    "int64 in 0-255": BASE.astype(np.int64),
    "float16 in 0-1": (BASE.astype(np.float16) / 255).astype(np.float16),
}


@pytest.mark.parametrize("case", list(CONVERTED))
def test_dtypes_are_converted_explicitly(case):
    got = to_bgr(CONVERTED[case])
    assert got.dtype == np.uint8 and got.shape == BASE.shape
    assert np.abs(got.astype(int) - BASE.astype(int)).max() <= 1  # float16 rounds by at most one level


def _with(value, dtype=np.float32) -> np.ndarray:
    a = BASE.astype(dtype)
    a[3, 4, 0] = value
    return a


REFUSED = {
    "NaN": (_with(np.nan), "NaN"),
    "inf": (_with(np.inf), "NaN or infinite"),
    "-inf": (_with(-np.inf), "NaN or infinite"),
    "negative float": (_with(-0.5), "0-1 or 0-255"),
    "float over 255": (_with(300.0), "0-1 or 0-255"),
    "negative int8": (_with(-1, np.int8), "0-255"),
    "int32 over 255": (_with(4096, np.int32), "0-255"),
    "bool": (BASE > 128, "bool"),
    "complex": (BASE.astype(np.complex64), "complex"),
    "object": (BASE.astype(object), "object"),
    "strings": (np.full((24, 94), "a"), "<U1"),
    "two channels": (BASE[..., :2], "channels"),
    "empty": (np.zeros((0, 0, 3), np.uint8), "not an image"),
    "one pixel row": (np.zeros((1, 94, 3), np.uint8), "not an image"),
    "4-d": (BASE[None], "not an image"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_bad_arrays_are_an_image_error_everywhere(case, rec):
    arr, words = REFUSED[case]
    for call in (to_bgr, rec.recognize):
        with pytest.raises(ImageError, match=words) as e:
            call(arr)
        assert "\n" not in str(e.value)


def test_recognize_takes_paths_arrays_and_lists(rec):
    one = [rec.recognize(cv2.imread(str(p))) for p in CROPS]
    assert [r.text for r in rec.recognize(CROPS)] == [r.text for r in one]  # a list of Paths: a list of reads
    assert [r.text for r in rec.recognize(tuple(str(p) for p in CROPS))] == [r.text for r in one]
    assert rec.recognize(str(CROPS[0])).text == one[0].text and rec.recognize([]) == []
    with pytest.raises(ImageError, match="does not exist"):
        rec.recognize([CROPS[0], CROPS[0].with_name("missing.jpg")])


def test_a_huge_crop_is_read_small(rec):
    """A crop 40x the model's input is shrunk once; its second look warps the small crop (same read as the
    original crop, no full-resolution warps)."""
    crop = cv2.imread(str(CROPS[0]))
    big = cv2.resize(crop, (94 * 40, 24 * 40), interpolation=cv2.INTER_CUBIC)
    tracemalloc.start()
    try:
        read = rec.recognize(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read.text == rec.recognize(crop).text
    assert peak < big.nbytes  # a full-resolution warp alone would allocate a copy of it


BAD_CALLS = {
    "Recognizer(123)": (lambda: Recognizer(123), ArgumentError),
    "Recognizer(None)": (lambda: Recognizer(None), ArgumentError),
    "method='foo'": (lambda: Recognizer("latin", method="foo"), ArgumentError),
    "top_n=0": (lambda: Recognizer("latin", top_n=0), ArgumentError),
    "top_n=2.5": (lambda: Recognizer("latin", top_n=2.5), ArgumentError),
    "threads=0": (lambda: Recognizer("latin", threads=0), ArgumentError),
    "accept_confidence=nan": (lambda: Recognizer("latin", accept_confidence=float("nan")), ArgumentError),
    "second_look='no'": (lambda: Recognizer("latin", second_look="no"), ArgumentError),
    "region=['cn']": (lambda: Recognizer("latin", region=["cn"]), RegionError),
    "region='xx'": (lambda: Recognizer("latin", region="xx"), RegionError),
    "recognize region=['cn']": (lambda: Recognizer("latin").recognize(CROPS[0], region=["cn"]), RegionError),
    "recognize(None)": (lambda: Recognizer("latin").recognize(None), ImageError),
    "recognize(42)": (lambda: Recognizer("latin").recognize(42), ImageError),
    "load_bundle(None)": (lambda: load_bundle(None), ArgumentError),
    "load_bundle(3.5)": (lambda: load_bundle(3.5), ArgumentError),
    "load_bundle('')": (lambda: load_bundle(""), LprError),
    "PlateTracker.update(None)": (lambda: PlateTracker().update(None), ArgumentError),
    "PlateTracker.update(array)": (lambda: PlateTracker().update(np.zeros((4, 4, 3))), ArgumentError),
    "open_source('')": (lambda: open_source(""), CaptureError),
    "open_source('  ')": (lambda: open_source("  "), CaptureError),
    "open_source(1.5)": (lambda: open_source(1.5), CaptureError),
    "Pipeline(recognizers='latin')": (lambda: Pipeline(recognizers="latin"), ArgumentError),
    "Pipeline(detector=5)": (lambda: Pipeline(detector=5), ArgumentError),
    "Pipeline(region=['cn'])": (lambda: Pipeline(region=["cn"]), RegionError),
    "Pipeline(method='warp')": (lambda: Pipeline(method="warp"), ArgumentError),
    "Pipeline(margins=[(2, 0)])": (lambda: Pipeline(margins=[(2, 0)]), ArgumentError),
    "Pipeline(margins=[0.1])": (lambda: Pipeline(margins=[0.1]), ArgumentError),
    "Pipeline(min_confidence=-1)": (lambda: Pipeline(min_confidence=-1), ArgumentError),
    "Pipeline().process(None)": (lambda: Pipeline(recognizers=["latin"]).process(None), ImageError),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_api_arguments_are_typed_lpr_errors(case):
    call, error = BAD_CALLS[case]
    with pytest.raises(error) as e:
        call()
    assert isinstance(e.value, LprError) and "\n" not in str(e.value)


def test_pipeline_reads_a_16_bit_frame_as_its_8_bit_self():
    frame = cv2.imread(str(sorted((REPO / "samples" / "drive").glob("*.jpg"))[0]))
    pipe = Pipeline("detector", ["latin"], margins=((0.04, 0.1),))
    want = [p.text for p in pipe.process(frame).plates]
    assert want and [p.text for p in pipe.process(frame.astype(np.uint16) * 257).plates] == want
    assert [p.text for p in pipe.process(frame.astype(np.float32) / 255).plates] == want


def test_the_opencv_pixel_limit_matches_the_sdk_limit():
    init = (REPO / "sdk" / "__init__.py").read_text()
    assert f'"OPENCV_IO_MAX_IMAGE_PIXELS", "{MAX_IMAGE_PIXELS}"' in init
    assert Path(REPO / "sdk" / "image.py").is_file()
