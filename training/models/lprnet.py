"""LPRNet (seed 003): small basic blocks, (2,1)-strided pooling, 4x1 and 1x13 convs, per-sample global context.

The network maps an (H, W, 3) plate crop to (T, C) CTC logits with T = W / 4 and C = alphabet + blank. The
global-context embedding pools earlier feature maps to the final map's size, normalises each **per sample**
(so a read never depends on what else is in the batch), concatenates them and mixes with a 1x1 conv.

Variants: ``basic`` keeps the paper's (2,1) poolings (width halved once at the stem); ``reduced`` also pools
2x2 earlier, which roughly halves the compute. ``width`` scales every channel count.
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import keras
from keras import layers, ops

from training.models.stn import spatial_transformer
from training.models.width import scaled_channels

Variant = Literal["basic", "reduced"]


def _conv_bn(x, filters: int, kernel, strides=1, name: str = ""):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def small_basic_block(x, filters: int, name: str):
    """1x1 (c/4) -> 3x1 (c/4) -> 1x3 (c/4) -> 1x1 (c), each with BN + ReLU."""
    q = max(8, filters // 4)
    x = _conv_bn(x, q, 1, name=f"{name}_a")
    x = _conv_bn(x, q, (3, 1), name=f"{name}_b")
    x = _conv_bn(x, q, (1, 3), name=f"{name}_c")
    return _conv_bn(x, filters, 1, name=f"{name}_d")


class SampleNorm(layers.Layer):
    """Divide a feature map by its own mean square (per sample), as LPRNet's global context does.

    ``floor`` (export only, set by :func:`training.export.set_norm_floors`): the mean square is at least this, so
    int8 never rounds it to zero (an infinite reciprocal).
    """

    def __init__(self, floor: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.floor = floor

    def call(self, x):
        # x * x (not square: SQUARE has no int8 kernel), so the exported graph stays int8 end to end. The mean is
        # taken in two steps (space, then channels; the same value): XNNPACK's int8 MEAN over three axes at once is
        # wrong on some CPUs (LiteRT 2.1-2.3 on AVX2: ~100 % error; test_int8_global_context_matches_the_reference_
        # kernels). 1 / mean_sq is rsqrt applied twice, not a DIV: LiteRT 1.x, tflite-runtime and tf.lite fail an
        # int8 DIV whose divisor's raw value is 0 (they forget the zero point), about 3 % of real crops; and
        # x * r * r is also 3x closer to float in int8 than x * (1 / mean_sq) or x * (r * r).
        mean_sq = ops.mean(ops.mean(x * x, axis=(1, 2), keepdims=True), axis=3, keepdims=True)
        r = ops.rsqrt(ops.maximum(mean_sq, self.floor) if self.floor else mean_sq + 1e-6)
        return x * r * r

    def get_config(self):
        return {**super().get_config(), "floor": self.floor}


class MeanOverHeight(layers.Layer):
    """(N, H, T, C) -> (N, T, C)."""

    def call(self, x):
        return ops.mean(x, axis=1)


def build_lprnet(
    num_classes: int,
    input_shape: tuple[int, int, int] = (24, 94, 3),
    variant: Variant = "reduced",
    width: float = 1.0,
    dropout: float = 0.3,
    batch_size: int | None = None,
    split_context: bool = False,
    stn: bool = False,
) -> keras.Model:
    """Build LPRNet returning logits of shape (batch, T, num_classes).

    Args:
        num_classes: alphabet size + 1 (blank last).
        input_shape: (H, W, 3); float input in [0, 1].
        variant: ``basic`` or ``reduced`` (see the module docstring).
        width: channel multiplier.
        dropout: dropout rate before the 4x1 and 1x13 convs.
        batch_size: a fixed batch size (1 for export: static shapes), or None.
        split_context: mix the context branches with one 1x1 conv each and add (for int8 export: a concat
            would force one quantisation scale on branches of very different ranges); see :func:`split_weights`.
        stn: put the spatial transformer (LocNet, :mod:`training.models.stn`) in front; the network then reads
            the warped crop.
    """
    c = partial(scaled_channels, width=width)
    inp = keras.Input(input_shape, batch_size=batch_size, name="image")
    src = spatial_transformer(inp) if stn else inp
    x = _conv_bn(src, c(64), 3, name="stem")
    x = layers.MaxPooling2D(3, strides=(1, 2) if variant == "basic" else 2, padding="same", name="pool1")(x)
    f1 = x
    x = small_basic_block(x, c(128), "sbb1")
    x = layers.MaxPooling2D(3, strides=(2, 1), padding="same", name="pool2")(x)
    x = small_basic_block(x, c(256), "sbb2")
    x = small_basic_block(x, c(256), "sbb3")
    f2 = x
    x = layers.MaxPooling2D(3, strides=(2, 2) if variant == "basic" else (1, 2), padding="same", name="pool3")(x)
    if variant == "reduced":
        x = layers.MaxPooling2D((2, 1), strides=(2, 1), padding="same", name="pool4")(x)
    x = layers.Dropout(dropout)(x)
    x = _conv_bn(x, c(128), (4, 1), name="conv4x1")
    x = layers.Dropout(dropout)(x)
    x = _conv_bn(x, num_classes, (1, 13), name="conv1x13")
    f3 = x
    h, t = x.shape[1], x.shape[2]
    ctx = []
    for i, f in enumerate((src, f1, f2, f3)):
        ph, pw = -(-f.shape[1] // h), -(-f.shape[2] // t)
        if ph > 1 or pw > 1:
            f = layers.AveragePooling2D((ph, pw), padding="same", name=f"ctx_pool{i}")(f)
        if tuple(f.shape[1:3]) != (h, t):
            raise ValueError(f"input size {input_shape[:2]} does not pool evenly to {h}x{t}; pick another")
        ctx.append(SampleNorm(name=f"ctx_norm{i}")(f))
    if split_context:  # same function as concat + 1x1 conv, but each branch gets its own int8 scale
        x = layers.Add(name="ctx_sum")(
            [layers.Conv2D(num_classes, 1, use_bias=i == 0, name=f"ctx_mix{i}")(f) for i, f in enumerate(ctx)]
        )
    else:
        x = layers.Conv2D(num_classes, 1, name="ctx_mix")(layers.Concatenate(name="ctx_concat")(ctx))
    logits = MeanOverHeight(name="logits")(x)
    return keras.Model(inp, logits, name=f"lprnet_{variant}")


def split_weights(trained: keras.Model, split: keras.Model) -> None:
    """Copy ``trained``'s weights into the ``split_context`` twin ``split``, slicing the context mix kernel."""
    mix = trained.get_layer("ctx_mix")
    kernel, bias = mix.get_weights()
    start = 0
    for layer in split.layers:
        if layer.name.startswith("ctx_mix"):
            n = layer.input.shape[-1]
            part = kernel[:, :, start : start + n]
            layer.set_weights([part, bias] if layer.use_bias else [part])
            start += n
        elif layer.weights:
            layer.set_weights(trained.get_layer(layer.name).get_weights())
    if start != kernel.shape[2]:
        raise ValueError("context branches do not add up to the trained mix kernel")
