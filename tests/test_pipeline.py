"""Pipeline, ``lpr-sdk run``, ``bench --pipeline`` and ``examples/camera_loop.py`` on tiny real models and the
shipped ones; frames of odd sizes, gray, BGRA and empty; bad sources and bundles."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import replace

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DRIVE, REPO, needs_shipped_detector, needs_tf

from lpr_cli import main
from sdk.capture import Frame
from sdk.dataset import read_scenes
from sdk.detector import Detection, Detector, iou_matrix
from sdk.errors import BundleError, LprError
from sdk.image import read_image
from sdk.pipeline import MARGIN, MARGINS, STAGES, Pipeline, _rank


def _loose_pipeline(tiny_detector, tiny_bundle) -> Pipeline:
    """The tiny (barely trained) models with every threshold at 0, so plates flow through every stage."""
    root, _ = tiny_detector
    det = Detector(root / "bundle", score_threshold=0.0)
    det.proposal_threshold = 0.0
    return Pipeline(det, [tiny_bundle])


def _write_video(path, frames, size=(320, 192)) -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for f in frames:
        w.write(cv2.resize(f, size))
    w.release()


def test_pipeline_reads_every_stage_and_handles_odd_frames(tiny_detector, tiny_bundle):
    pipe = _loose_pipeline(tiny_detector, tiny_bundle)
    frame = read_image(read_scenes(tiny_detector[0] / "scenes")[0].path)
    assert pipe.detector.detect(frame), "with thresholds at 0 the tiny cascade must pass proposals on"
    result = pipe.process(frame, index=3)
    assert result.index == 3 and set(result.timings_ms) == set(STAGES)
    assert result.timings_ms["rectify"] > 0 and result.timings_ms["recognise"] > 0  # every detection was read
    for p in result.plates:  # the tiny recogniser mostly reads nothing; plates without text are dropped
        assert p.text and p.corners.shape == (4, 2) and p.recognizer == "tiny-cn" and 0 <= p.confidence <= 1
    json.dumps(result.to_dict())  # serialisable
    odd = [frame[:, :, 0], np.dstack([frame, frame[..., :1]]), frame[:37, :51], np.zeros((0, 0, 3), np.uint8)]
    frames = [Frame(img, i, 0.0, "test") for i, img in enumerate(odd)]
    results = list(pipe.run(frames))
    assert [r.index for r in results] == [0, 1, 2] and pipe.stats.skipped == 1
    summary = pipe.stats.summary()
    assert summary["frames"] == 3 and summary["skipped_frames"] == 1 and summary["fps"] > 0


def test_pipeline_refuses_wrong_bundles(tiny_detector, tiny_bundle):
    root, _ = tiny_detector
    with pytest.raises(BundleError, match="recognizer bundle is needed"):
        Pipeline(root / "bundle", [root / "bundle" / "proposal"])
    with pytest.raises(BundleError, match="is a detector .*e.g. a recognizer"):  # the whole detector folder
        Pipeline(root / "bundle", [root / "bundle"])
    with pytest.raises(BundleError, match="detector proposal bundle is needed"):
        Pipeline(tiny_bundle, [tiny_bundle])


def test_run_cli_on_a_video_file(tiny_detector, tiny_bundle, tmp_path):
    root, _ = tiny_detector
    frames = [read_image(s.path) for s in read_scenes(root / "scenes")[:4]]
    video = tmp_path / "clip.avi"
    _write_video(video, frames)
    args = ["run", "--source", str(video), "--detector", str(root / "bundle"), "--recognizer", str(tiny_bundle)]
    r = CliRunner().invoke(main, [*args, "--json", "--save-annotated", str(tmp_path / "ann")])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.strip().splitlines()]
    assert [x["frame"] for x in lines[:-1]] == [0, 1, 2, 3]
    s = lines[-1]["summary"]
    assert s["frames"] == 4 and set(s["model_bytes"]) == {"detector", "tiny-cn"} and s["fps"] > 0
    assert s["peak_rss_mib"] > 0 and s["source_dropped"] == 0  # a file: every frame is read
    assert len(list((tmp_path / "ann").glob("*.jpg"))) == 4
    r = CliRunner().invoke(main, [*args, "--max-frames", "2"])
    assert r.exit_code == 0 and r.output.count("frame ") == 2
    summary = r.output.strip().splitlines()[-1]  # the text summary names the models and their sizes, as --help says
    kib = round(s["model_bytes"]["tiny-cn"] / 1024)
    assert f"models: detector {round(s['model_bytes']['detector'] / 1024)} KiB, tiny-cn {kib} KiB" in summary


def test_run_cli_bad_input_is_one_line(tiny_detector, tiny_bundle, tmp_path):
    root, _ = tiny_detector
    r = CliRunner().invoke(main, ["run", "--source", str(tmp_path / "nope.mp4"), "--detector", str(root / "bundle")])
    assert r.exit_code == 2 and r.output.startswith("error:") and len(r.output.strip().splitlines()) == 1
    bad = ["--detector", str(root / "bundle"), "--recognizer", str(root / "bundle" / "proposal")]
    r = CliRunner().invoke(main, ["run", "--source", str(tmp_path), *bad])
    assert r.exit_code == 2 and "recognizer bundle is needed" in r.output
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")  # a folder with no readable image is an error, not 0 frames
    r = CliRunner().invoke(main, ["run", "--source", str(tmp_path), "--detector", str(root / "bundle")])
    assert r.exit_code == 2 and "error: no readable image" in r.output


def test_camera_loop_runs_headless_and_stops_on_sigterm(tiny_detector, tiny_bundle, tmp_path):
    root, _ = tiny_detector
    frames = [read_image(s.path) for s in read_scenes(root / "scenes")]
    video = tmp_path / "long.avi"
    _write_video(video, frames * 20)  # 240 frames: still running when the signal comes
    cmd = [
        sys.executable,
        str(REPO / "examples" / "camera_loop.py"),
        "--source",
        str(video),
        "--detector",
        str(root / "bundle"),
        "--recognizer",
        str(tiny_bundle),
        "--all-frames",
        "--threads",
        "1",
        "--report-every",
        "1",
        "--out",
        str(tmp_path / "reads.jsonl"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # blocks until the loop has read one frame
    assert json.loads(first)["frame"] == 0
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(err.strip().splitlines()[-1])["summary"]
    assert 1 <= summary["frames"] < 240 and "signal" in err and '"report"' in err
    assert summary["peak_rss_mib"] >= summary["rss_mib"] > 0
    assert len((tmp_path / "reads.jsonl").read_text().splitlines()) == summary["frames"]


def test_run_cli_stops_on_sigterm_with_its_summary(tiny_detector, tiny_bundle, tmp_path):
    """systemd and docker stop a process with SIGTERM: lpr-sdk run ends as on Ctrl-C, summary included."""
    root, _ = tiny_detector
    video = tmp_path / "long.avi"
    _write_video(video, [read_image(s.path) for s in read_scenes(root / "scenes")] * 20)  # 240 frames
    cmd = [sys.executable, "-m", "sdk.cli", "run", "--source", str(video), "--json", "--threads", "1"]
    cmd += ["--detector", str(root / "bundle"), "--recognizer", str(tiny_bundle)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert json.loads(proc.stdout.readline())["frame"] == 0  # blocks until the loop has read one frame
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])["summary"]
    assert 1 <= summary["frames"] < 240


def test_camera_loop_tells_systemd_it_is_ready_and_alive(tiny_detector, tiny_bundle, tmp_path):
    """Under a Type=notify unit: READY=1 once the camera is open, then WATCHDOG=1 as frames go through (a loop
    that hangs stops petting the watchdog and systemd restarts it). A socket stands in for systemd."""
    import os
    import socket

    root, _ = tiny_detector
    video = tmp_path / "clip.avi"
    _write_video(video, [read_image(s.path) for s in read_scenes(root / "scenes")[:4]])
    name = f"lpr-test-notify-{os.getpid()}"  # Linux's abstract namespace: "@" in NOTIFY_SOCKET
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind("\0" + name)
        systemd.settimeout(60)
        cmd = [sys.executable, str(REPO / "examples" / "camera_loop.py"), "--source", str(video)]
        # --bundle: the old name of --recognizer, which units written by earlier deploys pass
        cmd += ["--detector", str(root / "bundle"), "--bundle", str(tiny_bundle), "--threads", "1"]
        r = subprocess.run(cmd, env={**os.environ, "NOTIFY_SOCKET": "@" + name}, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        messages = [systemd.recv(64).decode(), systemd.recv(64).decode()]
    assert messages == ["READY=1", "WATCHDOG=1"]


def _camera_loop_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("camera_loop", REPO / "examples" / "camera_loop.py")
    loop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loop)
    return loop


def test_camera_loop_has_the_options_of_lpr_sdk_run():
    """The same names, defaults and help (one set of click options), --source's default aside (a camera)."""
    from sdk.cli.run import run_cmd

    def options(cmd):
        return {p.name: (p.opts, p.default, p.help) for p in cmd.params if p.name != "source" and not p.hidden}

    run_options, loop_options = options(run_cmd), options(_camera_loop_module().main)
    shared = {"detector", "recognizers", "region", "threads", "max_frames", "min_confidence", "margins", "track"}
    assert shared <= set(run_options) & set(loop_options)
    assert {k: run_options[k] for k in shared} == {k: loop_options[k] for k in shared}


def test_camera_loop_out_file_rotates_at_its_size_limit(tmp_path):
    """--out-max-mb: past the limit the file becomes OUT.1 (one predecessor kept) and a new OUT begins, so a service
    never fills the disk; no line is split across the two."""
    loop = _camera_loop_module()
    out = tmp_path / "reads.jsonl"
    limit = 4096
    with loop.RotatingLines(out, max_mb=limit / 2**20) as lines:
        for i in range(200):
            lines.write(json.dumps({"frame": i, "pad": "x" * 80}))
    previous = tmp_path / "reads.jsonl.1"
    older, newer = ([json.loads(x)["frame"] for x in f.read_text().splitlines()] for f in (previous, out))
    assert older + newer == list(range(older[0], 200))  # the newest lines, in order, whole
    assert out.stat().st_size < limit <= previous.stat().st_size < limit + 100
    with loop.RotatingLines(out) as lines:  # no limit: it only appends
        lines.write("{}")
    assert out.read_text().splitlines()[-1] == "{}" and len(out.read_text().splitlines()) == len(newer) + 1


def test_camera_loop_bad_source_exits_2(tmp_path):
    r = subprocess.run(
        [sys.executable, str(REPO / "examples" / "camera_loop.py"), "--source", str(tmp_path / "none.mp4")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and r.stderr.strip().startswith("error:")


def test_bench_pipeline_cli(tiny_detector, tiny_bundle):
    root, _ = tiny_detector
    args = ["bench", "--pipeline", "--detector", str(root / "bundle"), "--recognizer", str(tiny_bundle)]
    r = CliRunner().invoke(main, [*args, "--frames", str(root / "scenes" / "images"), "--threads", "1", "--runs", "4"])
    assert r.exit_code == 0, r.output
    head, one_thread, memory = r.output.strip().splitlines()  # readable text, not a Python dict
    assert "{" not in r.output and "models: detector " in head and ", tiny-cn " in head
    assert one_thread.startswith("threads 1: ") and " FPS (median " in one_thread and memory.startswith("memory: ")
    r = CliRunner().invoke(main, [*args, "--threads", "1,2", "--runs", "3", "--warmup", "1", "--json"])
    report = json.loads(r.output)
    assert report["frame_size"] == [1280, 720] and [x["threads"] for x in report["results"]] == [1, 2]
    assert set(report["results"][0]["stage_ms_median"]) == {"detect", "rectify", "recognise", "decode"}
    assert set(report["memory"]) == {"pipeline_mib", "rss_mib", "peak_rss_mib"}
    assert report["memory"]["peak_rss_mib"] >= report["memory"]["rss_mib"] > 0
    assert CliRunner().invoke(main, ["bench"]).exit_code == 2  # neither a bundle nor --pipeline


def test_bench_pipeline_defaults_to_the_models_run_uses():
    from sdk.cli.bench import bench_cmd
    from sdk.cli.run import run_cmd

    def defaults(cmd):
        return {p.name: p.default for p in cmd.params if p.name in ("detector", "recognizers")}

    assert defaults(bench_cmd) == defaults(run_cmd) == {"detector": "detector", "recognizers": ("latin", "cn")}


@needs_shipped_detector
def test_shipped_models_read_the_sample_drive():
    """The README's main job: the shipped detector + recognisers on the project's own rendered drive."""
    scenes = read_scenes(DRIVE)
    pipe = Pipeline()
    hits = 0
    for s in scenes:
        result = pipe.process(read_image(s.path))
        hits += any(p.text == s.plates[0].text for p in result.plates)
    assert hits >= 0.75 * len(scenes), f"read {hits} of {len(scenes)} frames"


@needs_shipped_detector
def test_a_read_says_every_region_it_fits_and_a_given_region_decides():
    """The sample drive's plate (GOX7133, a Brazilian old-format plate) fits the us, br and eu formats alike: without
    a region the read names the first and lists them all in ``fits``; with ``region="br"`` it is br."""
    frame = read_image(read_scenes(DRIVE)[5].path)
    (plate,) = Pipeline("detector", ["latin"]).process(frame).plates
    assert plate.region == plate.fits[0] and {"us", "br"} <= set(plate.fits)
    assert plate.to_dict()["fits"] == list(plate.fits)
    (plate,) = Pipeline("detector", ["latin"], region="br").process(frame).plates
    assert plate.region == "br" and "br" in plate.fits


@needs_shipped_detector
def test_each_plate_is_read_at_several_margins_and_the_best_read_wins():
    """Reading every margin (no early acceptance) gives each plate the best of the one-margin pipelines' reads;
    accepting at 0 stops at the first margin whose read fits a format."""
    detector = Detector("detector")
    every = Pipeline(detector, ["latin"], accept_confidence=2.0, refine=False)
    first = Pipeline(detector, ["latin"], accept_confidence=0.0)
    single = [Pipeline(detector, ["latin"], margins=(m,)) for m in MARGINS]
    assert single[0].margins == (MARGIN,)
    compared = 0
    for s in read_scenes(DRIVE)[:6]:
        frame = read_image(s.path)
        reads = [{p.box: p for p in pipe.process(frame).plates} for pipe in single]
        for plate in every.process(frame).plates:
            best = max((r[plate.box] for r in reads if plate.box in r), key=_rank)
            assert (plate.text, plate.confidence) == (best.text, best.confidence)
            compared += 1
        for plate in first.process(frame).plates:
            one = reads[0].get(plate.box)
            if one and one.region is not None:  # the first margin's read fits a format: no other margin is read
                assert (plate.text, plate.confidence) == (one.text, one.confidence)
    assert compared >= 6
    with pytest.raises(LprError, match="at least one rectification margin"):
        Pipeline(detector, ["latin"], margins=())


@needs_shipped_detector
def test_refine_tightens_a_loose_detection_and_the_pipeline_keeps_the_better_read():
    """A detection loosened to twice its size (a plate recess, say) gets corners close to the plate's from
    Detector.refine; the pipeline reads the refined corners only when no read was accepted, and keeps them only
    when their read ranks higher."""
    detector = Detector("detector")
    assert Pipeline(detector, ["latin"]).refine and not Pipeline(detector, ["latin"], margins=(MARGIN,)).refine
    plain = Pipeline(detector, ["latin"], accept_confidence=2.0, refine=False)
    refining = Pipeline(detector, ["latin"], accept_confidence=2.0, refine=True)
    tightened = compared = 0
    for s in read_scenes(DRIVE)[:6]:
        frame = read_image(s.path)
        truth = np.array(s.plates[0].corners)
        label = np.array([[*truth.min(axis=0), *truth.max(axis=0)]])
        for det in detector.detect(frame):
            (cx, cy), (w, h) = truth.mean(axis=0), truth.max(axis=0) - truth.min(axis=0)
            if iou_matrix(np.array([det.box]), label)[0, 0] < 0.5:
                continue
            loose = replace(det, box=(cx - w, cy - h, cx + w, cy + h))
            again = detector.refine(frame, loose)
            assert again.score == loose.score and again.corners.shape == (4, 2)
            tightened += iou_matrix(np.array([again.box]), label)[0, 0] > 0.5
        before = {p.box: p for p in plain.process(frame).plates}
        for plate in refining.process(frame).plates:
            if plate.box in before:  # the refined read lost (or was not needed): the plain read is kept
                assert (plate.text, plate.confidence) == (before[plate.box].text, before[plate.box].confidence)
            else:  # the refined corners won: their read ranks above the plain read of that detection
                old = max(before.values(), key=lambda p: iou_matrix(np.array([p.box]), np.array([plate.box]))[0, 0])
                assert _rank(plate) > _rank(old)
            compared += 1
    assert tightened >= 5 and compared >= 6


@needs_tf
@needs_shipped_detector
def test_with_several_recognisers_the_best_read_at_a_margin_wins_not_the_first(tmp_path):
    """latin reads a Chinese plate without its province character, and the catch-all us format takes it: the
    latin + cn pipeline must weigh both reads at each margin, not accept latin's alone (with accept_confidence 0
    any read that fits a format would be accepted at once)."""
    from training.synth.scenes import render_clip

    render_clip(tmp_path, 3, ("cn",), seed=1)
    detector = Detector("detector")

    def one_margin(recognizers):
        return Pipeline(detector, recognizers, margins=(MARGIN,), accept_confidence=0.0)

    latin, cn, both = one_margin(["latin"]), one_margin(["cn"]), one_margin(["latin", "cn"])
    cn_won = 0
    for s in read_scenes(tmp_path):
        frame = read_image(s.path)
        by_box = [{p.box: p for p in pipe.process(frame).plates} for pipe in (latin, cn)]
        for p in both.process(frame).plates:
            want = max((reads[p.box] for reads in by_box if p.box in reads), key=_rank)
            assert (p.text, p.recognizer) == (want.text, want.recognizer)
            cn_won += p.recognizer == cn.recognizers[0].manifest.name and p.box in by_box[0]
    assert cn_won >= 2


@needs_shipped_detector
def test_refine_needs_a_corners_stage():
    proposals_only = Detector(REPO / "models" / "detector" / "proposal")
    frame = read_image(read_scenes(DRIVE)[0].path)
    assert proposals_only.refine(frame, Detection((10, 10, 60, 30), None, 0.9, 0.9)) is None


@needs_shipped_detector
def test_run_without_source_uses_the_sample_drive():
    r = CliRunner().invoke(main, ["run", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output.strip().splitlines()[-1])["summary"]
    assert summary["frames"] == len(read_scenes(DRIVE)) and summary["plates"] >= summary["frames"] * 0.75


@pytest.mark.parametrize("bundle", ["cn", "latin"])
def test_flat_crops_read_as_no_plate(bundle):
    """LPRNet's per-sample normalisation divides by the input's mean square, zero on a black crop: the shipped
    bundles floor it and have no int8 DIV (SampleNorm), so a flat crop reads as nothing plate-like, no error."""
    from sdk.recognizer import Recognizer

    rec = Recognizer(bundle)
    assert "DIV" not in {op["op_name"] for op in rec.interpreter._get_ops_details()}
    for value in (0, 128, 255):
        read = rec.recognize(np.full((*rec.manifest.input_hw, 3), value, np.uint8))
        assert read.format is None and read.confidence < 0.5


@needs_shipped_detector
def test_compare_scenes_counts_frames_read_and_lists_the_missed_ones(tmp_path):
    """benchmarks/compare_scenes.py on the first sample-drive frames, ours only: its frames-read share agrees with
    its list of missed frames, and each miss names the frame, the label and what the pipeline read instead."""
    script = REPO / "benchmarks" / "compare_scenes.py"
    cmd = [sys.executable, str(script), "--data", str(DRIVE), "--split", "all", "--regions", "br", "--limit", "6"]
    r = subprocess.run([*cmd, "--no-rapidocr", "--misses", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    br = json.loads(r.stdout)["regions"]["br"]
    labels = {s.path.name: s.plates[0].text for s in read_scenes(DRIVE)}
    assert br["n"] == 6 and round(br["ours_frames_read"] * 6) == 6 - len(br["misses"])
    for miss in br["misses"]:
        assert labels[miss["file"]] == miss["label"] and all(text != miss["label"] for text, _ in miss["reads"])
