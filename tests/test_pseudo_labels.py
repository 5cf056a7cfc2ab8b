"""Pseudo-labelling unlabelled plate boxes: the shipped latin bundle as the teacher on frames made in the test."""

from __future__ import annotations

import csv
import random
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from sdk.dataset import read_labels, read_scenes
from sdk.detector import Detector
from sdk.errors import LprError
from sdk.formats import match_format

pytestmark = pytest.mark.train  # the training side's renderer (Pillow)
pytest.importorskip("PIL")  # the renderer that draws the plates

from training.data.pseudo_labels import bundle_teacher, main, plate_text, pseudo_label  # noqa: E402
from training.synth.plates import render_flat_plate  # noqa: E402
from training.synth.scenes import SCENE_COLUMNS  # noqa: E402


def test_plate_text_normalises_and_drops_the_band_code():
    assert plate_text("RO B 276 WOW", "eu") == "B276WOW"
    assert plate_text("b276-wow", "eu") == "B276WOW"
    assert plate_text("ＣＪ１２ＡＢＣ", "eu") == "CJ12ABC"  # full-width, as some OCR engines print
    assert plate_text("SKBA123CD", "eu") == "BA123CD"
    assert plate_text("ABC-1234", "br") == "ABC1234"
    assert plate_text("HELLO WORLD", "eu") is None
    assert plate_text("", "us") is None


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> tuple[Path, list[str]]:
    """Two 640x360 frames, each with two rendered eu plates: three boxes without text, one labelled (a decoy)."""
    d = tmp_path_factory.mktemp("scenes")
    rng = random.Random(11)
    rows, truths = [], []
    for f in range(2):
        frame = np.full((360, 640, 3), 90, np.uint8)
        for k, (x, y) in enumerate([(40, 60), (330, 220)]):
            plate = render_flat_plate("eu", rng)
            img = cv2.resize(cv2.cvtColor(plate.image, cv2.COLOR_RGB2BGR), (260, 58))
            frame[y : y + 58, x : x + 260] = img
            labelled = f == 1 and k == 1
            if not labelled:
                truths.append(plate.text)
            x2, y2 = x + 260, y + 58
            corners = [x, y, x2, y, x2, y2, x, y2]
            rows.append([f"f{f}.jpg", plate.text if labelled else "", "ro", *corners, "test"])
        cv2.imwrite(str(d / f"f{f}.jpg"), frame)
    with open(d / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(SCENE_COLUMNS)
        w.writerows(rows)
    return d, truths


def test_pseudo_label_keeps_confident_reads_that_fit_a_format(frames, tmp_path):
    scenes, truths = frames
    kept, seen = pseudo_label(scenes, tmp_path / "out", bundle_teacher("latin"), "eu", ["ro"], min_score=0.5)
    assert seen == 3  # the labelled box is not read again
    rows = read_labels(tmp_path / "out")
    assert kept == len(rows) >= 2
    for r in rows:
        assert match_format(r.text, "eu") and r.region == "eu"
        crop = cv2.imread(str(r.path))
        assert np.allclose(crop.shape[:2], (58 * 1.2, 260 * 1.2), atol=1)  # the box and its 10 % margin
    assert sum(r.text in truths for r in rows) >= 2  # the teacher read the rendered plates right
    scenes_out = read_scenes(tmp_path / "out" / "scenes")  # the same plates as scene rows, for end-to-end checks
    assert sorted(p.text for f in scenes_out for p in f.plates) == sorted(r.text for r in rows)
    assert all(f.path.is_file() and f.path.parent == scenes for f in scenes_out)


def test_pseudo_label_score_threshold_and_cli(frames, tmp_path, capsys):
    scenes, _ = frames
    kept, seen = pseudo_label(scenes, tmp_path / "none", bundle_teacher("latin"), "eu", min_score=1.01)
    assert (kept, seen) == (0, 3) and read_labels(tmp_path / "none") == []
    args = [str(scenes), str(tmp_path / "cli"), "--region", "eu", "--teacher", "latin", "--min-score", "0.5"]
    assert main(args) == 0 and "of 3 boxes labelled" in capsys.readouterr().out
    assert main([str(scenes), str(tmp_path / "x"), "--region", "xx", "--teacher", "latin"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown region")
    with pytest.raises(LprError, match="labels.csv"):
        pseudo_label(tmp_path, tmp_path / "y", bundle_teacher("latin"), "eu")


def test_pseudo_label_skips_an_unreadable_frame(frames, tmp_path, caplog):
    scenes, _ = frames
    copy = tmp_path / "scenes"
    shutil.copytree(scenes, copy)
    (copy / "f0.jpg").write_bytes(b"not a jpeg")
    kept, seen = pseudo_label(copy, tmp_path / "out", bundle_teacher("latin"), "eu", min_score=0.0)
    assert seen == 1 and kept <= 1  # f1's unlabelled box only
    assert "skipped" in caplog.text and "f0.jpg" in caplog.text


def test_pseudo_label_raw_frames_with_the_detector(frames, tmp_path):
    """A plain image folder (no labels.csv): the shipped detector finds the plates, the teacher reads them."""
    scenes, truths = frames
    raw = tmp_path / "raw"
    raw.mkdir()
    for f in scenes.glob("*.jpg"):
        shutil.copy(f, raw / f.name)
    kept, seen = pseudo_label(raw, tmp_path / "out", bundle_teacher("latin"), "eu", detector=Detector("detector"))
    assert seen >= 3 and kept >= 2
    assert sum(r.text in truths for r in read_labels(tmp_path / "out")) >= 2
    # on the scenes folder the detector adds nothing: every plate it finds overlaps a labelled box
    assert pseudo_label(scenes, tmp_path / "s", bundle_teacher("latin"), "eu", detector=Detector("detector"))[1] == 3


def test_pseudo_label_a_video_reads_every_nth_frame(frames, tmp_path, capsys):
    """A video file: every 2nd frame is read, and the frames that gave a kept read are saved for the scene rows."""
    scenes, truths = frames
    video = tmp_path / "drive.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 360))
    for name in ("f0.jpg", "f0.jpg", "f1.jpg", "f1.jpg"):
        w.write(cv2.imread(str(scenes / name)))
    w.release()
    out = tmp_path / "out"
    kept, seen = pseudo_label(video, out, bundle_teacher("latin"), "eu", detector=Detector("detector"), every=2)
    assert 4 <= seen <= 5 and kept >= 2  # frames 0 (f0) and 2 (f1): two plates each, not four frames' worth
    assert sum(r.text in truths for r in read_labels(out)) >= 2
    saved = sorted(p.name for p in (out / "frames").iterdir())
    assert set(saved) <= {"drive_000000.jpg", "drive_000002.jpg"} and saved
    rows = read_scenes(out / "scenes")
    assert {f.path for f in rows} == {out.resolve() / "frames" / n for n in saved}
    assert sorted(p.text for f in rows for p in f.plates) == sorted(r.text for r in read_labels(out))
    # a video that is not there, and --every 0: one line on stderr, exit 2
    for extra in ([str(tmp_path / "missing.mp4")], [str(video), "--every", "0"]):
        args = [*extra, str(tmp_path / "x"), "--region", "eu", "--teacher", "latin", "--detector", "detector"]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1


def test_label_crops_keeps_format_fitting_reads_and_what_a_second_reader_agrees_with(tmp_path):
    """Unlabelled crops (the crops format with empty texts) read by the shipped latin bundle: kept reads fit a br
    format; a teacher whose text no candidate of the agreeing reader holds keeps nothing under ``agree``."""
    from sdk.dataset import write_labels
    from sdk.recognizer import Recognizer
    from training.data.pseudo_labels import label_crops
    from training.synth.plates import render_dataset

    src = tmp_path / "crops"
    render_dataset(src, ["br"], 8, seed=5)
    write_labels(src, [(r.path.relative_to(src).as_posix(), "", "br", "") for r in read_labels(src)])
    kept, seen = label_crops(src, tmp_path / "a", bundle_teacher("latin"), "br", min_score=0.0)
    assert seen == 8 and 0 < kept <= 8
    assert all(match_format(r.text, "br") for r in read_labels(tmp_path / "a"))

    def stubborn(crop: np.ndarray) -> tuple[str, float]:  # a teacher that reads every plate as one text
        return "ZZZ9999", 1.0

    assert label_crops(src, tmp_path / "b", stubborn, "br")[0] == 8
    assert label_crops(src, tmp_path / "c", stubborn, "br", agree=Recognizer("latin"))[0] == 0
