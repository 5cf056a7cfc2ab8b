"""Typed exceptions of the device runtime. Each message is one line saying what is wrong and what to do."""


class LprError(Exception):
    """Base class of every error the SDK raises for bad input."""


class BundleError(LprError):
    """A model bundle is missing, corrupt, or fails its manifest."""


class ManifestError(BundleError):
    """A manifest fails validation or disagrees with its model."""


class ImageError(LprError):
    """An image cannot be read or is empty."""


class RegionError(LprError):
    """An unknown region name."""


class BackendError(LprError):
    """No TFLite interpreter (or requested delegate) is available."""


class CaptureError(LprError):
    """A frame source cannot be opened or read."""
