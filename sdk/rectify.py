"""Plate corners to a recogniser-sized crop: corner order, margins, perspective / RANSAC-affine / box warps, IoU.

Coordinates are continuous pixel coordinates in which pixel ``(col, row)`` covers ``[col, col + 1) x [row, row + 1)``,
so a box ``(x0, y0, x1, y1)`` with integer values covers ``frame[y0:y1, x0:x1]`` and a warp's output spans
``[0, out_w] x [0, out_h]``. Corners are float arrays ``(4, 2)`` of ``(x, y)`` ordered top-left, top-right,
bottom-right, bottom-left (clockwise on screen). Frames may be grayscale, BGR or BGRA; every warp returns BGR uint8
``(out_h, out_w, 3)``, with the parts that fall outside the frame filled with ``border_value``. Bad input raises
:class:`sdk.errors.ImageError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from numbers import Integral, Real

import cv2
import numpy as np

from sdk.errors import ImageError
from sdk.image import to_bgr
from sdk.types import RectifyMethod

Box = tuple[float, float, float, float]

# Margin (fraction of the plate's width, height added on each side) the pipeline crops with by default.
DEFAULT_MARGIN = (0.06, 0.10)
# Large shrinks warp to an intermediate k-times the output (warp stage shrinks by at most SUPERSAMPLE_STEP), then
# average k x k blocks (INTER_AREA): bilinear warping alone aliases once it shrinks by more than about 1.5x.
SUPERSAMPLE_STEP = 1.25
MAX_SUPERSAMPLE = 8
# quad_is_plausible defaults.
MIN_QUAD_AREA = 20.0
ASPECT_RANGE = (0.5, 10.0)
MIN_ANGLE_DEG = 30.0
MAX_EDGE_RATIO = 4.0
# fit_affine_ransac tries every triple of points, so it is meant for a handful of them (plate corners).
MAX_RANSAC_POINTS = 16

_UNIT = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
_METHODS = ("perspective", "affine", "crop")


@dataclass(frozen=True, eq=False)  # eq=False: an ndarray field makes field-wise == and hash meaningless
class AffineFit:
    """A robustly fitted affine transform.

    Attributes:
        matrix: read-only ``(2, 3)`` float64 matrix mapping source points to destination points.
        inliers: per correspondence, whether it agrees with the fit within the threshold.
        rms: root-mean-square residual of the inliers, in destination units.
    """

    matrix: np.ndarray
    inliers: tuple[bool, ...]
    rms: float

    @property
    def n_inliers(self) -> int:
        """Number of inlier correspondences."""
        return sum(self.inliers)


# ---------------------------------------------------------------------------------------------------------- checks


def _points(pts: object, name: str, n: int | None = None, finite: bool = True) -> np.ndarray:
    """``pts`` as a float (N, 2) array; ``finite=False`` lets NaN/inf through (for callers that fall back)."""
    try:
        p = np.array(pts, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ImageError(f"{name} must be an (N, 2) array of numbers: {e}") from None
    if p.ndim != 2 or p.shape[1] != 2 or (n is not None and p.shape[0] != n):
        want = f"({n}, 2)" if n is not None else "(N, 2)"
        raise ImageError(f"{name} must have shape {want}, got {p.shape}")
    if finite and not np.all(np.isfinite(p)):
        raise ImageError(f"{name} hold non-finite values: {p.tolist()}")
    return p


def _quad(corners: object, name: str = "corners") -> np.ndarray:
    return _points(corners, name, 4)


def _out_size(out_w: int, out_h: int) -> tuple[int, int]:
    for v in (out_w, out_h):
        if isinstance(v, bool) or not isinstance(v, Integral) or v < 2:
            raise ImageError(f"output size must be integers >= 2, got out_w={out_w!r}, out_h={out_h!r}")
    return int(out_w), int(out_h)


def _margin(margin: Sequence[float]) -> tuple[float, float]:
    try:
        mx, my = (float(m) for m in margin)
    except (TypeError, ValueError):
        raise ImageError(f"margin must be two numbers (x, y), got {margin!r}") from None
    if not (math.isfinite(mx) and math.isfinite(my) and mx > -0.5 and my > -0.5):
        raise ImageError(f"margin must be finite and above -0.5 (fractions per side), got {margin!r}")
    return mx, my


def _border(border_value: int | Sequence[int]) -> tuple[float, float, float]:
    try:
        vals = [border_value] * 3 if isinstance(border_value, Real) else list(border_value)
    except TypeError:
        vals = []
    if len(vals) != 3 or not all(isinstance(v, Real) and 0 <= v <= 255 for v in vals):
        raise ImageError(f"border_value must be 0..255 or a BGR triple of such, got {border_value!r}")
    return float(vals[0]), float(vals[1]), float(vals[2])


def _box(box: Sequence[float], name: str = "box") -> Box:
    try:
        b = np.array(box, dtype=np.float64)
    except (TypeError, ValueError):
        raise ImageError(f"{name} must be 4 numbers (x0, y0, x1, y1), got {box!r}") from None
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        raise ImageError(f"{name} must be 4 finite numbers (x0, y0, x1, y1), got {box!r}")
    x0, y0, x1, y1 = (float(v) for v in b)
    if x1 <= x0 or y1 <= y0:
        raise ImageError(f"{name} must have x0 < x1 and y0 < y1, got {(x0, y0, x1, y1)}")
    return x0, y0, x1, y1


def _thresh(thresh: float) -> float:
    if isinstance(thresh, bool) or not isinstance(thresh, Real) or not (math.isfinite(thresh) and thresh > 0):
        raise ImageError(f"RANSAC threshold must be a positive number of pixels, got {thresh!r}")
    return float(thresh)


def _image(frame: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(to_bgr(frame))


# -------------------------------------------------------------------------------------------------------- geometry


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _has_collinear_triple(p: np.ndarray) -> bool:
    """Whether three of the points are collinear (relative to their spread); plain floats: 4 points are too few for
    numpy to pay off."""
    pts = p.tolist()
    xs, ys = [x for x, _ in pts], [y for _, y in pts]
    tol = 1e-9 * max(max(xs) - min(xs), max(ys) - min(ys)) ** 2
    if tol == 0.0:
        return True
    for (ax, ay), (bx, by), (cx, cy) in combinations(pts, 3):
        if abs((bx - ax) * (cy - ay) - (by - ay) * (cx - ax)) <= tol:
            return True
    return False


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 float64 homography mapping 4 ``src`` points onto 4 ``dst`` points (OpenCV's exact 4-point solve)."""
    if _has_collinear_triple(src) or _has_collinear_triple(dst):
        raise ImageError(f"degenerate quad (three corners collinear): {dst.tolist()}")
    h = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32)).astype(np.float64)
    if not np.all(np.isfinite(h)) or h[2, 2] == 0.0:
        raise ImageError(f"degenerate quad (no homography): {dst.tolist()}")
    return h / h[2, 2]


def _apply_h(h: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = np.c_[pts, np.ones(len(pts))] @ h.T
    return q[:, :2] / q[:, 2:], q[:, 2]


_HALF = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])  # pixel-centre -> edge coordinates


def _to_cv(m: np.ndarray) -> np.ndarray:
    """A 3x3 map between edge coordinates (pixel i covers [i, i+1)) as the same map in OpenCV's pixel-centre ones."""
    return np.linalg.inv(_HALF) @ m @ _HALF


def _rect(w: float, h: float) -> np.ndarray:
    return np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])


def _quad_size(q: np.ndarray) -> tuple[float, float]:
    """Largest width (top/bottom edge) and height (left/right edge) of an ordered quad."""
    e = np.linalg.norm(np.roll(q, -1, axis=0) - q, axis=1)
    return float(max(e[0], e[2])), float(max(e[1], e[3]))


def _supersample(size_in: float, size_out: int) -> int:
    return int(min(MAX_SUPERSAMPLE, max(1, math.ceil(size_in / (size_out * SUPERSAMPLE_STEP)))))


def _shrink(img: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    if img.shape[:2] == (out_h, out_w):
        return img
    return cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_AREA)


def _shear(m: np.ndarray) -> float:
    """|cos| of the angle between the images of the x and y axes under the linear part of ``m`` (0: no shear)."""
    u, v = m[:, 0], m[:, 1]
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    return abs(float(u @ v)) / (nu * nv) if nu > 0 and nv > 0 else 1.0


# ------------------------------------------------------------------------------------------------------ public API


def order_corners(pts: np.ndarray) -> np.ndarray:
    """Put 4 points in any order into top-left, top-right, bottom-right, bottom-left order.

    The points are sorted clockwise (on screen) about their centroid; the pair of opposite edges whose mean
    direction is closest to +x becomes the top and bottom. Correct for in-plane rotations within +-45 degrees
    (and perspective), whatever the aspect ratio.

    Args:
        pts: ``(4, 2)`` points ``(x, y)``.

    Returns:
        A new float64 ``(4, 2)`` array in TL, TR, BR, BL order.

    Raises:
        ImageError: ``pts`` is not a finite ``(4, 2)`` array.
    """
    p = _quad(pts, "pts")
    c = p.mean(axis=0)
    p = p[np.argsort(np.arctan2(p[:, 1] - c[1], p[:, 0] - c[0]), kind="stable")]

    def unit(v: np.ndarray) -> np.ndarray:
        n = float(np.linalg.norm(v))
        return v / n if n > 0 else v

    best, best_cos = p, -2.0
    for s in range(4):
        q = np.roll(p, -s, axis=0)
        d = unit(q[1] - q[0]) + unit(q[2] - q[3])  # top edge and bottom edge, both pointing right
        n = float(np.linalg.norm(d))
        cos = d[0] / n if n > 0 else -1.0
        if cos > best_cos:
            best, best_cos = q, cos
    return best.copy()


def expand_quad(corners: np.ndarray, margin_x: float, margin_y: float) -> np.ndarray:
    """Grow (or, with negative margins, shrink) a quad about its own axes.

    The margins are fractions of the plate's width / height added on each side, measured in the plate's plane:
    the unit square is mapped onto the quad by a homography and ``[-mx, 1 + mx] x [-my, 1 + my]`` is mapped back,
    so a rectangle ``w x h`` becomes ``w (1 + 2 mx) x h (1 + 2 my)`` about the same centre and axes, and a
    perspective quad grows more on its near side, as the plate would.

    Args:
        corners: ``(4, 2)`` corners in TL, TR, BR, BL order.
        margin_x: fraction of the width added left and right (above -0.5).
        margin_y: fraction of the height added above and below (above -0.5).

    Returns:
        The expanded float64 ``(4, 2)`` corners, same order.

    Raises:
        ImageError: bad corners or margins, a degenerate quad, or a margin reaching the quad's vanishing line.
    """
    q = _quad(corners)
    mx, my = _margin((margin_x, margin_y))
    if mx == 0.0 and my == 0.0:
        return q.copy()
    h = _homography(_UNIT, q)
    grown = np.array([[-mx, -my], [1 + mx, -my], [1 + mx, 1 + my], [-mx, 1 + my]])
    out, w = _apply_h(h, grown)
    _, w0 = _apply_h(h, _UNIT)
    if np.any(w * np.sign(w0[0]) <= 0):
        raise ImageError(f"margin {(mx, my)} reaches the vanishing line of quad {q.tolist()}")
    return out


def warp_quad(
    frame: np.ndarray,
    corners: np.ndarray,
    out_w: int,
    out_h: int,
    margin: Sequence[float] = (0.0, 0.0),
    border_value: int | Sequence[int] = 128,
) -> np.ndarray:
    """Perspective-warp the (expanded) quad to an ``out_w x out_h`` crop.

    Large shrinks are warped to an intermediate a whole number of times the output, then averaged down with
    INTER_AREA, so fine detail does not alias.

    Args:
        frame: grayscale, BGR or BGRA uint8 image.
        corners: ``(4, 2)`` plate corners in TL, TR, BR, BL order, frame pixels.
        out_w: output width (>= 2).
        out_h: output height (>= 2).
        margin: ``(mx, my)`` fractions of the plate's width / height added on each side (see :func:`expand_quad`).
        border_value: fill for the parts outside the frame (gray level or BGR triple).

    Returns:
        BGR uint8 ``(out_h, out_w, 3)``.

    Raises:
        ImageError: bad frame, corners, size, margin or border value, or a degenerate quad.
    """
    img = _image(frame)
    q = _quad(corners)
    out_w, out_h = _out_size(out_w, out_h)
    mx, my = _margin(margin)
    fill = _border(border_value)
    quad = expand_quad(q, mx, my)
    qw, qh = _quad_size(quad)
    big_w, big_h = out_w * _supersample(qw, out_w), out_h * _supersample(qh, out_h)
    m = _to_cv(_homography(_rect(big_w, big_h), quad))  # output -> frame
    big = cv2.warpPerspective(img, m, (big_w, big_h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=fill)
    return _shrink(big, out_w, out_h)


def fit_affine_ransac(src_pts: np.ndarray, dst_pts: np.ndarray, thresh_px: float = 3.0) -> AffineFit:
    """Fit ``dst ~ A @ [src, 1]`` robustly over a handful of correspondences (exhaustive RANSAC).

    Every non-collinear triple of correspondences determines an affine transform exactly; its inliers are the
    correspondences it maps within ``thresh_px`` of their destination, and it is refitted by least squares on them.
    The fit with the most inliers wins; among those with (near-)equal inlier residual, the one with the least shear
    (images of the source x and y axes closest to perpendicular) wins. That prior matters with plate corners: with
    4 points and one outlier every triple has exactly 3 inliers and zero residual, so the data alone cannot say
    which corner is wrong, but a plate is a rectangle. (``cv2.estimateAffine2D(method=cv2.RANSAC)`` breaks that tie
    by its fixed-seed first sample: it drops the same point whichever corner is wrong.) Exactly equal ties (a
    rectangle with one corner pushed along an edge is two rectangles at once) go to the first triple in index
    order.

    Args:
        src_pts: ``(N, 2)`` source points, 3 <= N <= 16; for plate corners, a rectangle such as the unit square in
            TL, TR, BR, BL order.
        dst_pts: ``(N, 2)`` destination points (e.g. the predicted corners in frame pixels).
        thresh_px: inlier threshold on the residual, in destination units.

    Returns:
        The :class:`AffineFit`.

    Raises:
        ImageError: bad shapes or values, or all source triples collinear.
    """
    src = _points(src_pts, "src_pts")
    dst = _points(dst_pts, "dst_pts", len(src))
    n = len(src)
    if not 3 <= n <= MAX_RANSAC_POINTS:
        raise ImageError(f"fit_affine_ransac needs 3 to {MAX_RANSAC_POINTS} correspondences, got {n}")
    thresh_px = _thresh(thresh_px)
    scale = float(np.ptp(src, axis=0).max())
    hs = np.c_[src, np.ones(n)]
    fits: list[tuple[int, float, float, np.ndarray, np.ndarray]] = []
    seen: set[bytes] = set()
    for tri in combinations(range(n), 3):
        t = list(tri)
        if abs(float(_cross(src[t[1]] - src[t[0]], src[t[2]] - src[t[0]]))) <= 1e-9 * scale * scale:
            continue
        exact = np.linalg.solve(hs[t], dst[t]).T
        inl = np.linalg.norm(hs @ exact.T - dst, axis=1) <= thresh_px
        if inl.tobytes() in seen:  # same consensus set, same refit
            continue
        seen.add(inl.tobytes())
        m = np.linalg.lstsq(hs[inl], dst[inl], rcond=None)[0].T
        rms = float(np.sqrt(np.mean(np.sum((hs[inl] @ m.T - dst[inl]) ** 2, axis=1))))
        fits.append((int(inl.sum()), rms, _shear(m), m, inl))
    if not fits:
        raise ImageError(f"src_pts are collinear: no affine transform fits {src.tolist()}")
    most = max(f[0] for f in fits)
    fits = [f for f in fits if f[0] == most]
    least = min(f[1] for f in fits)
    fits = [f for f in fits if f[1] <= least + 0.05 * thresh_px]
    _, rms, _, m, inl = min(fits, key=lambda f: f[2])
    m = m.copy()
    m.setflags(write=False)
    return AffineFit(matrix=m, inliers=tuple(bool(v) for v in inl), rms=rms)


def _default_thresh(q: np.ndarray) -> float:
    e = np.linalg.norm(np.roll(q, -1, axis=0) - q, axis=1)
    return max(1.0, 0.1 * float(e[1] + e[3]) / 2)


def _warp_affine(
    img: np.ndarray, a: np.ndarray, out_w: int, out_h: int, mx: float, my: float, fill: tuple[float, float, float]
) -> np.ndarray:
    """Warp with ``a`` (2x3, unit plate square -> frame edge coordinates) and margins to ``out_w x out_h``."""
    pw = float(np.linalg.norm(a[:, 0])) * (1 + 2 * mx)
    ph = float(np.linalg.norm(a[:, 1])) * (1 + 2 * my)
    big_w, big_h = out_w * _supersample(pw, out_w), out_h * _supersample(ph, out_h)
    out_to_unit = np.array([[(1 + 2 * mx) / big_w, 0.0, -mx], [0.0, (1 + 2 * my) / big_h, -my], [0.0, 0.0, 1.0]])
    m = _to_cv(np.vstack([a, [0.0, 0.0, 1.0]]) @ out_to_unit)[:2]
    big = cv2.warpAffine(img, m, (big_w, big_h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=fill)
    return _shrink(big, out_w, out_h)


def warp_affine_from_corners(
    frame: np.ndarray,
    corners: np.ndarray,
    out_w: int,
    out_h: int,
    margin: Sequence[float] = (0.0, 0.0),
    ransac_thresh: float | None = None,
    border_value: int | Sequence[int] = 128,
) -> np.ndarray:
    """Rectify with an affine transform fitted robustly to the 4 corners instead of the exact homography.

    The affine maps the unit square onto the corners (:func:`fit_affine_ransac`): noise within the threshold is
    averaged over all four corners by least squares, and one corner further off is dropped (which one is decided by
    the fit's least-shear prior). Perspective is lost, which is harmless for the near-frontal plates this is meant
    for.

    Args:
        frame: grayscale, BGR or BGRA uint8 image.
        corners: ``(4, 2)`` plate corners in TL, TR, BR, BL order, frame pixels.
        out_w: output width (>= 2).
        out_h: output height (>= 2).
        margin: ``(mx, my)`` fractions of the plate's width / height added on each side.
        ransac_thresh: inlier threshold in frame pixels; default 10% of the quad's height (at least 1 px).
        border_value: fill for the parts outside the frame.

    Returns:
        BGR uint8 ``(out_h, out_w, 3)``.

    Raises:
        ImageError: bad frame, corners, size, margin, threshold or border value, or collinear corners.
    """
    img = _image(frame)
    q = _quad(corners)
    out_w, out_h = _out_size(out_w, out_h)
    mx, my = _margin(margin)
    fill = _border(border_value)
    fit = fit_affine_ransac(_UNIT, q, _default_thresh(q) if ransac_thresh is None else ransac_thresh)
    return _warp_affine(img, np.asarray(fit.matrix), out_w, out_h, mx, my, fill)


def crop_box(
    frame: np.ndarray,
    box: Sequence[float],
    out_w: int,
    out_h: int,
    margin: Sequence[float] = (0.0, 0.0),
    border_value: int | Sequence[int] = 128,
) -> np.ndarray:
    """Crop an axis-aligned box (grown by ``margin``) and resize it to ``out_w x out_h``.

    An integer box the size of the output returns ``frame[y0:y1, x0:x1]`` exactly; parts outside the frame are
    filled with ``border_value``.

    Args:
        frame: grayscale, BGR or BGRA uint8 image.
        box: ``(x0, y0, x1, y1)`` with ``x0 < x1``, ``y0 < y1``, frame pixels.
        out_w: output width (>= 2).
        out_h: output height (>= 2).
        margin: ``(mx, my)`` fractions of the box's width / height added on each side.
        border_value: fill for the parts outside the frame.

    Returns:
        BGR uint8 ``(out_h, out_w, 3)``.

    Raises:
        ImageError: bad frame, box, size, margin or border value.
    """
    img = _image(frame)
    x0, y0, x1, y1 = _box(box)
    out_w, out_h = _out_size(out_w, out_h)
    mx, my = _margin(margin)
    fill = _border(border_value)
    w, h = (x1 - x0) * (1 + 2 * mx), (y1 - y0) * (1 + 2 * my)
    x0, y0 = x0 - mx * (x1 - x0), y0 - my * (y1 - y0)
    big_w, big_h = out_w * _supersample(w, out_w), out_h * _supersample(h, out_h)
    m = _to_cv(np.array([[w / big_w, 0.0, x0], [0.0, h / big_h, y0], [0.0, 0.0, 1.0]]))[:2]
    big = cv2.warpAffine(img, m, (big_w, big_h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=fill)
    return _shrink(big, out_w, out_h)


def quad_is_plausible(
    corners: np.ndarray,
    frame_shape: Sequence[int],
    *,
    min_area: float = MIN_QUAD_AREA,
    aspect_range: tuple[float, float] = ASPECT_RANGE,
    min_angle_deg: float = MIN_ANGLE_DEG,
    max_edge_ratio: float = MAX_EDGE_RATIO,
) -> bool:
    """Whether 4 predicted corners look like a plate worth warping, so a caller can fall back to a box crop.

    A plausible quad is finite, convex and ordered TL, TR, BR, BL (clockwise on screen: a self-intersecting or
    mirrored quad fails), has every edge at least 1 px, area at least ``min_area``, interior angles within
    ``[min_angle_deg, 180 - min_angle_deg]``, width / height (mean of opposite edges) within ``aspect_range``,
    opposite edges within ``max_edge_ratio`` of each other, and its centroid inside the frame.

    Args:
        corners: ``(4, 2)`` corners.
        frame_shape: the frame's ``shape`` (``(H, W)`` or ``(H, W, C)``).
        min_area: least area in square pixels.
        aspect_range: allowed ``(min, max)`` of width / height.
        min_angle_deg: least interior angle in degrees.
        max_edge_ratio: largest ratio between the lengths of opposite edges.

    Returns:
        ``True`` when plausible; ``False`` for any failed check, non-finite corners included.

    Raises:
        ImageError: ``corners`` is not ``(4, 2)`` or ``frame_shape`` has no height and width.
    """
    q = _points(corners, "corners", 4, finite=False)
    if len(frame_shape) < 2:
        raise ImageError(f"frame_shape must be (H, W[, C]), got {frame_shape!r}")
    fh, fw = float(frame_shape[0]), float(frame_shape[1])
    if not np.all(np.isfinite(q)):
        return False
    e = np.roll(q, -1, axis=0) - q  # e[i]: corner i -> corner i + 1
    lengths = np.linalg.norm(e, axis=1)
    if lengths.min() < 1.0:
        return False
    prev = np.roll(e, 1, axis=0)  # edge arriving at corner i
    if np.any(_cross(prev, e) <= 0):  # not convex, or counter-clockwise on screen
        return False
    cos = np.sum(-prev * e, axis=1) / (lengths * np.roll(lengths, 1))
    angles = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    if angles.min() < min_angle_deg or angles.max() > 180.0 - min_angle_deg:
        return False
    area = 0.5 * float(np.sum(_cross(q, np.roll(q, -1, axis=0))))
    if area < min_area:
        return False
    aspect = (lengths[0] + lengths[2]) / (lengths[1] + lengths[3])
    if not aspect_range[0] <= aspect <= aspect_range[1]:
        return False
    for a, b in ((lengths[0], lengths[2]), (lengths[1], lengths[3])):
        if max(a, b) > max_edge_ratio * min(a, b):
            return False
    cx, cy = q.mean(axis=0)
    return bool(0.0 <= cx <= fw and 0.0 <= cy <= fh)


def quad_to_box(corners: np.ndarray) -> Box:
    """The axis-aligned bounding box ``(x0, y0, x1, y1)`` of a quad (or any ``(N, 2)`` points)."""
    p = _points(corners, "corners")
    if len(p) == 0:
        raise ImageError("corners are empty")
    (x0, y0), (x1, y1) = p.min(axis=0), p.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def polygon_iou(q1: np.ndarray, q2: np.ndarray) -> float:
    """Intersection over union of two polygons (e.g. plate quads), each taken as its convex hull.

    Args:
        q1: ``(N, 2)`` vertices, N >= 3, either orientation.
        q2: ``(M, 2)`` vertices, M >= 3.

    Returns:
        IoU in ``[0, 1]``; 0.0 when both are degenerate.

    Raises:
        ImageError: fewer than 3 vertices, wrong shape or non-finite values.
    """
    hulls, areas = [], []
    for name, q in (("q1", q1), ("q2", q2)):
        p = _points(q, name)
        if len(p) < 3:
            raise ImageError(f"{name} needs at least 3 vertices, got {len(p)}")
        hull = cv2.convexHull(p.astype(np.float32))
        hulls.append(hull)
        areas.append(float(cv2.contourArea(hull)))
    if min(areas) <= 0.0:
        return 0.0
    inter, _ = cv2.intersectConvexConvex(hulls[0], hulls[1])
    inter = min(max(float(inter), 0.0), min(areas))
    return inter / (areas[0] + areas[1] - inter)


def rectify(
    frame: np.ndarray,
    corners: np.ndarray | None,
    box: Sequence[float] | None,
    out_w: int,
    out_h: int,
    method: RectifyMethod = "perspective",
    margin: Sequence[float] = DEFAULT_MARGIN,
    border_value: int | Sequence[int] = 128,
    ransac_thresh: float | None = None,
) -> np.ndarray:
    """Turn a detection into a recogniser-sized crop, falling back to a box crop when the corners are unusable.

    ``"perspective"`` warps the corners' homography when :func:`quad_is_plausible`; ``"affine"`` fits an affine
    to the corners with RANSAC (:func:`warp_affine_from_corners`) and warps it when the fitted parallelogram is
    plausible (so one wild corner is tolerated); ``"crop"`` always crops the box. Missing, non-finite or
    implausible corners fall back to cropping ``box`` (or, without one, the corners' bounding box).

    Args:
        frame: grayscale, BGR or BGRA uint8 image.
        corners: ``(4, 2)`` corners in TL, TR, BR, BL order, or ``None``.
        box: ``(x0, y0, x1, y1)`` of the detection, or ``None``.
        out_w: output width (>= 2).
        out_h: output height (>= 2).
        method: ``"perspective"``, ``"affine"`` or ``"crop"``.
        margin: ``(mx, my)`` fractions of the plate's (or box's) width / height added on each side.
        border_value: fill for the parts outside the frame.
        ransac_thresh: inlier threshold in frame pixels for ``"affine"`` (default: 10% of the quad's height).

    Returns:
        BGR uint8 ``(out_h, out_w, 3)``.

    Raises:
        ImageError: bad frame, size, margin, box or method, corners not ``(4, 2)``, or neither usable corners nor
            a box.
    """
    if method not in _METHODS:
        raise ImageError(f"unknown rectify method {method!r}; expected one of {', '.join(_METHODS)}")
    img = _image(frame)
    out_w, out_h = _out_size(out_w, out_h)
    mx, my = _margin(margin)
    fill = _border(border_value)
    q = None
    if corners is not None:
        q = _points(corners, "corners", 4, finite=False)
        if not np.all(np.isfinite(q)):
            q = None  # a model's NaN corners: fall back like any implausible quad
    if q is not None and method == "perspective" and quad_is_plausible(q, img.shape):
        try:
            return warp_quad(img, q, out_w, out_h, (mx, my), fill)
        except ImageError:  # the margin reaches the quad's vanishing line (extreme perspective): fall back
            pass
    if q is not None and method == "affine":
        thresh = _default_thresh(q) if ransac_thresh is None else _thresh(ransac_thresh)
        try:
            a = np.asarray(fit_affine_ransac(_UNIT, q, thresh).matrix)
        except ImageError:  # all four corners collinear: no affine transform
            a = None
        if a is not None and quad_is_plausible(_UNIT @ a[:, :2].T + a[:, 2], img.shape):
            return _warp_affine(img, a, out_w, out_h, mx, my, fill)
    if box is None:
        if q is None:
            raise ImageError("no usable corners and no box to crop instead")
        box = quad_to_box(q)
    return crop_box(img, box, out_w, out_h, (mx, my), fill)
