"""Issue 4's training methods on tiny real models: the spatial transformer (geometry, warm-up gate, int8 export),
the glyph auxiliary decoder (labels, training, stripped at export), starting a run from another (``init``) and the
ablation runner end to end through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import needs_tf, tiny_config

from lpr_cli import main
from sdk.dataset import read_labels
from sdk.image import plate_input, read_image
from sdk.recognizer import Recognizer

pytestmark = needs_tf


def _smooth_image(h: int = 24, w: int = 94) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([np.sin(xx / 7) + np.cos(yy / 5), xx / w, yy / h], -1)[None]


def test_sampler_identity_and_shift_are_exact():
    from training.models.stn import SeparableAffineSampler

    img = np.random.default_rng(0).random((2, 24, 94, 3)).astype(np.float32)
    sampler = SeparableAffineSampler()
    np.testing.assert_allclose(np.asarray(sampler(img, np.zeros((2, 6), np.float32))), img, atol=1e-5)
    shift = np.zeros(6, np.float32)
    shift[2] = 2 * 2 / 93  # two pixels to the right, in [-1, 1] units
    out = np.asarray(sampler(img, np.stack([shift] * 2)))
    np.testing.assert_allclose(out[:, :, :-2], img[:, :, 2:], atol=1e-5)


WARP = (-0.1, 0.1, 0.05, -0.08, 0.1, 0.02)  # offsets from the identity: a0, a1, a2, b0, b1, b2


def test_two_pass_sampler_matches_a_direct_affine_warp():
    """The two passes compose to x = (a0 + a1 b0) u + a1 b1 v + (a1 b2 + a2), y = b0 u + b1 v + b2 (with a0, b1
    counted from 1)."""
    from training.models.stn import SeparableAffineSampler

    h, w = 24, 94
    a0, a1, a2, b0, b1, b2 = np.array(WARP) + [1, 0, 0, 0, 1, 0]
    img = _smooth_image(h, w)
    out = np.asarray(SeparableAffineSampler()(img, np.array([WARP], np.float32)))[0]
    norm = np.array([[2 / (w - 1), 0, -1], [0, 2 / (h - 1), -1], [0, 0, 1]])
    m = np.array([[a0 + a1 * b0, a1 * b1, a1 * b2 + a2], [b0, b1, b2], [0, 0, 1]])
    pixel_map = (np.linalg.inv(norm) @ m @ norm)[:2]
    ref = cv2.warpAffine(img[0], pixel_map, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    assert np.abs(out - ref)[3:-3, 3:-3].max() < 0.01


def test_sampler_keeps_its_accuracy_in_full_int8():
    """The int8 sampler warps like the float one: within a few int8 steps of the image's range, not columns lost.
    (Run through the SDK's interpreter: TF 2.21's own tf.lite XNNPACK ignores this BATCH_MATMUL's rhs zero point.)"""
    import keras
    import tensorflow as tf

    from sdk.interpreter import make_interpreter
    from training.models.stn import SeparableAffineSampler

    h, w = 32, 128
    rng = np.random.default_rng(1)
    imgs = np.clip(_smooth_image(h, w) * 0.3 + 0.5 + rng.normal(0, 0.05, (8, h, w, 3)), 0, 1).astype(np.float32)
    deltas = (np.array(WARP) * rng.uniform(-1.5, 1.5, (8, 6))).astype(np.float32)
    image_in = keras.Input((h, w, 3), batch_size=1, name="image")
    delta_in = keras.Input((6,), batch_size=1, name="delta")
    model = keras.Model([image_in, delta_in], SeparableAffineSampler()(image_in, delta_in))
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ({"image": imgs[i : i + 1], "delta": deltas[i : i + 1]} for i in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    interp, _ = make_interpreter(conv.convert())
    out = interp.get_output_details()[0]
    errors = []
    for i in range(8):
        for d in interp.get_input_details():
            x = (imgs if len(d["shape"]) == 4 else deltas)[i : i + 1]
            scale, zero = d["quantization"]
            interp.set_tensor(d["index"], np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8))
        interp.invoke()
        scale, zero = out["quantization"]
        q = (interp.get_tensor(out["index"]).astype(np.float32) - zero) * scale
        errors.append(np.abs(q - np.asarray(model([imgs[i : i + 1], deltas[i : i + 1]]))).mean())
    assert np.mean(errors) < 0.02, errors  # ~5 int8 steps of a [0, 1] image; the old sampler was off by ~0.19


def test_stn_gate_holds_the_identity_during_warm_up():
    from training.models.lprnet import build_lprnet
    from training.models.stn import set_stn_gate

    model = build_lprnet(37, (32, 128, 3), "reduced", 0.25, stn=True)
    fc2 = model.get_layer("stn_fc2")
    fc2.set_weights([np.full(w.shape, 0.3, np.float32) for w in fc2.get_weights()])  # a far-from-identity warp
    x = np.asarray(_smooth_image(32, 128), np.float32)
    sample = model.get_layer("stn_sample")
    import keras

    warped = keras.Model(model.input, sample.output)
    assert set_stn_gate(model, False)
    np.testing.assert_allclose(np.asarray(warped(x)), x, atol=1e-5)
    set_stn_gate(model, True)
    assert np.abs(np.asarray(warped(x)) - x).max() > 0.1
    assert not set_stn_gate(build_lprnet(37, (32, 128, 3), "reduced", 0.25), True)


def test_stn_only_for_lprnet(tmp_path):
    from training.config import ConfigError, parse_config

    cfg = tiny_config(tmp_path) | {"input_size": [32, 96]}
    with pytest.raises(ConfigError, match="stn"):
        parse_config(cfg | {"model": {"architecture": "lightcrnn", "stn": True}})


def _train(synth_dir: Path, run: Path, steps: int = 8, **extra) -> Path:
    from training.config import parse_config
    from training.train_recognizer import train

    cfg = tiny_config(synth_dir, steps=steps) | {"eval_every": 4}
    model = cfg["model"] | extra.pop("model", {})
    train(parse_config(cfg | {"model": model} | extra), run, verbose=False)
    return run


@pytest.fixture(scope="module")
def stn_bundle(tmp_path_factory, synth_dir):
    from training.export import quantize_run

    root = tmp_path_factory.mktemp("stn")
    run = _train(synth_dir, root / "run", steps=20, model={"stn": True, "stn_warmup": 10})
    quantize_run(run, synth_dir, root / "bundle", eval_dir=synth_dir, eval_split="all", allow_drop=True)
    return run, root / "bundle"


def test_stn_run_switches_on_and_exports_full_int8(stn_bundle, synth_dir):
    from training.train_recognizer import load_trained

    run, bundle = stn_bundle
    cfg, model = load_trained(run)
    assert float(model.get_layer("stn_gate").gate.numpy()) == 1.0  # on after the warm-up
    assert np.abs(model.get_layer("stn_fc2").get_weights()[0]).max() > 0  # LocNet learned after the switch
    rec = Recognizer(bundle)
    ops = {op["op_name"] for op in rec.interpreter._get_ops_details()}
    assert "BATCH_MATMUL" in ops and not ops & {"QUANTIZE", "DEQUANTIZE", "GATHER_ND", "FLOOR"}, ops
    for row in read_labels(synth_dir)[:6]:
        img = read_image(row.path)
        x = plate_input(img, *cfg.input_size)[None].astype(np.float32) / 255.0
        f = np.asarray(model(x, training=False))[0]
        q = rec.logits(rec.prepare(img))
        assert np.corrcoef(f.ravel(), q.ravel())[0, 1] > 0.9


def test_glyph_labels_sit_in_the_average_text_box(synth_dir):
    from sdk.formats import ALPHABETS
    from training.config import DataSource
    from training.data.pipeline import load_arrays
    from training.models.glyph import glyph_labels, render_glyphs, text_box

    arrays = load_arrays(DataSource(str(synth_dir)), ALPHABETS["cn"], (24, 94))
    x0, y0, x1, y1 = text_box(arrays.images)
    assert 0 <= x0 < 0.3 and 0.7 < x1 <= 1 and 0 <= y0 < 0.5 < y1 <= 1
    g = render_glyphs("AB123", (24, 96), (0.25, 0.25, 0.75, 0.75))
    assert g.shape == (24, 96) and g.max() > 0.9
    ink = np.argwhere(g > 0.5)
    assert ink[:, 0].min() >= 5 and ink[:, 0].max() <= 18 and ink[:, 1].min() >= 23 and ink[:, 1].max() <= 72
    labels = glyph_labels(("AB1", "AB1", "XY9"), (24, 96), (0.1, 0.2, 0.9, 0.8))
    assert labels.shape == (3, 24, 96, 1) and labels.dtype == np.uint8
    assert (labels[0] == labels[1]).all() and (labels[0] != labels[2]).any()


def test_glyph_decoder_upsamples_to_the_label_size():
    from training.models.crnn import build_crnn
    from training.models.glyph import build_glyph_decoder
    from training.models.lprnet import build_lprnet

    assert build_glyph_decoder(build_lprnet(66, (24, 94, 3), "reduced", 0.25)).output_shape == (None, 24, 96, 1)
    assert build_glyph_decoder(build_lprnet(37, (32, 128, 3), "basic", 0.25)).output_shape == (None, 32, 128, 1)
    assert build_glyph_decoder(build_crnn(37, (32, 96, 3), True, 0.25, 16)).output_shape == (None, 16, 96, 1)


def test_glyph_branch_trains_and_is_stripped_at_export(tmp_path, synth_dir, tiny_bundle):
    from training.export import quantize_run

    run = _train(synth_dir, tmp_path / "glyph", steps=8, glyph_weight=0.05)
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert history[-1]["glyph_loss"] < history[0]["glyph_loss"]
    assert (run / "checkpoint" / "glyph.weights.h5").is_file()
    quantize_run(run, synth_dir, tmp_path / "bundle", eval_dir=synth_dir, eval_split="all", allow_drop=True)
    glyph, plain = Recognizer(tmp_path / "bundle"), Recognizer(tiny_bundle)  # tiny_bundle: the same config, plain

    def graph(rec: Recognizer) -> tuple:
        ops = [op["op_name"] for op in rec.interpreter._get_ops_details()]
        return ops, [tuple(t["shape"]) for t in rec.interpreter.get_tensor_details()]

    assert graph(glyph) == graph(plain)
    assert not any("glyph" in t["name"] for t in glyph.interpreter.get_tensor_details())
    assert len(glyph.bundle.model) == pytest.approx(len(plain.bundle.model), abs=64)  # only scales' digits differ


def test_glyph_run_resumes(tmp_path, synth_dir):
    from training.train_recognizer import train

    run = _train(synth_dir, tmp_path / "g", steps=4, glyph_weight=0.05)
    box = json.loads((run / "state.json").read_text())["glyph_box"]
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("steps: 4", "steps: 6"))
    assert train(None, run, resume=True, verbose=False)["steps"] == 6  # type: ignore[arg-type]
    assert json.loads((run / "state.json").read_text())["glyph_box"] == box


def test_init_copies_a_trained_run(tiny_run, tmp_path, synth_dir):
    from training.config import parse_config
    from training.train_recognizer import build_model, init_from, load_trained

    cfg, trained = load_trained(tiny_run)
    fresh = build_model(
        parse_config(tiny_config(synth_dir) | {"model": tiny_config(synth_dir)["model"] | {"stn": True}})
    )
    assert init_from(fresh, tiny_run) == len([la for la in trained.layers if la.weights])
    np.testing.assert_array_equal(
        fresh.get_layer("stem_conv").get_weights()[0], trained.get_layer("stem_conv").get_weights()[0]
    )


ABLATION = """
name: tiny-ablation
kind: ablation
out: {out}
calib: {{path: {data}}}
eval: {{path: {data}, augment: false}}
base: &base
  alphabet: cn
  regions: [cn]
  input_size: [24, 94]
  model: {{variant: reduced, width: 0.25, dropout: 0.1}}
  batch_size: 16
  eval_every: 4
rows:
  - name: pre
    table: false
    config: {{<<: *base, stages: [{{name: pre, steps: 4, data: [{{path: {data}}}]}}]}}
  - name: ft
    label: pretrained + fine-tuned
    init: pre
    decode: [greedy, beam+template]
    forms: [int8, dynamic]
    config: {{<<: *base, stages: [{{name: ft, steps: 4, data: [{{path: {data}}}]}}]}}
  - name: later
    config: {{<<: *base, stages: [{{name: x, steps: 4, data: [{{path: {missing}}}]}}]}}
"""


def test_ablation_trains_measures_and_tabulates(tmp_path, synth_dir):
    cfg = tmp_path / "ablation.yaml"
    cfg.write_text(ABLATION.format(out=tmp_path / "out", data=synth_dir, missing=tmp_path / "not-made"))
    res = CliRunner().invoke(main, ["ablate", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "skip later: data not made yet" in res.output
    table = (tmp_path / "out" / "table.md").read_text()
    for form in ("int8", "dynamic"):
        for dec in ("greedy", "beam+template"):
            assert f"| pretrained + fine-tuned | {form} | {dec} |" in table, table
    assert "| pre |" not in table  # table: false rows only feed others
    (result,) = json.loads((tmp_path / "out" / "results.json").read_text())
    int8, dynamic = result["forms"]["int8"], result["forms"]["dynamic"]
    assert int8["model_bytes"] > 0 and int8["latency_ms_median"] > 0 and not int8["float_islands"]
    assert set(int8["decode"]) == {"greedy", "beam+template"}
    assert int8["decode"]["greedy"]["int8"]["overall"]["n"] == 48
    assert Recognizer(tmp_path / "out" / "ft" / "bundle").manifest.input.dtype == "int8"
    assert Recognizer(tmp_path / "out" / "ft" / "bundle_dynamic").manifest.input.dtype == "float32"
    assert dynamic["model_bytes"] != int8["model_bytes"]
    again = CliRunner().invoke(
        main, ["ablate", "--config", str(cfg)]
    )  # finished rows are neither retrained nor remeasured
    assert again.exit_code == 0 and "== " not in again.output
    # a fresh clone: the records are committed, the weights, checkpoints and bundles are not
    for row in ("pre", "ft"):
        for junk in ("checkpoint", "bundle", "bundle_dynamic"):
            shutil.rmtree(tmp_path / "out" / row / junk, ignore_errors=True)
        (tmp_path / "out" / row / "final.weights.h5").unlink()
    (tmp_path / "out" / "ft" / "ablation.json").unlink()
    clone = CliRunner().invoke(main, ["ablate", "--config", str(cfg)])
    assert clone.exit_code == 0, clone.output
    assert "== pre: train" in clone.output and "== ft: train" in clone.output  # not "resume" from nothing


def test_ablation_config_errors(tmp_path, synth_dir):
    cfg = tmp_path / "a.yaml"
    bad = ABLATION.format(out=tmp_path / "o", data=synth_dir, missing=synth_dir).replace("init: pre", "init: nope")
    cfg.write_text(bad)
    res = CliRunner().invoke(main, ["ablate", "--config", str(cfg)])
    assert res.exit_code == 2 and "must name an earlier row" in res.output
