"""Shared fixtures: a tiny real LPRNet trained for a few steps on rendered plates, and its int8 bundle."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

# The tiny models trained in fixtures must come out the same on every run: their float-vs-int8 checks would be
# flaky otherwise (multi-threaded CPU kernels sum in varying order). Read by TensorFlow when it is first imported.
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
HAS_TF = importlib.util.find_spec("tensorflow") is not None

# A test that needs TensorFlow (or a model trained by a fixture) is marked `train`, so that a device-only install
# (`pip install -e . pytest`) runs the rest with `python -m pytest -m "not train"`. `needs_tf` skips without
# TensorFlow, and pytest_collection_modifyitems below adds `train` to every test it marks and to every test whose
# fixtures (directly or through other fixtures) include one of TRAIN_FIXTURES. A module that imports the training
# extra (PyYAML, Pillow, TensorFlow) at its top imports it through pytest.importorskip and sets
# `pytestmark = pytest.mark.train`; a test that imports it in its body is marked `train` by hand.
needs_tf = pytest.mark.skipif(not HAS_TF, reason='needs the training extra: pip install "lpr-sdk[train]"')
TRAIN_FIXTURES = frozenset({"synth_dir", "tiny_run", "tiny_bundle", "pkgs", "tiny_detector"})  # render or train
needs_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "crops" / "labels.csv").is_file(), reason="../shared/data is absent"
)
DRIVE = REPO / "samples" / "drive"  # the rendered sample drive the README's main command reads
needs_shipped_detector = pytest.mark.skipif(
    not (REPO / "models" / "detector" / "corners" / "model.tflite").is_file(), reason="no shipped detector"
)


@pytest.hookimpl(tryfirst=True)  # before the -m filter deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        trained = TRAIN_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if trained or needs_tf.mark in item.iter_markers("skipif"):
            item.add_marker(pytest.mark.train)


def tiny_config(data: Path, steps: int = 30) -> dict:
    return {
        "name": "tiny-cn",
        "alphabet": "cn",
        "regions": ["cn"],
        "input_size": [24, 94],
        "model": {"variant": "reduced", "width": 0.25, "dropout": 0.1},
        "batch_size": 16,
        "eval_every": 15,
        "stages": [{"name": "synth", "steps": steps, "lr": 0.003, "data": [{"path": str(data)}]}],
        "eval": {"path": str(data), "augment": False},
    }


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """48 rendered cn plates with labels.csv."""
    pytest.importorskip("PIL")
    from training.synth.plates import render_dataset

    out = tmp_path_factory.mktemp("synth")
    render_dataset(out, ["cn"], 48, seed=7)
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, synth_dir) -> Path:
    """A finished (tiny) training run folder."""
    if not HAS_TF:
        pytest.skip('needs the training extra: pip install "lpr-sdk[train]"')
    from training.config import parse_config
    from training.train_recognizer import train

    run = tmp_path_factory.mktemp("run")
    train(parse_config(tiny_config(synth_dir)), run, verbose=False)
    return run


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_run, synth_dir) -> Path:
    """The tiny run exported to a full-int8 bundle directory (accuracy drop allowed: it is barely trained)."""
    from training.export import quantize_run

    out = tmp_path_factory.mktemp("bundle") / "tiny"
    out.mkdir()
    (out / "REBUILD.md").write_text("notes kept next to a bundle\n")  # must survive the export (test_training)
    with pytest.warns(UserWarning, match="calibration images"):  # 48 on purpose: tests stay small
        quantize_run(tiny_run, synth_dir, out, eval_dir=synth_dir, eval_split="all", allow_drop=True)
    return out


PKG_MODEL = "bundles/tiny/model.tflite"


@pytest.fixture(scope="session")
def pkgs(tiny_bundle, tmp_path_factory) -> dict[str, Path]:
    """Keys and packages of the tiny bundle: signed v1/v2, unsigned, wrong key, tampered, truncated, lying."""
    from firmware_tools.keys import generate_keypair
    from firmware_tools.packager import build_package
    from firmware_tools.testing import repack

    d = tmp_path_factory.mktemp("pkgs")
    bundle = d / "tiny"
    bundle.symlink_to(tiny_bundle, target_is_directory=True)
    key, pub = generate_keypair(d / "fleet")
    other, _ = generate_keypair(d / "other")
    out = {"key": key, "pub": pub, "other": other}
    for v in ("v1", "v2"):
        out[v] = build_package([bundle], d / f"{v}.tar.gz", version=v, sign_key=key).source
    out["unsigned"] = build_package([bundle], d / "unsigned.tar.gz", version="v3").source
    out["wrong-key"] = build_package([bundle], d / "wrong.tar.gz", version="v4", sign_key=other).source

    def flip_last_byte(files: dict[str, bytes]) -> None:
        files[PKG_MODEL] = files[PKG_MODEL][:-1] + bytes([files[PKG_MODEL][-1] ^ 1])

    def truncate(files: dict[str, bytes]) -> None:
        files[PKG_MODEL] = files[PKG_MODEL][:999]

    def lie(files: dict[str, bytes]) -> None:
        m = json.loads(files["bundles/tiny/manifest.json"])
        m["input"]["shape"][2] += 8  # a valid manifest that does not match the model
        files["bundles/tiny/manifest.json"] = json.dumps(m).encode()

    out["tampered"] = repack(out["v2"], d / "tampered.tar.gz", flip_last_byte)
    out["truncated"] = repack(out["v2"], d / "truncated.tar.gz", truncate)
    out["lying"] = repack(out["v2"], d / "lying.tar.gz", lie, rehash=True, sign_key=key)
    return out


@pytest.fixture(scope="session")
def tiny_detector(tmp_path_factory):
    """A tiny detector trained for two epochs per stage (and one on proposals mined with its int8 proposal stage) on
    rendered scenes, exported to int8 bundles."""
    if not HAS_TF:
        pytest.skip('needs the training extra: pip install "lpr-sdk[train]"')
    from training.config import parse_detector_config
    from training.export_detector import quantize_detector_run
    from training.synth.scenes import render_scene_dataset
    from training.train_detector import train_detector

    root = tmp_path_factory.mktemp("det")
    render_scene_dataset(root / "scenes", 12, ["us", "br"], seed=3, size=(320, 192))
    cfg = parse_detector_config(
        {
            "name": "tiny-det",
            "data": [{"path": str(root / "scenes"), "copies": 2}],
            "eval": {"path": str(root / "scenes")},
            "proposal": {
                "input_size": [64, 112],
                "width": 0.25,
                "epochs": 2,
                "batch_size": 8,
                "box_scale": 12,
                "qat_epochs": 1,
            },
            "corners": {
                "input_size": [24, 64],
                "width": 0.25,
                "epochs": 2,
                "batch_size": 16,
                "mine_epochs": 1,
                "mine_int8": True,
            },
        }
    )
    metrics = train_detector(cfg, root / "run", verbose=False)
    quantize_detector_run(root / "run", root / "scenes", root / "bundle", allow_drop=True, max_calib=8)
    return root, metrics
