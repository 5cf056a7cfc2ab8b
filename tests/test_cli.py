"""Tests of the ``lpr-sdk`` command line (click's CliRunner, in tmp_path)."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from conftest import needs_shipped_detector, needs_tf, tiny_config

from lpr_cli import main
from sdk.cli import configure_logging
from sdk.dataset import read_labels
from sdk.formats import match_format

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
METRIC_KEYS = {"n", "plate_accuracy", "char_accuracy", "top3_accuracy", "length_consistency", "latency_ms_median"}


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_user_error(result: Result, code: int | None = None) -> str:
    """Exit code != 0, stderr exactly one ``error:`` line, no traceback anywhere; return that line."""
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def images_of(data: Path, n: int) -> list[Path]:
    return sorted((data / "cn").glob("*.jpg"))[:n]


def copy_bundle(src: Path, dst: Path, model: bytes | None = None, **manifest_changes) -> Path:
    """A copy of ``src``; ``model`` replaces model.tflite with its sha256 rewritten; manifest fields updated."""
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text(encoding="utf-8"))
    if model is not None:
        (dst / "model.tflite").write_bytes(model)
        manifest["sha256"] = hashlib.sha256(model).hexdigest()
    manifest.update(manifest_changes)
    (dst / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return dst


def test_cli_import_does_not_load_tensorflow():
    code = "import sys, sdk.cli; sys.exit('tensorflow' in sys.modules or 'training' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
    # the whole command line (training's and firmware_tools' commands joined) imports TensorFlow only when run
    code = "import sys, lpr_cli; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_version_and_help():
    assert run("--version").output.startswith("lpr-sdk, version ")
    result = run("--help")
    for cmd in ("recognize", "evaluate", "bench", "inspect", "synth", "train", "quantize"):
        assert cmd in result.output
    from firmware_tools.cli import COMMANDS as DEPLOY_COMMANDS
    from sdk.cli import main as device_main
    from training.cli import COMMANDS as TRAINING_COMMANDS

    names = [*device_main.commands, *(c.name for c in (*TRAINING_COMMANDS, *DEPLOY_COMMANDS))]
    assert sorted(main.commands) == sorted(names) and len(names) == len(set(names))  # every side's, none twice
    listed = result.output.split("Commands:")[1]
    assert all(f"  {name} " in listed for name in names)


def test_every_option_has_help():
    """--help documents every option of every command (click shows no line for an option without help)."""

    def options(cmd: click.Command, path: str):
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from options(sub, f"{path} {name}")
        yield from ((path, p) for p in cmd.params if isinstance(p, click.Option))

    missing = [f"{path} {'/'.join(p.opts)}" for path, p in options(main, "lpr-sdk") if not p.help]
    assert missing == []


def test_logging_is_configured_by_the_group_and_undone_after(capsys):
    log = logging.getLogger("sdk.test_cli")
    for verbose, quiet, shown in ((False, False, ["warning"]), (True, False, ["debug", "warning"]), (False, True, [])):
        restore = configure_logging(verbose, quiet)
        log.debug("a debug message")
        log.warning("a warning")
        restore()
        log.warning("after the command")  # no handler of ours is left: nothing of it on stderr
        lines = capsys.readouterr().err.splitlines()
        expected = {"debug": "debug: a debug message", "warning": "warning: a warning"}
        assert [line for line in lines if "after the command" not in line] == [expected[k] for k in shown]
    assert "give -v or -q, not both" in run("-v", "-q", "inspect", "cn").output


@needs_shipped_detector
def test_run_warns_of_a_skipped_image_unless_quiet(tmp_path):
    shutil.copy(SAMPLES / "drive" / "drive_t000.jpg", tmp_path / "frame.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    args = ["run", "--source", tmp_path, "--recognizer", "latin"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: ") and "broken.jpg" in result.stderr
    quiet = run("-q", *args)
    assert quiet.exit_code == 0 and quiet.stderr == "" and "1 frames" in quiet.stdout


def test_recognize_prints_a_line_per_image(tiny_bundle, synth_dir):
    imgs = images_of(synth_dir, 3)
    result = run("recognize", tiny_bundle, *imgs)
    assert result.exit_code == 0, result.output
    *lines, total = result.stdout.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(p) for p in imgs]
    # synth_dir/labels.csv names the images: each read is followed by its label
    assert all(len(line.split("\t")) == 5 and line.split("\t")[4].startswith("label ") for line in lines)
    assert total.endswith(f"/3 read right (labels: {synth_dir / 'labels.csv'})")
    assert result.stderr.strip() == "backend: ai-edge-litert"


def test_recognize_json(tiny_bundle, synth_dir):
    imgs = images_of(synth_dir, 2)
    result = run("recognize", tiny_bundle, *imgs, "--json", "--method", "greedy", "--region", "cn")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    objs = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(objs) == 2
    for obj, img in zip(objs, imgs, strict=True):
        keys = {"image", "text", "confidence", "region", "format", "candidates", "looks", "latency_ms", "label"}
        assert set(obj) == keys
        assert obj["image"] == str(img) and obj["region"] == "cn"
        assert obj["label"] == next(r.text for r in read_labels(synth_dir) if r.path == img)
        assert len(obj["candidates"]) == 1 and set(obj["candidates"][0]) == {"text", "confidence"}


def test_recognize_continues_past_unreadable_images(tiny_bundle, synth_dir, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("this is not an image")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    good = images_of(synth_dir, 1)[0]
    result = run("recognize", tiny_bundle, bad, good, empty, "--json")
    assert result.exit_code == 1
    assert [json.loads(line)["image"] for line in result.stdout.strip().splitlines()] == [str(good)]
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("error: ") for e in errors)
    assert "bad.jpg" in errors[0] and "empty.jpg" in errors[1]


@pytest.mark.parametrize("bundle", ["cn", "latin"])
def test_the_shipped_models_read_every_sample(bundle):
    """The README's first command: each sample crop is read as samples/labels.csv says (the samples are ours)."""
    imgs = sorted((SAMPLES / bundle).glob("*.jpg"))
    result = CliRunner().invoke(main, ["recognize", bundle, *map(str, imgs)])
    assert result.exit_code == 0, result.output
    *lines, total = result.stdout.strip().splitlines()
    assert len(lines) == len(imgs) and all(line.endswith(": right") for line in lines), result.stdout
    assert total == f"{len(imgs)}/{len(imgs)} read right (labels: {SAMPLES / 'labels.csv'})"


def test_recognize_shows_a_misread_next_to_its_label(tmp_path):
    """A labels.csv beside the images: a wrong label is shown as a misread and counted, not an error."""
    for name in ("cn_0.jpg", "cn_3.jpg", "cn_1.jpg"):
        shutil.copy(SAMPLES / "cn" / name, tmp_path / name)
    rows = [("cn_0.jpg", "青H99790", "cn", "ours"), ("cn_3.jpg", "津W030S5", "cn", "a wrong label")]
    with open(tmp_path / "labels.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("file", "plate_text", "region", "source"), *rows])
    result = run("recognize", "cn", tmp_path / "cn_0.jpg", tmp_path / "cn_3.jpg", tmp_path / "cn_1.jpg")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].endswith("\tlabel 青H99790: right")
    assert "\t津W030SS\t" in lines[1] and lines[1].endswith("\tlabel 津W030S5: MISREAD")
    assert len(lines[2].split("\t")) == 4  # cn_1.jpg has no row: no label, not counted
    assert lines[3] == f"1/2 read right (labels: {tmp_path / 'labels.csv'})"


def test_recognize_without_labels_prints_no_total(tmp_path):
    shutil.copy(SAMPLES / "cn" / "cn_0.jpg", tmp_path / "plate.jpg")
    result = run("recognize", "cn", tmp_path / "plate.jpg")
    assert result.exit_code == 0, result.output
    assert [len(line.split("\t")) for line in result.stdout.strip().splitlines()] == [4]


@pytest.mark.parametrize("content", [b"this is not an image", b""], ids=["text", "empty"])
def test_recognize_one_unreadable_image(tiny_bundle, tmp_path, content):
    img = tmp_path / "plate.jpg"
    img.write_bytes(content)
    assert "plate.jpg" in assert_user_error(run("recognize", tiny_bundle, img, "--json"), code=1)


def test_evaluate_json(tiny_bundle, synth_dir):
    result = run("evaluate", tiny_bundle, "--data", synth_dir, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"bundle", "data", "split", "backend", "overall", "regions"} <= set(report)
    assert report["split"] == "all"
    assert set(report["regions"]) == {"cn"}
    assert set(report["regions"]["cn"]) >= METRIC_KEYS and set(report["overall"]) >= METRIC_KEYS
    assert report["overall"]["n"] == 48 and "misses" not in report


def test_evaluate_lists_the_misreads(tiny_bundle, synth_dir, tmp_path):
    """--misses lists exactly the rows read wrong, each with its read and top-3: relabel one row with what the
    model reads there, and it leaves the list."""
    report = json.loads(run("evaluate", tiny_bundle, "--data", synth_dir, "--json", "--misses").stdout)
    wrong, n = report["misses"], report["overall"]["n"]
    assert wrong and len(wrong) == round(n * (1 - report["overall"]["plate_accuracy"]))
    truth = {r.path.name: r.text for r in read_labels(synth_dir)}
    assert all(truth[m["file"]] == m["truth"] != m["read"] and 0 < len(m["top3"]) <= 3 for m in wrong)
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    labels = (data / "labels.csv").read_text(encoding="utf-8")
    first = wrong[0]
    (data / "labels.csv").write_text(
        labels.replace(f"{first['file']},{first['truth']},", f"{first['file']},{first['read']},"), encoding="utf-8"
    )
    text = run("evaluate", tiny_bundle, "--data", data, "--misses").stdout
    assert text.count("\nmiss  ") == len(wrong) - 1 and first["file"] not in text


def test_evaluate_skips_uncovered_regions(tiny_bundle, synth_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    with open(data / "labels.csv", "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(("cn/0000000.jpg", "ABC1234", "us", "fake"))
    result = run("evaluate", tiny_bundle, "--data", data)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("note: skipped") and "cover: 1 us (it covers cn)" in result.stderr
    assert "cn" in result.stdout and "overall" in result.stdout


def test_bench_json(tiny_bundle):
    result = run("bench", tiny_bundle, "--json", "--runs", 5, "--warmup", 2, "--threads", "1,2")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model_bytes"] == (tiny_bundle / "model.tflite").stat().st_size
    assert report["backend"] == "ai-edge-litert" and report["input_shape"] == [1, 24, 94, 3]
    assert [r["threads"] for r in report["results"]] == [1, 2]
    keys = {"latency_ms_median", "latency_ms_p90", "second_look_ms_median", "invoke_ms_median"}
    assert all(keys <= set(r) for r in report["results"])
    assert set(report["memory"]) == {"recognizer_mib", "rss_mib", "peak_rss_mib"}


@pytest.mark.skipif(not Path("/proc/self/statm").is_file(), reason="resident memory is read from /proc (Linux)")
def test_memory_counts_what_the_process_holds():
    import numpy as np

    from sdk.bench import memory_mib

    before = memory_mib()
    block = np.ones(64 * 2**20, np.uint8)  # 64 MiB, every page touched
    after = memory_mib()
    assert after["rss_mib"] - before["rss_mib"] > 60
    assert after["peak_rss_mib"] >= after["rss_mib"] and block.sum() == 64 * 2**20


def test_inspect_json_lists_ops(tiny_bundle):
    result = run("inspect", tiny_bundle, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["kind"] == "recognizer" and info["regions"] == ["cn"] and info["alphabet_size"] == 65
    assert info["model_bytes"] == (tiny_bundle / "model.tflite").stat().st_size
    ops = {o["op"]: o["count"] for o in info["ops"]}
    assert ops.get("CONV_2D", 0) > 0
    assert run("inspect", tiny_bundle).exit_code == 0


def test_selftest_checks_every_shipped_bundle_and_fails_on_a_mismatch(tiny_bundle, monkeypatch):
    import platform
    from importlib.metadata import version

    result = run("selftest", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    runtime = report["runtime"]  # what a device's report needs to place it
    assert runtime["machine"] == platform.machine() and runtime["version"] == version(runtime["backend"])
    checked = {Path(r["bundle"]).name: r for r in report["bundles"]}
    assert {"latin", "cn", "proposal", "corners"} <= set(checked)
    assert all(r["ok"] and r["mean_steps"] <= 3.0 for r in checked.values())
    import sdk.interpreter

    monkeypatch.setattr(sdk.interpreter, "KERNEL_TOLERANCE_STEPS", -1.0)  # any difference now counts as wrong
    result = run("selftest", tiny_bundle)
    assert result.exit_code == 1 and "MISMATCH" in result.stdout
    assert result.stdout.startswith(f"{runtime['backend']} {runtime['version']} on {runtime['machine']}")
    assert result.stderr.startswith("error: ") and str(tiny_bundle) in result.stderr


@pytest.mark.train
def test_synth_writes_plates_of_the_region_formats(tmp_path):
    pytest.importorskip("PIL")
    out = tmp_path / "synth"
    result = run("synth", "--region", "cn", "--region", "us", "-n", 6, "--seed", 3, out)
    assert result.exit_code == 0, result.output
    with open(out / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["region"] for r in rows} == {"cn", "us"}
    assert len(list(out.rglob("*.jpg"))) == 6
    for r in rows:
        assert (out / r["file"]).is_file()
        assert match_format(r["plate_text"], r["region"]) is not None, r


def test_synth_unknown_region(tmp_path):
    assert "'xx'" in assert_user_error(run("synth", "--region", "xx", "-n", 2, tmp_path / "o"), code=2)


@needs_tf
def test_quantize(tiny_run, synth_dir, tmp_path):
    out = tmp_path / "bundle"
    args = ("--calib", synth_dir, "--out", out, "--eval", synth_dir, "--eval-split", "all", "--allow-drop")
    result = run("quantize", tiny_run, *args, "--max-calib", 32)
    assert result.exit_code == 0, result.output
    assert (out / "model.tflite").is_file() and (out / "manifest.json").is_file()
    assert f"bundle: {out}" in result.stdout and "float" in result.stdout and "int8" in result.stdout


@needs_tf
def test_train_then_resume(synth_dir, tmp_path):
    import yaml

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(synth_dir, steps=3), allow_unicode=True), encoding="utf-8")
    run_dir = tmp_path / "run"
    result = run("train", "recognizer", "--config", config, "--run-dir", run_dir)
    assert result.exit_code == 0, result.output
    assert f"metrics: {run_dir / 'metrics.json'}" in result.stdout
    assert json.loads((run_dir / "metrics.json").read_text())["steps"] == 3
    result = run("train", "recognizer", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    assert "resumed" in result.stdout
    assert json.loads((run_dir / "metrics.json").read_text())["steps"] == 3


@needs_tf
def test_train_distributed(synth_dir, tmp_path, monkeypatch):
    """--distribute mirrored runs the same entry point over the local replicas (here the CPU alone);
    multi-worker without a cluster description is a one-line error."""
    import yaml

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(synth_dir, steps=2), allow_unicode=True), encoding="utf-8")
    result = run("train", "recognizer", "--config", config, "--run-dir", tmp_path / "run", "--distribute", "mirrored")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 2
    monkeypatch.delenv("TF_CONFIG", raising=False)
    args = ("--config", config, "--run-dir", tmp_path / "run2", "--distribute", "multi-worker")
    assert "needs TF_CONFIG" in assert_user_error(run("train", "recognizer", *args), code=2)
    assert not (tmp_path / "run2").exists()
    assert run("train", "detector", *args).exit_code == 2  # the detector trains on one machine


def test_train_needs_exactly_one_of_config_or_resume():
    assert run("train", "recognizer").exit_code == 2


@pytest.mark.train
def test_train_bad_config_is_one_line(tmp_path):
    pytest.importorskip("yaml")
    pytest.importorskip("tensorflow")
    config = tmp_path / "bad.yaml"
    config.write_text("name: x\nalphabet: klingon\nregions: [cn]\ninput_size: [24, 94]\nstages: []\n", encoding="utf-8")
    assert "alphabet" in assert_user_error(run("train", "recognizer", "--config", config), code=2)


def test_training_commands_without_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow -> ImportError
    config = tmp_path / "c.yaml"
    config.write_text("name: x\n", encoding="utf-8")
    line = assert_user_error(run("train", "recognizer", "--config", config), code=2)
    assert line == 'error: this command needs the training extra: pip install "lpr-sdk[train]"'
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert_user_error(run("quantize", run_dir, "--calib", tmp_path, "--out", tmp_path / "b"), code=2)


# --- bad bundles: one line on stderr, no traceback ---------------------------------------------------------------


def test_missing_bundle(tmp_path):
    line = assert_user_error(run("recognize", tmp_path / "nope", tmp_path / "x.jpg"), code=2)
    assert "does not exist" in line
    assert_user_error(run("inspect", "no-such-bundle"), code=2)
    line = assert_user_error(run("recognize", "no-such-bundle", tmp_path / "x.jpg"), code=2)
    assert line.endswith("(shipped recognisers: cn, latin)")  # not the detector


@needs_shipped_detector
@pytest.mark.parametrize("name", ["detector", "detector/proposal", "detector/corners"])
def test_inspect_the_shipped_detector_and_its_stages(name):
    result = run("inspect", name, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    stages = info["stages"] if name == "detector" else {name.split("/")[1]: info}
    assert list(stages) == (["proposal", "corners"] if name == "detector" else [name.split("/")[1]])
    for stage, s in stages.items():
        assert s["kind"] == "detector" and s["name"] == f"plate-detector-{stage}" and s["ops"]
    text = run("inspect", name)
    assert text.exit_code == 0, text.output
    assert text.stdout.count("kind          detector") == len(stages) and "int8 AP@0.5 " in text.stdout
    assert "alphabet" not in text.stdout  # a detector stage has none


def test_inspect_does_not_print_the_build_machines_data_path():
    manifest = SAMPLES.parent / "models" / "cn" / "manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))["metrics"]["data"]
    result = run("inspect", "cn")
    assert result.exit_code == 0, result.output
    assert data not in result.stdout and f"{Path(data).name} test split" in result.stdout


@pytest.fixture
def bad_bundles(tiny_bundle, tmp_path) -> dict[str, Path]:
    model = (tiny_bundle / "model.tflite").read_bytes()
    manifest = json.loads((tiny_bundle / "manifest.json").read_text(encoding="utf-8"))
    truncated = copy_bundle(tiny_bundle, tmp_path / "truncated")
    (truncated / "model.tflite").write_bytes(model[: len(model) // 2])  # sha256 left as it was
    n, t, c = manifest["output"]["shape"]
    return {
        "truncated": truncated,
        "blank_index": copy_bundle(tiny_bundle, tmp_path / "blank", blank_index=c + 3),
        "output_shape": copy_bundle(
            tiny_bundle, tmp_path / "shape", model=model, output={**manifest["output"], "shape": [n, t - 1, c]}
        ),
        "garbage": copy_bundle(tiny_bundle, tmp_path / "garbage", model=b"definitely not a flatbuffer " * 400),
    }


@pytest.mark.parametrize(
    ("which", "expect"),
    [
        ("truncated", "sha256"),
        ("blank_index", "blank_index"),
        ("output_shape", "disagrees with the model"),
        ("garbage", "does not load"),
    ],
)
@pytest.mark.parametrize("command", ["recognize", "inspect", "bench", "evaluate"])
def test_bad_bundle(bad_bundles, synth_dir, which, expect, command):
    extra = {
        "recognize": [images_of(synth_dir, 1)[0]],
        "inspect": [],
        "bench": ["--runs", 1, "--warmup", 0],
        "evaluate": ["--data", synth_dir],
    }[command]
    assert expect in assert_user_error(run(command, bad_bundles[which], *extra), code=2)


def test_unknown_region(tiny_bundle, synth_dir):
    img = images_of(synth_dir, 1)[0]
    assert "unknown region 'xx'" in assert_user_error(run("recognize", tiny_bundle, img, "--region", "xx"), code=2)
    assert "unknown region" in assert_user_error(run("evaluate", tiny_bundle, "--data", synth_dir, "--region", "xx"))
    assert "covers region" in assert_user_error(run("recognize", tiny_bundle, img, "--region", "us"), code=2)


def test_a_labels_csv_that_is_not_utf8_is_one_error_line(tmp_path):
    (tmp_path / "labels.csv").write_bytes(b"file,plate_text,region\nx.jpg,\xff\xfeAB,cn\n")
    result = run("evaluate", "cn", "--data", tmp_path)
    assert result.exit_code != 0 and "is not UTF-8 text" in result.output and "Traceback" not in result.output


def test_selftest_of_a_corrupt_model_whose_hash_was_made_to_match_is_one_error_line(tmp_path):
    """A model file broken in its flatbuffer header, with the manifest's sha256 updated to match it."""
    bundle = tmp_path / "cn"
    shutil.copytree(SAMPLES.parent / "models" / "cn", bundle)
    model = bytearray((bundle / "model.tflite").read_bytes())
    model[8:40] = b"\xff" * 32
    (bundle / "model.tflite").write_bytes(bytes(model))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["sha256"] = hashlib.sha256(bytes(model)).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    result = run("selftest", bundle)
    assert result.exit_code != 0 and "does not load" in result.output and "Traceback" not in result.output
