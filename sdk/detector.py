"""Plate detection on the device: a two-stage cascade (seed 002, "ALPR in the wild").

1. The **proposal** network looks at the whole frame, downsampled and letterboxed to its input size, and
   predicts per grid cell a plate-centre score and a rough box (centre offset, log width, log height).
2. The **corners** network looks at each proposal cropped from the **full-resolution** frame (aspect 1:2.5,
   scaled to its input, padded with 128 outside the frame), says plate / not plate and regresses the four
   corners, normalised by the crop size (values outside [0, 1] are allowed, so cut plates still get corners).

Each stage is an ordinary bundle of kind ``detector``; the decoding constants live in its manifest ``extra``.
A detector folder holds ``proposal/`` and ``corners/``; a lone proposal bundle gives boxes only.
Decoding is plain numpy (:func:`decode_proposals`, :func:`proposal_crop`, :func:`decode_corners`, :func:`nms`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sdk.bundle import DETECTOR_STAGES, Bundle, is_detector_folder, load_bundle, resolve_bundle_path
from sdk.errors import BundleError
from sdk.image import fast_resize, to_bgr
from sdk.interpreter import Device, Runner

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in frame pixels
PAD_VALUE = 128
# A detection's score: the corners network's plate probability alone, or its geometric mean with the proposal's
# score (ranks better: on held-out synthetic scenes AP@0.5 0.87 -> 0.92 for the shipped cascade).
SCORE_MODES = ("corners", "geometric_mean")


@dataclass(frozen=True)
class Detection:
    """One plate in a frame: its box, corners (TL, TR, BR, BL; None for a box-only detector) and scores."""

    box: Box
    corners: np.ndarray | None
    score: float
    proposal_score: float


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def box_area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = list(np.argsort(-np.asarray(scores)))
    keep: list[int] = []
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    while order:
        i = order.pop(0)
        keep.append(int(i))
        if order:
            ious = iou_matrix(boxes[i : i + 1], boxes[order])[0]
            order = [j for j, v in zip(order, ious, strict=True) if v <= iou]
    return keep


def letterbox(frame: np.ndarray, height: int, width: int) -> tuple[np.ndarray, float]:
    """Resize ``frame`` to fit (height, width) keeping its aspect, top-left aligned, padded with 128.

    Returns the image and the scale (input pixels per frame pixel)."""
    h, w = frame.shape[:2]
    s = min(width / w, height / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    out = np.full((height, width, 3), PAD_VALUE, np.uint8)
    out[:nh, :nw] = fast_resize(frame, nw, nh)
    return out, s


def decode_proposals(
    out: np.ndarray, stride: int, box_scale: float, threshold: float, max_proposals: int, nms_iou: float
) -> tuple[np.ndarray, np.ndarray]:
    """Proposal map (Gh, Gw, 5: score logit, dx, dy, log w, log h) -> boxes (K, 4) in input pixels and scores.

    A cell proposes a box when its score is a 3x3 local maximum above ``threshold``; the box centre is the
    cell centre plus (dx, dy) cells, its size ``box_scale * exp(log w|h)``.
    """
    score = sigmoid(out[..., 0])
    peak = cv2.dilate(score.astype(np.float32), np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero((score >= threshold) & (score >= peak))
    if ys.size == 0:
        return np.zeros((0, 4)), np.zeros(0)
    cell = out[ys, xs]
    cx, cy = (xs + 0.5 + cell[:, 1]) * stride, (ys + 0.5 + cell[:, 2]) * stride
    bw, bh = box_scale * np.exp(np.clip(cell[:, 3], -4, 4)), box_scale * np.exp(np.clip(cell[:, 4], -4, 4))
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    s = score[ys, xs]
    top = np.argsort(-s)[: 4 * max_proposals]  # NMS is quadratic: only the best peaks can survive it anyway
    boxes, s = boxes[top], s[top]
    keep = nms(boxes, s, nms_iou)[:max_proposals]
    return boxes[keep], s[keep]


def proposal_crop(box: Box | np.ndarray, aspect: float, expand: float) -> np.ndarray:
    """The crop window (x0, y0, x1, y1) the corners network sees for a proposal box: same centre, aspect
    ``aspect`` (width / height), large enough to hold the box grown by ``expand``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w = max((x1 - x0) * expand, (y1 - y0) * expand * aspect, 4.0)
    h = w / aspect
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def crop_window(frame: np.ndarray, window: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """``window`` (x0, y0, x1, y1) of ``frame`` scaled to (out_h, out_w), 128 where it lies outside the frame."""
    x0, y0, x1, y1 = (float(v) for v in window)
    fh, fw = frame.shape[:2]
    ix0, iy0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    ix1, iy1 = min(fw, int(np.ceil(x1)) + 1), min(fh, int(np.ceil(y1)) + 1)
    if ix1 - ix0 < 2 or iy1 - iy0 < 2:
        return np.full((out_h, out_w, 3), PAD_VALUE, np.uint8)
    part, f = frame[iy0:iy1, ix0:ix1], 1.0
    sx, sy = out_w / (x1 - x0), out_h / (y1 - y0)
    while sx * f < 0.5 and sy * f < 0.5 and min(part.shape[:2]) >= 4:  # halve first: warpAffine would alias
        part = cv2.resize(part, (part.shape[1] // 2, part.shape[0] // 2), interpolation=cv2.INTER_AREA)
        f /= 2
    m = np.array([[sx / f, 0, (ix0 - x0) * sx], [0, sy / f, (iy0 - y0) * sy]], np.float32)
    return cv2.warpAffine(
        part, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD_VALUE,) * 3
    )


def decode_corners(out: np.ndarray, window: np.ndarray, coord_scale: float) -> tuple[float, np.ndarray]:
    """Corners output (9: plate logit, 4 x (x, y) * coord_scale in crop units) -> score, corners (4, 2) in px."""
    x0, y0, x1, y1 = window
    xy = out[1:9].reshape(4, 2) / coord_scale
    corners = np.stack([x0 + xy[:, 0] * (x1 - x0), y0 + xy[:, 1] * (y1 - y0)], axis=1)
    return float(sigmoid(out[0])), corners


class _Stage(Runner):
    """One cascade stage's bundle; takes BGR pixels whatever the model's colour order."""

    def __init__(self, bundle: Bundle, stage: str, threads: int, device: Device) -> None:
        m = bundle.manifest
        if m.kind != "detector" or m.extra.get("stage") != stage:
            raise BundleError(
                f"{bundle.source} is a {m.kind} bundle (stage {m.extra.get('stage')!r}); a detector {stage} "
                "bundle is needed here"
            )
        super().__init__(bundle, threads, device)
        self.extra = m.extra

    def __call__(self, pixels_bgr: np.ndarray) -> np.ndarray:
        return super().__call__(pixels_bgr if self.manifest.color_order == "BGR" else pixels_bgr[..., ::-1])


def _need(extra: dict[str, Any], key: str, source: Path) -> Any:
    if key not in extra:
        raise BundleError(f"{source}: detector manifest extra lacks {key!r}; rebuild it with `lpr-sdk quantize`")
    return extra[key]


class Detector:
    """Finds plates in a frame with the proposal + corners cascade.

    Args:
        path: a detector folder holding ``proposal/`` and ``corners/`` bundles (or the shipped ``detector``), or a
            lone proposal bundle (then detections are boxes without corners).
        threads: interpreter threads.
        device: ``cpu`` or ``edgetpu``.
        score_threshold: final plate score threshold (default: the corners manifest's).
        max_proposals: proposals checked per frame at most (default: the proposal manifest's).
    """

    def __init__(
        self,
        path: str | Path = "detector",
        threads: int = 1,
        device: Device = "cpu",
        score_threshold: float | None = None,
        max_proposals: int | None = None,
    ) -> None:
        root = resolve_bundle_path(path)
        if is_detector_folder(root):
            proposal = _Stage(load_bundle(root / DETECTOR_STAGES[0]), "proposal", threads, device)
            corners: _Stage | None = _Stage(load_bundle(root / DETECTOR_STAGES[1]), "corners", threads, device)
        else:
            proposal, corners = _Stage(load_bundle(root), "proposal", threads, device), None
        self._setup(proposal, corners, score_threshold, max_proposals, root)

    @classmethod
    def from_stages(
        cls, proposal: Any, corners: Any | None, score_threshold: float | None = None, source: str = "float"
    ) -> Detector:
        """A detector over any stage callables (e.g. the float Keras models during training): each has
        ``height``, ``width``, ``extra`` (the manifest's decoding constants), ``model_bytes`` and maps BGR
        uint8 pixels to the dequantised output."""
        det = cls.__new__(cls)
        det._setup(proposal, corners, score_threshold, None, Path(source))
        return det

    def _setup(
        self, proposal: Any, corners: Any | None, score_threshold: float | None, max_proposals: int | None, root: Path
    ) -> None:
        self.proposal, self.corners, self.source = proposal, corners, root
        pe = proposal.extra
        self.stride = int(_need(pe, "stride", root))
        self.box_scale = float(_need(pe, "box_scale", root))
        self.proposal_threshold = float(_need(pe, "score_threshold", root))
        self.max_proposals = max_proposals or int(pe.get("max_proposals", 8))
        self.nms_iou = float(pe.get("nms_iou", 0.4))
        if corners is not None:
            ce = corners.extra
            self.aspect = float(_need(ce, "crop_aspect", root))
            self.expand = float(_need(ce, "crop_expand", root))
            self.coord_scale = float(_need(ce, "coord_scale", root))
            self.score_mode = str(ce.get("score", "corners"))
            if self.score_mode not in SCORE_MODES:
                raise BundleError(
                    f"{root}: unknown detector score {self.score_mode!r} (known: {', '.join(SCORE_MODES)})"
                )
            default = float(_need(ce, "score_threshold", root))
        else:
            default = self.proposal_threshold
        self.score_threshold = default if score_threshold is None else score_threshold
        self.backend = getattr(proposal, "backend", "float")

    @property
    def model_bytes(self) -> int:
        return self.proposal.model_bytes + (self.corners.model_bytes if self.corners else 0)

    def propose(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Proposal boxes (K, 4) in frame pixels and their scores."""
        img, s = letterbox(frame, self.proposal.height, self.proposal.width)
        boxes, scores = decode_proposals(
            self.proposal(img), self.stride, self.box_scale, self.proposal_threshold, self.max_proposals, self.nms_iou
        )
        return boxes / s, scores

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Plates in a frame (BGR, gray or BGRA), best first."""
        frame = to_bgr(frame)
        boxes, pscores = self.propose(frame)
        if self.corners is None:
            return [
                Detection(tuple(map(float, b)), None, float(s), float(s))
                for b, s in zip(boxes, pscores, strict=True)
                if s >= self.score_threshold
            ]
        found = [self._corners(frame, b, float(ps)) for b, ps in zip(boxes, pscores, strict=True)]
        found = [d for d in found if d.score >= self.score_threshold]
        if not found:
            return []
        keep = nms(np.array([d.box for d in found]), np.array([d.score for d in found]), self.nms_iou)
        return [found[i] for i in keep]

    def refine(self, frame: np.ndarray, det: Detection) -> Detection | None:
        """The corners stage run again on the crop window around ``det``'s own box (None for a box-only detector).

        A first pass from a loose proposal (e.g. a whole plate recess) can leave the corners loose; the second
        pass sees the plate larger in its crop. ``det``'s scores are kept."""
        if self.corners is None:
            return None
        again = self._corners(to_bgr(frame), det.box, det.proposal_score)
        return Detection(again.box, again.corners, det.score, det.proposal_score)

    def _corners(self, frame: np.ndarray, box: Box | np.ndarray, proposal_score: float) -> Detection:
        """One corners-stage pass over the crop window of ``box``."""
        window = proposal_crop(box, self.aspect, self.expand)
        crop = crop_window(frame, window, self.corners.width, self.corners.height)
        score, corners = decode_corners(self.corners(crop), window, self.coord_scale)
        if self.score_mode == "geometric_mean":
            score = float(np.sqrt(score * proposal_score))
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        return Detection((float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])), corners, score, proposal_score)
