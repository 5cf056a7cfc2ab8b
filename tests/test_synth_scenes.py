import csv
import random

import cv2
import numpy as np
import pytest
from conftest import SHARED_DATA

from sdk.dataset import ScenePlate, read_scenes, scene_split, split_of
from sdk.errors import LprError
from sdk.formats import match_format

pytestmark = pytest.mark.train  # the training side's renderer (Pillow)
pytest.importorskip("PIL")
from training.synth.scenes import (  # noqa: E402
    SCENE_COLUMNS,
    background_from_frame,
    main,
    procedural_background,
    render_clip,
    render_scene,
    render_scene_dataset,
)

SCENES = SHARED_DATA / "scenes"
needs_scenes = pytest.mark.skipif(not (SCENES / "labels.csv").is_file(), reason="../shared/data/scenes is absent")
REGIONS = ["us", "br", "eu", "cn"]


def quad_mask(shape: tuple[int, ...], plates: list[ScenePlate], grow: int = 0) -> np.ndarray:
    """Union of the plates' quads as a bool mask, dilated (grow > 0) or eroded (grow < 0) by |grow| pixels."""
    mask = np.zeros(shape[:2], np.uint8)
    for p in plates:
        cv2.fillPoly(mask, [np.round(p.corners * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    if grow:
        kernel = np.ones((2 * abs(grow) + 1,) * 2, np.uint8)
        mask = cv2.dilate(mask, kernel) if grow > 0 else cv2.erode(mask, kernel)
    return mask > 0


def signed_area(c: np.ndarray) -> float:
    x, y = c[:, 0], c[:, 1]
    return float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) / 2)


def write_labels(path, rows) -> None:
    with open(path / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(SCENE_COLUMNS)
        w.writerows(rows)


def test_scene_split_keeps_a_ride_together_and_is_md5_stable():
    ride = [f"ro/dayride_type1_001_t{t}.jpg" for t in (1054, 1056, 7, 99999)]
    assert {scene_split(f) for f in ride} == {split_of("dayride_type1_001")} == {"train"}
    assert scene_split("ro/dayride_type1_003_t12.jpg") == "test"  # md5, so the same on every machine
    assert scene_split("br/AZJ6991.jpg") == split_of("AZJ6991")  # a single frame keys on its own stem
    share = np.mean([scene_split(f"ro/ride_{i}_t{i * 7}.jpg") == "test" for i in range(400)])
    assert 0.18 < share < 0.32


def test_read_scenes_groups_rows_and_filters(tmp_path):
    box = ["10", "10", "50", "10", "50", "30", "10", "30"]
    write_labels(
        tmp_path,
        [
            ("ro/ride_a_t1.jpg", "", "ro", *box, "dashcam"),
            ("ro/ride_a_t1.jpg", "", "ro", *box, "dashcam"),
            ("ro/ride_a_t2.jpg", "", "ro", *box, "dashcam"),
            ("ro/ride_b_t1.jpg", "", "ro", *box, "dashcam"),
            ("us/ABC123.jpg", "ABC123", "us", *box, "benchmark"),
            ("images/000000.jpg", "AB12CDE", "eu", *box, "synth scene (background: procedural)"),
            ("images/000000.jpg", "1ABC234", "us", *box, "synth scene (background: procedural)"),
        ],
    )
    frames = read_scenes(tmp_path)
    assert [len(f.plates) for f in frames] == [2, 1, 1, 1, 2]
    assert [f.partial for f in frames] == [False, False, False, True, False]
    assert [f.region for f in frames] == ["ro", "ro", "ro", "us", "mixed"]
    assert frames[0].path == tmp_path / "ro/ride_a_t1.jpg"
    assert frames[0].plates[0].corners.dtype == np.float32 and frames[0].plates[0].corners.shape == (4, 2)
    assert frames[0].plates[0].corners[2].tolist() == [50, 30]
    assert [f.path.name for f in read_scenes(tmp_path, regions=["us"])] == ["ABC123.jpg", "000000.jpg"]
    train, test = read_scenes(tmp_path, "train"), read_scenes(tmp_path, "test")
    assert sorted(f.path for f in train + test) == sorted(f.path for f in frames)
    sides = {f.path.name[:6]: s for s, part in (("train", train), ("test", test)) for f in part}
    assert scene_split("ride_a_t1.jpg") == scene_split("ride_a_t2.jpg") == sides["ride_a"]


def test_read_scenes_errors_are_one_line(tmp_path):
    with pytest.raises(LprError, match="no labels.csv"):
        read_scenes(tmp_path)
    (tmp_path / "labels.csv").write_text("file,plate_text,region\nx.jpg,A,us\n")
    with pytest.raises(LprError, match="lacks column"):
        read_scenes(tmp_path)
    write_labels(tmp_path, [("x.jpg", "A", "us", "1", "2", "3", "4", "5", "six", "7", "8", "src")])
    with pytest.raises(LprError, match=r"labels.csv:2: corners"):
        read_scenes(tmp_path)


def test_procedural_background_is_a_deterministic_textured_frame():
    a = procedural_background(320, 180, random.Random(3))
    b = procedural_background(320, 180, random.Random(3))
    assert a.shape == (180, 320, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert a.std() > 10 and not np.array_equal(a, procedural_background(320, 180, random.Random(4)))


@pytest.mark.parametrize("seed", range(6))
def test_returned_corners_lie_on_the_pasted_plate(seed):
    """On a black frame, without cars or camera effects, the plate pixels are exactly the returned quads."""
    black = np.zeros((360, 640, 3), np.uint8)
    img, plates = render_scene(black, random.Random(seed), REGIONS, n_plates=(2, 3), context=0, cut=0, degrade=False)
    assert plates
    lit = img.max(axis=2) > 0
    assert not lit[~quad_mask(img.shape, plates, grow=4)].any()  # nothing drawn outside the quads
    core = quad_mask(img.shape, plates, grow=-2)
    assert core.sum() > 50
    assert (img.max(axis=2)[core] > 2).mean() > 0.99  # the quads are covered by plate
    for p in plates:
        assert (p.corners >= 0).all() and (p.corners[:, 0] <= 640).all() and (p.corners[:, 1] <= 360).all()


@pytest.mark.parametrize("seed", range(4))
def test_corner_order_matches_the_plate_content(seed):
    """Warping the quad back to a flat plate puts the EU blue band on the left with its country code below."""
    black = np.zeros((360, 640, 3), np.uint8)
    rng = random.Random(seed)
    img, plates = render_scene(black, rng, ["eu"], width_range=(300, 500), context=0, cut=0, degrade=False)
    for p in plates:
        w, h = 520, 112
        dst = np.float32([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
        flat = cv2.warpPerspective(img, cv2.getPerspectiveTransform(p.corners, dst), (w, h)).astype(np.float32)
        blue = flat[..., 0] - flat[..., 2]  # B - R
        band, body = blue[20:92, 15:45], blue[20:92, 200:480]
        assert band.mean() > 30 + body.mean(), p.text
        assert flat[75:95, 15:45].mean() > flat[15:50, 15:45].mean()  # the country code sits low in the band


@pytest.mark.parametrize("seed", range(4))
def test_render_scene_plates_are_well_formed(seed):
    rng = random.Random(seed)
    bg = procedural_background(640, 360, rng)
    img, plates = render_scene(bg, rng, REGIONS)
    assert img.shape == bg.shape and img.dtype == np.uint8 and not np.array_equal(img, bg)
    assert 1 <= len(plates) <= 3
    boxes = []
    for p in plates:
        c = p.corners
        assert c.shape == (4, 2) and c.dtype == np.float32
        assert signed_area(c) > 0  # TL, TR, BR, BL: clockwise on screen
        assert c[0, 0] < c[1, 0] and c[3, 0] < c[2, 0] and c[0, 1] < c[3, 1] and c[1, 1] < c[2, 1]
        width = c[:, 0].max() - c[:, 0].min()
        assert 50 * 0.5 - 0.5 <= width <= 360 * 0.5 + 0.5  # width_range scales with the 640-px frame
        assert match_format(p.text, p.region) is not None
        boxes.append((*c.min(axis=0), *c.max(axis=0)))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), "plates overlap"


def test_render_scene_is_deterministic_for_a_seed():
    bg = procedural_background(640, 360, random.Random(0))
    a, pa = render_scene(bg, random.Random(5), REGIONS)
    b, pb = render_scene(bg, random.Random(5), REGIONS)
    c, _ = render_scene(bg, random.Random(6), REGIONS)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert [(p.text, p.corners.tolist()) for p in pa] == [(p.text, p.corners.tolist()) for p in pb]


def test_background_from_frame_removes_the_plate_only():
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(60, 120, (240, 320, 3), dtype=np.uint8), (0, 0), 3)
    cv2.rectangle(frame, (100, 100), (180, 130), (245, 245, 245), -1)
    for x in range(110, 175, 12):
        cv2.rectangle(frame, (x, 106), (x + 6, 124), (10, 10, 10), -1)
    before = frame.copy()
    corners = np.float32([[100, 100], [181, 100], [181, 131], [100, 131]])
    out = background_from_frame(frame, [ScenePlate(corners, "", "ro")])
    assert np.array_equal(frame, before)  # input untouched
    inside = out[102:129, 102:179].astype(np.float32)
    assert abs(inside.mean() - 90) < 25 and inside.std() < 20  # filled from the surroundings
    far = np.ones(frame.shape[:2], bool)
    far[70:160, 70:215] = False
    assert np.array_equal(out[far], frame[far])


def test_scene_dataset_round_trips_and_is_deterministic(tmp_path):
    a = render_scene_dataset(tmp_path / "a", 3, REGIONS, seed=1, size=(640, 360))
    b = render_scene_dataset(tmp_path / "b", 3, REGIONS, seed=1, size=(640, 360))
    assert a.read_bytes() == b.read_bytes()
    frames = read_scenes(tmp_path / "a")
    assert len(frames) == 3 and not any(f.partial for f in frames)
    with open(a, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(len(f.plates) for f in frames)
    assert {r["source"] for r in rows} == {"synth scene (background: procedural)"}
    for f in frames:
        assert f.path.read_bytes() == (tmp_path / "b" / f.path.relative_to(tmp_path / "a")).read_bytes()
        assert cv2.imread(str(f.path)).shape == (360, 640, 3)
        assert all(match_format(p.text, p.region) for p in f.plates)


def test_render_clip_moves_and_grows_the_same_plates(tmp_path):
    labels = render_clip(tmp_path / "drive", n_frames=6, regions=["eu"], seed=2, size=(640, 360), fps=10)
    frames = read_scenes(labels.parent)
    assert [f.path.name for f in frames] == [f"drive_t{i:03d}.jpg" for i in range(6)]
    assert len({scene_split(f.path.name) for f in frames}) == 1  # one ride
    texts = [tuple(p.text for p in f.plates) for f in frames]
    assert len(set(texts)) == 1
    for k in range(len(frames[0].plates)):
        quads = np.stack([f.plates[k].corners for f in frames])
        widths = quads[:, :, 0].max(axis=1) - quads[:, :, 0].min(axis=1)
        assert (np.diff(widths) > 0).all()
        steps = np.linalg.norm(np.diff(quads.mean(axis=1), axis=0), axis=1)
        assert steps.max() < 40 and steps.max() < 3 * steps.min() + 1  # smooth motion
        assert (quads >= 0).all() and (quads[:, :, 0] <= 640).all() and (quads[:, :, 1] <= 360).all()
    assert sum(f.path.stat().st_size for f in frames) < 6 * 125_000


def test_main_writes_a_dataset_and_a_clip(tmp_path, capsys):
    main([str(tmp_path / "ds"), "-n", "2", "--regions", "cn", "--size", "320", "180", "--seed", "3"])
    assert len(read_scenes(tmp_path / "ds")) == 2
    main([str(tmp_path / "clip"), "--clip", "-n", "3", "--size", "320", "180"])
    assert len(read_scenes(tmp_path / "clip")) == 3
    assert "frames/s" in capsys.readouterr().out


@needs_scenes
def test_real_scenes_load_with_split_and_partial_flags():
    frames = read_scenes(SCENES)
    ro = [f for f in frames if f.region == "ro"]
    assert ro and not any(f.partial for f in ro)
    assert all(f.partial for f in frames if f.region != "ro")
    train, test = read_scenes(SCENES, "train"), read_scenes(SCENES, "test")
    assert {f.path for f in train}.isdisjoint(f.path for f in test)
    assert len(train) + len(test) == len(frames)
    rides: dict[str, set[str]] = {}
    for side, part in (("train", train), ("test", test)):
        for f in part:
            if f.region == "ro":
                rides.setdefault(f.path.stem.rsplit("_t", 1)[0], set()).add(side)
    assert all(len(s) == 1 for s in rides.values())


@needs_scenes
def test_dataset_on_real_backgrounds_uses_train_ro_frames(tmp_path):
    labels = render_scene_dataset(tmp_path, 2, ["eu"], seed=4, backgrounds_dir=SCENES, size=(640, 360), real_share=1)
    with open(labels, newline="", encoding="utf-8") as f:
        sources = {r["source"] for r in csv.DictReader(f)}
    names = [s.removeprefix("synth scene (background: ").removesuffix(")") for s in sources]
    assert names and all(n.startswith("ro/") and scene_split(n) == "train" for n in names)
    assert all(cv2.imread(str(f.path)).shape == (360, 640, 3) for f in read_scenes(tmp_path))
