"""CycleGAN / CycleWGAN pretraining: translate synthetic plate crops to look like real ones (unpaired).

Two generators (synthetic->real ``g_sr``, real->synthetic ``g_rs``) and two discriminators (``d_r`` on the real
domain, ``d_s`` on the synthetic one) train on the two folders, both loaded once into memory. ``loss: cyclegan``:
LSGAN losses, one joint step (generators, then the discriminators on the fakes just made), Adam(beta1 0.5).
``loss: wgan``: ``d_iter`` critic steps (fresh batches and fakes each, critic weights clipped to [-clip, clip]
after each) per generator step, RMSProp. Both add the L1 cycle loss (``cycle_weight``) and the L1 identity loss
(``identity_weight``). No image pool.

A run folder holds ``config.yaml``, ``state.json`` (step, loss history), ``checkpoint/`` (the four networks and
both optimizers, swapped in whole every ``sample_every`` steps), ``samples.png`` (synthetic / translated / real),
``generator.weights.h5`` (the final synthetic->real generator), ``generator_r2s.weights.h5`` and ``metrics.json``.

``python -m training.train_gan grid SYNTH REAL OUT.png --gan CycleGAN=RUN ...`` draws one comparison grid.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import keras
import numpy as np
import tensorflow as tf

from sdk.dataset import SPLITS, LabelRow, read_labels
from sdk.errors import LprError
from sdk.image import plate_input, read_image
from training.config import DataSource, GanConfig, config_kind, load_gan_config, open_run
from training.models.cyclegan import (
    build_discriminator,
    build_generator,
    l1,
    lsgan_d_loss,
    lsgan_g_loss,
    wgan_d_loss,
    wgan_g_loss,
)

CKPT = "checkpoint"
GENERATOR = "generator.weights.h5"
SOURCE_TAG = "lpr-sdk synth --gan"


@dataclass(frozen=True)
class CycleNets:
    """The four networks of a run."""

    g_sr: keras.Model  # synthetic -> real
    g_rs: keras.Model  # real -> synthetic
    d_r: keras.Model  # real domain
    d_s: keras.Model  # synthetic domain

    def items(self) -> list[tuple[str, keras.Model]]:
        return [("g_sr", self.g_sr), ("g_rs", self.g_rs), ("d_r", self.d_r), ("d_s", self.d_s)]


def build_nets(cfg: GanConfig) -> CycleNets:
    """The four networks a config describes (freshly initialised)."""
    size = cfg.image_size
    return CycleNets(
        build_generator(size, cfg.ngf, cfg.n_res, name="g_sr"),
        build_generator(size, cfg.ngf, cfg.n_res, name="g_rs"),
        build_discriminator(size, cfg.ndf, name="d_r"),
        build_discriminator(size, cfg.ndf, name="d_s"),
    )


def make_optimizers(cfg: GanConfig) -> dict[str, keras.optimizers.Optimizer]:
    """Generator and discriminator optimizers: Adam(lr, beta1 0.5) for cyclegan, RMSProp(lr) for wgan."""
    if cfg.loss == "wgan":
        return {"g_opt": keras.optimizers.RMSprop(cfg.lr), "d_opt": keras.optimizers.RMSprop(cfg.lr)}
    return {n: keras.optimizers.Adam(cfg.lr, beta_1=0.5, beta_2=0.999) for n in ("g_opt", "d_opt")}


class GanSteps:
    """The compiled training steps of one run; :meth:`train_step` is one generator step (and its critic steps)."""

    def __init__(self, cfg: GanConfig, nets: CycleNets, opts: dict[str, keras.optimizers.Optimizer]) -> None:
        self.cfg, self.nets = cfg, nets
        self.g_opt, self.d_opt = opts["g_opt"], opts["d_opt"]
        self.g_vars = nets.g_sr.trainable_variables + nets.g_rs.trainable_variables
        self.d_vars = nets.d_r.trainable_variables + nets.d_s.trainable_variables
        self.g_opt.build(self.g_vars)  # built now: a resumed run loads their slots before the first step
        self.d_opt.build(self.d_vars)
        wgan = cfg.loss == "wgan"
        self._d_loss, self._g_loss = (wgan_d_loss, wgan_g_loss) if wgan else (lsgan_d_loss, lsgan_g_loss)
        jit = cfg.jit_compile  # XLA fuses the many small elementwise ops of instance norm, losses and optimizers
        self.generator_step = tf.function(self._generator_step, jit_compile=jit)
        self.critic_step = tf.function(self._critic_step, jit_compile=jit)
        self.fakes = tf.function(self._fakes, jit_compile=jit)

    def _fakes(self, xs, xr):
        return self.nets.g_sr(xs, training=True), self.nets.g_rs(xr, training=True)

    def _generator_step(self, xs, xr):
        n, c = self.nets, self.cfg
        with tf.GradientTape() as tape:
            fake_r, fake_s = self._fakes(xs, xr)
            adv = self._g_loss(n.d_r(fake_r, training=True)) + self._g_loss(n.d_s(fake_s, training=True))
            cycle = l1(xs, n.g_rs(fake_r, training=True)) + l1(xr, n.g_sr(fake_s, training=True))
            identity = tf.zeros(())
            if c.identity_weight:
                identity = l1(xr, n.g_sr(xr, training=True)) + l1(xs, n.g_rs(xs, training=True))
            loss = adv + c.cycle_weight * cycle + c.identity_weight * identity
        grads = tape.gradient(loss, self.g_vars)
        self.g_opt.apply_gradients(zip(grads, self.g_vars, strict=True))
        return {"g_loss": loss, "g_adv": adv, "cycle": cycle, "identity": identity}, fake_r, fake_s

    def _critic_step(self, xs, xr, fake_r, fake_s):
        n = self.nets
        with tf.GradientTape() as tape:
            loss = self._d_loss(n.d_r(xr, training=True), n.d_r(fake_r, training=True)) + self._d_loss(
                n.d_s(xs, training=True), n.d_s(fake_s, training=True)
            )
        grads = tape.gradient(loss, self.d_vars)
        self.d_opt.apply_gradients(zip(grads, self.d_vars, strict=True))
        if self.cfg.loss == "wgan":  # the Lipschitz constraint of the original WGAN
            for v in self.d_vars:
                v.assign(tf.clip_by_value(v, -self.cfg.clip, self.cfg.clip))
        return loss

    def train_step(self, draw: Callable[[], tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
        """One generator step with its critic step(s); ``draw`` returns a (synthetic, real) float batch pair.

        cyclegan: the generators step, then the discriminators on the fakes they just made (``d_iter`` > 1: the
        extra steps on fresh batches). wgan: ``d_iter`` critic steps on fresh batches, then the generators.
        """
        d_losses = []
        if self.cfg.loss == "wgan":
            for _ in range(self.cfg.d_iter):
                xs, xr = draw()
                d_losses.append(self.critic_step(xs, xr, *self.fakes(xs, xr)))
            out, _, _ = self.generator_step(*draw())
        else:
            xs, xr = draw()
            out, fake_r, fake_s = self.generator_step(xs, xr)
            d_losses.append(self.critic_step(xs, xr, fake_r, fake_s))
            for _ in range(self.cfg.d_iter - 1):
                xs, xr = draw()
                d_losses.append(self.critic_step(xs, xr, *self.fakes(xs, xr)))
        return {**{k: float(v) for k, v in out.items()}, "d_loss": float(np.mean([float(d) for d in d_losses]))}


# --- data ---------------------------------------------------------------------------------------------------------


def read_images(paths: list[Path], size: tuple[int, int]) -> np.ndarray:
    """Images as uint8 RGB (N, H, W, 3) at ``size`` (height, width)."""
    h, w = size
    with ThreadPoolExecutor(4) as ex:
        return np.stack(list(ex.map(lambda p: plate_input(read_image(p), h, w), paths)))


def load_images(source: DataSource, size: tuple[int, int]) -> np.ndarray:
    """Every image of a labelled folder (its split and regions) at ``size``: uint8 RGB (N, H, W, 3)."""
    rows = read_labels(source.path, source.split, source.regions)
    if not rows:
        raise LprError(f"{source.path} (split {source.split}, regions {source.regions}) has no images")
    return read_images([r.path for r in rows], size)


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images.astype(np.float32) / 127.5 - 1.0


def to_uint8(x: Any) -> np.ndarray:
    """float [-1, 1] -> uint8 [0, 255]."""
    return np.clip((np.asarray(x) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def translate(model: keras.Model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Pass uint8 RGB images (N, H, W, 3) at the generator's size through it, in batches; uint8 RGB out."""
    out = [
        to_uint8(model(to_float(images[i : i + batch_size]), training=False)) for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out) if out else images.copy()


# --- checkpoints ----------------------------------------------------------------------------------------------------


def _checkpoint_dir(run: Path) -> Path | None:
    for name in (CKPT, CKPT + ".old"):  # .old: a crash between the two renames of _save_checkpoint
        if (run / name / "state.json").is_file():
            return run / name
    return None


def _save_checkpoint(run: Path, nets: CycleNets, opts: dict[str, Any], state: dict[str, Any]) -> None:
    """Write the whole checkpoint into a fresh folder, then swap it in: a crash never leaves a mixed one."""
    tmp, ck, old = run / (CKPT + ".tmp"), run / CKPT, run / (CKPT + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, model in nets.items():
        model.save_weights(tmp / f"{name}.weights.h5")
    for name, opt in opts.items():
        np.savez(tmp / f"{name}.npz", *[v.numpy() for v in opt.variables])
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    if ck.exists():
        shutil.rmtree(old, ignore_errors=True)
        ck.rename(old)
    tmp.rename(ck)
    shutil.rmtree(old, ignore_errors=True)
    t = run / "state.json.tmp"
    t.write_text(json.dumps(state, indent=1))
    t.replace(run / "state.json")


def _load_checkpoint(ck: Path, nets: CycleNets, opts: dict[str, Any]) -> dict[str, Any]:
    for name, model in nets.items():
        model.load_weights(ck / f"{name}.weights.h5")
    for name, opt in opts.items():  # built by GanSteps
        saved = np.load(ck / f"{name}.npz")
        for v, k in zip(opt.variables, sorted(saved.files, key=lambda s: int(s.split("_")[1])), strict=True):
            v.assign(saved[k])
    return json.loads((ck / "state.json").read_text())


# --- sample grids -------------------------------------------------------------------------------------------------


def save_grid(rows: list[tuple[str, np.ndarray]], path: str | Path, scale: int = 2) -> Path:
    """One PNG of labelled rows: each row a label and uint8 RGB images (N, H, W, 3) of one size, scaled up."""
    h, w = rows[0][1].shape[1:3]
    n = max(len(images) for _, images in rows)
    label_w, gap = 110 * scale, 2 * scale
    cell_h, cell_w = h * scale, w * scale
    grid = np.full((len(rows) * (cell_h + gap) + gap, label_w + n * (cell_w + gap), 3), 255, np.uint8)
    for i, (label, images) in enumerate(rows):
        y = gap + i * (cell_h + gap)
        cv2.putText(grid, label, (4, y + cell_h // 2 + 5 * scale), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, (0, 0, 0))
        for j, img in enumerate(images):
            x = label_w + j * (cell_w + gap)
            grid[y : y + cell_h, x : x + cell_w] = cv2.resize(img, (cell_w, cell_h), interpolation=cv2.INTER_NEAREST)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return out


def _pick(rows: list[LabelRow], n: int, seed: int) -> list[LabelRow]:
    idx = np.random.default_rng(seed).choice(len(rows), min(n, len(rows)), replace=False)
    return [rows[i] for i in sorted(idx)]


def sample_grid(
    synth_dir: str | Path,
    gan_runs: dict[str, str | Path],
    real_dir: str | Path,
    out_png: str | Path,
    n: int = 8,
    seed: int = 0,
    real_split: str = "train",
    regions: tuple[str, ...] | list[str] | None = None,
    scale: int = 2,
) -> Path:
    """Save one grid image: ``n`` synthetic crops, each GAN run's translation of them, and ``n`` real crops.

    Args:
        synth_dir: labelled folder of synthetic crops.
        gan_runs: row label -> GAN run folder (e.g. ``{"CycleGAN": ..., "CycleWGAN": ...}``), in row order.
        real_dir: labelled folder of real crops.
        out_png: the image to write.
        n: images per row.
        seed: which images are picked.
        real_split: split of ``real_dir`` to draw from.
        regions: regions of both folders to draw from (None: all).
        scale: pixel upscaling of the grid.

    Returns:
        The path written.
    """
    models = {name: load_generator(run) for name, run in gan_runs.items()}
    size = next(iter(models.values()))[0].image_size if models else (32, 128)
    synth = _pick(read_labels(synth_dir, "all", regions), n, seed)
    real = _pick(read_labels(real_dir, real_split, regions), n, seed)  # type: ignore[arg-type]
    if not synth or not real:
        raise LprError("sample_grid needs synthetic and real images")
    rows = [("synthetic", read_images([r.path for r in synth], size))]
    for name, (cfg, model) in models.items():
        out = translate(model, read_images([r.path for r in synth], cfg.image_size))
        rows.append((name, np.stack([cv2.resize(o, size[::-1], interpolation=cv2.INTER_LINEAR) for o in out])))
    rows.append(("real", read_images([r.path for r in real], size)))
    return save_grid(rows, out_png, scale)


def _preview(n_images: int, seed: int, n: int = 8) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n_images, min(n, n_images), replace=False))


# --- train ----------------------------------------------------------------------------------------------------------


def train_gan(cfg: GanConfig | None, run_dir: str | Path, resume: bool = False, verbose: bool = True) -> dict:
    """Train a CycleGAN / CycleWGAN in ``run_dir``, or resume the run there (its own config); return the metrics.

    Args:
        cfg: the config of a new run (None when resuming).
        run_dir: the run folder.
        resume: continue from the folder's last checkpoint (from scratch if it has none yet).
        verbose: print the progress bar.

    Returns:
        The metrics also written to ``metrics.json``: steps, steps/s of this session, the last losses, history.
    """
    cfg, run = open_run(cfg, run_dir, resume, load_gan_config)
    keras.utils.set_random_seed(cfg.seed)
    nets = build_nets(cfg)
    opts = make_optimizers(cfg)
    steps = GanSteps(cfg, nets, opts)
    state: dict[str, Any] = {"step": 0, "train_seconds": 0.0, "history": []}
    ck = _checkpoint_dir(run) if resume else None
    if ck is not None:
        state = _load_checkpoint(ck, nets, opts)
        if verbose:
            print(f"resumed {run} at step {state['step']}")
    synth = load_images(cfg.synthetic, cfg.image_size)
    real = load_images(cfg.real, cfg.image_size)
    if verbose:
        print(f"{cfg.name} ({cfg.loss}): {cfg.steps} steps on {len(synth)} synthetic and {len(real)} real images")
    preview = [("synthetic", synth[_preview(len(synth), cfg.seed)]), ("real", real[_preview(len(real), cfg.seed)])]
    rng = np.random.default_rng([cfg.seed, state["step"]])  # a resumed run draws new batches, deterministically

    def draw() -> tuple[np.ndarray, np.ndarray]:
        s, r = rng.integers(0, len(synth), cfg.batch_size), rng.integers(0, len(real), cfg.batch_size)
        return to_float(synth[s]), to_float(real[r])

    keys = ("g_loss", "g_adv", "cycle", "identity", "d_loss")
    bar = keras.utils.Progbar(cfg.steps, verbose=1 if verbose else 0, stateful_metrics=list(keys))
    bar.update(state["step"])
    window: list[dict[str, float]] = []
    start_step, t0 = state["step"], time.perf_counter()
    t_saved = t_window = t0
    while state["step"] < cfg.steps:
        window.append(steps.train_step(draw))
        state["step"] += 1
        recent = window[-50:]
        shown = [(k, float(np.mean([w[k] for w in recent]))) for k in ("g_loss", "cycle", "d_loss")]
        if state["step"] % cfg.sample_every == 0 or state["step"] == cfg.steps:
            now = time.perf_counter()
            state["train_seconds"] = round(state["train_seconds"] + now - t_saved, 1)
            t_saved = now
            entry = {"step": state["step"], **{k: round(float(np.mean([w[k] for w in window])), 5) for k in keys}}
            entry["steps_per_s"] = round(len(window) / (now - t_window), 3)  # the first one includes compiling
            state["history"].append(entry)
            window = []
            _save_checkpoint(run, nets, opts, state)
            rows = [preview[0], ("translated", translate(nets.g_sr, preview[0][1])), preview[1]]
            save_grid(rows, run / "samples.png")
            t_window = time.perf_counter()
        bar.update(state["step"], shown)
    nets.g_sr.save_weights(run / GENERATOR)
    nets.g_rs.save_weights(run / "generator_r2s.weights.h5")
    done = state["step"] - start_step
    metrics = {
        "steps": state["step"],
        "loss": cfg.loss,
        "images": {"synthetic": len(synth), "real": len(real)},
        "train_seconds": state["train_seconds"],
        "steps_per_s": round(done / (time.perf_counter() - t0), 3) if done else None,
        "last": state["history"][-1] if state["history"] else None,
        "history": state["history"],
    }
    (run / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


# --- use a trained run --------------------------------------------------------------------------------------------


def load_generator(run_dir: str | Path) -> tuple[GanConfig, keras.Model]:
    """The config and the synthetic->real generator of a run (its final weights, else its last checkpoint).

    Raises:
        LprError: the folder is not a GAN run or holds no generator weights yet.
    """
    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise LprError(f"{run} is not a run folder (no config.yaml)")
    if (kind := config_kind(run)) != "gan":
        raise LprError(f"{run} is a {kind} run, not a GAN run")
    cfg = load_gan_config(run / "config.yaml")
    weights = run / GENERATOR
    if not weights.is_file():
        ck = _checkpoint_dir(run)
        if ck is None:
            raise LprError(f"{run} holds no generator weights yet (no {GENERATOR}, no checkpoint)")
        weights = ck / "g_sr.weights.h5"
    model = build_generator(cfg.image_size, cfg.ngf, cfg.n_res, name="g_sr")
    model.load_weights(weights)
    return cfg, model


def _write_image(path: Path, rgb: np.ndarray, size: tuple[int, int] | None) -> None:
    """Write an RGB image (resized to ``size`` (height, width) unless None) as a JPEG (quality 92) or by suffix."""
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if size is not None:
        h, w = size
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR if w >= img.shape[1] else cv2.INTER_AREA)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 92]):
        raise LprError(f"cannot write {path}")


def translate_folder(
    run_dir: str | Path,
    src_dir: str | Path,
    out_dir: str | Path,
    keep_gan_size: bool = False,
    batch_size: int = 64,
    verbose: bool = True,
) -> Path:
    """Translate every image of a labelled folder with a run's synthetic->real generator.

    The images are resized to the GAN's image size, translated, and (unless ``keep_gan_size``) resized back to
    their own size, so the folder stays a drop-in replacement (crop aspect kept for any recogniser input size).
    They are written under the same file names, with the same ``labels.csv`` rows (``source`` prefixed with
    ``lpr-sdk synth --gan <run name>``).

    Returns:
        The ``labels.csv`` written.

    Raises:
        LprError: the source folder lacks labels, or ``out_dir`` is the source folder.
    """
    cfg, model = load_generator(run_dir)
    src, out = Path(src_dir), Path(out_dir)
    read_labels(src)  # checks labels.csv and its columns
    if out.resolve() == src.resolve():
        raise LprError("the output folder must not be the source folder")
    with open(src / "labels.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows, columns = list(reader), list(reader.fieldnames or ())
    if "source" not in columns:
        columns.append("source")
    h, w = cfg.image_size
    chunk = 8 * batch_size
    bar = keras.utils.Progbar(len(rows), verbose=1 if verbose else 0)
    with ThreadPoolExecutor(4) as ex:
        for i in range(0, len(rows), chunk):
            part = rows[i : i + chunk]
            originals = list(ex.map(lambda r: read_image(src / r["file"]), part))
            images = np.stack([plate_input(img, h, w) for img in originals])
            fakes = translate(model, images, batch_size)
            sizes = [None if keep_gan_size else img.shape[:2] for img in originals]
            paths = [out / r["file"] for r in part]
            list(ex.map(_write_image, paths, fakes, sizes))
            bar.update(i + len(part))
    tag = f"{SOURCE_TAG} {cfg.name}"
    for r in rows:
        r["source"] = f"{tag}: {r['source']}" if r.get("source") else tag
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return out / "labels.csv"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="CycleGAN tools (train with: lpr-sdk train gan --config ...).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grid", help="one PNG: synthetic / each GAN's translation / real crops")
    g.add_argument("synth_dir")
    g.add_argument("real_dir")
    g.add_argument("out_png")
    g.add_argument("--gan", action="append", default=[], metavar="LABEL=RUN_DIR", help="a row per GAN run")
    g.add_argument("-n", type=int, default=8)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--split", default="train", choices=SPLITS, help="split of real_dir")
    g.add_argument("--regions", nargs="+")
    a = ap.parse_args()
    runs = dict(x.split("=", 1) if "=" in x else (Path(x).name, x) for x in a.gan)
    print(sample_grid(a.synth_dir, runs, a.real_dir, a.out_png, a.n, a.seed, a.split, a.regions))
