"""lpr-sdk device runtime: load an int8 TFLite bundle and read plates, with numpy, OpenCV and LiteRT only."""

from sdk.bundle import Bundle, Manifest, load_bundle
from sdk.capture import Frame, FrameSource, open_source
from sdk.decode import Candidate, Read
from sdk.detector import Detection, Detector
from sdk.errors import BackendError, BundleError, CaptureError, ImageError, LprError, ManifestError, RegionError
from sdk.pipeline import FrameResult, Pipeline, PlateRead
from sdk.recognizer import Recognizer
from sdk.tracker import PlateTracker, TrackedPlate, TrackStep

__all__ = [
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
    "PlateTracker",
    "Read",
    "Recognizer",
    "RegionError",
    "TrackStep",
    "TrackedPlate",
    "load_bundle",
    "open_source",
]
