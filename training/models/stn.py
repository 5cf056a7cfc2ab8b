"""Spatial transformer (LPRNet's LocNet, seed 003 Table 1) in a form that exports to full-int8 TFLite.

A small localisation net looks at the crop and predicts an affine warp; a sampler resamples the crop with it, so
the recogniser sees a straightened plate. The usual bilinear sampler gathers pixels at computed indices (FLOOR,
CAST, GATHER_ND: float ops with no int8 kernels). Here the affine warp is done in two separable passes, each a
batched matrix product with "hat" interpolation weights ``relu(1 - |position - pixel|)`` (bilinear sampling
written as plain SUB/ABS/RELU/BATCH_MATMUL, all int8 builtins):

1. horizontal: for every source row ``ys``, output column ``u`` samples source column
   ``xs = a0 * u + a1 * ys + a2``;
2. vertical: output pixel ``(v, u)`` samples that intermediate at source row ``ys = b0 * u + b1 * v + b2``.

Every affine map with a non-zero vertical scale factors this way (Catmull-Smith two-pass warp), so the six
parameters cover the same warps as the seed's 2x3 matrix. Coordinates are normalised to [-1, 1]. The last layer
starts at zero (identity warp), and a non-trainable ``gate`` keeps the warp off (identity) until training switches
it on after a warm-up (``model.stn_warmup`` steps).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

IDENTITY = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], np.float32)  # a0, a1, a2, b0, b1, b2


class WarpGate(layers.Layer):
    """``identity + gate * delta``: the warp parameters, held at identity while ``gate`` is 0 (warm-up)."""

    def build(self, input_shape):
        self.gate = self.add_weight(name="gate", shape=(), initializer="zeros", trainable=False)

    def call(self, delta):
        return ops.convert_to_tensor(IDENTITY) + self.gate * delta


class SeparableAffineSampler(layers.Layer):
    """Resample ``image`` (N, H, W, C) with warp parameters ``theta`` (N, 6) in two separable passes."""

    def call(self, image, theta):
        h, w = image.shape[1], image.shape[2]
        lin_x = np.linspace(-1.0, 1.0, w, dtype=np.float32)
        lin_y = np.linspace(-1.0, 1.0, h, dtype=np.float32)
        pix_x = np.arange(w, dtype=np.float32)
        pix_y = np.arange(h, dtype=np.float32)
        t = [ops.reshape(theta[:, i], (-1, 1, 1, 1)) for i in range(6)]
        # pass 1: xs(ys, u) in pixels -> weights (N, H, Wout, W) over source columns
        u = ops.convert_to_tensor(lin_x.reshape(1, 1, w, 1))
        ys = ops.convert_to_tensor(lin_y.reshape(1, h, 1, 1))
        xs = (t[0] * u + t[1] * ys + t[2] + 1.0) * (0.5 * (w - 1))
        wx = ops.relu(1.0 - ops.abs(xs - ops.convert_to_tensor(pix_x.reshape(1, 1, 1, w))))
        rows = ops.matmul(wx, image)  # (N, H, Wout, W) @ (N, H, W, C) -> (N, H, Wout, C)
        # pass 2: ys(v, u) in pixels -> weights (N, Wout, Hout, H) over source rows
        u2 = ops.convert_to_tensor(lin_x.reshape(1, w, 1, 1))
        v = ops.convert_to_tensor(lin_y.reshape(1, 1, h, 1))
        yp = (t[3] * u2 + t[4] * v + t[5] + 1.0) * (0.5 * (h - 1))
        wy = ops.relu(1.0 - ops.abs(yp - ops.convert_to_tensor(pix_y.reshape(1, 1, 1, h))))
        cols = ops.matmul(wy, ops.transpose(rows, (0, 2, 1, 3)))  # (N, Wout, Hout, H) @ (N, Wout, H, C)
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
