"""The two detector networks (seed 002 cascade), small depthwise-separable CNNs that quantise to full int8.

``build_proposal``: (H, W, 3) frame in [0, 1] -> (H/8, W/8, 5) map: plate-centre logit, dx, dy, log w, log h.
Stride-16 context is upsampled and added to the stride-8 features (a one-level FPN), so large plates are seen.
``build_corners``: (48, 120, 3) crop in [0, 1] -> (9,): plate logit and 4 corners (x, y) * coord_scale.

``fake_quant=True`` builds the same network (same weights) for quantisation-aware training: each ReLU6 output is
rounded to the int8 grid the full-int8 export gives it (256 levels over [0, 6]), with a straight-through gradient.
"""

from __future__ import annotations

from functools import partial

import keras
from keras import layers, ops

from training.models.width import scaled_channels

RELU6_STEP = 6.0 / 255.0  # the int8 scale TFLite's calibration gives a ReLU6 output that fills [0, 6]


class FakeQuantRelu6(layers.Layer):
    """Round a ReLU6 output to the int8 grid in the forward pass; identity gradient (straight-through)."""

    def call(self, x):
        return x + ops.stop_gradient(ops.round(x / RELU6_STEP) * RELU6_STEP - x)


def _relu6(x, name: str, fake_quant: bool):
    x = layers.ReLU(6.0, name=name)(x)
    return FakeQuantRelu6(name=f"{name}_fq")(x) if fake_quant else x


def _conv(x, filters: int, kernel: int = 3, strides: int = 1, name: str = "", fake_quant: bool = False):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return _relu6(x, f"{name}_relu", fake_quant)


def _dws(x, filters: int, strides: int = 1, name: str = "", fake_quant: bool = False):
    """Depthwise 3x3 + pointwise 1x1, each with BN + ReLU6; residual when shapes allow."""
    y = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw")(x)
    y = layers.BatchNormalization(name=f"{name}_dw_bn")(y)
    y = _relu6(y, f"{name}_dw_relu", fake_quant)
    y = _conv(y, filters, 1, name=f"{name}_pw", fake_quant=fake_quant)
    if strides == 1 and x.shape[-1] == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def build_proposal(
    input_hw: tuple[int, int] = (256, 448), width: float = 1.0, batch_size: int | None = None, fake_quant: bool = False
):
    """Proposal network: stride-8 output map of 5 channels (see module docstring)."""
    c = partial(scaled_channels, width=width)
    q = {"fake_quant": fake_quant}
    inp = keras.Input((*input_hw, 3), batch_size=batch_size, name="frame")
    x = _conv(inp, c(16), 3, 2, "stem", **q)
    x = _dws(x, c(32), 2, "b1", **q)
    x = _dws(x, c(32), 1, "b2", **q)
    x = _dws(x, c(64), 2, "b3", **q)
    x = _dws(x, c(64), 1, "b4", **q)
    s8 = _dws(x, c(64), 1, "b5", **q)
    x = _dws(s8, c(128), 2, "b6", **q)
    x = _dws(x, c(128), 1, "b7", **q)
    x = _dws(x, c(128), 1, "b8", **q)
    x = _conv(x, c(64), 1, name="lat16", **q)
    x = layers.UpSampling2D(2, interpolation="nearest", name="up")(x)
    x = layers.Add(name="fpn_add")([x, s8])
    x = _dws(x, c(64), 1, "head1", **q)
    out = layers.Conv2D(5, 1, name="head_out")(x)
    return keras.Model(inp, out, name="plate_proposal")


def build_corners(input_hw: tuple[int, int] = (48, 120), width: float = 1.0, batch_size: int | None = None):
    """Corners network: plate logit + 8 corner coordinates from a proposal crop."""
    c = partial(scaled_channels, width=width)
    inp = keras.Input((*input_hw, 3), batch_size=batch_size, name="crop")
    x = _conv(inp, c(24), 3, 2, "stem")
    x = _dws(x, c(32), 1, "b1")
    x = _dws(x, c(64), 2, "b2")
    x = _dws(x, c(64), 1, "b3")
    x = _dws(x, c(128), 2, "b4")
    x = _dws(x, c(128), 1, "b5")
    x = _conv(x, 32, 1, name="squeeze")
    x = layers.Flatten(name="flat")(x)
    x = layers.Dense(128, name="fc")(x)
    x = layers.ReLU(6.0, name="fc_relu")(x)
    out = layers.Dense(9, name="out")(x)
    return keras.Model(inp, out, name="plate_corners")
