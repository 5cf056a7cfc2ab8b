"""Spatial transformer (LPRNet's LocNet, seed 003 Table 1) in a form that exports to full-int8 TFLite.

A small localisation net looks at the crop and predicts an affine warp; a sampler resamples the crop with it, so
the recogniser sees a straightened plate. The usual bilinear sampler gathers pixels at computed indices (FLOOR,
CAST, GATHER_ND: float ops with no int8 kernels). Here the affine warp is done in two separable passes, each a
batched matrix product with "hat" (bilinear) interpolation weights built from ADD, SUB and clips only (see
``_hat``), all int8 builtins:

1. horizontal: for every source row ``ys``, output column ``u`` samples source column
   ``xs = (1 + a0) * u + a1 * ys + a2``;
2. vertical: output pixel ``(v, u)`` samples that intermediate at source row ``ys = b0 * u + (1 + b1) * v + b2``.

Every affine map with a non-zero vertical scale factors this way (Catmull-Smith two-pass warp), so the six
parameters (offsets from the identity, coordinates normalised to [-1, 1]) cover the same warps as the seed's 2x3
matrix. Positions are never held as absolute pixel coordinates, whose int8 step (~1 px over a 128 px row) would
wreck the weights: only the small offsets and exact integer constants meet in one fused ADD + clip. The last layer
starts at zero (identity warp), and a non-trainable ``gate`` keeps the warp off until training switches it on
after a warm-up (``model.stn_warmup`` steps).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops


class WarpGate(layers.Layer):
    """``gate * delta``: the warp's offset from the identity, held at zero while ``gate`` is 0 (warm-up)."""

    def build(self, input_shape):
        self.gate = self.add_weight(name="gate", shape=(), initializer="zeros", trainable=False)

    def call(self, delta):
        return self.gate * delta


def _offsets(n: int) -> np.ndarray:
    """``[2 (out - src) + 1 | 2 (out - src) - 1]`` for ``out, src in range(n)``: shape (1, 1, n, 2n), integers.

    Clipped to [-127, 127] (entries that far from a sample only need to stay saturated) and one far entry set so
    that the range is exactly 255 wide: int8 then stores the constant with scale 1, every integer exact.
    """
    k = 2.0 * (np.arange(n, dtype=np.float32)[:, None] - np.arange(n, dtype=np.float32)[None, :])
    c = np.clip(np.concatenate([k + 1.0, k - 1.0], axis=1), -127.0, 127.0)
    c[0, n - 1] = c.max() - 255.0
    return c.reshape(1, 1, n, 2 * n)


def _hat(shift, n: int):
    """Twice the bilinear weights, ``clip(2 d + 1) - clip(2 d - 1)`` with ``d = out + shift - src`` (pixels) and
    ``shift`` given in half pixels. Both clips are halves of one tensor (the clip fuses into the ADD as
    RELU_N1_TO_1), so they share one quantisation and cancel exactly wherever both saturate."""
    c = ops.clip(shift + ops.convert_to_tensor(_offsets(n)), -1.0, 1.0)
    return c[..., :n] - c[..., n:]


class SeparableAffineSampler(layers.Layer):
    """Resample ``image`` (N, H, W, C) with the warp's offset from the identity ``delta`` (N, 6) in two passes."""

    def call(self, image, delta):
        h, w = image.shape[1], image.shape[2]
        # to half pixels up front (a vector constant: a scalar MUL here made the converter quantise its input on
        # its output's coarse scale)
        half_px = np.array([w - 1] * 3 + [h - 1] * 3, np.float32).reshape(1, 6)
        delta = delta * ops.convert_to_tensor(half_px)
        t = [ops.reshape(delta[:, i], (-1, 1, 1, 1)) for i in range(6)]
        lin_x = np.linspace(-1.0, 1.0, w, dtype=np.float32)
        lin_y = np.linspace(-1.0, 1.0, h, dtype=np.float32)
        # pass 1: output column u samples source column u + shift(ys, u): weights (N, H, Wout, W)
        u = ops.convert_to_tensor(lin_x.reshape(1, 1, w, 1))
        ys = ops.convert_to_tensor(lin_y.reshape(1, h, 1, 1))
        wx = _hat(t[0] * u + t[1] * ys + t[2], w)
        rows = ops.matmul(wx, image) * 0.5  # (N, H, Wout, W) @ (N, H, W, C) -> (N, H, Wout, C)
        # pass 2: output row v samples that intermediate at row v + shift(u, v): weights (N, Wout, Hout, H)
        u2 = ops.convert_to_tensor(lin_x.reshape(1, w, 1, 1))
        v = ops.convert_to_tensor(lin_y.reshape(1, 1, h, 1))
        wy = _hat(t[3] * u2 + t[4] * v + t[5], h)
        cols = ops.matmul(wy, ops.transpose(rows, (0, 2, 1, 3))) * 0.5  # (N, Wout, Hout, H) @ (N, Wout, H, C)
        return ops.transpose(cols, (0, 2, 1, 3))


def spatial_transformer(image, name: str = "stn"):
    """LocNet (pool, two convs, global pool, two dense layers) + the int8-friendly sampler; returns the warped
    image, the same shape as ``image``."""
    x = layers.AveragePooling2D(2, padding="same", name=f"{name}_pool0")(image)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name=f"{name}_conv1")(x)
    x = layers.MaxPooling2D(2, padding="same", name=f"{name}_pool1")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name=f"{name}_conv2")(x)
    x = layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)
    x = layers.Dense(32, activation="relu", name=f"{name}_fc1")(x)
    delta = layers.Dense(6, kernel_initializer="zeros", bias_initializer="zeros", name=f"{name}_fc2")(x)
    theta = WarpGate(name=f"{name}_gate")(delta)
    return SeparableAffineSampler(name=f"{name}_sample")(image, theta)


def set_stn_gate(model: keras.Model, on: bool) -> bool:
    """Switch a model's spatial transformer on or off; False if the model has none."""
    gates = [layer for layer in model.layers if isinstance(layer, WarpGate)]
    for g in gates:
        g.gate.assign(1.0 if on else 0.0)
    return bool(gates)
