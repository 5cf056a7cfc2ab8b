"""Frame sources with real OpenCV and files written in tmp_path; camera dropouts through scripted openers."""

from __future__ import annotations

import importlib.machinery
import itertools
import json
import logging
import subprocess
import sys
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from sdk.capture import (
    MAX_EMPTY_FRAMES,
    FolderSource,
    Frame,
    FrameSource,
    LatestFrameCapture,
    PiCameraSource,
    Reconnector,
    VideoSource,
    open_source,
)
from sdk.errors import CaptureError, LprError

H, W = 48, 64


def _write(path: Path, img: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture()
def image_dir(tmp_path: Path) -> Path:
    """Colour, grayscale and BGRA images, a corrupt .jpg and a non-image file, named to test natural order."""
    d = tmp_path / "imgs"
    d.mkdir()
    _write(d / "frame1.png", np.full((H, W, 3), (255, 0, 0), np.uint8))  # pure blue in BGR
    _write(d / "frame2.png", np.full((H, W), 77, np.uint8))  # grayscale
    _write(d / "frame10.png", np.full((H, W, 4), (0, 0, 255, 128), np.uint8))  # red BGRA, half transparent
    (d / "frame3.jpg").write_bytes(b"this is not a jpeg")
    (d / "notes.txt").write_text("ignored")
    return d


@pytest.fixture()
def video_file(tmp_path: Path) -> Path:
    """Seven 64x48 MJPG frames in an .avi: frame i is blue with brightness 30 * i + 20."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    assert writer.isOpened(), "this OpenCV cannot write MJPG .avi"
    for i in range(7):
        writer.write(np.full((H, W, 3), (30 * i + 20, 0, 0), np.uint8))
    writer.release()
    return path


# --- folders --------------------------------------------------------------------------------------------------


def test_folder_natural_order_bgr_and_skips_corrupt(image_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sdk.capture"), FolderSource(image_dir) as src:
        frames = list(src)
        assert src.read() is None  # stays ended
    assert [f.source for f in frames] == ["frame1.png", "frame2.png", "frame10.png"]
    assert [f.index for f in frames] == [0, 1, 2]
    for f in frames:
        assert isinstance(f, Frame)
        assert f.image.shape == (H, W, 3) and f.image.dtype == np.uint8
    assert tuple(frames[0].image[0, 0]) == (255, 0, 0)
    assert tuple(frames[1].image[0, 0]) == (77, 77, 77)
    assert tuple(frames[2].image[0, 0]) == (0, 0, 255)
    assert frames[0].timestamp <= frames[1].timestamp <= frames[2].timestamp
    assert src.skipped == 1 and src.reconnects == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "frame3.jpg" in warnings[0] and "\n" not in warnings[0]


def test_folder_loop_repeats_and_keeps_counting(image_dir: Path) -> None:
    with FolderSource(image_dir, loop=True) as src:
        frames = list(itertools.islice(src, 7))
    assert [f.index for f in frames] == list(range(7))
    assert [f.source for f in frames][3:6] == ["frame1.png", "frame2.png", "frame10.png"]
    assert src.skipped == 2  # the corrupt file, once per pass
    assert not src.is_open


@pytest.mark.parametrize("loop", [True, False])
def test_folder_of_nothing_readable_raises(tmp_path: Path, loop: bool) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    with FolderSource(tmp_path, loop=loop) as src, pytest.raises(CaptureError, match="no readable image"):
        src.read()
    assert src.skipped == 1


def test_folder_empty_or_missing_raises_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(CaptureError, match="no images") as e:
        FolderSource(tmp_path).open()
    assert "\n" not in str(e.value) and isinstance(e.value, LprError)
    with pytest.raises(CaptureError, match="does not exist"), FolderSource(tmp_path / "absent"):
        pass


def test_single_image_file_and_iteration_without_with(image_dir: Path) -> None:
    src = FolderSource(image_dir / "frame2.png")
    frames = list(src)  # iterating an unopened source opens it and closes it at the end
    assert len(frames) == 1 and frames[0].image.shape == (H, W, 3)
    assert not src.is_open
    with pytest.raises(CaptureError, match="not open"):
        src.read()


# --- video files ----------------------------------------------------------------------------------------------


def test_video_file_reads_to_end_cleanly(video_file: Path) -> None:
    with VideoSource(str(video_file)) as src:
        frames = list(src)
        assert src.read() is None
    assert len(frames) == 7
    assert all(f.image.shape == (H, W, 3) and f.image.dtype == np.uint8 for f in frames)
    assert [f.index for f in frames] == list(range(7))
    assert frames[0].source == str(video_file)
    for i, f in enumerate(frames):  # MJPG is lossy: blue within a few levels, red and green near 0
        b, g, r = f.image.reshape(-1, 3).mean(axis=0)
        assert abs(b - (30 * i + 20)) < 8 and g < 8 and r < 8
    assert src.reconnects == 0 and src.skipped == 0 and not src.reconnect


def test_context_manager_releases_capture_on_every_path(video_file: Path) -> None:
    caps: list[cv2.VideoCapture] = []

    def opener() -> cv2.VideoCapture:
        caps.append(cv2.VideoCapture(str(video_file)))
        return caps[-1]

    with VideoSource(str(video_file), opener=opener) as src:
        assert src.read() is not None and caps[0].isOpened()
    assert not caps[0].isOpened() and not src.is_open

    with pytest.raises(RuntimeError), VideoSource(str(video_file), opener=opener) as src:
        src.read()
        raise RuntimeError("boom in the frame loop")
    assert len(caps) == 2 and not caps[1].isOpened()


def test_unopenable_sources_raise_capture_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match=r"cannot open video source .*missing\.mp4: no such file"):
        VideoSource(str(tmp_path / "missing.mp4")).open()
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\0" * 64)
    with pytest.raises(CaptureError, match="cannot open video source"), VideoSource(str(garbage)):
        pass


@pytest.mark.parametrize("source", ["/dev/video63", "rtsp://127.0.0.1:9/none"])
def test_failed_open_prints_one_line_not_opencv_log(source: str) -> None:
    """OpenCV and FFmpeg log each backend they try on the process's stderr; the CLI says one line instead."""
    code = "import sys; from sdk.cli import main; sys.argv = ['lpr-sdk', 'run', '--source', sys.argv[1]]; main()"
    r = subprocess.run([sys.executable, "-c", code, source], capture_output=True, text=True, timeout=120)
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: cannot open video source"), lines


# --- live sources: scripted captures --------------------------------------------------------------------------


class FakeCapture:
    """A capture-like object delivering ``frames`` (None = an empty frame) then failing, like a dropped camera."""

    def __init__(self, frames: list[np.ndarray | None] | None = None, opened: bool = True) -> None:
        self.frames = list(frames or [])
        self.opened = opened
        self.released = False

    def isOpened(self) -> bool:
        return self.opened and not self.released

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.released or not self.opened or not self.frames:
            return False, None
        return True, self.frames.pop(0)

    def release(self) -> None:
        self.released = True


def _frames(n: int, value: int = 100) -> list[np.ndarray | None]:
    return [np.full((H, W, 3), value + i, np.uint8) for i in range(n)]


def _opener(caps):
    """Return an opener handing out ``caps`` in turn (an exception instance is raised instead)."""
    it = iter(caps)
    handed: list[FakeCapture] = []

    def opener() -> FakeCapture:
        cap = next(it)
        if isinstance(cap, BaseException):
            raise cap
        handed.append(cap)
        return cap

    opener.handed = handed  # type: ignore[attr-defined]
    return opener


def test_camera_dropout_reconnects_with_capped_backoff(caplog: pytest.LogCaptureFixture) -> None:
    gray = np.full((H, W), 9, np.uint8)
    first = FakeCapture([*_frames(2), None, gray])  # an empty frame is skipped; grayscale comes out BGR
    down = [FakeCapture(opened=False) for _ in range(4)] + [OSError("host unreachable")]
    back = FakeCapture(_frames(3, value=200))
    opener = _opener([first, *down, back])
    sleeps: list[float] = []
    src = VideoSource("rtsp://user:secret@cam.local/stream", opener=opener, sleep=sleeps.append)
    assert src.reconnect and src.name == "rtsp://***@cam.local/stream"
    with caplog.at_level(logging.WARNING, logger="sdk.capture"), src:
        frames = [src.read() for _ in range(6)]
    assert all(f is not None for f in frames)
    assert [f.index for f in frames] == list(range(6))
    assert all(f.image.shape == (H, W, 3) for f in frames)
    assert tuple(frames[2].image[0, 0]) == (9, 9, 9)
    assert [int(f.image[0, 0, 0]) for f in frames[3:]] == [200, 201, 202]
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]  # doubled, capped at backoff[1]
    assert src.reconnects == 1 and src.skipped == 1
    assert all(cap.released for cap in [first, *down[:4], back])
    text = caplog.text
    assert "secret" not in text
    assert sum("reconnect attempt" in r.getMessage() for r in caplog.records) >= 6


def test_second_dropout_starts_backoff_again() -> None:
    opener = _opener(
        [FakeCapture(_frames(1)), FakeCapture(opened=False), FakeCapture(_frames(1)), FakeCapture(_frames(1))]
    )
    sleeps: list[float] = []
    with VideoSource(0, opener=opener, sleep=sleeps.append, backoff=(0.25, 1.0)) as src:
        assert [src.read() is not None for _ in range(3)] == [True] * 3
    assert sleeps == [0.25, 0.5, 0.25]
    assert src.reconnects == 2


def test_camera_that_never_comes_back_gives_up_after_max_retries() -> None:
    never = itertools.chain([FakeCapture(_frames(1))], (FakeCapture(opened=False) for _ in itertools.count()))
    sleeps: list[float] = []
    with VideoSource("/dev/video0", opener=_opener(never), sleep=sleeps.append, max_retries=3) as src:
        assert src.read() is not None
        with pytest.raises(CaptureError, match="did not come back after 3 attempts"):
            src.read()
    assert sleeps == [0.5, 1.0, 2.0]
    assert src.reconnects == 0


def test_capture_that_opens_but_never_delivers_counts_as_failed() -> None:
    opener = _opener([FakeCapture(_frames(1)), *(FakeCapture([]) for _ in range(5))])
    sleeps: list[float] = []
    with VideoSource(1, opener=opener, sleep=sleeps.append, max_retries=2) as src:
        assert src.read() is not None
        with pytest.raises(CaptureError, match="after 2 attempts"):
            src.read()
    assert sleeps == [0.5, 1.0]


def test_endless_empty_frames_end_a_source_without_reconnect() -> None:
    cap = FakeCapture([None] * (MAX_EMPTY_FRAMES + 10))
    with VideoSource(0, reconnect=False, opener=lambda: cap) as src:
        assert src.read() is None
    assert src.skipped == MAX_EMPTY_FRAMES and cap.released


class PacedCapture(FakeCapture):
    """A camera delivering a frame every ``period`` seconds (frame i has value i), then failing."""

    def __init__(self, n: int, period: float = 0.002) -> None:
        super().__init__([np.full((H, W, 3), i, np.uint8) for i in range(n)])
        self.period = period

    def read(self) -> tuple[bool, np.ndarray | None]:
        time.sleep(self.period)
        return super().read()


def test_latest_frame_reader_skips_what_a_slow_reader_missed() -> None:
    """A reader slower than the camera gets ever newer frames, in order, and counts the ones it never saw; when
    the camera stops it reads False like cv2.VideoCapture, and release() stops the thread first."""
    cam = PacedCapture(200)
    cap = LatestFrameCapture(cam)
    seen = []
    for _ in range(5):
        time.sleep(0.03)  # the pipeline: slower than the camera
        ok, image = cap.read()
        assert ok
        seen.append(int(image[0, 0, 0]))
    assert seen == sorted(set(seen)) and seen[-1] > 10  # newer each time, and far past frame 4
    assert cap.dropped == seen[-1] + 1 - len(seen)
    while cap.read()[0]:  # to the end of the camera's 200 frames
        pass
    assert cap.read() == (False, None)
    cap.release()
    assert cam.released and not cap.isOpened()


def test_video_source_reads_a_live_camera_for_its_newest_frame(video_file: Path, monkeypatch) -> None:
    """Cameras and URLs read the newest frame by default (OpenCV's own reader under the thread here, on a file
    posing as a camera); files read every frame."""
    assert VideoSource(0).latest and VideoSource("rtsp://cam/s").latest and not VideoSource(str(video_file)).latest
    real = cv2.VideoCapture

    class SlowCamera:  # the file through OpenCV's reader, at a camera's pace
        def __init__(self, src: object) -> None:
            self.cap = real(str(video_file))
            self.isOpened, self.release = self.cap.isOpened, self.cap.release

        def read(self) -> tuple[bool, np.ndarray | None]:
            time.sleep(0.01)
            return self.cap.read()

    monkeypatch.setattr(cv2, "VideoCapture", SlowCamera)
    with VideoSource(0, reconnect=False) as src:
        frames = []
        while (frame := src.read()) is not None:
            frames.append(frame)
            time.sleep(0.035)
    blue = [int(round((f.image[..., 0].mean() - 20) / 30)) for f in frames]  # frame i is 30 * i + 20
    assert blue == sorted(set(blue)) and len(frames) < 7 and src.dropped == 7 - len(frames)
    assert [f.stream_index for f in frames] == blue  # the camera's frame number, dropped frames counted
    assert [f.index for f in frames] == list(range(len(frames)))


def test_a_slow_reader_of_a_network_camera_stays_one_frame_behind() -> None:
    """Through OpenCV's own network reader, a reader at 10 FPS behind a 25 FPS MJPEG camera served over HTTP:
    reading every frame it falls further behind with each read; reading the newest it stays a frame or so
    behind and counts the frames it skipped (benchmarks/live_lag.py, a shorter run)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "live_lag.py"
    r = subprocess.run([sys.executable, str(script), "--reads", "15", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    every, newest = (json.loads(line) for line in r.stdout.splitlines())
    assert (every["latest"], newest["latest"]) == (False, True)
    assert every["lag_frames"]["last"] > every["lag_frames"]["first"] + 10 and every["dropped"] == 0
    assert newest["lag_frames"]["last"] <= 3 and newest["dropped"] > 10


def test_reconnector_validates_its_arguments() -> None:
    with pytest.raises(CaptureError, match="backoff"):
        Reconnector(FakeCapture, "x", backoff=(2.0, 1.0))
    with pytest.raises(CaptureError, match="max_retries"):
        Reconnector(FakeCapture, "x", max_retries=0)


# --- Pi camera ------------------------------------------------------------------------------------------------


def test_picamera_missing_module_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import picamera2 -> ImportError, installed or not
    src = PiCameraSource()
    with pytest.raises(CaptureError) as e, src:
        pass
    assert str(e.value) == (
        "picamera2 is not installed: on a Raspberry Pi OS run `sudo apt install python3-picamera2` "
        '(or pip install "lpr-sdk[pi]")'
    )
    assert not src.is_open


def test_picamera_that_fails_to_import_says_why_and_how_to_fix_it(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real import that fails as apt's picamera2 does in a venv with numpy 2 on Raspberry Pi OS Bookworm (its
    simplejpeg was built for numpy 1.x): a one-line CaptureError naming the fix, not a traceback."""
    pkg = tmp_path / "picamera2"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        'raise ValueError("numpy.dtype size changed, may indicate binary incompatibility. '
        'Expected 96 from C header, got 88 from PyObject")\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    src = open_source("auto")  # found, so chosen over /dev/video0
    assert isinstance(src, PiCameraSource)
    with pytest.raises(CaptureError) as e, src:
        pass
    msg = str(e.value)
    assert msg.startswith("picamera2 is installed but fails to import (ValueError: numpy.dtype size changed")
    assert "pip install --force-reinstall simplejpeg" in msg and "\n" not in msg and not src.is_open


def test_picamera_call_sequence_with_a_stand_in_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a test of libcamera: only that the documented picamera2 calls are made, each request is released, the
    frames skipped between reads are counted from the sensor timestamps, and the camera is closed."""
    calls: list[str] = []
    sensor_ms = iter([1000.0, 1033.3, 1133.3, 1166.7])  # a 30 FPS camera; 2 frames missed before the third read

    class Request:
        def make_array(self, stream: str) -> np.ndarray:
            calls.append(f"array {stream}")
            return np.full((H, W, 3), (1, 2, 3), np.uint8)  # BGR888 in picamera2 arrives as R, G, B

        def get_metadata(self) -> dict:
            return {"SensorTimestamp": int(next(sensor_ms) * 1e6), "FrameDuration": 33333}

        def release(self) -> None:
            calls.append("release")

    class Picamera2:
        def create_video_configuration(self, main: dict) -> dict:
            calls.append(f"config {main['size']} {main['format']}")
            return {"main": main}

        def configure(self, config: dict) -> None:
            calls.append("configure")

        def start(self) -> None:
            calls.append("start")

        def capture_request(self) -> Request:
            return Request()

        def stop(self) -> None:
            calls.append("stop")

        def close(self) -> None:
            calls.append("close")

    module = types.ModuleType("picamera2")
    module.Picamera2 = Picamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    with PiCameraSource(size=(W, H), format="BGR888") as src:
        frames = [src.read() for _ in range(4)]
    assert all(f is not None and f.source == "picamera2" for f in frames)
    assert tuple(frames[0].image[0, 0]) == (3, 2, 1)
    assert [f.stream_index for f in frames] == [0, 1, 4, 5] and src.dropped == 2
    assert calls == [f"config {(W, H)} BGR888", "configure", "start", *["array main", "release"] * 4, "stop", "close"]
    with pytest.raises(CaptureError, match="unsupported picamera2 format"):
        PiCameraSource(format="YUV420")  # type: ignore[arg-type]


# --- open_source ----------------------------------------------------------------------------------------------


def test_open_source_dispatch(
    image_dir: Path, video_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def video(spec: object, **kw: object) -> VideoSource:
        src = open_source(spec, **kw)  # type: ignore[arg-type]
        assert isinstance(src, VideoSource)
        return src

    assert isinstance(open_source("picamera"), PiCameraSource)
    assert isinstance(open_source("picamera2", size=(640, 480)), PiCameraSource)
    assert (video(0).src, video(0).kind, video(0).reconnect) == (0, "device", True)
    assert video("2").src == 2 and video("/dev/video3").src == 3
    assert video(0, size=(640, 480)).size == (640, 480)
    url = video("rtsps://u:p@10.0.0.9:322/live", max_retries=5)
    assert (url.kind, url.reconnect, url.name) == ("url", True, "rtsps://***@10.0.0.9:322/live")
    assert video("https://example.org/cam.mjpg").kind == "url"
    clip = video(str(video_file))
    assert (clip.kind, clip.reconnect) == ("file", False)

    folder = open_source(str(image_dir), loop=True)
    assert isinstance(folder, FolderSource) and folder.loop
    single = open_source(str(image_dir / "frame1.png"))
    assert isinstance(single, FolderSource) and len(list(single)) == 1

    monkeypatch.setitem(sys.modules, "picamera2", None)
    assert video("auto").src == 0 and video(None).src == 0
    module = types.ModuleType("picamera2")
    module.__spec__ = importlib.machinery.ModuleSpec("picamera2", None)
    monkeypatch.setitem(sys.modules, "picamera2", module)
    assert isinstance(open_source("auto"), PiCameraSource)

    with pytest.raises(CaptureError, match="unknown frame source 'nowhere.avi'.*rtsp://") as e:
        open_source("nowhere.avi")
    assert "\n" not in str(e.value)
    with pytest.raises(CaptureError, match="unknown frame source"):
        open_source(str(tmp_path / "missing_dir/"))


def test_frame_source_is_abstract() -> None:
    with pytest.raises(TypeError):
        FrameSource("x")  # type: ignore[abstract]
