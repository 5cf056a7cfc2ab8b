"""Glyph auxiliary decoder (seed 004): predict a font-rendered image of the label from the backbone's features.

The label image is the plate text drawn in clean glyphs, one equal-width cell per character, inside the text box
of the *average* training plate (found by projection thresholds, see :func:`text_box`), so it lines up with where
characters usually sit in a crop. An upsampling decoder (three transposed convolutions and a projection
convolution) on the recogniser's backbone features predicts it with an MSE loss; the recogniser and the decoder
share the backbone. The decoder is a separate model: the exported recogniser never contains it.
"""

from __future__ import annotations

import math
from functools import cache

import keras
import numpy as np
from keras import layers
from PIL import Image, ImageDraw

from training.synth.plates import CJK_FONT, LATIN_FONTS, _font

RENDER_SCALE = 4  # glyphs are drawn at 4x the label size, then downsampled (anti-aliased edges)


def backbone_features(model: keras.Model):
    """The feature map the glyph decoder reads: LPRNet's before its 4x1/1x13 head, CRNN's before the LSTMs."""
    names = [layer.name for layer in model.layers]
    if "conv4x1_conv" in names:
        return model.get_layer("conv4x1_conv").input
    if "to_columns" in names:
        return model.get_layer("to_columns").input
    raise ValueError(f"{model.name} has no known backbone output for the glyph decoder")


def _strides(feature: int, target: int) -> list[int]:
    """Stride 2 on the first k of the 3 transposed convs, k = the doublings that bring ``feature`` to ``target``."""
    k = min(3, max(0, round(math.log2(max(1, target) / feature))))
    return [2] * k + [1] * (3 - k)


def build_glyph_decoder(model: keras.Model, filters: int = 32) -> keras.Model:
    """image -> predicted glyph image (N, h, w, 1) in [0, 1], sharing ``model``'s backbone layers."""
    feat = backbone_features(model)
    h, w = model.input.shape[1], model.input.shape[2]
    sh, sw = _strides(feat.shape[1], h), _strides(feat.shape[2], w)
    x = feat
    for i in range(3):
        x = layers.Conv2DTranspose(filters, 3, strides=(sh[i], sw[i]), padding="same", name=f"glyph_up{i}")(x)
        x = layers.BatchNormalization(name=f"glyph_bn{i}")(x)
        x = layers.ReLU(name=f"glyph_relu{i}")(x)
    out = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="glyph_proj")(x)
    return keras.Model(model.input, out, name="glyph_decoder")


def decoder_layers(decoder: keras.Model) -> list[keras.layers.Layer]:
    """The decoder's own layers (not the shared backbone's)."""
    return [layer for layer in decoder.layers if layer.name.startswith("glyph_")]


def text_box(images: np.ndarray, threshold: float = 0.5) -> tuple[float, float, float, float]:
    """Where text sits in the average plate, as fractions (x0, y0, x1, y1) of the crop.

    Edge energy (the mean absolute gray-level gradient over all ``images``) is projected onto rows and columns;
    the text box spans the rows/columns whose projection is above ``threshold`` of its range.
    """
    gray = images.astype(np.float32).mean(axis=3)
    energy = np.abs(np.diff(gray, axis=2))[:, :-1, :] + np.abs(np.diff(gray, axis=1))[:, :, :-1]
    mean = energy.mean(axis=0)

    def span(profile: np.ndarray) -> tuple[float, float]:
        lo, hi = profile.min(), profile.max()
        on = np.flatnonzero(profile >= lo + threshold * (hi - lo))
        return on[0] / len(profile), (on[-1] + 1) / len(profile)

    y0, y1 = span(mean.mean(axis=1))
    x0, x1 = span(mean.mean(axis=0))
    return x0, y0, x1, y1


@cache
def _glyph(ch: str, size: int, cjk: bool) -> Image.Image:
    """One character, white on black, cropped to its ink."""
    font = _font(CJK_FONT if cjk else LATIN_FONTS[0], size)
    img = Image.new("L", (size * 2, size * 2), 0)
    ImageDraw.Draw(img).text((size // 2, size // 2), ch, font=font, fill=255)
    return img.crop(img.getbbox() or (0, 0, 1, 1))


def render_glyphs(text: str, size: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """``text`` as a (h, w) float32 image in [0, 1]: one equal-width cell per character inside ``box``."""
    h, w = size
    big_h, big_w = h * RENDER_SCALE, w * RENDER_SCALE
    canvas = Image.new("L", (big_w, big_h), 0)
    x0, y0, x1, y1 = box[0] * big_w, box[1] * big_h, box[2] * big_w, box[3] * big_h
    cell = (x1 - x0) / max(1, len(text))
    for i, ch in enumerate(text):
        g = _glyph(ch, 64, not ch.isascii())
        gw = max(1, int(cell * 0.85))
        gh = max(1, int(y1 - y0))
        canvas.paste(g.resize((gw, gh), Image.BILINEAR), (int(x0 + i * cell + (cell - gw) / 2), int(y0)))
    return np.asarray(canvas.resize((w, h), Image.BOX), np.float32) / 255.0


def glyph_labels(texts: tuple[str, ...], size: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """Glyph images (N, h, w, 1) uint8 for every text (rendered once per distinct text)."""
    cache: dict[str, np.ndarray] = {}
    out = np.empty((len(texts), *size, 1), np.uint8)
    for i, t in enumerate(texts):
        if t not in cache:
            cache[t] = np.round(render_glyphs(t, size, box) * 255).astype(np.uint8)
        out[i, ..., 0] = cache[t]
    return out
