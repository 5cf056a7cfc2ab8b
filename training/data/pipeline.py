"""tf.data pipelines for recogniser training: labelled folders loaded once into memory, augmented on the fly."""

from __future__ import annotations

import math
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import tensorflow as tf

from sdk.dataset import in_fraction, read_labels
from sdk.decode import labels_of
from sdk.errors import LprError
from sdk.image import plate_input, read_image
from sdk.types import blank_index_for
from training.config import DataSource

MAX_LABEL = 10


@dataclass(frozen=True)
class PlateArrays:
    """Images (N, H, W, 3) uint8 RGB, encoded labels (N, MAX_LABEL) int32 padded with 0, lengths (N,), texts."""

    images: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray
    texts: tuple[str, ...]
    regions: tuple[str, ...]


def encode(text: str, alphabet: str) -> list[int]:
    """Text -> class indices (blank: :func:`sdk.types.blank_index_for`); raise for characters not in the alphabet."""
    try:
        return labels_of(text, alphabet, blank_index_for(alphabet))
    except ValueError as e:
        raise LprError(f"plate text {text!r} has characters outside the model's alphabet") from e


def load_arrays(source: DataSource, alphabet: str, size: tuple[int, int], default_regions=None) -> PlateArrays:
    """Read a labelled folder into memory at the model's input size (rows with foreign characters are skipped)."""
    rows = read_labels(source.path, source.split, source.regions or default_regions)
    rows = [r for r in rows if 0 < len(r.text) <= MAX_LABEL and all(c in alphabet for c in r.text)]
    if source.fraction < 1:
        rows = [r for r in rows if in_fraction(r.text, source.fraction)]
    if source.leave_out:
        rows = [r for r in rows if not r.text.startswith(source.leave_out)]
    if not rows:
        kept = f", fraction {source.fraction}" if source.fraction < 1 else ""
        kept += f", leaving out {'/'.join(source.leave_out)}" if source.leave_out else ""
        raise LprError(f"{source.path} (split {source.split}{kept}) has no usable rows for this alphabet")
    h, w = size
    with ThreadPoolExecutor(4) as ex:
        images = np.stack(list(ex.map(lambda r: plate_input(read_image(r.path), h, w), rows)))
    labels = np.zeros((len(rows), MAX_LABEL), np.int32)
    for i, r in enumerate(rows):
        labels[i, : len(r.text)] = encode(r.text, alphabet)
    lengths = np.array([len(r.text) for r in rows], np.int32)
    return PlateArrays(images, labels, lengths, tuple(r.text for r in rows), tuple(r.region for r in rows))


def oversample_rare(arrays: PlateArrays, power: float, cap: int = 8) -> PlateArrays:
    """Rows repeated by ``(median character count / count of the row's rarest character) ** power`` (1 to ``cap``
    times), so characters the real data rarely holds (cn's other provinces, br's W) are not drowned by the
    frequent ones and the model leans less on its prior. ``power`` 0 returns ``arrays`` unchanged."""
    if power <= 0:
        return arrays
    counts = Counter(c for t in arrays.texts for c in t)
    ref = float(np.median(list(counts.values())))
    reps = [min(cap, max(1, round((ref / min(counts[c] for c in t)) ** power))) for t in arrays.texts]
    idx = np.repeat(np.arange(len(reps)), reps)
    return replace(
        arrays,
        images=arrays.images[idx],
        labels=arrays.labels[idx],
        lengths=arrays.lengths[idx],
        texts=tuple(arrays.texts[i] for i in idx),
        regions=tuple(arrays.regions[i] for i in idx),
    )


def tilt(images: tf.Tensor, max_deg: tf.Tensor) -> tf.Tensor:
    """Rotate and shear half the images (per image up to ``max_deg`` (N,) degrees each way), shrunk so the rotated
    plate still fits the frame as in a tight axis-aligned crop of a tilted plate; edges are replicated."""
    n = tf.shape(images)[0]
    h, w = float(images.shape[1]), float(images.shape[2])
    on = tf.cast(tf.random.uniform((n,)) < 0.5, tf.float32) * max_deg * (math.pi / 180)
    a = tf.random.uniform((n,), -1.0, 1.0) * on
    k = tf.random.uniform((n,), -1.0, 1.0) * tf.tan(on)
    cos, sin = tf.cos(a), tf.sin(a)
    scale = tf.minimum(1.0, tf.minimum(h / (w * tf.abs(sin) + h * cos), w / (w * cos + h * tf.abs(sin))))
    # output pixel -> input pixel: centre + (shear(-k) @ rotation(-a) / scale) @ (p - centre)
    return _warp(images, (cos + k * sin) / scale, (sin - k * cos) / scale, -sin / scale, cos / scale)


# The width / height of a plate, for :func:`skew` (cn, EU and old br plates: 440 x 140 mm, 520 x 110, 400 x 130).
PLATE_ASPECT = 3.2


def skew(images: tf.Tensor, max_deg: tf.Tensor) -> tf.Tensor:
    """Show half the images (per image up to ``max_deg`` (N,) degrees each way) as a detector's axis-aligned box
    of a turned plate looks once resized to the input: the plate, in its own aspect (``PLATE_ASPECT``), rotated and
    independently sheared (the lean of a plate seen from the side), then its bounding box stretched to the frame.
    Unlike :func:`tilt`, glyphs lean far more than rows slope (a plate rotated 15 degrees in a 94x24 crop: glyphs
    lean ~0.5, rows slope ~0.13), as in real crops of turned plates; edges are replicated."""
    n = tf.shape(images)[0]
    h, w = float(images.shape[1]), float(images.shape[2])
    on = tf.cast(tf.random.uniform((n,)) < 0.5, tf.float32) * max_deg * (math.pi / 180)
    a = tf.random.uniform((n,), -1.0, 1.0) * on
    lean = tf.random.uniform((n,), -1.0, 1.0) * tf.tan(on)
    k = max(w / h / PLATE_ASPECT, 1.0)  # the input's vertical squeeze of a plate
    cos, sin = tf.cos(a), tf.sin(a)
    # the plate (half-size w/2 x k*h/2) mapped by [[cos, lean*cos - sin], [sin, lean*sin + cos]]; its box -> frame
    ex = w / (w * tf.abs(cos) + h * k * tf.abs(lean * cos - sin))
    ey = h / (w * tf.abs(sin) + h * k * tf.abs(lean * sin + cos))
    # output pixel -> input pixel: centre + (unsqueeze @ inverse map @ frame -> box) @ (p - centre)
    return _warp(images, (lean * sin + cos) / ex, (sin - lean * cos) / ey, -sin / (k * ex), cos / (k * ey))


def _warp(images: tf.Tensor, a0: tf.Tensor, a1: tf.Tensor, b0: tf.Tensor, b1: tf.Tensor) -> tf.Tensor:
    """Each image resampled at ``centre + [[a0, a1], [b0, b1]] @ (p - centre)`` for output pixel ``p`` (bilinear,
    edges replicated)."""
    h, w = float(images.shape[1]), float(images.shape[2])
    cx, cy = (w - 1) / 2, (h - 1) / 2
    zeros = tf.zeros_like(a0)
    t = tf.stack([a0, a1, cx - a0 * cx - a1 * cy, b0, b1, cy - b0 * cx - b1 * cy, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=t,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",
    )


def blur_sigma(factor: tf.Tensor | float) -> tf.Tensor:
    """The Gaussian sigma (pixels) that makes a sharp image look ``factor`` times lower in resolution: area
    downsampling then bilinear upsampling blur by about ``0.5 * factor``, less the image's own ~0.5 px."""
    return 0.5 * tf.sqrt(tf.maximum(tf.cast(factor, tf.float32) ** 2 - 1.0, 0.0))


def gaussian_blur(images: tf.Tensor, sigma: tf.Tensor, radius: int) -> tf.Tensor:
    """Blur each image (N, H, W, C) with its own separable Gaussian of ``sigma`` (N,) pixels, ``radius`` taps each
    side, edges mirrored (OpenCV's BORDER_REFLECT)."""
    n, (h, w, c) = tf.shape(images)[0], images.shape[1:]
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    g = tf.exp(-(taps[None, :] ** 2) / (2 * tf.maximum(sigma, 1e-3)[:, None] ** 2))
    g = tf.transpose(tf.repeat(g / tf.reduce_sum(g, axis=1, keepdims=True), c, axis=0))  # (taps, N*C)
    # every image's channels side by side as one image's channels, so one depthwise conv blurs each its own way
    x = tf.reshape(tf.transpose(images, (1, 2, 0, 3)), (1, h, w, -1))
    x = tf.pad(x, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")
    x = tf.nn.depthwise_conv2d(x, g[:, None, :, None], [1, 1, 1, 1], "VALID")
    x = tf.nn.depthwise_conv2d(x, g[None, :, :, None], [1, 1, 1, 1], "VALID")
    return tf.transpose(tf.reshape(x[0], (h, w, n, c)), (2, 0, 1, 3))


def lowres(images: tf.Tensor, max_factor: tf.Tensor, radius: int) -> tf.Tensor:
    """Blur half the images as if seen ``1..max_factor`` (N,) times smaller (a small, distant plate in a scene)."""
    n = tf.shape(images)[0]
    f = 1.0 + tf.random.uniform((n,)) * tf.maximum(max_factor - 1.0, 0.0)
    return gaussian_blur(images, blur_sigma(tf.where(tf.random.uniform((n,)) < 0.5, f, 1.0)), radius)


def erase(images: tf.Tensor, max_frac: tf.Tensor) -> tf.Tensor:
    """Random erasing: in half the images, a box of up to ``max_frac`` (N,) of the height on each side, centred
    anywhere, filled with one random gray level; small enough that a glyph under it stays partly visible."""
    n, h, w = tf.shape(images)[0], images.shape[1], images.shape[2]
    on = tf.cast(tf.random.uniform((n,)) < 0.5, tf.float32) * max_frac * h
    half_h, half_w = (tf.random.uniform((n,), 0.25, 0.5) * on for _ in range(2))
    cy, cx = tf.random.uniform((n,), 0.0, float(h)), tf.random.uniform((n,), 0.0, float(w))
    ys, xs = tf.range(h, dtype=tf.float32) + 0.5, tf.range(w, dtype=tf.float32) + 0.5
    inside_y = tf.abs(ys[None, :] - cy[:, None]) < half_h[:, None]
    inside_x = tf.abs(xs[None, :] - cx[:, None]) < half_w[:, None]
    box = tf.logical_and(inside_y[:, :, None], inside_x[:, None, :])[..., None]
    return tf.where(box, tf.random.uniform((n, 1, 1, 1)), images)


def augment(
    images: tf.Tensor,
    max_tilt: tf.Tensor | None = None,
    max_skew: tf.Tensor | None = None,
    max_lowres: tf.Tensor | None = None,
    lowres_radius: int = 0,
    max_erase: tf.Tensor | None = None,
) -> tf.Tensor:
    """Batch augmentation in [0, 1] float: tilt and skew (where ``max_tilt`` / ``max_skew`` (N,) degrees > 0), crop
    jitter (tight/loose/shifted), low resolution (where ``max_lowres`` (N,) > 1), random erasing (where ``max_erase``
    (N,) > 0), brightness, contrast, noise."""
    n = tf.shape(images)[0]
    h, w = images.shape[1], images.shape[2]
    if max_tilt is not None:
        images = tilt(images, max_tilt)
    if max_skew is not None:
        images = skew(images, max_skew)
    jitter = tf.random.uniform((n, 4), -0.08, 0.08)
    boxes = tf.stack([jitter[:, 0] * 1.5, jitter[:, 1], 1.0 + jitter[:, 2] * 1.5, 1.0 + jitter[:, 3]], axis=1)
    x = tf.image.crop_and_resize(images, boxes, tf.range(n), (h, w), extrapolation_value=0.5)
    if max_lowres is not None:
        x = lowres(x, max_lowres, lowres_radius)
    if max_erase is not None:
        x = erase(x, max_erase)
    x = x * tf.random.uniform((n, 1, 1, 1), 0.6, 1.3) + tf.random.uniform((n, 1, 1, 1), -0.2, 0.2)
    mean = tf.reduce_mean(x, axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * tf.random.uniform((n, 1, 1, 1), 0.6, 1.3) + mean
    gray = tf.broadcast_to(tf.reduce_mean(x, axis=3, keepdims=True), tf.shape(x))
    x = tf.where(tf.random.uniform((n, 1, 1, 1)) < 0.15, gray, x)
    x = x + tf.random.normal(tf.shape(x), 0.0, 1.0) * tf.random.uniform((n, 1, 1, 1), 0.0, 0.05)
    return tf.clip_by_value(x, 0.0, 1.0)


def make_dataset(
    parts: list[tuple[PlateArrays, DataSource]],
    batch_size: int,
    seed: int,
    extras: list[np.ndarray] | None = None,
) -> tf.data.Dataset:
    """An infinite, shuffled, batched mix of parts (arrays, the source's weight/augment/tilt/lowres) yielding
    (x, labels, lengths), plus the matching rows of ``extras`` (one array per part, e.g. glyph images) as a fourth
    element when given."""
    streams = []
    for i, (arrays, src) in enumerate(parts):
        extra = extras[i] if extras is not None else np.zeros((len(arrays.images), 0), np.uint8)
        ds = tf.data.Dataset.from_tensor_slices((arrays.images, arrays.labels, arrays.lengths, extra))
        ds = ds.shuffle(min(len(arrays.images), 20000), seed=seed).repeat()
        options = (src.augment, src.tilt, src.skew, src.lowres, src.erase)
        ds = ds.map(_as_is(lambda x, y, n, e, o=options: (x, y, n, e, *(tf.constant(v) for v in o))))
        streams.append(ds)
    weights = np.array([src.weight for _, src in parts], np.float64)
    ds = (
        streams[0]
        if len(streams) == 1
        else tf.data.Dataset.sample_from_datasets(streams, list(weights / weights.sum()), seed=seed)
    )

    # ops only for the options some source uses, so older recipes draw the same random numbers as before
    tilted = any(src.tilt > 0 for _, src in parts)
    skewed = any(src.skew > 0 for _, src in parts)
    erased = any(src.erase > 0 for _, src in parts)
    factor = max(src.lowres for _, src in parts)
    radius = math.ceil(3 * float(blur_sigma(factor)))

    def prep(x, y, n, e, aug, max_tilt, max_skew, max_lowres, max_erase):
        x = tf.cast(x, tf.float32) / 255.0
        x = tf.where(
            aug[:, None, None, None],
            augment(
                x,
                max_tilt if tilted else None,
                max_skew if skewed else None,
                max_lowres if radius > 0 else None,
                radius,
                max_erase if erased else None,
            ),
            x,
        )
        return (x, y, n, e) if extras is not None else (x, y, n)

    return ds.batch(batch_size, drop_remainder=True).map(_as_is(prep), num_parallel_calls=2).prefetch(2)


def _as_is(fn):
    """``fn`` traced as written, not converted by autograph (the pipeline branches on Python values only).
    Autograph reads a function's source file when a stage's dataset is built, so a checkout edited during a
    run would otherwise crash it at its next stage, or convert the wrong code."""
    return tf.autograph.experimental.do_not_convert(fn)
