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


class ArgumentError(LprError, ValueError):
    """An argument of a public API call has the wrong type or value (e.g. ``top_n=0``, ``method="foo"``)."""


class ReaderError(LprError):
    """A :class:`sdk.reader.PlateReader` is closed, or its worker stopped on an unexpected error (chained)."""


class ReaderTimeout(ReaderError, TimeoutError):
    """A :class:`sdk.reader.PlateReader` call waited longer than its timeout."""
