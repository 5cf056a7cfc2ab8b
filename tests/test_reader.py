"""sdk.PlateReader (the embedding API) and the thread model of Pipeline/Recognizer, on the shipped bundles.

Every wait here has a timeout, so a hang fails a test instead of hanging the suite; no test measures time."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest
from conftest import DRIVE, REPO, needs_shipped_detector

from sdk import ArgumentError, ImageError, LprError, PlateReader, ReaderError, ReaderTimeout
from sdk.dataset import read_scenes
from sdk.image import read_image
from sdk.pipeline import MARGIN, Pipeline
from sdk.recognizer import Recognizer

pytestmark = needs_shipped_detector
JOIN_S = 120.0  # only a hang gets near it


def _label() -> str:
    return read_scenes(DRIVE)[0].plates[0].text


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [read_image(s.path) for s in read_scenes(DRIVE)]


@pytest.fixture(scope="module")
def fast_pipe() -> Pipeline:
    return Pipeline("detector", ["latin"], margins=(MARGIN,))


def _races():
    spec = importlib.util.spec_from_file_location("reader_races", REPO / "benchmarks" / "reader_races.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _in_thread(fn, *args) -> threading.Thread:
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


def test_reader_reports_each_vehicle_once_and_survives_bad_frames_and_callbacks(frames):
    got, results = [], []

    def on_vehicle(v):
        got.append(v)
        raise RuntimeError("the host's bus is down")  # logged and counted; the reader carries on

    with PlateReader(on_vehicle, recognizers=("latin",), on_result=results.append, buffer=0) as reader:
        for i, f in enumerate(frames):
            assert reader.submit(f if i != 5 else np.zeros((0, 0, 3), np.uint8), wait=True)
    assert (reader.submitted, reader.processed, reader.skipped, reader.dropped) == (16, 15, 1, 0)
    assert reader.callback_errors == 1 and reader.error is None
    assert [v.text for v in got] == [_label()] and got[0].frames == 15
    # every frame's result came, in order, the bad one with its error, then the final flush
    assert [r.index for r in results] == [*range(16), -1]
    assert isinstance(results[5].error, ImageError) and results[5].result is None
    assert results[-1].ended == tuple(got)
    with pytest.raises(ReaderError, match="closed"):  # nothing would read it
        reader.submit(frames[0], wait=True)


def test_newest_frame_wins_and_results_come_by_iterator(frames, fast_pipe):
    reader = PlateReader(pipeline=fast_pipe, buffer=64)
    for f in frames:
        reader.submit(f)  # faster than it reads: the waiting frame is replaced, never queued behind
    reader.close()
    assert reader.processed + reader.dropped == 16 and reader.submitted == 16
    items = list(reader)  # the closed reader's kept results, then the end
    read = [r.index for r in items if r.result is not None]
    assert len(read) == reader.processed and read == sorted(read) and read[-1] == 15  # the newest frame is read
    assert items[-1].index == -1
    assert reader.get(timeout=1) is None  # closed and drained: no wait


def test_close_is_idempotent_and_safe_from_a_callback_and_other_threads(frames, fast_pipe):
    def close_from_callback(r):
        reader.close()  # on the worker thread: asks it to stop, never waits for itself

    reader = PlateReader(pipeline=fast_pipe, on_result=close_from_callback)
    reader.submit(frames[0])
    closers = [_in_thread(reader.close) for _ in range(3)]
    for t in closers:
        t.join(JOIN_S)
    assert not any(t.is_alive() for t in closers)
    reader.close()
    reader.close()
    assert reader.closed and reader.processed == 1


def test_waiting_submit_is_released_by_close(frames, fast_pipe):
    reader = PlateReader(pipeline=fast_pipe, max_pending=1)
    errors: list[BaseException] = []

    def produce():
        try:
            while True:
                reader.submit(frames[0], wait=True, timeout=JOIN_S)
        except BaseException as e:
            errors.append(e)

    producer = _in_thread(produce)
    reader.close()
    producer.join(JOIN_S)
    assert not producer.is_alive() and len(errors) == 1 and isinstance(errors[0], ReaderError)


def test_a_full_slot_times_out_instead_of_blocking(frames, fast_pipe):
    inside, hold = threading.Event(), threading.Event()

    def stuck(r):  # the host's callback hangs: the worker waits in it
        inside.set()
        hold.wait(JOIN_S)

    reader = PlateReader(pipeline=fast_pipe, on_result=stuck)
    try:
        reader.submit(frames[0])  # taken by the worker, which then waits in the callback
        assert inside.wait(JOIN_S)
        reader.submit(frames[1])  # fills the slot
        with pytest.raises(ReaderTimeout):
            reader.submit(frames[2], wait=True, timeout=0.2)
        with pytest.raises(ReaderTimeout):
            reader.close(timeout=0.2)  # the worker is still in the callback
    finally:
        hold.set()
    reader.close()
    assert reader.processed == 2


class _BrokenPipeline(Pipeline):
    """A pipeline with a bug in it: its third frame raises something that is not a bad frame."""

    def process(self, frame, index=0, *args, **kw):
        if index == 2:
            raise ZeroDivisionError("a bug in the pipeline")
        return super().process(frame, index, *args, **kw)


def test_a_worker_failure_is_raised_to_the_host_not_swallowed(frames):
    pipe = _BrokenPipeline("detector", ["latin"], margins=(MARGIN,))
    reader = PlateReader(pipeline=pipe, buffer=8)
    with pytest.raises(ReaderError, match="ZeroDivisionError: a bug in the pipeline") as e:
        for f in frames:
            reader.submit(f, wait=True)
    assert isinstance(e.value.__cause__, ZeroDivisionError)
    with pytest.raises(ReaderError, match="stopped"):  # the iterator gives what came before, then the failure
        items = []
        for r in reader.results(timeout=JOIN_S):
            items.append(r.index)
    assert items == [0, 1]
    reader.close()  # already raised: close does not raise it again

    quiet = PlateReader(pipeline=pipe, buffer=0)  # an error no other call raised: close raises it
    for f in frames[:3]:
        quiet.submit(f, wait=True)
    with pytest.raises(ReaderError, match="ZeroDivisionError"):
        quiet.close()
    quiet.close()


@pytest.mark.parametrize(
    "kwargs",
    [{"max_pending": 0}, {"buffer": -1}, {"on_vehicle": 5}, {"on_result": "x"}, {"pipeline": "detector"}],
)
def test_bad_reader_arguments_are_typed(kwargs, fast_pipe):
    kwargs = {"pipeline": fast_pipe, **kwargs}
    with pytest.raises(ArgumentError):
        PlateReader(**kwargs)


def test_bad_submit_arguments_are_typed(fast_pipe):
    with PlateReader(pipeline=fast_pipe) as reader:
        with pytest.raises(ImageError):
            reader.submit("frame.jpg")
        for timeout in (0, -1, float("nan"), None):
            with pytest.raises(ArgumentError):
                reader.submit(np.zeros((8, 8, 3), np.uint8), timeout=timeout)
    with pytest.raises(ReaderError, match="buffer=0"):
        PlateReader(pipeline=fast_pipe, buffer=0).get()


def test_reader_refuses_a_bad_bundle_in_its_constructor(tmp_path):
    with pytest.raises(LprError):
        PlateReader(print, recognizers=(str(tmp_path / "missing"),))


def test_close_and_submit_races_never_hang(fast_pipe):
    """Three producers (dropping and waiting, good and empty frames) against two closers, 200 times
    (benchmarks/reader_races.py runs 1,000)."""
    races = _races()
    frames = races.race_frames()
    totals = {"submitted": 0, "processed": 0, "dropped": 0, "skipped": 0}
    for seed in range(200):
        counts = races.race(fast_pipe, frames, seed)
        for k in totals:
            totals[k] += counts[k]
    assert totals["submitted"] == totals["processed"] + totals["dropped"] + totals["skipped"]
    assert totals["processed"] and totals["skipped"]  # both kinds of frame were read somewhere


def test_a_shared_pipeline_and_recognizer_read_as_one_thread_does(frames):
    """Four threads on one Pipeline (and one Recognizer) get what one thread gets: calls are serialised."""
    pipe = Pipeline("detector", ["latin"], margins=(MARGIN,))
    small = [cv2.resize(f, (640, 360), interpolation=cv2.INTER_AREA) for f in frames[:8]]
    want = [[(p.text, round(p.confidence, 5)) for p in pipe.process(f).plates] for f in small]
    crops = [cv2.imread(str(p)) for p in sorted((REPO / "samples" / "latin").glob("*.jpg"))[:6]]
    rec = Recognizer("latin")
    want_reads = [rec.recognize(c).text for c in crops]
    got: dict[int, list] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            got[k] = [[(p.text, round(p.confidence, 5)) for p in pipe.process(f).plates] for f in small]
            got[k + 10] = [rec.recognize(c).text for c in crops]
        except BaseException as e:
            errors.append(e)

    threads = [_in_thread(work, k) for k in range(4)]
    for t in threads:
        t.join(JOIN_S)
    assert not any(t.is_alive() for t in threads) and not errors
    assert all(got[k] == want and got[k + 10] == want_reads for k in range(4))


def test_embed_vehicle_example_runs_on_the_sample_drive():
    cmd = [sys.executable, str(REPO / "examples" / "embed_vehicle.py"), "--source", str(DRIVE), "--fps", "0"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert _label() in r.stdout and '"submitted": 16' in r.stderr and '"dropped": 0' in r.stderr
