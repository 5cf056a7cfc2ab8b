"""Synthetic scenes for a corner-regressing plate detector: synthetic plates with known quadrilaterals pasted onto
frames (real frames with their labelled plates inpainted away, or procedural road scenes), and one reader for real
and synthetic scenes folders alike.

A scenes folder holds images plus ``labels.csv`` (file, plate_text, region, x1, y1, x2, y2, x3, y3, x4, y4, source):
one row per plate, corners top-left, top-right, bottom-right, bottom-left in pixels (OpenCV convention: pixel
centres at integer coordinates). Every image array here is BGR uint8, as OpenCV reads it.

Run ``python -m training.synth.scenes OUT_DIR -n 3000 --regions us br eu cn --backgrounds ../shared/data/scenes``
for a training set, or ``--clip`` for a short synthetic drive.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from sdk.dataset import SYNTH_SOURCE, SceneFrame, ScenePlate, Split, read_scenes
from sdk.errors import LprError
from sdk.image import read_image, to_bgr
from training.synth.plates import render_flat_plate

SCENE_COLUMNS = ("file", "plate_text", "region", "x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4", "source")
REFERENCE_WIDTH = 1280
"""Frame width that ``width_range`` refers to; plate widths scale with the actual frame width."""
# Printed plate width in metres per region: sizes the car drawn around a plate.
PLATE_METRES = {"us": 0.305, "br": 0.40, "eu": 0.52, "cn": 0.44}
CAR_COLOURS = (
    (235, 235, 235),
    (30, 30, 30),
    (128, 128, 128),
    (180, 180, 175),
    (40, 40, 170),
    (140, 70, 30),
    (50, 80, 40),
    (60, 150, 200),
    (20, 20, 90),
)


def background_from_frame(frame: np.ndarray, plates: Sequence[ScenePlate], grow: float = 0.15) -> np.ndarray:
    """A copy of ``frame`` with each labelled plate (its quad grown by ``grow`` plus 3 px) inpainted away (TELEA).

    Only plates that are labelled disappear: use fully labelled frames (``SceneFrame.partial`` False) unless stray
    real plates in the background are acceptable.
    """
    out = to_bgr(frame).copy()
    h, w = out.shape[:2]
    for p in plates:
        c = np.asarray(p.corners, np.float32).reshape(4, 2)
        centre = c.mean(axis=0)
        grown = centre + (c - centre) * (1 + grow) + np.sign(c - centre) * 3
        x0, y0 = np.floor(grown.min(axis=0)).astype(int) - 8
        x1, y1 = np.ceil(grown.max(axis=0)).astype(int) + 9
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(mask, _fixed(grown - (x0, y0)), 255, cv2.LINE_8, 4)
        out[y0:y1, x0:x1] = cv2.inpaint(out[y0:y1, x0:x1], mask, 5, cv2.INPAINT_TELEA)
    return out


def _fixed(pts: np.ndarray) -> np.ndarray:
    """Points as int32 with 4 fractional bits, for OpenCV drawing with ``shift=4``."""
    return np.round(np.asarray(pts, np.float64) * 16).astype(np.int32).reshape(-1, 1, 2)


@cache
def _noise_bank() -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative parts (uint8) of a fixed 1024x2048x3 tile of N(0, 16) noise.

    Drawing fresh gaussian noise for a 1280x720 frame costs more than rendering it; frames take randomly placed,
    flipped windows of this tile instead (about 5x faster), which a detector cannot tell from fresh noise.
    """
    bank = np.random.default_rng(0).normal(0, 16, (1024, 2048, 3)).astype(np.float32)
    return np.clip(bank, 0, 255).astype(np.uint8), np.clip(-bank, 0, 255).astype(np.uint8)


def _add_noise(img: np.ndarray, sigma: float, rng: random.Random) -> np.ndarray:
    """``img`` (uint8, 3 channels) plus gaussian noise of standard deviation ``sigma``, saturated."""
    pos, neg = _noise_bank()
    h, w = img.shape[:2]
    if h > pos.shape[0] or w > pos.shape[1]:
        reps = (-(-h // pos.shape[0]), -(-w // pos.shape[1]), 1)
        pos, neg = np.tile(pos, reps), np.tile(neg, reps)
    y, x = rng.randint(0, pos.shape[0] - h), rng.randint(0, pos.shape[1] - w)
    step = rng.choice((1, -1))
    p, n = pos[y : y + h, x : x + w][::step], neg[y : y + h, x : x + w][::step]
    scale = sigma / 16
    return cv2.subtract(cv2.add(img, cv2.multiply(p, scale)), cv2.multiply(n, scale))


def _blobs(h: int, w: int, centres: list[tuple[float, float, float, float]]) -> np.ndarray:
    """Sum of gaussian blobs (x, y, sigma, amplitude; pixels) on an (h, w) float32 grid."""
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    out = np.zeros((h, w), np.float32)
    for x, y, s, a in centres:
        out += a * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * s * s))
    return out


def _draw_box_car(img: np.ndarray, x: float, bottom: float, cw: float, rng: random.Random, night: bool) -> None:
    """A car seen from behind, without a plate: shadow, body in two tones, window, bumper, lights, wheels."""
    ch = cw * rng.uniform(0.75, 0.95)
    colour = np.array(rng.choice(CAR_COLOURS), np.float32) * rng.uniform(0.8, 1.15)

    def box(x0: float, y0: float, x1: float, y1: float, col) -> None:
        pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
        cv2.fillConvexPoly(img, _fixed(pts), tuple(float(v) for v in np.clip(col, 0, 255)), cv2.LINE_AA, 4)

    top = bottom - ch
    box(x - cw * 0.55, bottom - ch * 0.06, x + cw * 0.55, bottom + ch * 0.04, (20, 20, 20))  # shadow
    for side in (-1, 1):  # wheels
        box(
            x + side * cw * 0.42 - cw * 0.07, bottom - ch * 0.16, x + side * cw * 0.42 + cw * 0.07, bottom, (15, 15, 15)
        )
    box(x - cw / 2, top + ch * 0.45, x + cw / 2, bottom - ch * 0.08, colour * 0.85)
    box(x - cw / 2, top + ch * 0.45, x + cw / 2, top + ch * 0.62, colour)
    inset = cw * rng.uniform(0.08, 0.14)
    roof = np.array([[x - cw / 2 + inset, top], [x + cw / 2 - inset, top], [x + cw / 2, top + ch * 0.45]], np.float32)
    roof = np.vstack([roof, [[x - cw / 2, top + ch * 0.45]]])
    cv2.fillConvexPoly(img, _fixed(roof), tuple(float(v) for v in np.clip(colour * 0.95, 0, 255)), cv2.LINE_AA, 4)
    win = roof.copy()
    win[:, 0] = x + (win[:, 0] - x) * 0.85
    win[:2, 1] += ch * 0.05
    win[2:, 1] -= ch * 0.03
    cv2.fillConvexPoly(img, _fixed(win), (rng.uniform(25, 70),) * 3, cv2.LINE_AA, 4)
    box(x - cw / 2, bottom - ch * 0.24, x + cw / 2, bottom - ch * 0.08, colour * 0.45)  # bumper
    red = (40, 40, 255) if night else (30, 30, rng.uniform(130, 200))
    for side in (-1, 1):
        lx = x + side * cw * 0.4
        box(lx - cw * 0.09, top + ch * 0.5, lx + cw * 0.09, top + ch * 0.6, red)


def procedural_background(
    w: int, h: int, rng: random.Random, *, cars: int | None = None, noise: float | None = None
) -> np.ndarray:
    """A road-scene-like BGR frame made from nothing but ``rng``: sky, skyline, road with lanes, plate-less cars,
    poles and signs, day or night lighting, texture and noise.

    Args:
        w: width in pixels.
        h: height in pixels.
        rng: the only source of randomness.
        cars: number of (plate-less) cars on the road; None: 0 to 5 at random.
        noise: standard deviation of the pixel noise; None: 1.5 to 5 at random.
    """
    return _procedural(w, h, rng, cars, noise)[0]


def _procedural(
    w: int, h: int, rng: random.Random, cars: int | None, noise: float | None
) -> tuple[np.ndarray, tuple[float, float]]:
    """:func:`procedural_background` and its vanishing point (x, y)."""
    nrng = np.random.default_rng(rng.getrandbits(32))
    night = rng.random() < 0.3
    horizon = int(h * rng.uniform(0.3, 0.55))
    img = np.empty((h, w, 3), np.uint8)
    # Sky and ground: vertical gradients.
    if night:
        sky_top, sky_low = np.array([30, 15, 10.0]), np.array([60, 50, 45.0])
    elif rng.random() < 0.5:
        sky_top, sky_low = np.array([210, 160, 110.0]), np.array([235, 225, 215.0])
    else:
        grey = rng.uniform(150, 220)
        sky_top, sky_low = np.full(3, grey * 0.9), np.full(3, grey)
    t = np.linspace(0, 1, horizon, dtype=np.float32)[:, None]
    img[:horizon] = np.clip(sky_top * (1 - t) + sky_low * t, 0, 255).astype(np.uint8)[:, None, :]
    ground = np.array(rng.choice([(60, 110, 80), (80, 110, 130), (120, 120, 120), (70, 90, 100)]), np.float32)
    t = np.linspace(0, 1, h - horizon, dtype=np.float32)[:, None]
    img[horizon:] = np.clip(ground * (0.8 + 0.4 * t), 0, 255).astype(np.uint8)[:, None, :]
    # Skyline: buildings and trees standing on the horizon.
    x = -rng.uniform(0, 60)
    while x < w:
        bw = rng.uniform(0.03, 0.15) * w
        bh = rng.uniform(0.03, 0.3) * h
        col = tuple(rng.uniform(40, 170) for _ in range(3))
        cv2.rectangle(img, (int(x), int(horizon - bh)), (int(x + bw), horizon), col, -1)
        if rng.random() < 0.5:  # windows
            lit = (90, 200, 240) if night else tuple(c * 0.6 for c in col)
            for wy in np.arange(horizon - bh + 6, horizon - 8, rng.uniform(8, 16)):
                for wx in np.arange(x + 4, x + bw - 8, rng.uniform(8, 18)):
                    if rng.random() < 0.6:
                        cv2.rectangle(img, (int(wx), int(wy)), (int(wx + 4), int(wy + 4)), lit, -1)
        x += bw + rng.uniform(-10, 30)
    # Road: a trapezoid to a vanishing point, with dashed and solid lane lines.
    vx = w * rng.uniform(0.35, 0.65)
    half = w * rng.uniform(0.5, 0.9)
    road = np.array([[vx - 3, horizon], [vx + 3, horizon], [vx + half, h], [vx - half, h]], np.float32)
    asphalt = rng.uniform(60, 115)
    cv2.fillConvexPoly(img, _fixed(road), (asphalt, asphalt, asphalt * rng.uniform(0.95, 1.05)), cv2.LINE_AA, 4)
    for k in range(-2, 3):
        x_bottom = vx + k * half * 0.5
        col = (60, 200, 230) if (k == 0 and rng.random() < 0.3) else (220, 220, 220)
        dashed = abs(k) < 2
        t0 = 0.0
        while t0 < 1:
            t1 = min(1.0, t0 + (0.12 if dashed else 1.0))
            seg = [(vx + (x_bottom - vx) * tt, horizon + (h - horizon) * tt) for tt in (t0, t1)]
            thick0, thick1 = 0.5 + 8 * t0, 0.5 + 8 * t1
            quad = np.array(
                [
                    [seg[0][0] - thick0, seg[0][1]],
                    [seg[0][0] + thick0, seg[0][1]],
                    [seg[1][0] + thick1, seg[1][1]],
                    [seg[1][0] - thick1, seg[1][1]],
                ],
                np.float32,
            )
            cv2.fillConvexPoly(img, _fixed(quad), col, cv2.LINE_AA, 4)
            t0 = t1 + (0.1 if dashed else 1.0)
            t0 = t0 * 1.15 if dashed else t0
    # Poles and signs at the roadside.
    for _ in range(rng.randint(0, 4)):
        t = rng.uniform(0.05, 0.9)
        side = rng.choice((-1, 1))
        px = vx + side * (half * t + rng.uniform(10, 80) * t)
        base = horizon + (h - horizon) * t
        ph = h * 0.5 * t + 20
        cv2.line(img, (int(px), int(base)), (int(px), int(base - ph)), (60, 60, 60), max(1, int(6 * t)))
        if rng.random() < 0.5:
            s = 40 * t + 6
            sign = rng.choice([(160, 70, 20), (40, 120, 40), (40, 40, 200), (30, 200, 230)])
            cv2.rectangle(img, (int(px - s), int(base - ph)), (int(px + s), int(base - ph + s)), sign, -1)
    # Cars on the road, far ones first.
    lights = []
    for t in sorted(rng.uniform(0.08, 1.0) for _ in range(rng.randint(0, 5) if cars is None else cars)):
        bottom = horizon + (h - horizon) * t
        cw = 2 * half * t * rng.uniform(0.22, 0.35)
        cx = vx + rng.uniform(-0.8, 0.8) * half * t
        _draw_box_car(img, cx, bottom, cw, rng, night)
        if night:
            lights += [(cx + s * cw * 0.4, bottom - cw * 0.45, cw * 0.12, 0.8) for s in (-1, 1)]
    # Lighting, texture and noise, applied on a low-resolution field for speed.
    sh, sw = max(2, h // 8), max(2, w // 8)
    if night:
        lamps = [
            (rng.uniform(0, w), rng.uniform(0, horizon), rng.uniform(20, 80), rng.uniform(0.5, 1.5)) for _ in range(4)
        ]
        ego = (vx, h * 1.1, w * 0.35, 0.9)  # own headlights on the road
        field = 0.35 + _blobs(sh, sw, [(x / 8, y / 8, s / 8, a) for x, y, s, a in [*lamps, ego, *lights]])
    else:
        sun = (rng.uniform(0, w), rng.uniform(-h, h * 0.3), w * rng.uniform(0.3, 0.8), rng.uniform(0.0, 0.4))
        field = rng.uniform(0.75, 1.05) + _blobs(sh, sw, [(sun[0] / 8, sun[1] / 8, sun[2] / 8, sun[3])])
    field = field[..., None] * (1 + nrng.normal(0, 0.06, (sh, sw, 3)).astype(np.float32))
    field = np.clip(field * 128, 0, 255).astype(np.uint8)  # gain in 1/128 steps: uint8 maths is 5x faster
    img = cv2.multiply(img, cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR), scale=1 / 128)
    return _add_noise(img, rng.uniform(1.5, 5) if noise is None else noise, rng), (vx, float(horizon))


def _plate_quad(aspect: float, width: float, rng: random.Random) -> np.ndarray:
    """Corners (TL, TR, BR, BL) of a plate of ``aspect`` (h / w) around (0, 0), ``width`` pixels across.

    The flat plate is turned in 3D (yaw, pitch), seen by a pinhole camera 2.5-12 plate widths away (the perspective
    skew), then rolled in the image plane by up to 10 degrees.
    """
    yaw = math.radians(max(-45.0, min(45.0, rng.gauss(0, 15))))
    pitch = math.radians(rng.uniform(-10, 20))
    roll = math.radians(rng.uniform(-10, 10))
    pts = np.array([[-0.5, -aspect / 2, 0], [0.5, -aspect / 2, 0], [0.5, aspect / 2, 0], [-0.5, aspect / 2, 0]])
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    rot = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]]) @ np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    p = pts @ rot.T
    dist = rng.uniform(2.5, 12)
    uv = p[:, :2] * dist / (dist + p[:, 2:3])
    cr, sr = math.cos(roll), math.sin(roll)
    uv = uv @ np.array([[cr, -sr], [sr, cr]]).T
    return (uv * (width / (uv[:, 0].max() - uv[:, 0].min()))).astype(np.float32)


@dataclass(frozen=True)
class _Car:
    """A car rear around a plate, in plate units (plate x 0..1, y 0..aspect)."""

    polys: tuple[tuple[np.ndarray, tuple[float, float, float]], ...]

    def mapped(self, h: np.ndarray) -> list[tuple[np.ndarray, tuple[float, float, float]]] | None:
        """Polygons through the plate homography ``h``, or None if the car would reach behind the camera."""
        out = []
        for poly, col in self.polys:
            q = np.hstack([poly, np.ones((len(poly), 1))]) @ h.T
            if (q[:, 2] < 0.2).any():
                return None
            out.append((q[:, :2] / q[:, 2:], col))
        return out


def _random_car(region: str, aspect: float, rng: random.Random) -> _Car:
    metre = 1 / PLATE_METRES[region]  # plate units per metre
    cw = 1.75 * metre * rng.uniform(0.9, 1.1)
    left = 0.5 - cw / 2 + rng.uniform(-0.05, 0.05) * cw
    right = left + cw
    top = -rng.uniform(0.15, 0.4) * metre  # trunk lid above the plate
    bottom = aspect + rng.uniform(0.15, 0.35) * metre
    roof = top - rng.uniform(0.4, 0.6) * metre
    inset = cw * rng.uniform(0.08, 0.15)
    colour = np.array(rng.choice(CAR_COLOURS), np.float32) * rng.uniform(0.7, 1.1)

    def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)

    def c(v) -> tuple[float, float, float]:
        return tuple(float(x) for x in np.clip(v, 0, 255))  # type: ignore[return-value]

    cabin = np.array([[left + inset, roof], [right - inset, roof], [right, top], [left, top]], np.float64)
    window = cabin.copy()
    window[:, 0] = 0.5 * (left + right) + (window[:, 0] - 0.5 * (left + right)) * 0.88
    window[:2, 1] += 0.05 * metre
    window[2:, 1] -= 0.04 * metre
    bumper_top = aspect + rng.uniform(0.03, 0.1) * metre
    light_h = rng.uniform(0.08, 0.15) * metre
    light_w = rng.uniform(0.15, 0.3) * metre
    light_col = c((40, 40, rng.uniform(140, 220)))
    wheel_w = rng.uniform(0.18, 0.25) * metre
    tyre = c([rng.uniform(10, 30)] * 3)
    polys = [
        (rect(left - 0.05 * metre, bottom - 0.1 * metre, right + 0.05 * metre, bottom + 0.12 * metre), c((18, 18, 18))),
        (rect(left + 0.1 * metre, top, left + 0.1 * metre + wheel_w, bottom + 0.1 * metre), tyre),
        (rect(right - 0.1 * metre - wheel_w, top, right - 0.1 * metre, bottom + 0.1 * metre), tyre),
        (cabin, c(colour * 0.95)),
        (window, c([rng.uniform(20, 70)] * 3)),
        (rect(left, top, right, bottom), c(colour * 0.85)),
        (rect(left, top, right, top + 0.08 * metre), c(colour)),
        (rect(left, bumper_top, right, bottom), c(colour * rng.uniform(0.3, 0.7))),
        (rect(left + 0.05 * metre, 0, left + 0.05 * metre + light_w, light_h), light_col),
        (rect(right - 0.05 * metre - light_w, 0, right - 0.05 * metre, light_h), light_col),
    ]
    return _Car(tuple(polys))


def _plate_homography(aspect: float, quad: np.ndarray) -> np.ndarray:
    src = np.float32([[0, 0], [1, 0], [1, aspect], [0, aspect]])
    return cv2.getPerspectiveTransform(src, quad.astype(np.float32)).astype(np.float64)


def _bbox(pts: np.ndarray, margin: float = 0.0) -> tuple[float, float, float, float]:
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    return x0 - mx, y0 - my, x1 + mx, y1 + my


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _plate_look(flat_rgb: np.ndarray, rng: random.Random, gain: float) -> np.ndarray:
    """The flat plate (RGB) as BGR, lit by ``gain`` times a random soft ramp across it."""
    img = cv2.cvtColor(flat_rgb, cv2.COLOR_RGB2BGR)
    h, w = img.shape[:2]
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (np.arange(w, dtype=np.float32)[None, :] / w - 0.5) * math.cos(angle) + (
        np.arange(h, dtype=np.float32)[:, None] / h - 0.5
    ) * math.sin(angle)
    shade = gain * rng.uniform(0.75, 1.1) * (1 + rng.uniform(0, 0.4) * ramp)
    return np.clip(img.astype(np.float32) * shade[..., None], 0, 255).astype(np.uint8)


def _shrink(img: np.ndarray, width: float) -> np.ndarray:
    """``img`` shrunk (area-averaged) to about 1.5x the on-screen ``width``, so the warp does not alias."""
    h, w = img.shape[:2]
    s = 1.5 * width / w
    if s >= 1:
        return img
    return cv2.resize(img, (max(8, round(w * s)), max(4, round(h * s))), interpolation=cv2.INTER_AREA)


def _paste(frame: np.ndarray, image: np.ndarray, quad: np.ndarray, edge_sigma: float) -> None:
    """Warp ``image`` so its outer edges land on ``quad`` and alpha-blend it into ``frame`` in place."""
    fh, fw = frame.shape[:2]
    x0, y0 = np.floor(quad.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 3
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(fw, x1), min(fh, y1)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return
    h, w = image.shape[:2]
    src = np.float32([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    m = cv2.getPerspectiveTransform(src, (quad - (x0, y0)).astype(np.float32))
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpPerspective(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpPerspective(np.full((h, w), 255, np.uint8), m, size, flags=cv2.INTER_LINEAR)
    if edge_sigma > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), edge_sigma)
    a = alpha.astype(np.float32)[..., None] / 255.0
    roi = frame[y0:y1, x0:x1]
    roi[:] = (roi * (1 - a) + warped * a + 0.5).astype(np.uint8)


def _draw_polys(frame: np.ndarray, polys: list[tuple[np.ndarray, tuple[float, float, float]]], gain: float) -> None:
    for pts, col in polys:
        cv2.fillPoly(frame, [_fixed(pts)], tuple(min(255.0, v * gain) for v in col), cv2.LINE_AA, 4)


def _local_gain(frame: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """Brightness factor for a pasted object from the frame's brightness around it (dim at night, not black)."""
    h, w = frame.shape[:2]
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(w, int(box[2]) + 1), min(h, int(box[3]) + 1)
    mean = float(frame[y0:y1:4, x0:x1:4].mean()) if x1 > x0 and y1 > y0 else 110.0
    return 0.55 + 0.6 * min(1.0, mean / 160)


def _degrade_scene(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """Frame-level camera effects: gamma/contrast/brightness (and colour cast), blur or motion blur, noise, JPEG."""
    gamma = math.exp(rng.uniform(math.log(0.6), math.log(1.6)))
    alpha, beta = rng.uniform(0.7, 1.25), rng.uniform(-30, 30)
    x = np.arange(256, dtype=np.float32) / 255
    cast = [rng.uniform(0.85, 1.15) for _ in range(3)] if rng.random() < 0.25 else [1.0, 1.0, 1.0]
    lut = np.stack([np.clip(255 * x**gamma * alpha * c + beta, 0, 255) for c in cast], axis=-1)
    img = cv2.LUT(img, lut.astype(np.uint8).reshape(256, 1, 3))
    r = rng.random()
    if r < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
    elif r < 0.45:
        k = rng.randint(3, 9)
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
        img = cv2.filter2D(img, -1, cv2.warpAffine(kernel, rot, (k, k)))
    if rng.random() < 0.7:
        img = _add_noise(img, rng.uniform(1, 8), rng)
    if rng.random() < 0.6:
        _, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(35, 90)])
        img = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    return img


def _place(w: int, h: int, quad: np.ndarray, rng: random.Random, cut: float) -> tuple[float, float] | None:
    """A centre for ``quad`` (around 0, 0): inside the frame, mostly in its lower 70 %, or (with probability ``cut``)
    across one edge."""
    qx0, qy0, qx1, qy1 = _bbox(quad)
    qw, qh = qx1 - qx0, qy1 - qy0
    if rng.random() < cut:
        f = rng.uniform(0.3, 0.8)  # share of the plate inside the frame
        side = rng.choice("lrtbb")
        if side in "lr":
            cx = -qx1 + f * qw if side == "l" else w - qx0 - f * qw
            cy = rng.uniform(-qy0, max(-qy0, h - qy1))
        else:
            cy = -qy1 + f * qh if side == "t" else h - qy0 - f * qh
            cx = rng.uniform(-qx0, max(-qx0, w - qx1))
        return cx, cy
    if qw + 2 > w or qh + 2 > h:
        return None
    y_lo, y_hi = 1 - qy0, h - 1 - qy1
    if rng.random() < 0.75:  # mostly below the upper third, where cars are in road scenes
        y_lo = min(y_hi, max(y_lo, 0.3 * h))
    return rng.uniform(1 - qx0, w - 1 - qx1), rng.uniform(y_lo, y_hi)


def render_scene(
    background: np.ndarray,
    rng: random.Random,
    regions: Sequence[str],
    n_plates: tuple[int, int] = (1, 3),
    width_range: tuple[float, float] = (50, 360),
    *,
    context: float = 0.5,
    cut: float = 0.05,
    degrade: bool = True,
) -> tuple[np.ndarray, list[ScenePlate]]:
    """Paste synthetic plates with known corners onto ``background`` and degrade the frame like a camera.

    Each plate (random region of ``regions``, random text) is turned in perspective (yaw, pitch, up to 10 degrees of
    roll), sized log-uniformly within ``width_range`` pixels for a 1280-px-wide frame (scaled to the actual width),
    placed so that no plate or car drawn later covers an earlier plate, optionally drawn on a car rear, and blended in
    with softened edges.

    Args:
        background: BGR (or grayscale/BGRA) frame; not modified.
        rng: the only source of randomness: equal seeds give equal scenes.
        regions: plate regions to draw from.
        n_plates: inclusive range of plates to try; at least one is always placed.
        width_range: plate width range in pixels at 1280 px frame width.
        context: probability of a car drawn around a plate.
        cut: probability of a plate partly outside the frame (its corners then extend outside too).
        degrade: apply frame-level camera effects (brightness/contrast/gamma, blur, noise, JPEG).

    Returns:
        The BGR frame and its plates (corners TL, TR, BR, BL of the true warped plate quad).
    """
    frame = to_bgr(background).copy()
    h, w = frame.shape[:2]
    scale = w / REFERENCE_WIDTH
    lo, hi = math.log(width_range[0] * scale), math.log(width_range[1] * scale)
    plates: list[ScenePlate] = []
    plate_boxes: list[tuple[float, float, float, float]] = []
    for i in range(rng.randint(*n_plates)):
        flat = render_flat_plate(rng.choice(list(regions)), rng)
        aspect = flat.image.shape[0] / flat.image.shape[1]
        car = _random_car(flat.region, aspect, rng) if rng.random() < context else None
        for _ in range(20 if i == 0 else 8):
            width = math.exp(rng.uniform(lo, hi))
            rel = _plate_quad(aspect, width, rng)
            centre = _place(w, h, rel, rng, cut)
            if centre is None:
                continue
            quad = rel + np.float32(centre)
            polys = car.mapped(_plate_homography(aspect, quad)) if car is not None else None
            extent = _bbox(np.vstack([quad, *(p for p, _ in polys)]) if polys else quad, 0.05)
            if any(_overlaps(extent, b) for b in plate_boxes):
                continue
            gain = _local_gain(frame, _bbox(quad, 0.5))
            if polys:
                _draw_polys(frame, polys, gain)
            look = _shrink(_plate_look(flat.image, rng, gain), width)
            if rng.random() < 0.3:
                look = cv2.GaussianBlur(look, (0, 0), rng.uniform(0.4, 1.0))
            _paste(frame, look, quad, rng.uniform(0.3, 0.8) * min(1.0, width / 80))
            plates.append(ScenePlate(quad, flat.text, flat.region))
            plate_boxes.append(_bbox(quad, 0.05))
            break
    if not plates:  # nothing fitted (a tiny frame): one small plate in the middle
        flat = render_flat_plate(rng.choice(list(regions)), rng)
        aspect = flat.image.shape[0] / flat.image.shape[1]
        width = min(math.exp(lo), w * 0.5)
        quad = _plate_quad(aspect, width, rng) + np.float32((w / 2, h / 2))
        _paste(frame, _shrink(_plate_look(flat.image, rng, 1.0), width), quad, 0.5)
        plates.append(ScenePlate(quad, flat.text, flat.region))
    if degrade:
        frame = _degrade_scene(frame, rng)
    return frame, plates


def _fit(img: np.ndarray, size: tuple[int, int], rng: random.Random) -> np.ndarray:
    """``img`` zoomed in by up to 1.25x at a random spot, cropped to the aspect of ``size`` (w, h), resized to it,
    and mirrored half of the time."""
    w, h = size
    ih, iw = img.shape[:2]
    zoom = rng.uniform(1.0, 1.25)
    cw = min(iw, ih * w / h) / zoom
    ch = cw * h / w
    x0, y0 = rng.uniform(0, iw - cw), rng.uniform(0, ih - ch)
    crop = img[int(y0) : int(y0 + ch), int(x0) : int(x0 + cw)]
    interp = cv2.INTER_AREA if crop.shape[1] > w else cv2.INTER_LINEAR
    out = cv2.resize(crop, (w, h), interpolation=interp)
    return out[:, ::-1].copy() if rng.random() < 0.5 else out


def _rows(file: str, plates: Sequence[ScenePlate], background: str) -> list[tuple[str, ...]]:
    return [
        (
            file,
            p.text,
            p.region,
            *(f"{v:.1f}" for v in p.corners.reshape(-1)),
            f"{SYNTH_SOURCE} (background: {background})",
        )
        for p in plates
    ]


def _write_labels(out: Path, rows: list[tuple[str, ...]]) -> Path:
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as f:
        wr = csv.writer(f)
        wr.writerow(SCENE_COLUMNS)
        wr.writerows(rows)
    return out / "labels.csv"


def render_scene_dataset(
    out_dir: str | Path,
    n: int,
    regions: Sequence[str],
    seed: int = 0,
    backgrounds_dir: str | Path | None = None,
    background_split: Split = "train",
    size: tuple[int, int] = (1280, 720),
    *,
    real_share: float = 0.75,
    quality: int = 90,
) -> Path:
    """Write ``n`` rendered scenes (``images/NNNNNN.jpg``) plus ``labels.csv`` in the scenes format into ``out_dir``.

    Args:
        out_dir: output folder (created).
        n: number of frames.
        regions: plate regions to draw from.
        seed: equal seeds give identical folders.
        backgrounds_dir: a real scenes folder; its fully labelled frames (``ro``) of ``background_split``, plates
            inpainted away, serve as backgrounds for a ``real_share`` of the frames, procedural ones for the rest.
            None: procedural backgrounds only.
        background_split: which side of :func:`scene_split` to take backgrounds from.
        size: frame size (w, h).
        real_share: share of frames on real backgrounds when ``backgrounds_dir`` is given.
        quality: JPEG quality of the written frames.

    Returns:
        The path of the written labels.csv.

    Raises:
        LprError: ``backgrounds_dir`` has no labels.csv or no fully labelled frames in that split.
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    frames: list[SceneFrame] = []
    if backgrounds_dir is not None:
        frames = [f for f in read_scenes(backgrounds_dir, background_split) if not f.partial]
        if not frames:
            raise LprError(f"{backgrounds_dir} has no fully labelled frames in split {background_split!r}")
    picks = [rng.randrange(len(frames)) if frames and rng.random() < real_share else -1 for _ in range(n)]
    rows: dict[int, list[tuple[str, ...]]] = {}
    cached: tuple[int, np.ndarray] | None = None
    # Frames sharing a real background are rendered one after another, so each is read and inpainted once; every
    # frame has its own seeded generator, so the order does not change the output.
    for i in sorted(range(n), key=lambda i: (picks[i], i)):
        frng = random.Random(f"scene:{seed}:{i}")
        if picks[i] >= 0:
            src = frames[picks[i]]
            if cached is None or cached[0] != picks[i]:
                cached = picks[i], background_from_frame(read_image(src.path), src.plates)
            bg = _fit(cached[1], size, frng)
            name = src.path.relative_to(Path(backgrounds_dir)).as_posix()  # type: ignore[arg-type]
        else:
            bg, name = procedural_background(size[0], size[1], frng), "procedural"
        img, plates = render_scene(bg, frng, regions)
        rel = f"images/{i:06d}.jpg"
        cv2.imwrite(str(out / rel), img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        rows[i] = _rows(rel, plates, name)
    return _write_labels(out, [r for i in range(n) for r in rows[i]])


@dataclass(frozen=True)
class _Track:
    """One car of a clip: its plate, pose (quad at unit width around 0, 0), start and growth per second."""

    text: str
    region: str
    aspect: float
    car: _Car | None
    rel: np.ndarray
    w0: float
    c0: np.ndarray
    rate: float
    look: np.ndarray

    def width(self, t: float) -> float:
        return self.w0 * self.rate**t

    def quad(self, t: float, vp: np.ndarray) -> np.ndarray:
        g = self.rate**t
        return (self.rel * self.w0 * g + vp + (self.c0 - vp) * g).astype(np.float32)

    def extent(self, t: float, vp: np.ndarray) -> tuple[float, float, float, float] | None:
        """Bounding box of plate and car at ``t``; None if the car cannot be drawn."""
        q = self.quad(t, vp)
        if self.car is None:
            return _bbox(q, 0.05)
        polys = self.car.mapped(_plate_homography(self.aspect, q))
        return None if polys is None else _bbox(np.vstack([q, *(p for p, _ in polys)]), 0.05)


def render_clip(
    out_path: str | Path,
    n_frames: int = 20,
    regions: Sequence[str] = ("us", "br", "eu", "cn"),
    seed: int = 0,
    size: tuple[int, int] = (1280, 720),
    fps: float = 10,
    *,
    quality: int = 85,
) -> Path:
    """Write a short synthetic drive into the folder ``out_path``: ``drive_tNNN.jpg`` frames plus ``labels.csv``.

    One or two cars ahead on a procedural road (no files needed) come closer: their plates keep text and pose while
    they grow and move outward from the road's vanishing point at a fixed rate per second, so ``fps`` sets how far
    they move between frames. The ``_t<digits>`` names keep the frames together under :func:`scene_split`.

    Returns:
        The path of the written labels.csv.
    """
    out = Path(out_path)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"clip:{seed}")
    w, h = size
    pad = int(0.03 * w)
    big, (vx, vy) = _procedural(w + 2 * pad, h + 2 * pad, rng, cars=0, noise=2.0)
    vp = np.array([vx - pad, vy - pad], np.float32)
    duration = (n_frames - 1) / fps
    first_side = rng.choice((-1, 1))
    tracks: list[_Track] = []
    for k in range(rng.randint(1, 2)):
        flat = render_flat_plate(rng.choice(list(regions)), rng)
        aspect = flat.image.shape[0] / flat.image.shape[1]
        car = _random_car(flat.region, aspect, rng)
        side = first_side if k == 0 else -first_side
        c0 = vp + np.float32([side * rng.uniform(0.03, 0.18) * w, rng.uniform(0.08, 0.16) * h])
        track = _Track(
            flat.text,
            flat.region,
            aspect,
            car,
            _plate_quad(aspect, 1.0, rng),
            rng.uniform(45, 80) * w / REFERENCE_WIDTH,
            c0,
            rng.uniform(1.3, 1.9),
            _plate_look(flat.image, rng, 1.0),
        )
        for _ in range(30):  # slow the approach down until the plate stays in view to the last frame
            x0, y0, x1, y1 = _bbox(track.quad(duration, vp))
            if x0 > 4 and y0 > 4 and x1 < w - 4 and y1 < h - 4:
                break
            track = dataclasses.replace(track, rate=1 + (track.rate - 1) * 0.8)
        tracks.append(track)
    if len(tracks) == 2:  # the second car must never cover the first plate, nor the first car the second plate
        for i in range(n_frames):
            t = i / fps
            e0, e1 = tracks[0].extent(t, vp), tracks[1].extent(t, vp)
            p0, p1 = _bbox(tracks[0].quad(t, vp), 0.05), _bbox(tracks[1].quad(t, vp), 0.05)
            if e0 is None or e1 is None or _overlaps(e1, p0) or _overlaps(e0, p1):
                tracks.pop()
                break
    gamma = rng.uniform(0.85, 1.15)
    lut = np.clip(255 * (np.arange(256) / 255) ** gamma, 0, 255).astype(np.uint8)
    rows = []
    for i in range(n_frames):
        t = i / fps
        ox = pad + round(pad * 0.4 * math.sin(2 * math.pi * t / 1.7))  # a little camera sway
        oy = pad + round(pad * 0.25 * math.sin(2 * math.pi * t / 1.1))
        frame = big[oy : oy + h, ox : ox + w].copy()
        plates = []
        for track in sorted(tracks, key=lambda tr: tr.width(t)):  # far (small) ones first
            quad = track.quad(t, vp)
            gain = _local_gain(frame, _bbox(quad, 0.5))
            polys = track.car.mapped(_plate_homography(track.aspect, quad)) if track.car is not None else None
            if polys:
                _draw_polys(frame, polys, gain)
            look = np.clip(track.look * gain, 0, 255).astype(np.uint8)
            _paste(frame, _shrink(look, track.width(t)), quad, 0.5)
            plates.append(ScenePlate(quad, track.text, track.region))
        frame = cv2.LUT(frame, lut)
        name = f"drive_t{i:03d}.jpg"
        cv2.imwrite(str(out / name), frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        rows += _rows(name, plates, "procedural")
    return _write_labels(out, rows)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m training.synth.scenes", description="Render synthetic plate scenes (labels.csv with corners)."
    )
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("-n", type=int, default=None, help="frames (default: 1000, or 20 with --clip)")
    ap.add_argument("--regions", nargs="+", default=["us", "br", "eu", "cn"], choices=sorted(PLATE_METRES))
    ap.add_argument(
        "--backgrounds", type=Path, help="real scenes folder whose fully labelled frames serve as backgrounds"
    )
    ap.add_argument("--background-split", choices=("all", "train", "test"), default="train")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, nargs=2, default=(1280, 720), metavar=("W", "H"))
    ap.add_argument("--clip", action="store_true", help="a short synthetic drive (procedural background) instead")
    ap.add_argument("--fps", type=float, default=10, help="frame rate of --clip")
    args = ap.parse_args(argv)
    if args.clip and args.backgrounds:
        ap.error("--clip draws procedural backgrounds only; drop --backgrounds")
    n = args.n if args.n is not None else (20 if args.clip else 1000)
    size = (args.size[0], args.size[1])
    start = time.perf_counter()
    try:
        if args.clip:
            labels = render_clip(args.out_dir, n, args.regions, args.seed, size, args.fps)
        else:
            labels = render_scene_dataset(
                args.out_dir, n, args.regions, args.seed, args.backgrounds, args.background_split, size
            )
    except LprError as e:
        raise SystemExit(f"error: {e}") from None
    dt = time.perf_counter() - start
    print(f"{labels}: {n} frames in {dt:.1f} s ({n / dt:.1f} frames/s)")


if __name__ == "__main__":
    main()
