"""CycleGAN / CycleWGAN pretraining: networks, both losses' steps, checkpoint + resume, the CLI, the sample grid."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import REPO, needs_tf

from lpr_cli import main

pytestmark = needs_tf

SIZE = (16, 32)


def tiny(synth: Path, real: Path, loss: str = "cyclegan", steps: int = 2, **kw) -> dict:
    return {
        "name": f"tiny-{loss}",
        "kind": "gan",
        "loss": loss,
        "synthetic": {"path": str(synth)},
        "real": {"path": str(real)},
        "image_size": list(SIZE),
        "steps": steps,
        "batch_size": 2,
        "ngf": 4,
        "ndf": 4,
        "n_res": 1,
        "sample_every": 2,
        "jit_compile": False,  # XLA compiles take longer than these runs
        **kw,
    }


@pytest.fixture(scope="module")
def domains(tmp_path_factory) -> tuple[Path, Path]:
    """A synthetic folder (rendered us/br plates) and a 'real' one (other plates, dimmed and blurred)."""
    pytest.importorskip("PIL")
    from training.synth.plates import render_dataset

    root = tmp_path_factory.mktemp("gan")
    render_dataset(root / "synth", ["us", "br"], 8, seed=1)
    render_dataset(root / "real", ["us", "br"], 8, seed=2)
    for p in (root / "real").rglob("*.jpg"):
        cv2.imwrite(str(p), cv2.GaussianBlur(cv2.imread(str(p)), (5, 5), 0) // 2)
    return root / "synth", root / "real"


@pytest.fixture(scope="module")
def cli_run(domains, tmp_path_factory) -> Path:
    """A finished tiny CycleWGAN run (one critic step per generator step) made by ``lpr-sdk train gan``."""
    import yaml

    d = tmp_path_factory.mktemp("cli")
    (d / "gan.yaml").write_text(yaml.safe_dump(tiny(*domains, loss="wgan", d_iter=1)))
    result = CliRunner().invoke(main, ["train", "gan", "--config", str(d / "gan.yaml"), "--run-dir", str(d / "run")])
    assert result.exit_code == 0, result.output
    return d / "run"


def labels(folder: Path) -> list[dict[str, str]]:
    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_network_shapes():
    from training.models.cyclegan import build_discriminator, build_generator

    x = np.random.default_rng(0).uniform(-1, 1, (2, *SIZE, 3)).astype(np.float32)
    y = np.asarray(build_generator(SIZE, ngf=4, n_res=1)(x))
    assert y.shape == x.shape and np.abs(y).max() <= 1.0
    assert build_discriminator(SIZE, ndf=4)(x).shape == (2, SIZE[0] // 8, SIZE[1] // 8, 1)
    with pytest.raises(ValueError):
        build_generator((18, 32))


def test_config_defaults_per_loss(tmp_path, domains):
    from training.config import ConfigError, config_kind, load_gan_config, parse_gan_config

    wgan = parse_gan_config(tiny(*domains, loss="wgan", cycle_weight=4.0))
    assert (wgan.lr, wgan.d_iter, wgan.identity_weight) == (5e-5, 5, 2.0)
    cyc = parse_gan_config(tiny(*domains))
    assert (cyc.lr, cyc.d_iter, cyc.kind) == (2e-4, 1, "gan")
    for bad in ({"loss": "gan"}, {"image_size": [18, 32]}, {"steps": 0}, {"alphabet": "latin"}):
        with pytest.raises(ConfigError):
            parse_gan_config({**tiny(*domains), **bad})
    for name in ("cyclegan_latin.yaml", "cyclewgan_latin.yaml"):  # the shipped configs validate
        path = REPO / "configs" / name
        assert config_kind(path) == "gan" and load_gan_config(path).image_size == (32, 128)


def _steps(domains, loss: str):
    import keras

    from training.config import parse_gan_config
    from training.train_gan import GanSteps, build_nets, make_optimizers

    cfg = parse_gan_config(tiny(*domains, loss=loss))
    keras.utils.set_random_seed(0)
    nets = build_nets(cfg)
    return cfg, nets, GanSteps(cfg, nets, make_optimizers(cfg))


def _batch(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-1, 1, (2, *SIZE, 3)).astype(np.float32)


def test_cyclegan_step_losses_are_finite(domains):
    _, _, steps = _steps(domains, "cyclegan")
    rng = np.random.default_rng(0)
    out = steps.train_step(lambda: (_batch(rng), _batch(rng)))
    assert set(out) == {"g_loss", "g_adv", "cycle", "identity", "d_loss"}
    assert all(np.isfinite(v) for v in out.values()) and out["d_loss"] > 0, out


def test_wgan_critic_step_clips_every_weight(domains):
    cfg, nets, steps = _steps(domains, "wgan")
    d_weights = [v for m in (nets.d_r, nets.d_s) for v in m.weights]
    assert max(np.abs(np.asarray(w)).max() for w in d_weights) > cfg.clip  # instance-norm scales start at 1
    rng = np.random.default_rng(0)
    xs, xr = _batch(rng), _batch(rng)
    assert np.isfinite(float(steps.critic_step(xs, xr, *steps.fakes(xs, xr))))
    assert max(np.abs(np.asarray(w)).max() for w in d_weights) <= cfg.clip + 1e-7


def test_train_checkpoints_and_resumes(cli_run, tmp_path):
    from training.train_gan import train_gan

    names = {p.name for p in (cli_run / "checkpoint").iterdir()}
    assert {"g_sr.weights.h5", "g_rs.weights.h5", "d_r.weights.h5", "d_s.weights.h5", "g_opt.npz"} <= names
    for f in ("config.yaml", "state.json", "metrics.json", "samples.png", "generator.weights.h5"):
        assert (cli_run / f).is_file(), f
    last = json.loads((cli_run / "metrics.json").read_text())["last"]
    assert last["step"] == 2 and all(np.isfinite(v) for v in last.values()), last
    run = tmp_path / "run"
    shutil.copytree(cli_run, run)
    cfg = (run / "config.yaml").read_text().replace("steps: 2", "steps: 4")
    (run / "config.yaml").write_text(cfg)
    metrics = train_gan(None, run, resume=True, verbose=False)
    assert metrics["steps"] == 4 and [h["step"] for h in metrics["history"]] == [2, 4]


def test_synth_gan_translates_a_folder(cli_run, domains, tmp_path):
    synth, _ = domains
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["synth", "--gan", str(cli_run), "--from", str(synth), str(out)])
    assert result.exit_code == 0, result.output
    src, got = labels(synth), labels(out)
    assert [r["plate_text"] for r in got] == [r["plate_text"] for r in src]
    assert [r["file"] for r in got] == [r["file"] for r in src]
    assert all(r["source"].startswith("lpr-sdk synth --gan tiny-wgan") for r in got)
    for r in got:  # resized back to each source image's size
        assert cv2.imread(str(out / r["file"])).shape == cv2.imread(str(synth / r["file"])).shape
    # render + translate, kept at the GAN's size
    out2 = tmp_path / "out2"
    args = ["synth", "--gan", str(cli_run), "--region", "us", "-n", "3", "--keep-gan-size", str(out2)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert [cv2.imread(str(out2 / r["file"])).shape for r in labels(out2)] == [(*SIZE, 3)] * 3
    assert CliRunner().invoke(main, ["synth", "--from", str(synth), str(out2)]).exit_code != 0  # --from needs --gan


def test_sample_grid(cli_run, domains, tmp_path):
    from training.train_gan import sample_grid

    synth, real = domains
    png = sample_grid(synth, {"CycleGAN": cli_run, "CycleWGAN": cli_run}, real, tmp_path / "grid.png", n=4)
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] > 4 * SIZE[0] * 2  # four labelled rows at scale 2


def test_quantize_refuses_a_gan_run_in_one_line(cli_run, domains, tmp_path):
    result = CliRunner().invoke(main, ["quantize", str(cli_run), "--calib", str(domains[0]), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "is a gan run" in result.output, result.output
