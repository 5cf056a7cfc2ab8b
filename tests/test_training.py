import json

import numpy as np
import pytest

from sdk.dataset import read_labels
from sdk.image import plate_input, read_image
from sdk.recognizer import Recognizer
from tests.conftest import needs_tf, tiny_config

pytestmark = needs_tf


def test_lprnet_output_is_per_sample():
    """A sample's logits must not depend on the rest of the batch (per-sample global context)."""
    from training.models.lprnet import build_lprnet

    model = build_lprnet(66, (24, 94, 3), "reduced", 0.25)
    x = np.random.default_rng(0).random((4, 24, 94, 3), dtype=np.float32)
    alone = np.asarray(model(x[:1], training=False))
    batched = np.asarray(model(x, training=False))[:1]
    np.testing.assert_allclose(alone, batched, rtol=1e-4, atol=1e-4)
    assert model.output_shape == (None, 24, 66)


@pytest.mark.parametrize("variant, size", [("basic", (24, 94)), ("reduced", (32, 128))])
def test_lprnet_variants_build(variant, size):
    from training.models.lprnet import build_lprnet

    model = build_lprnet(37, (*size, 3), variant, 0.25)
    assert model.output_shape == (None, -(-size[1] // 4), 37)


def test_tiny_lprnet_loss_falls(tiny_run):
    history = json.loads((tiny_run / "metrics.json").read_text())["history"]
    assert history[-1]["loss"] < history[0]["loss"]
    assert (tiny_run / "curves.png").is_file() and (tiny_run / "config.yaml").is_file()


def test_resume_continues_from_checkpoint(tmp_path, synth_dir):
    from training.config import parse_config
    from training.train_recognizer import train

    run = tmp_path / "run"
    config = tiny_config(synth_dir, steps=4)
    config["stages"][0]["data"][0].update(tilt=6, skew=10, lowres=2.5, erase=0.4, balance=1.0)  # kept for the resume
    train(parse_config(config), run, verbose=False)
    saved = (run / "config.yaml").read_text()
    assert all(f"{k}: {v}" in saved for k, v in (("tilt", 6.0), ("skew", 10.0), ("lowres", 2.5), ("erase", 0.4)))
    cfg = (run / "config.yaml").read_text().replace("steps: 4", "steps: 6")
    (run / "config.yaml").write_text(cfg)
    metrics = train(None, run, resume=True, verbose=False)  # type: ignore[arg-type]
    assert metrics["steps"] == 6


def test_weight_averaging_keeps_the_mean_of_the_snapshots_across_a_resume(tmp_path, synth_dir, monkeypatch):
    """``average_from``: the final weights are the mean of the weights at every eval point from that step on,
    and the running mean survives an interruption."""
    import training.train_recognizer as tr
    from training.config import parse_config

    snapshots: dict[int, list[np.ndarray]] = {}
    save = tr._save_checkpoint

    def spy(run, models, opt, state, average=None):
        snapshots[state["step"]] = [w.copy() for w in models["model.weights.h5"].get_weights()]
        save(run, models, opt, state, average)

    monkeypatch.setattr(tr, "_save_checkpoint", spy)
    run = tmp_path / "run"
    cfg = tiny_config(synth_dir, steps=4) | {"eval_every": 2, "average_from": 4}
    tr.train(parse_config(cfg), run, verbose=False)
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("steps: 4", "steps: 8"))
    metrics = tr.train(None, run, resume=True, verbose=False)  # type: ignore[arg-type]
    assert sorted(snapshots) == [2, 4, 6, 8] and metrics["averaged_snapshots"] == 3
    _, model = tr.load_trained(run)
    for got, *at in zip(model.get_weights(), snapshots[4], snapshots[6], snapshots[8], strict=True):
        np.testing.assert_allclose(got, np.mean(at, axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(model.get_weights()[0], snapshots[8][0])  # not simply the last weights
    assert 0 <= metrics["last_weights_plate_accuracy_float_greedy"] <= 1


def test_int8_bundle_reads_like_float(tiny_run, tiny_bundle, synth_dir):
    from training.train_recognizer import load_trained

    cfg, model = load_trained(tiny_run)
    rec = Recognizer(tiny_bundle)
    m = rec.manifest
    assert m.metrics["float"]["overall"]["n"] == 48 and "int8_drop_pp" in m.metrics
    # Whether a 30-step model reads anything depends on the machine, so the check is on what quantisation defines:
    # logits correlate, and at every frame whose float top-2 margin is clearly wider than the int8 output's error
    # budget (a few quantisation steps), int8 picks the same class. Near-ties may flip; they are not compared.
    margin = 2 * 3 * float(rec.interpreter.get_output_details()[0]["quantization"][0])  # 3 steps each side
    compared = 0
    for row in read_labels(synth_dir)[:12]:
        img = read_image(row.path)
        x = plate_input(img, *cfg.input_size)[None].astype(np.float32) / 255.0
        float_logits = np.asarray(model(x, training=False))[0]
        int8_logits = rec.logits(rec.prepare(img))
        assert np.corrcoef(float_logits.ravel(), int8_logits.ravel())[0, 1] > 0.95
        top2 = np.sort(float_logits, axis=-1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > margin
        np.testing.assert_array_equal(float_logits[clear].argmax(-1), int8_logits[clear].argmax(-1))
        compared += int(clear.sum())
    assert compared > 0  # the margin left frames to compare


@needs_tf
def test_int8_global_context_matches_the_reference_kernels():
    """XNNPACK (LiteRT's default CPU path) and TFLite's reference kernels must compute LPRNet's per-sample norm
    alike: an int8 MEAN over three axes, as it once was, came out ~100 % wrong in XNNPACK on AVX2 machines for
    some sizes such as this one (LiteRT 2.1-2.3), which cost the shipped latin bundle 8 pp there."""
    pytest.importorskip("ai_edge_litert.interpreter")
    import keras

    from sdk.interpreter import kernel_disagreement, make_interpreter
    from training.export import convert_int8
    from training.models.lprnet import SampleNorm

    rng = np.random.default_rng(0)
    x = (rng.uniform(0, 1, (24, 6, 32, 48)) * rng.uniform(0.2, 3, (24, 1, 1, 1))).astype(np.float32)
    inp = keras.Input((6, 32, 48), batch_size=1)
    model = convert_int8(keras.Model(inp, SampleNorm()(inp)), x[:16])
    scale, zero = make_interpreter(model)[0].get_input_details()[0]["quantization"]
    inputs = [np.clip(np.round(v / scale + zero), -128, 127).astype(np.int8)[None] for v in x[16:]]
    result = kernel_disagreement(model, inputs)
    assert result["mean_steps"] < 3.0, result  # rounding in the reciprocal's chain: ~1 step; the old MEAN: ~22


def test_norm_floors_keep_the_int8_divisor_off_zero():
    """Each SampleNorm's mean square is floored at NORM_FLOOR of its largest calibrated value, so an all-zero
    input reads finite values, alike in both kernel sets; and the export has no int8 DIV (LiteRT 1.x, tf.lite
    and tflite-runtime fail one whose divisor's raw value is 0, about 3 % of real crops with the old graph)."""
    pytest.importorskip("ai_edge_litert.interpreter")
    import keras

    from sdk.interpreter import kernel_disagreement
    from training.export import NORM_FLOOR, convert_int8, set_norm_floors
    from training.models.lprnet import SampleNorm

    x = np.random.default_rng(1).uniform(0, 2, (32, 6, 32, 16)).astype(np.float32)
    inp = keras.Input((6, 32, 16), batch_size=1)
    model = keras.Model(inp, SampleNorm(name="norm")(inp))
    floors = set_norm_floors(model, x)
    assert floors == {"norm": pytest.approx(NORM_FLOOR * np.mean(np.square(x), axis=(1, 2, 3)).max())}
    tflite = convert_int8(model, x)
    result = kernel_disagreement(tflite, [np.full((1, 6, 32, 16), -128, np.int8), np.zeros((1, 6, 32, 16), np.int8)])
    assert result["ok"], result
    from sdk.interpreter import make_interpreter

    ops = {op["op_name"] for op in make_interpreter(tflite)[0]._get_ops_details()}
    assert "DIV" not in ops and "RSQRT" in ops


def _div_model() -> tuple[bytes, np.ndarray]:
    """An int8 model that divides its input by the input's mean (an int8 DIV), and its calibration images."""
    import keras

    from training.export import convert_int8

    x = np.random.default_rng(2).uniform(0.5, 1, (16, 4, 4, 2)).astype(np.float32)
    inp = keras.Input((4, 4, 2), batch_size=1)
    out = keras.layers.Lambda(lambda t: t / keras.ops.mean(t, axis=(1, 2, 3), keepdims=True))(inp)
    return convert_int8(keras.Model(inp, out), x), x


def test_a_kernel_that_refuses_an_input_is_an_image_error():
    """A kernel failing at invoke (here an int8 DIV by zero) is a one-line ImageError; the interpreter stays
    usable."""
    from sdk.errors import ImageError
    from sdk.interpreter import invoke, make_interpreter

    model, x = _div_model()
    interp = make_interpreter(model)[0]
    i = interp.get_input_details()[0]
    scale, zero = i["quantization"]
    interp.set_tensor(i["index"], np.full((1, 4, 4, 2), zero, np.int8))  # all zeros: the divisor is 0
    with pytest.raises(ImageError, match="cannot read this input"):
        invoke(interp)
    interp.set_tensor(i["index"], np.clip(np.round(x[:1] / scale + zero), -128, 127).astype(np.int8))
    invoke(interp)


def test_selftest_flags_an_int8_div_on_litert_1(monkeypatch):
    """LiteRT 1.x refuses an int8 DIV at one of its divisor levels, in both kernel sets:
    the kernel comparison cannot see it, so the model's ops are checked against the runtime's release."""
    pytest.importorskip("ai_edge_litert.interpreter")
    import sdk.interpreter as si

    model, _ = _div_model()
    inputs = [np.full((1, 4, 4, 2), 100, np.int8)]
    assert si.kernel_disagreement(model, inputs)["faults"] == []  # ai-edge-litert 2.x: fixed
    monkeypatch.setattr(si, "version", lambda pkg: "1.4.0")
    result = si.kernel_disagreement(model, inputs)
    assert not result["ok"] and "int8 DIV" in result["faults"][0] and "1.4.0" in result["faults"][0]
    shipped = Recognizer("cn").bundle.model  # no DIV since 2026-12-07
    assert si.kernel_disagreement(shipped, [np.zeros((1, 24, 94, 3), np.int8)])["faults"] == []


def test_export_is_full_int8_with_static_shapes(tiny_bundle):
    rec = Recognizer(tiny_bundle)
    ops = {op["op_name"] for op in rec.interpreter._get_ops_details()}
    assert not ops & {"QUANTIZE", "DEQUANTIZE"}, ops  # no float islands inside the graph
    assert "DIV" not in ops  # SampleNorm exports as RSQRT and MULs
    assert all(-1 not in d["shape_signature"] for d in rec.interpreter.get_input_details())
    assert (tiny_bundle / "REBUILD.md").is_file()  # the export replaces model + manifest, not notes beside them


def test_export_form_computes_the_same_function(tiny_run):
    from training.train_recognizer import load_trained

    _, model = load_trained(tiny_run)
    _, export = load_trained(tiny_run, for_export=True)
    x = np.random.default_rng(1).random((1, 24, 94, 3), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(export(x)), rtol=1e-4, atol=1e-4)
    assert "ctx_concat" not in {layer.name for layer in export.layers}


def _arrays(texts):
    from training.data.pipeline import PlateArrays

    n = len(texts)
    images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 8, 3), np.uint8)
    return PlateArrays(images, np.zeros((n, 10), np.int32), np.ones(n, np.int32), tuple(texts), ("us",) * n)


def test_fraction_keeps_nested_subsets_of_plate_texts(synth_dir):
    """``fraction`` keeps about that share of the texts; a smaller share's texts are all in a larger one's."""
    from sdk.formats import ALPHABETS
    from training.config import DataSource
    from training.data.pipeline import load_arrays

    cn = ALPHABETS["cn"]
    texts = {f: set(load_arrays(DataSource(str(synth_dir), fraction=f), cn, (24, 94)).texts) for f in (0.25, 0.5, 1)}
    assert len(texts[1]) == 48
    assert 4 <= len(texts[0.25]) < len(texts[0.5]) < 40
    assert texts[0.25] <= texts[0.5] <= texts[1]


def test_leave_out_drops_plates_by_prefix_and_is_validated(synth_dir):
    from sdk.formats import ALPHABETS
    from training.config import ConfigError, DataSource, parse_config
    from training.data.pipeline import load_arrays

    cn = ALPHABETS["cn"]
    texts = load_arrays(DataSource(str(synth_dir)), cn, (24, 94)).texts
    gone = (texts[0][0], texts[1][:2])
    kept = load_arrays(DataSource(str(synth_dir), leave_out=gone), cn, (24, 94)).texts
    assert set(kept) == {t for t in texts if not t.startswith(gone)} and len(kept) < len(texts)
    config = tiny_config(synth_dir, steps=2)
    config["stages"][0]["data"][0]["leave_out"] = ["皖", ""]
    with pytest.raises(ConfigError, match="leave_out"):
        parse_config(config)
    config["stages"][0]["data"][0]["leave_out"] = ["皖"]
    assert parse_config(config).stages[0].data[0].leave_out == ("皖",)


def test_oversample_rare_repeats_rows_with_rare_characters():
    from training.data.pipeline import oversample_rare

    a = _arrays(["AAA1", "AAA2", "AAA1", "AAA2", "WAA1"])
    assert oversample_rare(a, 0.0) is a
    b = oversample_rare(a, 1.0)
    # counts: A 14, 1 3, 2 2, W 1; median 2.5 -> rows with 1 once, with 2 once (1.25), the W row 2.5 -> 2 times
    assert b.texts.count("WAA1") == 2 and b.texts.count("AAA1") == 2 and len(b.texts) == 6
    assert [int(im[0, 0, 0]) for im in b.images] == [0, 1, 2, 3, 4, 4]  # images follow their rows
    assert oversample_rare(a, 5.0, cap=3).texts.count("WAA1") == 3


def test_tilt_rotates_about_the_centre_and_zero_is_identity():
    import tensorflow as tf

    from training.data.pipeline import tilt

    tf.random.set_seed(0)
    x = np.zeros((64, 24, 96, 1), np.float32)
    x[:, 11:13, 8:88] = 1.0  # a horizontal bar through the centre
    x = tf.constant(x)
    np.testing.assert_allclose(tilt(x, tf.zeros(64)).numpy(), x.numpy(), atol=1e-6)
    y = tilt(x, tf.fill((64,), 10.0)).numpy()[..., 0]
    changed = [i for i in range(64) if np.abs(y[i] - x.numpy()[i, ..., 0]).max() > 0.5]
    assert 10 < len(changed) < 54  # about half
    rows = np.arange(24)[:, None]

    def bar_row(img: np.ndarray, c: int) -> float:  # the bar's mean row in columns c..c+5
        return float((img[:, c : c + 6] * rows).sum() / max(img[:, c : c + 6].sum(), 1e-6))

    for i in changed:
        assert y[i, 11:13, 46:50].mean() > 0.5  # the centre stays put
        slanted = abs(bar_row(y[i], 30) - bar_row(y[i], 60)) > 0.5
        assert slanted or y[i, :, 8:14].sum() < x.numpy()[i, :, 8:14].sum() - 1  # or shrunk


def test_skew_turns_the_plate_inside_a_box_that_still_fills_the_frame():
    """``skew``: a turned plate's bounding box is stretched to the frame, so the plate touches all four sides but
    fills less of it, its centre stays put, and 0 degrees is the identity."""
    import tensorflow as tf

    from training.data.pipeline import skew

    tf.random.set_seed(0)
    x = np.zeros((64, 24, 94, 1), np.float32)
    x[:, 1:-1, 1:-1] = 1.0  # the plate, inside a one-pixel ring that edge replication spreads outside it
    x = tf.constant(x)
    np.testing.assert_allclose(skew(x, tf.zeros(64)).numpy(), x.numpy(), atol=1e-6)
    y = skew(x, tf.fill((64,), 15.0)).numpy()[..., 0]
    turned = [i for i in range(64) if y[i].sum() < x.numpy()[i].sum() - 20]
    assert 10 < len(turned) < 54  # about half
    for i in turned:
        rows, cols = np.flatnonzero((y[i] > 0.5).any(axis=1)), np.flatnonzero((y[i] > 0.5).any(axis=0))
        assert rows.min() <= 2 and rows.max() >= 21 and cols.min() <= 2 and cols.max() >= 91
        assert y[i, 10:14, 40:54].min() > 0.99


def test_gaussian_blur_matches_opencv_per_image():
    import cv2
    import tensorflow as tf

    from training.data.pipeline import gaussian_blur

    x = np.random.default_rng(0).random((3, 24, 96, 3)).astype(np.float32)
    y = gaussian_blur(tf.constant(x), tf.constant([0.0, 1.0, 2.0]), 6).numpy()
    np.testing.assert_allclose(y[0], x[0], atol=1e-6)  # sigma 0: unchanged
    for i, sigma in ((1, 1.0), (2, 2.0)):
        ref = cv2.GaussianBlur(x[i], (13, 13), sigma, borderType=cv2.BORDER_REFLECT)
        np.testing.assert_allclose(y[i], ref, atol=1e-5)


def test_lowres_blurs_about_half_of_the_sources_that_ask_for_it():
    import tensorflow as tf

    from training.data.pipeline import blur_sigma, lowres

    tf.random.set_seed(0)
    assert float(blur_sigma(1.0)) == 0.0 and abs(float(blur_sigma(3.0)) - 2**0.5) < 1e-6
    x = np.random.default_rng(1).random((80, 24, 96, 3)).astype(np.float32)
    y = lowres(tf.constant(x), tf.constant([1.0] * 40 + [3.0] * 40), 5).numpy()
    changed = np.abs(y - x).max(axis=(1, 2, 3)) > 1e-4
    assert not changed[:40].any()  # factor 1: never
    assert 8 < changed[40:].sum() < 32  # about half
    assert (y[40:][changed[40:]].std(axis=(1, 2)) < x[40:][changed[40:]].std(axis=(1, 2))).all()  # smoother


def test_erase_blanks_one_small_box_in_about_half_of_the_sources_that_ask_for_it():
    import tensorflow as tf

    from training.data.pipeline import erase

    tf.random.set_seed(0)
    x = np.random.default_rng(2).random((80, 24, 96, 3)).astype(np.float32)
    y = erase(tf.constant(x), tf.constant([0.0] * 40 + [0.5] * 40)).numpy()
    changed = np.abs(y - x).max(axis=3) > 0  # (N, H, W) pixels that changed
    assert not changed[:40].any()  # erase 0: never
    hit = changed[40:].any(axis=(1, 2))
    assert 8 < hit.sum() < 32  # about half
    for img, mask in zip(y[40:][hit], changed[40:][hit], strict=True):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        assert rows.size <= 12 and cols.size <= 12  # at most half the height (24) on each side
        assert mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()  # one solid box
        assert np.ptp(img[mask]) == 0  # of one gray level


def test_per_source_augmentation_options_are_validated(synth_dir):
    from training.config import ConfigError, parse_config

    for key, value, msg in (
        ("tilt", -1, "tilt, skew and balance"),
        ("skew", -1, "tilt, skew and balance"),
        ("lowres", 0.5, "lowres is a downscale factor"),
        ("erase", 1.0, "erase is a fraction of the height"),
        ("fraction", 0, "fraction is the share of plate texts"),
        ("fraction", 1.5, "fraction is the share of plate texts"),
    ):
        config = tiny_config(synth_dir)
        config["stages"][0]["data"][0][key] = value
        with pytest.raises(ConfigError, match=msg):
            parse_config(config)


def test_learning_curve_fits_a_power_law():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from learning_curve import fit_power_law, plates_for

    a, b = fit_power_law([100, 200, 400], [0.3 * n**-0.5 for n in (100, 200, 400)])
    assert a == pytest.approx(0.3) and b == pytest.approx(0.5)
    assert plates_for(0.98, a, b) == round((0.3 / 0.02) ** 2)
    assert plates_for(0.98, 0.1, 0.0) is None  # a flat curve never gets there
    with pytest.raises(ValueError, match="same number"):
        fit_power_law([100, 100], [0.2, 0.1])


def test_learning_curve_script_counts_the_plates_each_run_saw(tiny_run, synth_dir, tmp_path):
    """Two copies of one run, one config keeping half the texts: the rows carry 48 and about 24 plates."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    half = tmp_path / "half"
    shutil.copytree(tiny_run, half)
    cfg = yaml.safe_load((half / "config.yaml").read_text())
    for stage in cfg["stages"]:
        for source in stage["data"]:
            source["fraction"] = 0.5
    (half / "config.yaml").write_text(yaml.safe_dump(cfg))
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "learning_curve.py"
    argv = [sys.executable, str(script), str(tiny_run), str(half), "--data", str(synth_dir), "--region", "cn"]
    run = subprocess.run([*argv, "--split", "train", "--json"], capture_output=True, text=True, check=True)
    out = json.loads(run.stdout)
    plates = [r["real_plates"] for r in out["runs"]]
    assert 10 < plates[0] < 40 and plates[1] == 48
    assert out["runs"][0]["plate_accuracy"] == out["runs"][1]["plate_accuracy"]  # the same weights
    assert out["plates_needed"] == {"0.98": None}  # so the error does not fall


def test_eval_run_script_reads_as_the_training_eval(tiny_run, synth_dir):
    """benchmarks/eval_run.py (the renderer A/B measure) gives the run's own last eval plate accuracy."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "eval_run.py"
    argv = [sys.executable, str(script), str(tiny_run), "--data", str(synth_dir), "--region", "cn"]
    out = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    last = json.loads((tiny_run / "metrics.json").read_text())["history"][-1]
    assert out["n"] == 48 and 0.0 <= out["char_accuracy"] <= 1.0
    assert out["plate_accuracy"] == pytest.approx(last["eval_plate_accuracy"], abs=1e-6)
