"""PlateTracker on hand-made frames (association, hiding, fusion, formats), then on the sample drive through the
pipeline, ``lpr-sdk run --track`` and ``examples/camera_loop.py --track``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import DRIVE, REPO, needs_shipped_detector

from lpr_cli import main
from sdk.dataset import read_scenes
from sdk.decode import Candidate
from sdk.errors import LprError
from sdk.pipeline import FrameResult, PlateRead
from sdk.tracker import PlateTracker, Tally, fuse


def _plate(x: float, y: float, text: str, conf: float = 0.9, others=(), region: str | None = "br") -> PlateRead:
    """A 100x30 plate read at (x, y) whose candidates are ``text`` then ``others`` ((text, confidence) pairs)."""
    cands = (Candidate(text, conf), *(Candidate(t, c) for t, c in others))
    return PlateRead((x, y, x + 100, y + 30), None, 0.9, text, conf, cands, region, "test")


def _frame(index: int, *plates: PlateRead) -> FrameResult:
    return FrameResult(index, plates, {})


def test_tracks_follow_moving_plates_through_a_gap_and_fuse_their_reads():
    """A plate moving 40 px a frame and hidden for two frames keeps its track (its position is predicted from
    its speed); a parked plate misread in one frame still gets the text most frames agree on."""
    tracker = PlateTracker(max_age=3)
    moving, parked = set(), set()
    for i in range(8):
        misread = i == 2  # "A8C1234", with the right text second
        plates = [_plate(500, 400, "A8C1234", others=[("ABC1234", 0.3)]) if misread else _plate(500, 400, "ABC1234")]
        if i not in (3, 4):  # the moving plate is hidden in frames 3 and 4
            plates.insert(0, _plate(40 * i, 100, "XYZ9876"))
        step = tracker.update(_frame(i, *plates))
        assert step.ended == ()
        parked.add(step.ids[-1])
        if len(plates) == 2:
            moving.add(step.ids[0])
    assert len(moving) == len(parked) == 1 and moving != parked
    live = {v.text: v for v in tracker.active}
    assert set(live) == {"XYZ9876", "ABC1234"}
    assert live["XYZ9876"].frames == 6 and (live["XYZ9876"].first_frame, live["XYZ9876"].last_frame) == (0, 7)
    parked = live["ABC1234"]
    assert parked.frames == 8 and parked.candidates[0].text == "ABC1234"
    assert parked.confidence == pytest.approx((7 * 0.9 + 0.3) / 8)
    assert parked.best.text == "ABC1234" and parked.region == "br"
    # nothing seen for max_age frames: both end, each once; a later plate starts a new track
    assert tracker.update(_frame(10)).ended == ()
    ended = tracker.update(_frame(11, _plate(40 * 11, 100, "XYZ9876"))).ended
    assert {v.text for v in ended} == {"XYZ9876", "ABC1234"}
    assert tracker.active[0].track_id == 3 and tracker.flush() == ()  # one frame is below min_frames


def test_motion_is_measured_in_camera_frames_when_a_live_source_drops_some():
    """A plate moving 60 px per camera frame, read unsure (so only its predicted position can match it) in the
    camera frames a busy pipeline got to: 0, 1, 4, 5, 9, 10. Its speed is per camera frame, so it keeps one track
    through the gaps; measured per frame read, the gaps would throw the prediction off by 1.2-2.4 widths."""
    stream = [0, 1, 4, 5, 9, 10]

    def ids(with_stream: bool) -> set[int]:
        tracker = PlateTracker(min_confidence=0)
        out = set()
        for i, pos in enumerate(stream):
            plate = _plate(60 * pos, 100, f"ABC{i}", conf=0.3)
            out |= set(tracker.update(FrameResult(i, (plate,), {}, stream_index=pos if with_stream else None)).ids)
        return out

    assert len(ids(with_stream=True)) == 1
    assert len(ids(with_stream=False)) > 1


def test_nearest_pairs_match_first_and_far_or_resized_boxes_start_new_tracks():
    tracker = PlateTracker(max_distance=1.0, min_frames=1)
    first = tracker.update(_frame(0, _plate(0, 0, "AAA1111"), _plate(150, 0, "BBB2222")))
    # each plate moved 30 px, listed in the other order; a plate 3 widths away and a 3x wider one start tracks
    far, wide = _plate(600, 0, "CCC3333"), PlateRead((120, 0, 420, 90), None, 0.9, "DDD4444", 0.9, (), "br", "t")
    second = tracker.update(_frame(1, _plate(180, 0, "BBB2222"), _plate(30, 0, "AAA1111"), far, wide))
    assert second.ids[:2] == (first.ids[1], first.ids[0])
    assert len(set(second.ids)) == 4 and not set(second.ids[2:]) & set(first.ids)
    assert {v.text for v in tracker.flush()} == {"AAA1111", "BBB2222", "CCC3333", "DDD4444"}


def test_sure_reads_keep_different_plates_apart_and_rejoin_their_own_track():
    """A sure read far from a sure track's text starts a new track though its box is where the track was; a sure
    read equal to a sure track's text rejoins it though its box jumped across the frame (skipped frames)."""
    tracker = PlateTracker(min_frames=1)
    first = tracker.update(_frame(0, _plate(100, 100, "ABC1234")))
    other = tracker.update(_frame(1, _plate(110, 100, "XYZ9876")))  # a different car where the first one was
    assert other.ids != first.ids
    unsure = tracker.update(_frame(2, _plate(120, 100, "XY29876", 0.3)))  # unsure: position decides (nearest)
    assert unsure.ids == other.ids
    jumped = tracker.update(_frame(3, _plate(900, 500, "ABC1234")))
    assert jumped.ids == first.ids
    near = tracker.update(_frame(4, _plate(930, 500, "ABD1234")))  # one character off, where it jumped to
    assert near.ids == first.ids
    # the plate again, and something unsure beside it; next frame the plate is a little nearer to where that
    # unsure thing was than to where its own track predicts it: the sure texts win
    both = tracker.update(_frame(5, _plate(940, 500, "ABC1234"), _plate(1100, 560, "LT", 0.05))).ids
    assert both[0] == first.ids[0] and both[1] not in (first.ids[0], other.ids[0])
    assert tracker.update(_frame(6, _plate(1030, 530, "ABC1234"))).ids == first.ids
    assert sorted(v.text for v in tracker.flush()) == ["ABC1234", "XYZ9876"]


def test_fusion_prefers_a_text_that_fits_a_plate_format():
    """br plates are LLL NNNN (or Mercosul): a 6-character read cannot be one, however many votes it has."""
    reads = [
        _plate(0, 0, "ABC123", 0.6, others=[("ABC1234", 0.3)], region=None),
        _plate(0, 0, "ABC1234", 0.5, others=[("ABC123", 0.45)]),
    ]
    tally = Tally.of(reads)
    assert tally.votes == pytest.approx({"ABC123": 1.05, "ABC1234": 0.8})
    fused = fuse(7, 0, 1, tally)
    assert fused.text == "ABC1234" and fused.region == "br" and fused.confidence == pytest.approx(0.4)
    assert [c.text for c in fused.candidates] == ["ABC123", "ABC1234"]  # most voted first
    assert fused.best is reads[1]
    alone = fuse(7, 0, 0, Tally.of(reads[:1]))  # no read fits a format: votes decide
    assert (alone.text, alone.region) == ("ABC123", None)


def test_a_plate_in_view_for_days_keeps_the_tracker_and_the_stats_in_constant_memory():
    """A parked car stays in view of a camera loop that runs for months: neither its track nor the pipeline's
    running stats may grow with the frames (they used to keep every read and every latency)."""
    import tracemalloc

    from sdk.pipeline import STAGES, RunStats

    tracker, stats, timings = PlateTracker(), RunStats(), dict.fromkeys(STAGES, 1.0)

    def feed(frames: range) -> None:
        for i in frames:  # read right, with a misread second that is new every frame (noise)
            result = FrameResult(i, (_plate(0, 0, "ABC1234", 0.9, others=[(f"A{i:06d}", 0.05)]),), timings)
            tracker.update(result)
            stats.add(result)

    tracemalloc.start()
    try:
        feed(range(0, 4000))  # past the stats' window and Python's first allocations
        before = tracemalloc.get_traced_memory()[0]
        feed(range(4000, 7000))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 10_000, f"{grown} bytes more after 3000 frames"
    (track,) = tracker.active
    assert (track.text, track.frames, track.confidence) == ("ABC1234", 7000, pytest.approx(0.9))
    assert stats.frames == 7000 and stats.summary()["latency_ms_median"]["detect"] == 1.0


def test_tracks_too_short_or_too_unsure_are_not_reported():
    tracker = PlateTracker(min_frames=2, min_confidence=0.3)
    tracker.update(_frame(0, _plate(0, 0, "ABC1234", 0.9), _plate(500, 0, "E3", 0.2), _plate(900, 0, "ONE1111")))
    tracker.update(_frame(1, _plate(0, 0, "ABC1234", 0.9), _plate(500, 0, "E3", 0.25)))
    assert len(tracker.active) == 3  # open tracks are all shown
    assert [v.text for v in tracker.flush()] == ["ABC1234"]


def test_bad_tracker_settings_are_refused():
    for bad in ({"max_age": 0}, {"min_frames": 0}, {"max_distance": 0}, {"min_confidence": 1.5}):
        with pytest.raises(LprError, match="max_age"):
            PlateTracker(**bad)


def _drive_label() -> str:
    (text,) = {s.plates[0].text for s in read_scenes(DRIVE)}
    return text


@needs_shipped_detector
def test_pipeline_and_tracker_read_the_sample_drive_as_one_vehicle():
    from sdk import Pipeline, PlateTracker, open_source

    pipe, tracker = Pipeline("detector", ["latin"]), PlateTracker()
    ids = set()
    with open_source(str(DRIVE)) as frames:
        for result in pipe.run(frames):
            step = tracker.update(result)
            assert step.ended == ()
            ids.update(step.ids)
    (vehicle,) = tracker.flush()
    assert ids == {vehicle.track_id} and vehicle.frames == len(read_scenes(DRIVE))
    assert vehicle.text == _drive_label() and vehicle.best.text == vehicle.text


@needs_shipped_detector
def test_run_track_prints_one_vehicle_with_the_fused_read(tmp_path):
    r = CliRunner().invoke(main, ["run", "--track", "--json", "--recognizer", "latin"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.output.strip().splitlines()]
    frames = [x for x in lines if "frame" in x]
    (vehicle,) = [x["vehicle"] for x in lines if "vehicle" in x]
    assert {p["track"] for f in frames for p in f["plates"]} == {vehicle["track"]}
    assert vehicle["text"] == _drive_label() and lines[-1]["summary"]["vehicles"] == 1
    short = ["run", "--track", "--recognizer", "latin", "--max-frames", "4", "--save-annotated", str(tmp_path)]
    r = CliRunner().invoke(main, short)
    assert r.exit_code == 0 and f"vehicle {vehicle['track']}: " in r.output and "1 vehicle(s)" in r.output
    assert f", vehicle {vehicle['track']})" in r.output.splitlines()[0]  # each read names its vehicle
    assert len(list(tmp_path.glob("frame_*.jpg"))) == 4


@needs_shipped_detector
def test_camera_loop_track_writes_vehicle_lines(tmp_path):
    out = tmp_path / "reads.jsonl"
    cmd = [sys.executable, str(REPO / "examples" / "camera_loop.py"), "--source", str(DRIVE), "--track"]
    r = subprocess.run([*cmd, "--recognizer", "latin", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    vehicles = [x["vehicle"] for x in lines if "vehicle" in x]
    assert [v["text"] for v in vehicles] == [_drive_label()] and lines[-1] == {"vehicle": vehicles[0]}
