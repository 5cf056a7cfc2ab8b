"""Frame sources behind one interface: image folders, video files, V4L2/USB cameras, RTSP/HTTP streams, Pi cameras.

Every source is a context manager and an iterable of :class:`Frame` records whose images are BGR uint8
(H, W, 3), whatever the device delivers. Unusable frames are skipped and counted, never raised::

    with open_source("rtsp://cam.local/stream") as source:
        for frame in source:
            ...

Live sources (devices and URLs) reopen themselves with exponential back-off when the camera drops out
(:class:`Reconnector`); a video file ends cleanly.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from sdk.errors import CaptureError, ImageError
from sdk.image import opencv_quiet, read_image, to_bgr
from sdk.types import PiFormat

if TYPE_CHECKING:  # typing.Self is Python 3.11+
    from typing import Self

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
# A device that keeps returning empty frames is treated as dropped out after this many in a row.
MAX_EMPTY_FRAMES = 25
_DEVICE_PATH = re.compile(r"/dev/video(\d+)")


@dataclass(frozen=True, eq=False)  # eq=False: arrays do not compare to a bool, so frames compare by identity
class Frame:
    """One captured image.

    Attributes:
        image: BGR uint8 array of shape (H, W, 3).
        index: 0-based count of frames the source has delivered before this one.
        timestamp: ``time.monotonic()`` when the frame was captured.
        source: Human-readable origin, e.g. an image's file name, a video's name or ``"picamera2"``.
        stream_index: Position in the camera's stream: ``index`` plus the frames the source dropped before this one
            (:attr:`FrameSource.dropped`); None for a frame made by hand (then ``index`` stands for it).
    """

    image: np.ndarray
    index: int
    timestamp: float
    source: str
    stream_index: int | None = None


class CaptureLike(Protocol):
    """The part of ``cv2.VideoCapture`` that :class:`VideoSource` uses."""

    def isOpened(self) -> bool: ...

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


class FrameSource(ABC):
    """Base of all frame sources: a context manager and an iterable of :class:`Frame`.

    Subclasses implement :meth:`open`, :meth:`close` and :meth:`_next_raw`; :meth:`read` converts what they
    return to BGR uint8 and skips (and counts) what cannot be converted.

    Attributes:
        name: Human-readable name of the source (credentials in URLs are masked).
        skipped: Frames or images skipped with a logged warning (unreadable, empty or malformed).
        reconnects: Times a live source came back after dropping out.
        dropped: Frames a live source delivered while the reader was busy, never read (0 for sources that read
            every frame).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.skipped = 0
        self.reconnects = 0
        self._index = 0
        self._is_open = False

    @abstractmethod
    def open(self) -> None:
        """Acquire the underlying device or files; raise :class:`CaptureError` if impossible."""

    @abstractmethod
    def close(self) -> None:
        """Release the underlying device; safe to call more than once."""

    @abstractmethod
    def _next_raw(self) -> tuple[Any, str] | None:
        """Return the next raw image with its label, or None at the clean end of the source."""

    @property
    def dropped(self) -> int:
        """0: this source reads every frame (see :class:`LatestFrameCapture`)."""
        return 0

    @property
    def is_open(self) -> bool:
        """Whether the source has been opened and not closed since."""
        return self._is_open

    def read(self) -> Frame | None:
        """Return the next frame, or None when the source has ended cleanly.

        Raises:
            CaptureError: The source is not open, or a live source cannot be recovered.
        """
        if not self._is_open:
            raise CaptureError(f"frame source {self.name} is not open: use `with source:` or call open() first")
        while True:
            raw = self._next_raw()
            if raw is None:
                return None
            image, label = raw
            try:
                bgr = to_bgr(image)
            except ImageError as e:
                self._skip(f"{label}: {e}")
                continue
            frame = Frame(bgr, self._index, time.monotonic(), label, self._index + self.dropped)
            self._index += 1
            return frame

    def _skip(self, reason: str) -> None:
        self.skipped += 1
        log.warning("%s: skipped (%d so far): %s", self.name, self.skipped, reason)

    def __iter__(self) -> Iterator[Frame]:
        """Yield frames until the source ends; an unopened source is opened here and closed at the end."""
        opened_here = not self._is_open
        if opened_here:
            self.open()
        try:
            while (frame := self.read()) is not None:
                yield frame
        finally:
            if opened_here:
                self.close()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _natural_key(path: Path) -> list[Any]:
    """Sort key putting ``frame2.jpg`` before ``frame10.jpg``."""
    parts = re.split(r"(\d+)", path.name)  # text, digits, text, ...: odd positions are the digit runs
    return [int(part) if i % 2 else part.lower() for i, part in enumerate(parts)]


class FolderSource(FrameSource):
    """The images of a folder (not recursive) in natural name order, or a single image file.

    Unreadable images are skipped, counted in :attr:`skipped` and logged; a pass that finds none readable raises
    :class:`CaptureError`. Each frame's ``source`` is the image's file name.

    Args:
        path: A folder of images, or one image file.
        loop: Start again from the first image after the last one, forever.
        extensions: File name endings (case-insensitive) that count as images.
    """

    def __init__(self, path: str | Path, loop: bool = False, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> None:
        self.path = Path(path)
        super().__init__(self.path.name or str(self.path))
        self.loop = loop
        self.extensions = tuple(e.lower() for e in extensions)
        self._files: list[Path] = []
        self._pos = 0
        self._delivered_this_pass = False

    def open(self) -> None:
        """List the images; raise :class:`CaptureError` if the path is missing or holds no images."""
        if self.path.is_file():
            self._files = [self.path]
        elif self.path.is_dir():
            self._files = sorted(
                (p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in self.extensions),
                key=_natural_key,
            )
            if not self._files:
                raise CaptureError(f"no images ({', '.join(self.extensions)}) in folder {self.path}")
        else:
            raise CaptureError(f"cannot open image folder {self.path}: it does not exist")
        self._pos = 0
        self._index = 0
        self._delivered_this_pass = False
        self._is_open = True

    def close(self) -> None:
        """Forget the file list."""
        self._files = []
        self._is_open = False

    def _next_raw(self) -> tuple[Any, str] | None:
        while True:
            if self._pos >= len(self._files):
                if not self._delivered_this_pass:  # nothing readable: an error, not an empty run (nor a spin)
                    raise CaptureError(f"no readable image in {self.path}: all {len(self._files)} were skipped")
                if not self.loop:
                    return None
                self._pos, self._delivered_this_pass = 0, False
            path = self._files[self._pos]
            self._pos += 1
            try:
                image = read_image(path)
            except ImageError as e:
                self._skip(str(e))
                continue
            self._delivered_this_pass = True
            return image, path.name


class Reconnector:
    """Reopen a dropped capture with exponential back-off; independent of OpenCV so it can be tested alone.

    Each attempt sleeps, then calls ``opener``; the delay starts at ``backoff[0]`` seconds and doubles after
    every failed attempt up to ``backoff[1]``. Call :meth:`reset` once the capture delivers again; a capture
    that opens but drops again before delivering a frame counts as a failed attempt.

    Args:
        opener: Returns a new capture; it counts as failed if it raises or ``isOpened()`` is false.
        name: Name of the source, for log lines and errors.
        backoff: (first delay, largest delay) in seconds.
        max_retries: Consecutive failed attempts before giving up with :class:`CaptureError`; None retries
            forever.
        sleep: The function that waits (injectable for tests).
    """

    def __init__(
        self,
        opener: Callable[[], CaptureLike],
        name: str,
        backoff: tuple[float, float] = (0.5, 8.0),
        max_retries: int | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        first, largest = backoff
        if not 0 < first <= largest:
            raise CaptureError(f"backoff must be (first, largest) with 0 < first <= largest, got {backoff}")
        if max_retries is not None and max_retries < 1:
            raise CaptureError(f"max_retries must be at least 1 or None, got {max_retries}")
        self.opener = opener
        self.name = name
        self.backoff = (float(first), float(largest))
        self.max_retries = max_retries
        self.sleep = sleep
        self.failures = 0  # consecutive failed attempts since the last reset()
        self._delay = self.backoff[0]
        self._pending = False  # a reopened capture has not delivered a frame yet

    def reset(self) -> None:
        """Forget past failures: the next dropout starts again from the shortest delay."""
        self.failures = 0
        self._delay = self.backoff[0]
        self._pending = False

    def reopen(self) -> CaptureLike:
        """Try until the opener yields an open capture; return it.

        Raises:
            CaptureError: ``max_retries`` consecutive attempts failed.
        """
        if self._pending:  # the capture returned last time dropped again before delivering a frame
            self.failures += 1
            self._pending = False
        while True:
            if self.max_retries is not None and self.failures >= self.max_retries:
                raise CaptureError(f"video source {self.name} did not come back after {self.failures} attempts")
            attempt = self.failures + 1
            limit = "" if self.max_retries is None else f"/{self.max_retries}"
            log.warning("%s: no frame; reconnect attempt %d%s in %.1f s", self.name, attempt, limit, self._delay)
            self.sleep(self._delay)
            self._delay = min(self._delay * 2, self.backoff[1])
            cap = None
            try:
                cap = self.opener()
                if cap.isOpened():
                    self._pending = True
                    return cap
            except (cv2.error, OSError) as e:
                log.warning("%s: reconnect attempt %d failed: %s", self.name, attempt, e)
            if cap is not None:
                cap.release()
            self.failures += 1


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log (a failed open prints several WARN/ERROR lines per backend tried), and FFmpeg's
    below fatal for the process unless the user set ``OPENCV_FFMPEG_LOGLEVEL``, unless this module logs at DEBUG:
    :class:`CaptureError` says what went wrong in one line, and broken frames are skipped and counted."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")  # read when OpenCV first opens an FFmpeg capture
    with opencv_quiet():
        yield


def _mask_credentials(url: str) -> str:
    """``rtsp://user:pw@host/x`` -> ``rtsp://***@host/x`` so passwords stay out of logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


class LatestFrameCapture:
    """A live capture read for its newest frame: a thread reads the camera or stream as fast as it delivers and
    keeps only the last frame, so a pipeline slower than the camera reads what is in view now, not a queue of
    the past (OpenCV's RTSP reader falls further behind and, once its buffers overflow, decodes smeared frames).

    :meth:`read` returns a frame newer than the previous one (waiting for it if need be) and counts the frames it
    never returned in :attr:`dropped`; after the camera stops delivering it returns ``(False, None)`` like
    ``cv2.VideoCapture``. Every frame is decoded, dropped or not (for H.264 streams it must be anyway).

    Args:
        cap: The capture to read, already opened.
    """

    def __init__(self, cap: CaptureLike) -> None:
        self._cap = cap
        self._cond = threading.Condition()
        self._latest: tuple[bool, np.ndarray | None] = (False, None)
        self._grabbed = 0  # frames read by the thread
        self._returned = 0  # the grab count of the last frame returned
        self._stopped = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._grab, name="lpr-latest-frame", daemon=True)
        if cap.isOpened():
            self._thread.start()

    def _grab(self) -> None:
        while True:
            try:
                ok, image = self._cap.read()
            except cv2.error:  # a broken stream: as a failed read
                ok, image = False, None
            with self._cond:
                if self._stopped:
                    return
                self._latest = (ok, image)
                self._grabbed += 1
                self._cond.notify_all()
                if not ok:  # the camera stopped delivering: the reader reopens it
                    return

    def isOpened(self) -> bool:
        return self._cap.isOpened()

    def read(self) -> tuple[bool, np.ndarray | None]:
        with self._cond:
            self._cond.wait_for(lambda: self._grabbed > self._returned or not self._thread.is_alive())
            if self._grabbed == self._returned:  # the thread never started or has ended
                return False, None
            self.dropped += self._grabbed - self._returned - 1
            self._returned = self._grabbed
            return self._latest

    def release(self, timeout: float = 5.0) -> None:
        """Stop the thread (it finishes its current read first), then release the capture."""
        with self._cond:
            self._stopped = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():  # stuck in a read: releasing under it could crash OpenCV
            log.warning("capture still reading after %.0f s: left to the process's exit", timeout)
            return
        self._cap.release()


class VideoSource(FrameSource):
    """A ``cv2.VideoCapture``: a camera (index or ``/dev/videoN``), a video file, or an RTSP/HTTP URL.

    A file ends cleanly at its last frame. A camera or URL that stops delivering is released and reopened
    with exponential back-off (see :class:`Reconnector`), and frames carry on when it comes back.

    Args:
        src: Camera index, ``"/dev/videoN"``, a digit string, a video file path, or an rtsp(s)/http(s) URL.
        reconnect: Reopen after a failed read; default True for cameras and URLs, False for files (a file
            with ``reconnect=True`` replays from the start).
        backoff: (first delay, largest delay) in seconds between reopen attempts.
        max_retries: Consecutive failed reopen attempts before :class:`CaptureError`; None retries forever.
        size: (width, height) to request from a camera; cameras only, ignored with a warning otherwise.
        sleep: The function that waits between attempts (injectable for tests).
        opener: Returns a new capture-like object; default ``cv2.VideoCapture(src)`` with ``size`` applied.
        latest: Read the newest frame each time, dropping the ones the reader was too slow for
            (:class:`LatestFrameCapture`, counted in :attr:`dropped`); default True for cameras and URLs, False
            for files (every frame of a file is read). Applies to the default opener.
    """

    def __init__(
        self,
        src: int | str,
        reconnect: bool | None = None,
        backoff: tuple[float, float] = (0.5, 8.0),
        max_retries: int | None = None,
        size: tuple[int, int] | None = None,
        sleep: Callable[[float], object] = time.sleep,
        opener: Callable[[], CaptureLike] | None = None,
        latest: bool | None = None,
    ) -> None:
        if isinstance(src, str) and (m := _DEVICE_PATH.fullmatch(src) or re.fullmatch(r"(\d+)", src)):
            src = int(m.group(1))
        self.src = src
        self.kind: Literal["device", "url", "file"] = (
            "device" if isinstance(src, int) else "url" if src.lower().startswith(URL_SCHEMES) else "file"
        )
        name = f"camera {src}" if isinstance(src, int) else _mask_credentials(src) if self.kind == "url" else src
        super().__init__(name)
        self.reconnect = self.kind != "file" if reconnect is None else reconnect
        self.latest = self.kind != "file" if latest is None else latest
        self._dropped = 0  # by the captures released so far
        self.size = size
        self._opener = opener or self._open_cv
        self._reconnector = Reconnector(self._opener, self.name, backoff, max_retries, sleep)
        self._cap: CaptureLike | None = None
        self._empty_run = 0
        self._ended = False
        self._recovering = False  # dropped out; no frame since

    def _open_cv(self) -> CaptureLike:
        with _quiet_opencv():
            cap = cv2.VideoCapture(self.src)
        if self.size is not None and self.kind == "device" and cap.isOpened():
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        return LatestFrameCapture(cap) if self.latest and cap.isOpened() else cap

    @property
    def dropped(self) -> int:
        """Frames the camera delivered while the reader was busy, never read (``latest``)."""
        return self._dropped + getattr(self._cap, "dropped", 0)

    def _release(self) -> None:
        if self._cap is not None:
            self._dropped += getattr(self._cap, "dropped", 0)
            self._cap.release()
            self._cap = None

    def _hint(self) -> str:
        if self.kind == "device":
            return "check the camera is connected and not in use by another program (ls /dev/video*)"
        if self.kind == "url":
            return "check the URL, credentials and network, and that OpenCV was built with FFmpeg"
        if not Path(self.src).exists():
            return "no such file"
        return "not a video OpenCV can decode"

    def open(self) -> None:
        """Open the capture once (no retries); raise :class:`CaptureError` with a hint if it fails."""
        if self._is_open:
            return
        if self.size is not None and self.kind != "device":
            log.warning("%s: size=%s ignored: a capture size can only be requested from a camera", self.name, self.size)
        try:
            cap = self._opener()
        except (cv2.error, OSError) as e:
            raise CaptureError(f"cannot open video source {self.name}: {e}") from None
        if not cap.isOpened():
            cap.release()
            raise CaptureError(f"cannot open video source {self.name}: {self._hint()}")
        self._cap = cap
        self._index = self._dropped = 0
        self._empty_run = 0
        self._ended = False
        self._recovering = False
        self._reconnector.reset()
        self._is_open = True

    def close(self) -> None:
        """Release the capture."""
        self._release()
        self._is_open = False

    def _next_raw(self) -> tuple[Any, str] | None:
        while not self._ended:
            assert self._cap is not None
            ok, image = self._cap.read()
            if ok and image is not None and image.size:
                self._empty_run = 0
                if self._recovering:  # the first frame after a dropout: it is back
                    self._recovering = False
                    self.reconnects += 1
                    log.warning("%s: reconnected (%d reconnects so far)", self.name, self.reconnects)
                    self._reconnector.reset()
                return image, self.name
            if ok and self._empty_run < MAX_EMPTY_FRAMES:  # delivered, but empty: skip it
                self._empty_run += 1
                self._skip("empty frame")
                continue
            self._on_failed_read()
        return None

    def _on_failed_read(self) -> None:
        """The capture stopped delivering: end a file, or reopen a live source with back-off."""
        self._empty_run = 0
        if not self.reconnect:
            if self.kind != "file":
                log.warning("%s: stopped delivering frames and reconnect is off: the source ends", self.name)
            self._ended = True
            return
        self._release()
        self._recovering = True
        self._cap = self._reconnector.reopen()  # raises CaptureError after max_retries


class PiCameraSource(FrameSource):
    """A Raspberry Pi camera through picamera2 (libcamera), imported only when opened.

    picamera2 names formats after libcamera's little-endian words, so ``"RGB888"`` arrives in numpy as B, G, R
    (what OpenCV expects) and ``"XRGB8888"`` as B, G, R, X; the ``BGR`` variants arrive as R, G, B and are
    swapped here. Some sensor and driver combinations are known to swap red and blue: check a coloured target.

    Each read takes the newest frame (picamera2 keeps only the last completed request, so a slow pipeline never
    reads a backlog); the frames the camera completed in between are counted in :attr:`dropped`, from the gap
    between the frames' sensor timestamps (``SensorTimestamp`` over ``FrameDuration`` in the request's metadata).

    Args:
        size: (width, height) of the main stream.
        format: picamera2 pixel format of the main stream.
    """

    def __init__(self, size: tuple[int, int] = (1280, 720), format: PiFormat = "RGB888") -> None:
        if format not in ("RGB888", "XRGB8888", "BGR888", "XBGR8888"):
            raise CaptureError(f"unsupported picamera2 format {format!r}: use RGB888, XRGB8888, BGR888 or XBGR8888")
        super().__init__("picamera2")
        self.size = (int(size[0]), int(size[1]))
        self.format = format
        self._cam: Any = None
        self._dropped = 0
        self._last_ns: int | None = None  # sensor timestamp of the last frame read

    def open(self) -> None:
        """Configure and start the camera; raise :class:`CaptureError` if picamera2 or the camera is missing."""
        if self._is_open:
            return
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise CaptureError(
                "picamera2 is not installed: on a Raspberry Pi OS run `sudo apt install python3-picamera2` "
                '(or pip install "lpr-sdk[pi]")'
            ) from None
        except Exception as e:  # installed but broken
            raise CaptureError(_picamera2_broken(e)) from None
        try:
            cam = Picamera2()
        except Exception as e:  # no camera attached raises IndexError or RuntimeError, depending on the version
            raise CaptureError(f"no Pi camera found ({e}): check the ribbon cable and `rpicam-hello --list`") from None
        try:
            cam.configure(cam.create_video_configuration(main={"size": self.size, "format": self.format}))
            cam.start()
        except Exception as e:
            cam.close()
            raise CaptureError(f"cannot start the Pi camera at {self.size} {self.format}: {e}") from None
        self._cam = cam
        self._index = self._dropped = 0
        self._last_ns = None
        self._is_open = True

    @property
    def dropped(self) -> int:
        """Frames the camera completed between two reads, never read."""
        return self._dropped

    def close(self) -> None:
        """Stop and close the camera."""
        cam, self._cam = self._cam, None
        self._is_open = False
        if cam is None:
            return
        for step in (cam.stop, cam.close):
            try:
                step()
            except Exception as e:  # never mask the error that made us close
                log.warning("picamera2: %s failed while closing: %s", step.__name__, e)

    def _next_raw(self) -> tuple[Any, str] | None:
        try:
            request = self._cam.capture_request()
            try:
                image, metadata = request.make_array("main"), request.get_metadata()  # make_array copies
            finally:
                request.release()
        except Exception as e:
            raise CaptureError(f"Pi camera capture failed: {e}") from None
        self._count_dropped(metadata)
        if self.format.endswith("BGR888") and isinstance(image, np.ndarray) and image.ndim == 3:
            image = np.ascontiguousarray(image[:, :, 2::-1])  # R, G, B[, X] -> B, G, R
        return image, self.name

    def _count_dropped(self, metadata: dict[str, Any]) -> None:
        ns, frame_us = metadata.get("SensorTimestamp"), metadata.get("FrameDuration")
        if ns is None or not frame_us:
            return
        if self._last_ns is not None:
            self._dropped += max(round((ns - self._last_ns) / (frame_us * 1000)) - 1, 0)
        self._last_ns = ns


def _picamera2_broken(e: Exception) -> str:
    """One line for a picamera2 that is installed but fails to import. The usual case, on Raspberry Pi OS Bookworm:
    a venv with the system's site packages gets numpy 2 from pip (OpenCV's wheels need it), while apt's simplejpeg,
    which picamera2 imports, was built for the system's numpy 1.24."""
    first = (str(e).splitlines() or [""])[0]
    msg = f"picamera2 is installed but fails to import ({type(e).__name__}: {first})"
    if "size changed" in first:
        msg += (
            f": apt's simplejpeg was built for numpy 1.x and this environment has numpy {np.__version__}; "
            "run `pip install --force-reinstall simplejpeg` in it"
        )
    return msg


def open_source(spec: str | int | None, **kw: Any) -> FrameSource:
    """Make the frame source that ``spec`` names (not yet opened).

    Args:
        spec: ``"picamera"``/``"picamera2"``; ``"auto"`` or None (the Pi camera if picamera2 is importable,
            else camera 0); a camera index, digit string or ``/dev/videoN``; an image folder; an image file;
            a video file; or an rtsp(s)/http(s) URL.
        **kw: Passed to the source's constructor (with ``"auto"``, only ``size`` is accepted by both).

    Raises:
        CaptureError: ``spec`` names none of these.
    """
    if spec is None or spec == "auto":
        if importlib.util.find_spec("picamera2") is not None:
            return PiCameraSource(**kw)
        return VideoSource(0, **kw)
    if isinstance(spec, int) and not isinstance(spec, bool):
        return VideoSource(spec, **kw)
    if not isinstance(spec, str):
        raise CaptureError(f"frame source must be a string or a camera index, got {type(spec).__name__}")
    if not spec.strip():  # Path("") is the working directory: never open that by accident
        raise CaptureError("frame source is an empty string: give a camera, file, folder or URL")
    if spec.lower() in ("picamera", "picamera2"):
        return PiCameraSource(**kw)
    if spec.isdigit() or _DEVICE_PATH.fullmatch(spec) or spec.lower().startswith(URL_SCHEMES):
        return VideoSource(spec, **kw)
    path = Path(spec).expanduser()
    if path.is_dir():
        return FolderSource(path, **kw)
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return FolderSource(path, **kw)
        return VideoSource(str(path), **kw)
    raise CaptureError(
        f"unknown frame source {spec!r}: expected 'auto', 'picamera2', a camera index or /dev/videoN, "
        "an existing image folder, image or video file, or an rtsp://, rtsps://, http:// or https:// URL"
    )
