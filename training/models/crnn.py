"""CRNN and LightCRNN (seed 000, Tables I and VIII): a convolutional backbone, two BiLSTMs and a dense CTC head.

CRNN: eight 3x3 convolutions (64, 128, 256, 256, 512, 512, 512, 512) with max-pooling that halves the height
more than the width, so a (48, 160) crop becomes a sequence of T = W / 4 columns. LightCRNN: the same with
depthwise-separable convolutions (depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN + ReLU) and every channel count
scaled by the width multiplier ``alpha``.

For int8 export the model is rebuilt with ``batch_size=1`` and ``unroll=True``: a looping LSTM becomes WHILE ops
that the full-int8 converter cannot handle, an unrolled one is plain builtin ops.
"""

from __future__ import annotations

import keras
from keras import layers

CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)
# Pooling after conv i: (height, width) strides. 48 high -> 3, width / 4.
POOLS = {0: (2, 2), 1: (2, 2), 3: (2, 1), 5: (2, 1)}


def _conv(x, filters: int, light: bool, name: str):
    if light:
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
        x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
        x = layers.ReLU(name=f"{name}_dw_relu")(x)
        x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    else:
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_crnn(
    num_classes: int,
    input_shape: tuple[int, int, int] = (48, 160, 3),
    light: bool = False,
    alpha: float = 1.0,
    hidden: int = 256,
    batch_size: int | None = None,
    unroll: bool = False,
    lstm_layers: int = 2,
) -> keras.Model:
    """Build CRNN (``light=False``) or LightCRNN returning logits (batch, T, num_classes), T = W / 4.

    Args:
        num_classes: alphabet size + 1 (blank last).
        input_shape: (H, W, 3) with H divisible by 16 and W by 4; float input in [0, 1].
        light: depthwise-separable convolutions (LightCRNN).
        alpha: channel multiplier (LightCRNN's width multiplier; also accepted for CRNN).
        hidden: units of each LSTM direction.
        batch_size: a fixed batch size (1 for export), or None.
        unroll: unroll the LSTMs (for int8 export).
        lstm_layers: BiLSTM layers (the seed's 2; 0: the dense head reads the convolutional columns directly).
    """
    h, w, _ = input_shape
    if h % 16 or w % 4:
        raise ValueError(f"CRNN input {h}x{w}: the height must be a multiple of 16 and the width of 4")
    if lstm_layers < 0:
        raise ValueError(f"CRNN lstm_layers must be 0 or more, not {lstm_layers}")
    inp = keras.Input(input_shape, batch_size=batch_size, name="image")
    x = inp
    for i, ch in enumerate(CHANNELS):
        x = _conv(x, max(8, int(round(ch * alpha / 8)) * 8), light and i > 0, f"c{i}")  # the stem stays a full conv
        if i in POOLS:
            x = layers.MaxPooling2D(POOLS[i], strides=POOLS[i], name=f"pool{i}")(x)
    x = layers.Permute((2, 1, 3), name="to_columns")(x)  # (N, T, H', C)
    x = layers.Reshape((w // 4, x.shape[2] * x.shape[3]), name="to_sequence")(x)
    for k in range(lstm_layers):
        x = layers.Bidirectional(layers.LSTM(hidden, return_sequences=True, unroll=unroll), name=f"bilstm{k}")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inp, logits, name="lightcrnn" if light else "crnn")
