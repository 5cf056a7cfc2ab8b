"""Detector post-processing on hand-made tensors, detection metrics, and a tiny real cascade: train, int8, runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import needs_tf

from lpr_cli import main
from sdk.dataset import SceneFrame, ScenePlate, read_scenes, scene_split
from sdk.detector import (
    Detection,
    Detector,
    crop_window,
    decode_corners,
    decode_proposals,
    iou_matrix,
    letterbox,
    nms,
    proposal_crop,
)
from sdk.errors import BundleError
from sdk.evaluate import average_precision, detection_metrics


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def test_decode_proposals_peak_to_box():
    out = np.full((4, 6, 5), 0.0, np.float32)
    out[..., 0] = _logit(0.01)
    out[2, 3] = [_logit(0.9), 0.25, -0.5, np.log(2.0), np.log(0.5)]  # centre (3.75, 2.0) cells, 64 x 16 px
    out[2, 4, 0] = _logit(0.5)  # a neighbour below the peak: not a local maximum
    boxes, scores = decode_proposals(out, stride=8, box_scale=32, threshold=0.2, max_proposals=5, nms_iou=0.5)
    assert len(boxes) == 1 and scores[0] == pytest.approx(0.9, abs=1e-6)
    np.testing.assert_allclose(boxes[0], [30 - 32, 16 - 8, 30 + 32, 16 + 8], atol=1e-4)


def test_decode_proposals_threshold_and_limit():
    out = np.zeros((8, 8, 5), np.float32)
    out[..., 0] = _logit(0.05)
    for i, p in enumerate((0.9, 0.8, 0.7)):
        out[1 + 3 * i, 1 + 3 * i, 0] = _logit(p)
    boxes, scores = decode_proposals(out, 8, 32, threshold=0.6, max_proposals=2, nms_iou=0.5)
    assert list(np.round(scores, 3)) == [0.9, 0.8]
    assert decode_proposals(out, 8, 32, threshold=0.95, max_proposals=2, nms_iou=0.5)[0].shape == (0, 4)


def test_corners_round_trip_through_the_crop_window():
    box = (100.0, 50.0, 200.0, 80.0)
    window = proposal_crop(box, aspect=2.5, expand=1.25)
    w, h = window[2] - window[0], window[3] - window[1]
    assert w / h == pytest.approx(2.5) and w == pytest.approx(125.0)
    assert (window[:2] + window[2:]) / 2 == pytest.approx([150.0, 65.0])
    corners = np.array([[98, 48], [203, 52], [201, 83], [96, 79]], np.float32)  # one corner outside the window
    rel = (corners - window[:2]) / [w, h] * 10
    score, back = decode_corners(np.r_[_logit(0.8), rel.ravel()], window, coord_scale=10)
    assert score == pytest.approx(0.8)
    np.testing.assert_allclose(back, corners, atol=1e-3)


def test_crop_window_pads_outside_the_frame():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[:, :, 1] = 200
    crop = crop_window(frame, np.array([-50.0, -20.0, 70.0, 28.0]), 120, 48)
    assert crop.shape == (48, 120, 3)
    assert (crop[2, 2] == 128).all() and (crop[40, 100] == [0, 200, 0]).all()


def test_letterbox_keeps_aspect_top_left():
    img, s = letterbox(np.full((720, 1280, 3), 255, np.uint8), 256, 448)
    assert s == pytest.approx(0.35) and img.shape == (256, 448, 3)
    assert (img[:252] == 255).all() and (img[252:] == 128).all()


def test_iou_and_nms_hand_cases():
    a = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    np.testing.assert_allclose(iou_matrix(a[:1], a)[0], [1.0, 50 / 150, 0.0])
    assert nms(a, np.array([0.5, 0.9, 0.7]), iou=0.3) == [1, 2]
    assert nms(a, np.array([0.5, 0.9, 0.7]), iou=0.4) == [1, 2, 0]


def test_average_precision_hand_cases():
    assert average_precision([(0.9, True), (0.8, True)], 2) == pytest.approx(1.0)
    assert average_precision([(0.9, True), (0.8, False), (0.7, True)], 2) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision([(0.9, False), (0.8, True)], 2) == pytest.approx(0.25)
    assert average_precision([], 3) == 0.0


def _scene(partial: bool, *boxes) -> SceneFrame:
    plates = tuple(
        ScenePlate(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32), "", "us") for x0, y0, x1, y1 in boxes
    )
    return SceneFrame(None, plates, "us", partial)  # type: ignore[arg-type]


def _det(score, x0, y0, x1, y1) -> Detection:
    return Detection((x0, y0, x1, y1), np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float), score, score)


def test_detection_metrics_ignore_unlabelled_plates_only_in_partial_frames():
    truth = (0, 0, 100, 30)
    hit, shifted, elsewhere = _det(0.9, 0, 0, 100, 30), _det(0.8, 10, 0, 110, 30), _det(0.7, 300, 300, 400, 330)
    full = detection_metrics([(_scene(False, truth), [hit, elsewhere])])
    part = detection_metrics([(_scene(True, truth), [hit, elsewhere])])
    assert full["ap_50"] == pytest.approx(1.0) and part["ap_50"] == pytest.approx(1.0)
    low_first = detection_metrics([(_scene(False, truth), [_det(0.95, 300, 300, 400, 330), hit])])
    assert low_first["ap_50"] == pytest.approx(0.5)  # a false positive ranked above the only plate
    m = detection_metrics([(_scene(False, truth), [shifted])])  # IoU 90/110 = 0.82
    assert m["ap_80"] == pytest.approx(1.0) and m["ap_90"] == 0.0 and m["recall_50"] == 1.0
    assert m["corner_error_px"] == pytest.approx(10.0)


def test_ap_sweeps_every_score_while_recall_is_taken_at_the_operating_threshold():
    a, b = (0, 0, 100, 30), (200, 0, 300, 30)
    frames = [(_scene(False, a, b), [_det(0.9, *a), _det(0.3, *b)])]
    m = detection_metrics(frames, score_threshold=0.5)
    assert m["ap_50"] == pytest.approx(1.0)  # the low-scored plate still counts towards AP
    assert m["recall_50"] == pytest.approx(0.5)  # but is not found at the operating point


def test_scene_split_keeps_rides_and_plates_together():
    assert scene_split("ro/dayride_type1_001_t1054.jpg") == scene_split("ro/dayride_type1_001_t9.jpg")
    from sdk.dataset import split_of

    assert scene_split("us/any.jpg", "ABC123") == split_of("ABC123")


def test_read_scenes_groups_rows_by_frame(tmp_path):
    (tmp_path / "labels.csv").write_text(
        "file,plate_text,region,x1,y1,x2,y2,x3,y3,x4,y4,source\n"
        "a.jpg,,ro,0,0,10,0,10,5,0,5,x\na.jpg,,ro,20,0,30,0,30,5,20,5,x\nb.jpg,AB12,us,1,1,9,1,9,4,1,4,x\n"
    )
    scenes = {s.path.name: s for s in read_scenes(tmp_path)}
    assert len(scenes["a.jpg"].plates) == 2 and not scenes["a.jpg"].partial
    assert scenes["b.jpg"].partial and scenes["b.jpg"].plates[0].text == "AB12"


def test_recogniser_bundle_is_refused_as_detector(tiny_bundle):
    with pytest.raises(BundleError, match="detector proposal bundle is needed"):
        Detector(tiny_bundle)


# --- a tiny real cascade ------------------------------------------------------------------------------------------


def test_tiny_detector_trains_exports_and_runs(tiny_detector):
    root, metrics = tiny_detector
    hist = metrics["history"]
    assert len(hist["proposal"]) == 2 and hist["proposal"][-1]["loss"] < hist["proposal"][0]["loss"]
    assert len(hist["proposal_qat"]) == 1 and (root / "run" / "proposal_qat" / "final.weights.h5").is_file()
    mined = root / "run" / "corners_mined"
    assert len(hist["corners_mined"]) == 1 and (mined / "final.weights.h5").is_file()
    assert json.loads((mined / "proposal_int8" / "manifest.json").read_text())["input"]["dtype"] == "int8"
    assert set(metrics["eval"]["float"]["overall"]) >= {"ap_50", "ap_90", "recall_50"}
    det = Detector(root / "bundle", score_threshold=0.0)
    for stage in ("proposal", "corners"):
        m = json.loads((root / "bundle" / stage / "manifest.json").read_text())
        assert m["kind"] == "detector" and m["extra"]["stage"] == stage
        assert m["input"]["dtype"] == "int8" and m["output"]["dtype"] == "int8"
        assert "int8" in m["metrics"] and "float" in m["metrics"]
    from sdk.image import read_image

    frame = read_image(read_scenes(root / "scenes")[0].path)
    for img in (frame, frame[..., 0], np.dstack([frame, frame[..., :1]])):  # BGR, gray, BGRA
        for d in det.detect(img):
            assert d.corners.shape == (4, 2) and 0.0 <= d.score <= 1.0
            assert d.box[0] <= d.box[2] and d.box[1] <= d.box[3]


def test_tiny_detector_resume_is_a_no_op_when_finished(tiny_detector):
    from training.train_detector import train_detector

    root, metrics = tiny_detector
    again = train_detector(None, root / "run", resume=True, verbose=False)
    assert again["history"] == metrics["history"]


def test_evaluate_detector_cli(tiny_detector):
    root, _ = tiny_detector
    r = CliRunner().invoke(main, ["evaluate-detector", str(root / "bundle"), "--data", str(root / "scenes"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    assert out["overall"]["n"] == 12 and out["latency_ms_median"] is not None
    r = CliRunner().invoke(main, ["evaluate-detector", "cn", "--data", str(root / "scenes")])
    assert r.exit_code == 2 and "detector proposal bundle is needed" in r.output


@needs_tf
def test_fake_quant_proposal_rounds_relu6_outputs_to_the_int8_grid():
    import keras

    from training.models.detector import RELU6_STEP, build_proposal

    plain, fq = build_proposal((32, 48), 0.25), build_proposal((32, 48), 0.25, fake_quant=True)
    assert len(plain.weights) == len(fq.weights)  # the same weights: plain runs export what fake_quant trained
    fq.set_weights(plain.get_weights())
    x = np.random.default_rng(0).random((1, 32, 48, 3), dtype=np.float32)
    relu = keras.Model(fq.input, [fq.get_layer("stem_relu").output, fq.get_layer("stem_relu_fq").output])
    raw, rounded = (np.asarray(t) for t in relu(x))
    np.testing.assert_allclose(rounded / RELU6_STEP, np.round(raw / RELU6_STEP), atol=1e-3)
    assert 0 < np.abs(rounded - raw).max() <= RELU6_STEP / 2 + 1e-6
    assert not np.allclose(np.asarray(fq(x)), np.asarray(plain(x)))


@pytest.mark.train
def test_mined_crops_follow_the_proposals(tmp_path):
    pytest.importorskip("PIL")
    from training.config import CornersConfig, SceneSource
    from training.data.detector_data import _corner_target, mine_corner_crops
    from training.synth.scenes import render_scene_dataset

    render_scene_dataset(tmp_path, 2, ["us"], seed=1, size=(320, 192))
    scenes = read_scenes(tmp_path)
    assert not any(s.partial for s in scenes)
    cfg = CornersConfig(input_size=(24, 64))
    boxes = {}
    for s in scenes:
        gt = np.array([[*p.corners.min(axis=0), *p.corners.max(axis=0)] for p in s.plates])
        w = gt[0, 2] - gt[0, 0]
        free = next(  # a plate-sized box on no plate
            b
            for x in range(0, 320, 8)
            for y in range(0, 192, 8)
            if iou_matrix((b := np.array([x, y, x + 24.0, y + 8]))[None], gt).max() == 0
        )
        boxes[str(s.path)] = [gt[0] + [w * 0.1, 0, w * 0.1, 0], free, gt[0] + [w * 0.8, 0, w * 0.8, 0]]

    from sdk.image import read_image

    frames = {str(s.path): read_image(s.path) for s in scenes}

    def propose(frame):
        key = next(k for k, f in frames.items() if f is frame or np.array_equal(f, frame))
        return np.array(boxes[key]), np.ones(3)

    x, y = mine_corner_crops(propose, [SceneSource(str(tmp_path), copies=2)], cfg)
    assert x.shape == (8, 24, 64, 3) and y.shape == (8, 9)  # the near miss (IoU ~0.1) is left out; 2 copies each
    for i, s in enumerate(scenes):
        on, off = y[4 * i], y[4 * i + 2]
        window = proposal_crop(boxes[str(s.path)][0], cfg.crop_aspect, cfg.crop_expand)
        np.testing.assert_allclose(on, _corner_target(s.plates[0].corners, window, cfg.coord_scale), rtol=1e-5)
        np.testing.assert_array_equal(x[4 * i], crop_window(frames[str(s.path)], window, 64, 24)[..., ::-1])
        assert not off.any() and np.array_equal(y[4 * i + 1], on)


@pytest.mark.train
def test_detector_config_validation(tmp_path):
    pytest.importorskip("yaml")
    from training.config import ConfigError, config_kind, parse_detector_config

    ok = {"name": "d", "data": [{"path": "scenes"}], "proposal": {"input_size": [64, 112]}}
    cfg = parse_detector_config(ok, tmp_path)
    assert cfg.data[0].path == str((tmp_path / "scenes").resolve()) and cfg.proposal.input_size == (64, 112)
    for bad, msg in (
        ({**ok, "proposal": {"input_size": [60, 112]}}, "multiples of 16"),
        ({**ok, "kind": "recognizer"}, "kind: detector"),
        ({**ok, "data": [{"path": "s", "copies": 0}]}, "copies"),
        ({**ok, "corners": {"nope": 1}}, "unknown key"),
        ({**ok, "corners": {"score": "max"}}, "corners.score"),
        ({**ok, "corners": {"mine_epochs": -1}}, "mine_epochs"),
        ({**ok, "proposal": {"qat_epochs": -1}}, "qat_epochs"),
        ({"name": "d"}, "needs 'name' and 'data'"),
    ):
        with pytest.raises(ConfigError, match=msg):
            parse_detector_config(bad, tmp_path)
    (tmp_path / "config.yaml").write_text("kind: detector\nname: x\n")
    assert config_kind(tmp_path) == "detector"
    (tmp_path / "config.yaml").write_text("name: x\n")
    assert config_kind(tmp_path) == "recognizer"


@pytest.mark.train
def test_scene_crops_cut_like_the_pipeline(tmp_path):
    pytest.importorskip("PIL")
    from training.data.scene_crops import extract_scene_crops
    from training.synth.scenes import render_scene_dataset

    render_scene_dataset(tmp_path / "scenes", 3, ["us"], seed=1, size=(640, 360))
    n_plates = sum(len(s.plates) for s in read_scenes(tmp_path / "scenes"))
    for copies in (0, 2):
        out = tmp_path / f"crops{copies}"
        extract_scene_crops(tmp_path / "scenes", out, copies=copies)
        rows = (out / "labels.csv").read_text().splitlines()[1:]
        assert len(rows) == n_plates * max(1, copies)
        assert all(r.split(",")[2] == "us" for r in rows)


class _HandStage:
    """A stage that returns a fixed, hand-made output (to test the cascade's decoding without a model)."""

    def __init__(self, out: np.ndarray, hw: tuple[int, int], extra: dict) -> None:
        self.out, (self.height, self.width), self.extra, self.model_bytes = out, hw, extra, 0

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        assert pixels.shape == (self.height, self.width, 3)
        return self.out


@pytest.mark.parametrize(("mode", "expected"), [("corners", 0.25), ("geometric_mean", 0.4)])
def test_cascade_score_modes(mode, expected):
    prop = np.zeros((8, 14, 5), np.float32)
    prop[..., 0] = _logit(0.01)
    prop[4, 7] = [_logit(0.64), 0, 0, np.log(2.0), np.log(0.5)]
    pextra = {"stride": 8, "box_scale": 32, "score_threshold": 0.2, "max_proposals": 4}
    rel = np.array([[0.1, 0.3], [0.9, 0.3], [0.9, 0.7], [0.1, 0.7]]) * 10
    cextra = {"crop_aspect": 2.5, "crop_expand": 1.25, "coord_scale": 10, "score_threshold": 0.1, "score": mode}
    det = Detector.from_stages(
        _HandStage(prop, (64, 112), pextra), _HandStage(np.r_[_logit(0.25), rel.ravel()], (48, 120), cextra)
    )
    (d,) = det.detect(np.zeros((128, 224, 3), np.uint8))  # letterbox scale 0.5: boxes double in frame pixels
    assert d.score == pytest.approx(expected) and d.proposal_score == pytest.approx(0.64)
    window = proposal_crop((60 * 2 - 64, 36 * 2 - 16, 60 * 2 + 64, 36 * 2 + 16), 2.5, 1.25)
    np.testing.assert_allclose(d.corners, window[:2] + rel / 10 * (window[2:] - window[:2]), atol=1e-3)


@needs_tf  # the training side (PyYAML, its config)
def test_roll_frame_moves_the_corners_with_the_plate():
    """A white plate on a black frame: after a roll the moved corners still enclose white, the canvas holds the
    whole frame, and the plate keeps its side lengths."""
    from training.data.detector_data import roll_frame

    img = np.zeros((200, 400, 3), np.uint8)
    img[80:120, 100:220] = 255
    plate = ScenePlate(np.array([[100, 80], [220, 80], [220, 120], [100, 120]], np.float32), "AB123", "us")
    for degrees in (-25.0, 12.0, 30.0):
        out, (moved,) = roll_frame(img, (plate,), degrees)
        assert out.shape[0] > 200 and out.shape[1] > 400  # grown, nothing cut off
        cx, cy = moved.corners.mean(axis=0)
        assert out[int(round(cy)), int(round(cx))].min() == 255  # the plate's centre is still the plate
        sides = np.linalg.norm(np.diff(np.r_[moved.corners, moved.corners[:1]], axis=0), axis=1)
        np.testing.assert_allclose(sides, [120, 40, 120, 40], atol=1e-3)
        top = moved.corners[1] - moved.corners[0]
        assert np.degrees(np.arctan2(-top[1], top[0])) == pytest.approx(degrees, abs=1e-3)  # counter-clockwise


@needs_tf
def test_detector_config_takes_roll_and_init(tmp_path):
    from training.config import ConfigError, parse_detector_config

    cfg = {"name": "d", "init": "run", "data": [{"path": "scenes", "roll": 30}]}
    parsed = parse_detector_config(cfg, tmp_path)
    assert parsed.data[0].roll == 30.0 and parsed.init == str((tmp_path / "run").resolve())
    with pytest.raises(ConfigError, match="roll"):
        parse_detector_config({"name": "d", "data": [{"path": "scenes", "roll": 120}]}, tmp_path)
