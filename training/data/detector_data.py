"""Training arrays for the detector cascade, cut once from scene frames (real and synthetic) into memory.

Proposal stage: each frame (with scale/offset jitter for extra copies) warped to the letterboxed input, with a
target map per stride cell: a Gaussian plate-centre heat map, the centre offset and log box size at the centre
cell, and a weight for negatives (lower on frames where not every plate is labelled).
Corners stage: crops around jittered plate boxes (positives, with corner targets in crop units) and around
plate-free windows (negatives), exactly as the runtime cuts them (:func:`sdk.detector.crop_window`); then,
optionally, around the trained proposal stage's own proposals (:func:`mine_corner_crops`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from sdk.dataset import SceneFrame, read_scenes
from sdk.detector import crop_window, iou_matrix, proposal_crop
from sdk.image import fast_resize, read_image
from training.config import CornersConfig, ProposalConfig, SceneSource

PARTIAL_NEG_WEIGHT = 0.25  # frames where other plates may be unlabelled: negatives count less
MINE_POS_IOU = 0.25  # a mined proposal this close to a plate learns that plate's corners
MINE_NEG_IOU = 0.05  # one this far from every plate (in a fully labelled frame) learns "no plate"


@dataclass
class DetectorArrays:
    frames: np.ndarray  # (N, H, W, 3) uint8 RGB, letterboxed proposal inputs
    targets: np.ndarray  # (N, H/s, W/s, 6) float32: heat, dx, dy, log w, log h, negative weight
    crops: np.ndarray  # (M, h, w, 3) uint8 RGB corners-stage inputs
    crop_targets: np.ndarray  # (M, 9) float32: is plate, 4 corners (x, y) * coord_scale


def roll_frame(img: np.ndarray, plates, degrees: float) -> tuple[np.ndarray, tuple]:
    """``img`` turned by ``degrees`` (counter-clockwise) about its centre on a canvas that holds all of it (edges
    replicated), and ``plates`` (:class:`sdk.dataset.ScenePlate`) with their corners moved along."""
    from sdk.dataset import ScenePlate

    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(round(h * s + w * c)), int(round(h * c + w * s))
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    out = cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    moved = tuple(
        ScenePlate((np.c_[p.corners, np.ones(4)] @ m.T).astype(np.float32), p.text, p.region) for p in plates
    )
    return out, moved


def _frame_window(fw: int, fh: int, in_w: int, in_h: int, rng: random.Random, jitter: bool) -> np.ndarray:
    """The frame region (x0, y0, x1, y1) shown by the input: the runtime's top-left letterbox, or a zoomed one."""
    s = min(in_w / fw, in_h / fh)
    if jitter:
        s *= 2 ** rng.uniform(-0.6, 0.8)
    w, h = in_w / s, in_h / s
    x0 = rng.uniform(min(0.0, fw - w), max(0.0, fw - w)) if jitter else 0.0
    y0 = rng.uniform(min(0.0, fh - h), max(0.0, fh - h)) if jitter else 0.0
    return np.array([x0, y0, x0 + w, y0 + h])


def _view(frame: np.ndarray, win: np.ndarray, s: float, in_w: int, in_h: int) -> np.ndarray:
    """``frame`` scaled by ``s`` like the runtime's letterbox, window ``win`` cut out and padded with 128 where it
    leaves the frame."""
    fh, fw = frame.shape[:2]
    scaled = fast_resize(frame, max(1, round(fw * s)), max(1, round(fh * s)))
    out = np.full((in_h, in_w, 3), 128, np.uint8)
    ox, oy = round(win[0] * s), round(win[1] * s)
    sy0, sx0 = max(0, oy), max(0, ox)
    sy1, sx1 = min(scaled.shape[0], oy + in_h), min(scaled.shape[1], ox + in_w)
    if sy1 > sy0 and sx1 > sx0:
        out[sy0 - oy : sy1 - oy, sx0 - ox : sx1 - ox] = scaled[sy0:sy1, sx0:sx1]
    return out


def proposal_target(boxes: np.ndarray, cfg: ProposalConfig, neg_weight: float) -> np.ndarray:
    """Target map for plate boxes (K, 4) given in input pixels."""
    h, w = cfg.input_size
    gh, gw, s = h // cfg.stride, w // cfg.stride, cfg.stride
    t = np.zeros((gh, gw, 6), np.float32)
    t[..., 5] = neg_weight
    gy, gx = np.mgrid[0:gh, 0:gw]
    for x0, y0, x1, y1 in boxes:
        bw, bh = x1 - x0, y1 - y0
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        if bw < 4 or bh < 2 or not (0 <= cx < w and 0 <= cy < h):
            continue
        j, i = int(cx // s), int(cy // s)
        sx, sy = max(0.6, bw / s / 5), max(0.6, bh / s / 3)
        g = np.exp(-(((gx - j) / sx) ** 2 + ((gy - i) / sy) ** 2) / 2)
        t[..., 0] = np.maximum(t[..., 0], g)
        t[i, j, 0] = 1.0
        t[i, j, 1:5] = (cx / s - j - 0.5, cy / s - i - 0.5, np.log(bw / cfg.box_scale), np.log(bh / cfg.box_scale))
    return t


def _corner_target(corners: np.ndarray, window: np.ndarray, coord_scale: float) -> np.ndarray:
    x0, y0, x1, y1 = window
    rel = (corners - [x0, y0]) / [x1 - x0, y1 - y0]
    return np.concatenate([[1.0], rel.reshape(-1) * coord_scale]).astype(np.float32)


def _corner_samples(
    frame: np.ndarray, sf: SceneFrame, cfg: CornersConfig, rng: random.Random, n_pos: int, n_neg: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    fh, fw = frame.shape[:2]
    h, w = cfg.input_size
    out = []
    boxes = np.array([[*p.corners.min(axis=0), *p.corners.max(axis=0)] for p in sf.plates]).reshape(-1, 4)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    for p, (x0, y0, x1, y1) in zip(sf.plates, boxes, strict=True):
        bw, bh = x1 - x0, y1 - y0
        if bw < 12:
            continue
        for _ in range(n_pos):  # a proposal box as the first stage would give it: shifted and mis-sized
            cx, cy = (x0 + x1) / 2 + rng.gauss(0, 0.08) * bw, (y0 + y1) / 2 + rng.gauss(0, 0.15) * bh
            jw, jh = bw * np.exp(rng.gauss(0, 0.18)), bh * np.exp(rng.gauss(0, 0.25))
            jittered = (cx - jw / 2, cy - jh / 2, cx + jw / 2, cy + jh / 2)
            window = proposal_crop(jittered, cfg.crop_aspect, cfg.crop_expand)
            out.append((crop_window(frame, window, w, h), _corner_target(p.corners, window, cfg.coord_scale)))
    negatives = 0
    for _ in range(n_neg * 8):  # plate-sized windows that hold no plate centre (near misses half of the time)
        if negatives >= n_neg:
            break
        bw = 30 * 2 ** rng.uniform(0, 3.5)
        bh = bw / rng.uniform(2, 4.5)
        if len(boxes) and rng.random() < 0.5:
            b = boxes[rng.randrange(len(boxes))]
            cx = (b[0] + b[2]) / 2 + rng.choice((-1, 1)) * rng.uniform(0.9, 2.5) * (b[2] - b[0])
            cy = (b[1] + b[3]) / 2 + rng.uniform(-3, 3) * (b[3] - b[1])
            bw, bh = (b[2] - b[0]) * rng.uniform(0.7, 1.4), (b[3] - b[1]) * rng.uniform(0.7, 1.4)
        elif sf.partial:
            continue  # other plates in view may be unlabelled: only near misses are safe negatives
        else:
            cx, cy = rng.uniform(0, fw), rng.uniform(0, fh)
        window = proposal_crop((cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), cfg.crop_aspect, cfg.crop_expand)
        inside = (
            (centres[:, 0] > window[0])
            & (centres[:, 0] < window[2])
            & (centres[:, 1] > window[1])
            & (centres[:, 1] < window[3])
        )
        if len(boxes) and (inside.any() or iou_matrix(window[None], boxes).max() > 0.05):
            continue
        out.append((crop_window(frame, window, w, h), np.zeros(9, np.float32)))
        negatives += 1
    return out


def build_arrays(
    sources: tuple[SceneSource, ...] | list[SceneSource],
    pcfg: ProposalConfig,
    ccfg: CornersConfig,
    seed: int = 0,
    n_pos: int = 3,
    n_neg: int = 3,
    limit: int | None = None,
    sample: bool = False,
) -> DetectorArrays:
    """Cut proposal and corners training arrays from scene folders (each frame ``copies`` times).

    ``limit`` keeps the first frames of each folder, or a random sample of that many with ``sample``."""
    rng = random.Random(seed)
    in_h, in_w = pcfg.input_size
    frames, targets, crops, ctargets = [], [], [], []
    for src in sources:
        scenes = read_scenes(src.path, src.split)
        if sample:
            rng.shuffle(scenes)
        scenes = scenes[:limit]
        for sf in scenes:
            level = read_image(sf.path)
            bgr, shown = level, sf
            for copy in range(src.copies):
                bgr, shown = level, sf
                if src.roll > 0 and rng.random() < 0.5:  # half the copies rolled, corners with them
                    bgr, plates = roll_frame(level, sf.plates, rng.uniform(-src.roll, src.roll))
                    shown = SceneFrame(sf.path, plates, sf.region, sf.partial)
                fh, fw = bgr.shape[:2]
                win = _frame_window(fw, fh, in_w, in_h, rng, jitter=copy > 0 or rng.random() < 0.3)
                s = in_w / (win[2] - win[0])
                img = _view(bgr, win, s, in_w, in_h)
                boxes = [
                    (np.r_[p.corners.min(axis=0), p.corners.max(axis=0)] - np.r_[win[:2], win[:2]]) * s
                    for p in shown.plates
                ]
                frames.append(img[..., ::-1])
                neg_weight = PARTIAL_NEG_WEIGHT if sf.partial else 1.0
                targets.append(proposal_target(np.array(boxes).reshape(-1, 4), pcfg, neg_weight))
            for crop, t in _corner_samples(bgr, shown, ccfg, rng, n_pos, n_neg):  # the last copy's view
                crops.append(crop[..., ::-1])
                ctargets.append(t)
    ch, cw = ccfg.input_size
    return DetectorArrays(
        np.stack(frames) if frames else np.zeros((0, in_h, in_w, 3), np.uint8),
        np.stack(targets) if targets else np.zeros((0, in_h // pcfg.stride, in_w // pcfg.stride, 6), np.float32),
        np.stack(crops) if crops else np.zeros((0, ch, cw, 3), np.uint8),
        np.stack(ctargets) if ctargets else np.zeros((0, 9), np.float32),
    )


def mine_corner_crops(
    propose: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    sources: tuple[SceneSource, ...] | list[SceneSource],
    cfg: CornersConfig,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Corners-stage crops (RGB) and targets cut around the proposals ``propose(frame) -> (boxes, scores)`` makes
    on the training frames: the crops the corners stage really sees, mis-placed and mis-sized as they come, and
    the look-alikes the proposal stage fires on (hard negatives; only in fully labelled frames). Each frame counts
    ``copies`` times, as in :func:`build_arrays`."""
    h, w = cfg.input_size
    crops, targets = [], []
    for src in sources:
        for sf in read_scenes(src.path, src.split)[:limit]:
            frame = read_image(sf.path)
            gt = np.array([[*p.corners.min(axis=0), *p.corners.max(axis=0)] for p in sf.plates]).reshape(-1, 4)
            for box in propose(frame)[0]:
                iou = iou_matrix(box[None], gt)[0] if len(gt) else np.zeros(1)
                k = int(iou.argmax())
                window = proposal_crop(box, cfg.crop_aspect, cfg.crop_expand)
                if iou[k] >= MINE_POS_IOU and gt[k, 2] - gt[k, 0] >= 12:
                    target = _corner_target(sf.plates[k].corners, window, cfg.coord_scale)
                elif iou[k] < MINE_NEG_IOU and not sf.partial:
                    target = np.zeros(9, np.float32)
                else:
                    continue
                crop = crop_window(frame, window, w, h)[..., ::-1]
                crops += [crop] * src.copies
                targets += [target] * src.copies
    if not crops:
        return np.zeros((0, h, w, 3), np.uint8), np.zeros((0, 9), np.float32)
    return np.stack(crops), np.stack(targets)
