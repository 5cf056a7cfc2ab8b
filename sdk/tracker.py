"""Plates followed across frames: one fused read per vehicle instead of one read per frame.

A plate seen in consecutive frames is matched to the track whose predicted position (its last box moved on at
its recent speed) is nearest, with sure reads deciding first (two sure reads of different texts are different
plates; a sure read of a track's text rejoins it wherever it is). The track's read is fused from every frame's
top-N candidates: their probabilities are summed per text, so a plate misread in a few frames (far away,
blurred) still gets the text most frames agree on. A track ends when it has not been seen for ``max_age``
frames; then its fused read is final. Motion is measured in the camera's frames (``FrameResult.position``), so a
live source that drops a varying number of frames while the pipeline is busy does not throw off the prediction;
age is counted in the frames read.

>>> from sdk import Pipeline, PlateTracker, open_source
>>> pipe, tracker = Pipeline("detector", ["latin"]), PlateTracker()
>>> with open_source("samples/drive") as frames:
...     for result in pipe.run(frames):
...         for vehicle in tracker.update(result).ended:
...             print(vehicle.text, vehicle.frames)
>>> for vehicle in tracker.flush():  # the tracks still open when the source ends
...     print(vehicle.text, vehicle.frames)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sdk.decode import Candidate
from sdk.errors import ArgumentError, LprError
from sdk.evaluate import edit_distance
from sdk.formats import match_format
from sdk.pipeline import FrameResult, PlateRead

# A track whose fused read is less sure than this is not reported. On rendered drives (benchmarks/track_clips.py)
# 0.3 drops 32 of 36 tracks that match no plate (car parts read as text) and no right read with the latin bundle,
# 19 of 34 and 2 right (low-confidence) reads of 69 with the cn bundle.
MIN_CONFIDENCE = 0.3
# Reads at least this sure say which plate a box holds: a sure read more than TEXT_DISTANCE characters away from
# a sure track's text is another plate, however near its box; a sure read equal to an open track's text rejoins
# that track wherever it is (a plate lost for a few frames, or a camera that skips frames).
SURE = 0.5
TEXT_DISTANCE = 2
# A track keeps the votes of at most 2x this many texts; past that only this many most voted are kept.
MAX_TEXTS = 64


@dataclass(frozen=True)
class TrackedPlate:
    """The fused read of one track (one vehicle's plate over the frames it was seen in).

    ``confidence`` is the mean probability of ``text`` over those frames (a frame whose candidates lack it counts
    0); ``best`` is that frame's read of ``text`` with the highest confidence (its box and corners locate a
    snapshot), or the most confident read when no frame read ``text`` first."""

    track_id: int
    text: str
    confidence: float
    region: str | None
    candidates: tuple[Candidate, ...]
    first_frame: int
    last_frame: int
    frames: int
    best: PlateRead

    def to_dict(self) -> dict[str, Any]:
        return {
            "track": self.track_id,
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "region": self.region,
            "candidates": [{"text": c.text, "confidence": round(c.confidence, 4)} for c in self.candidates],
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "frames": self.frames,
            "best": self.best.to_dict(),
        }


@dataclass(frozen=True)
class TrackStep:
    """What one frame did to the tracks: the track id of each of its plates (in ``result.plates`` order) and
    the tracks that ended with it."""

    ids: tuple[int, ...]
    ended: tuple[TrackedPlate, ...]

    def frame_dict(self, result: FrameResult) -> dict[str, Any]:
        """``result.to_dict()`` with each plate's ``track`` id."""
        d = result.to_dict()
        for plate, track_id in zip(d["plates"], self.ids, strict=True):
            plate["track"] = track_id
        return d


@dataclass
class Tally:
    """What fusion needs of a track's reads, in memory that does not grow with the frames (a parked car may stay
    in view for days): the count, each text's votes (its candidates' probabilities summed over the frames), each
    first-choice text's most confident read, the regions the reads were matched to (first seen first), and per
    first-choice text how often each region was given."""

    n: int = 0
    votes: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    best: dict[str, PlateRead] = field(default_factory=dict)
    regions: dict[str, None] = field(default_factory=dict)
    text_regions: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, read: PlateRead) -> None:
        self.n += 1
        for c in read.candidates or (Candidate(read.text, read.confidence),):
            self.votes[c.text] += c.confidence
        if read.text not in self.best or read.confidence > self.best[read.text].confidence:
            self.best[read.text] = read
        if read.region:
            self.regions.setdefault(read.region)
            self.text_regions[read.text][read.region] += 1
        if len(self.votes) > 2 * MAX_TEXTS:  # days of noisy reads: forget the least voted texts
            keep = dict(sorted(self.votes.items(), key=lambda kv: kv[1], reverse=True)[:MAX_TEXTS])
            self.votes = defaultdict(float, keep)
            self.best = {t: r for t, r in self.best.items() if t in keep or t == read.text}  # never empty
            self.text_regions = defaultdict(Counter, {t: c for t, c in self.text_regions.items() if t in keep})

    @classmethod
    def of(cls, reads: Iterable[PlateRead]) -> Tally:
        tally = cls()
        for read in reads:
            tally.add(read)
        return tally


@dataclass
class _Track:
    id: int
    first_frame: int
    last_frame: int
    box: np.ndarray  # (4,) x0, y0, x1, y1 of the last read
    last_pos: int = 0  # stream position of the last read (FrameResult.position)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # centre shift per stream frame
    tally: Tally = field(default_factory=Tally)

    def leading(self) -> tuple[str, float]:
        """The most voted text so far and the highest confidence a frame read it with (0 if none did)."""
        text = max(self.tally.votes.items(), key=lambda kv: kv[1])[0]
        best = self.tally.best.get(text)
        return text, best.confidence if best else 0.0

    def predicted(self, pos: int) -> np.ndarray:
        return self.box + np.tile(self.velocity * (pos - self.last_pos), 2)

    def add(self, result: FrameResult, read: PlateRead, jumped: bool = False) -> None:
        """Add a frame's read; ``jumped``: it rejoined by its text from elsewhere (no speed to learn from)."""
        box = np.asarray(read.box, np.float64)
        if jumped:
            self.velocity = np.zeros(2)
        elif self.tally.n:
            shift = (_centre(box) - _centre(self.box)) / max(result.position - self.last_pos, 1)
            self.velocity = shift if self.tally.n == 1 else 0.5 * self.velocity + 0.5 * shift
        self.box, self.last_frame, self.last_pos = box, result.index, result.position
        self.tally.add(read)

    def fused(self, top_n: int) -> TrackedPlate:
        return fuse(self.id, self.first_frame, self.last_frame, self.tally, top_n)


class PlateTracker:
    """Follows plates across the frames of one source and fuses each track's reads.

    Args:
        max_age: frames read in which a track may go unseen before it ends (a plate hidden for a moment keeps
            its track).
        max_distance: a plate joins a track when its box centre lies within this many plate widths of the
            track's predicted centre (and the widths differ by less than 2x); the nearest pairs match first.
        min_frames: tracks seen in fewer frames are dropped when they end (a one-frame false detection).
        min_confidence: tracks whose fused confidence is lower are dropped when they end (something plate-like
            that no frame could read).
        top_n: fused candidates kept per track.
    """

    def __init__(
        self,
        max_age: int = 8,
        max_distance: float = 1.0,
        min_frames: int = 2,
        min_confidence: float = MIN_CONFIDENCE,
        top_n: int = 5,
    ) -> None:
        if max_age < 1 or max_distance <= 0 or min_frames < 1 or top_n < 1 or not 0 <= min_confidence <= 1:
            raise LprError(
                "tracker: max_age, min_frames and top_n must be >= 1, max_distance > 0, min_confidence in [0, 1]"
            )
        self.max_age, self.max_distance, self.min_frames, self.top_n = max_age, max_distance, min_frames, top_n
        self.min_confidence = min_confidence
        self._tracks: list[_Track] = []
        self._next_id = 1

    def update(self, result: FrameResult) -> TrackStep:
        """Add one frame's plates (frames in index order); returns their track ids and the tracks that ended."""
        if not isinstance(result, FrameResult):
            raise ArgumentError(f"PlateTracker.update needs a FrameResult (from Pipeline), got {type(result).__name__}")
        index = result.index
        gone = [t for t in self._tracks if index - t.last_frame > self.max_age]
        self._tracks = [t for t in self._tracks if t not in gone]
        ids = [0] * len(result.plates)
        for p, t, jumped in self._match(result.plates, result.position):
            self._tracks[t].add(result, result.plates[p], jumped)
            ids[p] = self._tracks[t].id
        for p, read in enumerate(result.plates):
            if not ids[p]:
                track = _Track(self._next_id, index, index, np.asarray(read.box, np.float64))
                track.add(result, read)
                self._tracks.append(track)
                ids[p] = track.id
                self._next_id += 1
        return TrackStep(tuple(ids), self._finish(gone))

    def flush(self) -> tuple[TrackedPlate, ...]:
        """End every open track (the source ended) and return their fused reads."""
        gone, self._tracks = self._tracks, []
        return self._finish(gone)

    @property
    def active(self) -> tuple[TrackedPlate, ...]:
        """The fused reads so far of the open tracks (e.g. for a live display)."""
        return tuple(t.fused(self.top_n) for t in self._tracks)

    def _finish(self, tracks: list[_Track]) -> tuple[TrackedPlate, ...]:
        fused = (t.fused(self.top_n) for t in tracks)
        return tuple(v for v in fused if v.frames >= self.min_frames and v.confidence >= self.min_confidence)

    def _match(self, plates: tuple[PlateRead, ...], pos: int) -> list[tuple[int, int, bool]]:
        """(plate, track, joined by text alone) triples. A plate may join a track within ``max_distance`` plate
        widths of where it is predicted (widths within 2x), unless both reads are sure and their texts differ
        by more than TEXT_DISTANCE; a sure read equal to a sure track's text may join it wherever it is. Pairs
        whose texts are both sure go first, then the nearest."""
        leading = [t.leading() for t in self._tracks]
        pairs = []
        for p, read in enumerate(plates):
            box = np.asarray(read.box, np.float64)
            for t, track in enumerate(self._tracks):
                text, conf = leading[t]
                sure = min(read.confidence, conf) >= SURE
                if sure and read.text != text and edit_distance(read.text, text) > TEXT_DISTANCE:
                    continue
                pred = track.predicted(pos)
                w_pred, w_new = pred[2] - pred[0], box[2] - box[0]
                d = np.inf
                if 0.5 < w_new / max(w_pred, 1e-6) < 2.0:
                    d = float(np.linalg.norm(_centre(box) - _centre(pred))) / max(w_pred, w_new, 1e-6)
                if d <= self.max_distance or (sure and read.text == text):
                    pairs.append((not sure, d, p, t))
        taken_p, taken_t, out = set(), set(), []
        for _, d, p, t in sorted(pairs):
            if p not in taken_p and t not in taken_t:
                taken_p.add(p)
                taken_t.add(t)
                out.append((p, t, d > self.max_distance))
        return out


def fuse(track_id: int, first: int, last: int, tally: Tally, top_n: int = 5) -> TrackedPlate:
    """One track's read from its frames' candidate votes (:class:`Tally`; ``Tally.of(reads)`` for a list).

    A text that fits a plate format of a region the track's reads were matched to beats one that does not;
    among those, the most votes win. ``candidates`` are the most voted texts, most first."""

    def fits(text: str) -> str | None:
        return next((r for r in tally.regions if match_format(text, r)), None)

    by_votes = sorted(tally.votes.items(), key=lambda kv: kv[1], reverse=True)
    text, score = max(by_votes, key=lambda kv: (fits(kv[0]) is not None, kv[1]))
    n = tally.n
    best = tally.best.get(text) or max(tally.best.values(), key=lambda r: r.confidence)
    seen = tally.text_regions.get(text)  # the region the frames' reads of ``text`` were given
    region = seen.most_common(1)[0][0] if seen else fits(text)
    candidates = tuple(Candidate(t, v / n) for t, v in by_votes[:top_n])
    return TrackedPlate(track_id, text, score / n, region, candidates, first, last, n, best)


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
