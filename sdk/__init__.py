"""lpr-sdk device runtime: load an int8 TFLite bundle and read plates, with numpy, OpenCV and LiteRT only."""

from sdk.bundle import Bundle, Manifest, load_bundle
from sdk.decode import Candidate, Read
from sdk.errors import BackendError, BundleError, ImageError, LprError, ManifestError, RegionError
from sdk.recognizer import Recognizer

__all__ = [
    "BackendError",
    "Bundle",
    "BundleError",
    "Candidate",
    "ImageError",
    "LprError",
    "Manifest",
    "ManifestError",
    "Read",
    "Recognizer",
    "RegionError",
    "load_bundle",
]
