"""CRNN and LightCRNN (seed 000): they build, LightCRNN's 1x1 convs scale as alpha squared, a tiny one trains,
exports to full int8 (unrolled LSTMs, batch 1) and reads through the device runtime like the float model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_tf, tiny_config

from sdk.dataset import read_labels
from sdk.image import plate_input, read_image
from sdk.recognizer import Recognizer

pytestmark = needs_tf


@pytest.mark.parametrize("light", [False, True])
def test_crnn_builds_with_time_steps_of_a_quarter_width(light):
    from training.models.crnn import build_crnn

    model = build_crnn(37, (48, 160, 3), light, 0.25, hidden=16)
    assert model.output_shape == (None, 40, 37)


def test_crnn_without_lstms_reads_the_columns_directly():
    from training.models.crnn import build_crnn

    def lstms(m) -> int:
        return sum("bilstm" in layer.name for layer in m.layers)

    plain = build_crnn(37, (48, 160, 3), True, 0.25, hidden=16, lstm_layers=0)
    assert plain.output_shape == (None, 40, 37) and lstms(plain) == 0
    assert lstms(build_crnn(37, (48, 160, 3), True, 0.25, hidden=16)) == 2


def test_lightcrnn_pointwise_params_scale_as_alpha_squared():
    from training.models.crnn import build_crnn

    def pointwise(alpha: float) -> int:
        m = build_crnn(37, (48, 160, 3), True, alpha, hidden=16)
        return sum(int(np.prod(layer.kernel.shape)) for layer in m.layers if layer.name.endswith("_pw"))

    assert pointwise(1.0) == 4 * pointwise(0.5)
    assert pointwise(1.2) == pytest.approx(1.44 * pointwise(1.0), rel=0.02)  # channels round to multiples of 8


def test_crnn_config_checks_the_input_size(tmp_path):
    from training.config import ConfigError, parse_config

    cfg = tiny_config(tmp_path)
    cfg["model"] = {"architecture": "lightcrnn", "width": 0.5}
    with pytest.raises(ConfigError, match="multiple of 16"):
        parse_config(cfg)  # 24x94
    with pytest.raises(ConfigError, match="not supported"):
        parse_config({**cfg, "model": {"architecture": "vit"}})


@pytest.fixture(scope="module")
def tiny_lightcrnn(tmp_path_factory, synth_dir):
    from training.config import parse_config
    from training.export import quantize_run
    from training.train_recognizer import train

    cfg = tiny_config(synth_dir, steps=30)
    cfg.update(
        name="tiny-lightcrnn", input_size=[32, 96], model={"architecture": "lightcrnn", "width": 0.25, "hidden": 16}
    )
    root = tmp_path_factory.mktemp("lightcrnn")
    train(parse_config(cfg), root / "run", verbose=False)
    quantize_run(root / "run", synth_dir, root / "bundle", eval_dir=synth_dir, eval_split="all", allow_drop=True)
    return root


def test_tiny_lightcrnn_trains_and_reads_like_float_in_int8(tiny_lightcrnn, synth_dir):
    from training.train_recognizer import load_trained

    history = json.loads((tiny_lightcrnn / "run" / "metrics.json").read_text())["history"]
    assert history[-1]["loss"] < history[0]["loss"]
    manifest = json.loads((tiny_lightcrnn / "bundle" / "manifest.json").read_text())
    assert manifest["architecture"] == "lightcrnn-a0.25-h16" and manifest["input"]["dtype"] == "int8"
    rec = Recognizer(tiny_lightcrnn / "bundle")
    ops = {op["op_name"] for op in rec.interpreter._get_ops_details()}
    # No WHILE loops. Unlike LPRNet, the converter may leave a float island (DEQUANTIZE/QUANTIZE around an LSTM
    # gate SPLIT) depending on the trained weights; int8 in and out all the same.
    assert "WHILE" not in ops, ops
    _, model = load_trained(tiny_lightcrnn / "run")
    rows = read_labels(synth_dir)[:8]
    float_logits = np.asarray(model(np.stack([plate_input(read_image(r.path), 32, 96) for r in rows]) / 255.0))
    int8_logits = np.stack([rec.logits(rec.prepare(read_image(r.path))) for r in rows])
    agree = np.mean(float_logits.argmax(-1) == int8_logits.argmax(-1))
    assert agree > 0.8, agree  # per-step best class of float and int8


def test_every_shipped_config_validates():
    from conftest import REPO

    from training.ablate import load_ablation
    from training.config import config_kind, load_config, load_detector_config, load_gan_config

    loaders = {"detector": load_detector_config, "gan": load_gan_config, "ablation": load_ablation}
    configs = sorted((REPO / "configs").rglob("*.yaml"))  # the shipped recipes and the experiment grids
    assert len(configs) >= 7
    for path in configs:
        cfg = loaders.get(config_kind(path), load_config)(path)
        assert cfg.name
        for c in [cfg, *(row.config for row in getattr(cfg, "rows", ()) if row.init is None)]:
            init = getattr(c, "init", None)  # a kept run it starts from ships with the repo (not one made in runs/)
            if init and Path(init).is_relative_to(REPO / "checkpoints"):
                if config_kind(path) == "detector":  # a detector run keeps one set of weights per stage
                    from training.train_detector import stage_weights

                    kept = load_detector_config(Path(init) / "config.yaml")
                    weights = [stage_weights(kept, Path(init), stage) for stage in ("proposal", "corners")]
                else:
                    weights = [Path(init) / "final.weights.h5"]
                assert all(w.is_file() for w in weights), f"{path.name}: no weights in {init}"
