"""lpr-sdk device runtime: load an int8 TFLite bundle and read plates, with numpy, OpenCV and LiteRT only."""

import os

# OpenCV reads this limit once, when it loads: set before any sdk module imports cv2, so a format whose header
# sdk.image does not parse is still refused above sdk.image.MAX_IMAGE_PIXELS (the same number) instead of decoded.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", "50000000")

from sdk.bundle import Bundle, Manifest, load_bundle
from sdk.capture import Frame, FrameSource, open_source
from sdk.decode import Candidate, Read
from sdk.detector import Detection, Detector
from sdk.draw import draw
from sdk.errors import (
    ArgumentError,
    BackendError,
    BundleError,
    CaptureError,
    ImageError,
    LprError,
    ManifestError,
    ReaderError,
    ReaderTimeout,
    RegionError,
)
from sdk.pipeline import FrameResult, Pipeline, PlateRead
from sdk.reader import PlateReader, ReaderResult
from sdk.recognizer import Recognizer
from sdk.tracker import PlateTracker, TrackedPlate, TrackStep

__all__ = [
    "ArgumentError",
    "BackendError",
    "Bundle",
    "BundleError",
    "Candidate",
    "CaptureError",
    "Detection",
    "Detector",
    "Frame",
    "FrameResult",
    "FrameSource",
    "ImageError",
    "LprError",
    "Manifest",
    "ManifestError",
    "Pipeline",
    "PlateRead",
    "PlateReader",
    "PlateTracker",
    "Read",
    "ReaderError",
    "ReaderResult",
    "ReaderTimeout",
    "Recognizer",
    "RegionError",
    "TrackStep",
    "TrackedPlate",
    "draw",
    "load_bundle",
    "open_source",
]
