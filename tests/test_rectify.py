"""sdk.rectify on synthetic quadrilaterals with known answers.

A flat pattern of coloured blocks is warped into a frame with a known homography (built here with OpenCV's own
getPerspectiveTransform, in the module's edge-coordinate convention), and each rectifier must bring it back.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from sdk.detector import iou_matrix
from sdk.errors import ImageError
from sdk.rectify import (
    AffineFit,
    crop_box,
    expand_quad,
    fit_affine_ransac,
    order_corners,
    polygon_iou,
    quad_is_plausible,
    quad_to_box,
    rectify,
    warp_affine_from_corners,
    warp_quad,
)

PW, PH = 160, 48  # flat plate pattern: 4 x 2 blocks of 40 x 24
COLOURS = [(230, 30, 30), (30, 230, 30), (30, 30, 230), (230, 230, 30), (230, 30, 230), (30, 230, 230), (0, 0, 0)]
COLOURS += [(255, 255, 255)]
BG = (60, 110, 160)  # frame background, distinct from every block and from the 128 border


def pattern() -> np.ndarray:
    img = np.zeros((PH, PW, 3), np.uint8)
    for i, c in enumerate(COLOURS):
        r, k = divmod(i, 4)
        img[r * 24 : (r + 1) * 24, k * 40 : (k + 1) * 40] = c
    return img


def edge_to_centre(h: np.ndarray) -> np.ndarray:
    """A map between edge coordinates (pixel i covers [i, i+1)) in OpenCV's pixel-centre coordinates."""
    t = np.array([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1.0]])
    return np.linalg.inv(t) @ h @ t


def plate_rect(w: float = PW, h: float = PH) -> np.ndarray:
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)


def render(corners: np.ndarray, size: tuple[int, int] = (640, 360)) -> np.ndarray:
    """The pattern warped onto ``corners`` (TL, TR, BR, BL) of a frame ``size`` (w, h) filled with BG."""
    g = cv2.getPerspectiveTransform(plate_rect(), np.asarray(corners, np.float32))
    return cv2.warpPerspective(
        pattern(), edge_to_centre(g), size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=BG
    )


def rotated(cx: float, cy: float, w: float, h: float, deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    base = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    return base @ r.T + [cx, cy]


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def assert_blocks(out: np.ndarray, inset: int = 5, tol: float = 12.0) -> None:
    """Each block's interior (away from edges) has the block's colour."""
    assert out.shape == (PH, PW, 3) and out.dtype == np.uint8
    for i, c in enumerate(COLOURS):
        r, k = divmod(i, 4)
        cell = out[r * 24 + inset : (r + 1) * 24 - inset, k * 40 + inset : (k + 1) * 40 - inset]
        got = np.median(cell.reshape(-1, 3), axis=0)
        assert np.all(np.abs(got - c) <= tol), f"block {i}: {got} != {c}"


PERSPECTIVE = np.array([[180.0, 120.0], [470.0, 95.0], [455.0, 215.0], [190.0, 225.0]])  # rotated and skewed


# ------------------------------------------------------------------------------------------------------- warp_quad


@pytest.mark.parametrize(
    "corners",
    [
        rotated(320, 180, 2 * PW, 2 * PH, 0),
        rotated(320, 180, 2.5 * PW, 2.5 * PH, 17),
        rotated(300, 170, 1.5 * PW, 1.5 * PH, -35),
        PERSPECTIVE,
    ],
    ids=["straight", "rot17", "rot-35", "perspective"],
)
def test_warp_quad_recovers_pattern(corners):
    frame = render(corners)
    out = warp_quad(frame, corners, PW, PH)
    assert_blocks(out)
    assert mad(out, pattern()) < 6.0


def test_warp_quad_wrong_corners_do_not_recover():
    # the comparison can fail: corners shifted by a third of the plate's height give a visibly wrong crop
    frame = render(PERSPECTIVE)
    out = warp_quad(frame, PERSPECTIVE + [0, 40], PW, PH)
    assert mad(out, pattern()) > 20.0


def test_warp_quad_margin_places_plate_inside_background():
    corners = rotated(320, 180, 2 * PW, 2 * PH, 12)
    frame = render(corners)
    out = warp_quad(frame, corners, 192, 72, margin=(0.1, 0.25))  # plate at x 16..176, y 12..60
    assert mad(out[12:60, 16:176], pattern()) < 8.0
    for band in (out[:9, :], out[63:, :], out[:, :13], out[:, 179:]):
        assert np.all(np.abs(np.median(band.reshape(-1, 3), axis=0) - BG) <= 2)


def test_warp_quad_fills_outside_frame_with_border_value():
    # plate scaled 2x with its left 50 px (25 pattern columns) beyond the frame's left edge
    corners = np.array([[-50.0, 100], [270, 100], [270, 196], [-50, 196]])
    frame = render(corners)
    out = warp_quad(frame, corners, PW, PH)
    assert np.all(out[:, :23] == 128)
    assert mad(out[:, 27:], pattern()[:, 27:]) < 4.0
    out0 = warp_quad(frame, corners, PW, PH, border_value=(0, 10, 20))
    assert np.all(out0[:, :23] == (0, 10, 20))


def test_warp_quad_gray_and_bgra_frames():
    frame = render(PERSPECTIVE)
    bgra = cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA)
    np.testing.assert_array_equal(warp_quad(bgra, PERSPECTIVE, PW, PH), warp_quad(frame, PERSPECTIVE, PW, PH))
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    out = warp_quad(gray, PERSPECTIVE, PW, PH)
    assert out.shape == (PH, PW, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
    expected = cv2.cvtColor(pattern(), cv2.COLOR_BGR2GRAY)
    assert mad(out[..., 0], expected) < 6.0


def test_warp_quad_large_shrink_does_not_alias():
    # a 1-px checkerboard shrunk 12.5x must average to flat gray; a plain bilinear warp samples it into stripes
    cb = ((np.indices((300, 1200)).sum(0) % 2) * 255).astype(np.uint8)
    frame = np.full((400, 1400), 128, np.uint8)
    frame[50:350, 100:1300] = cb
    corners = np.array([[100.0, 50], [1300, 50], [1300, 350], [100, 350]])
    out = warp_quad(frame, corners, 96, 24)
    assert abs(out.mean() - 127.5) < 3 and out.std() < 3
    m = cv2.getPerspectiveTransform(corners.astype(np.float32), plate_rect(96, 24))
    naive = cv2.warpPerspective(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), edge_to_centre(m), (96, 24))
    assert naive.std() > 30


def test_pixel_convention_on_upscale():
    # pixel x covers [x, x + 1): output pixel j of a 4x upscale of [20, 30) is centred at x = 20 + (j + 0.5) / 4,
    # i.e. at OpenCV pixel-centre coordinate 19.625 + j / 4; a ramp of 8 levels per pixel shows a 1/4-px slip
    xx = np.tile(np.arange(64, dtype=np.float64) * 8, (40, 1))
    frame = np.clip(xx, 0, 255).astype(np.uint8)
    expected = 8 * (19.625 + np.arange(40) / 4)
    box = (20, 10, 30, 20)
    quad = np.array([[20.0, 10], [30, 10], [30, 20], [20, 20]])
    for out in (
        crop_box(frame, box, 40, 40),
        warp_quad(frame, quad, 40, 40),
        warp_affine_from_corners(frame, quad, 40, 40),
        rectify(frame, quad, box, 40, 40, margin=(0, 0)),
    ):
        assert np.abs(out[20, :, 0] - expected).max() <= 1.0


# --------------------------------------------------------------------------------------------------- order_corners


@pytest.mark.parametrize("deg", [-44, -30, -10, 0, 10, 30, 44])
def test_order_corners_any_permutation(deg):
    wide = rotated(200, 100, 180, 50, deg)
    tall = rotated(200, 100, 50, 80, deg)
    a = np.deg2rad(deg)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    persp = np.array([[-90.0, -25], [90, -15], [90, 15], [-90, 25]]) @ r.T + [200, 100]  # far right side shorter
    for quad in (wide, tall, persp):
        for perm in itertools.permutations(range(4)):
            np.testing.assert_allclose(order_corners(quad[list(perm)]), quad)


# ----------------------------------------------------------------------------------------------------- expand_quad


def test_expand_quad_rotated_rectangle():
    q = rotated(300, 200, 200, 50, 30)
    got = expand_quad(q, 0.1, 0.2)
    np.testing.assert_allclose(got, rotated(300, 200, 240, 70, 30), atol=1e-9)
    np.testing.assert_allclose(expand_quad(q, 0.0, 0.0), q)
    np.testing.assert_allclose(expand_quad(q, -0.25, 0.0), rotated(300, 200, 100, 50, 30), atol=1e-9)


def test_expand_quad_perspective_stays_on_edge_lines_and_inverts():
    q = PERSPECTIVE
    wide = expand_quad(q, 0.2, 0.0)  # grows along the top and bottom edge lines only
    for i, j in ((0, 1), (3, 2)):
        d = q[j] - q[i]
        for p in (wide[i], wide[j]):
            v = p - q[i]
            assert abs(d[0] * v[1] - d[1] * v[0]) / np.linalg.norm(d) < 1e-9  # on the line through q[i], q[j]
        assert np.linalg.norm(wide[j] - wide[i]) > 1.3 * np.linalg.norm(d)
    m = 0.15
    grown = expand_quad(q, m, m)
    np.testing.assert_allclose(expand_quad(grown, -m / (1 + 2 * m), -m / (1 + 2 * m)), q, atol=1e-7)

    # the plate's centre (diagonals' crossing) is a fixed point of a symmetric expansion
    def centre(p):
        a = np.array([p[2] - p[0], p[1] - p[3]]).T
        t = np.linalg.solve(a, p[1] - p[0])
        return p[0] + t[0] * (p[2] - p[0])

    np.testing.assert_allclose(centre(grown), centre(q), atol=1e-7)


def test_expand_quad_rejects_degenerate_and_bad_margin():
    with pytest.raises(ImageError, match="degenerate"):
        expand_quad(np.array([[0.0, 0], [10, 0], [20, 0], [5, 5]]), 0.1, 0.1)
    with pytest.raises(ImageError, match="margin"):
        expand_quad(PERSPECTIVE, -0.5, 0.1)
    with pytest.raises(ImageError, match="vanishing"):
        expand_quad(np.array([[0.0, 0], [100, 0], [60, 30], [40, 30]]), 0.0, 1.0)


# ----------------------------------------------------------------------------------------------- fit_affine_ransac

UNIT = np.array([[0.0, 0], [1, 0], [1, 1], [0, 1]])
A_TRUE = np.array([[260.0 * np.cos(0.3), -70.0 * np.sin(0.3), 150.0], [260.0 * np.sin(0.3), 70.0 * np.cos(0.3), 90.0]])


def apply(a: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ a[:, :2].T + a[:, 2]


def test_affine_ransac_exact_on_clean_points():
    fit = fit_affine_ransac(UNIT, apply(A_TRUE, UNIT), thresh_px=2.0)
    assert isinstance(fit, AffineFit)
    np.testing.assert_allclose(fit.matrix, A_TRUE, atol=1e-9)
    assert fit.inliers == (True,) * 4 and fit.n_inliers == 4 and fit.rms < 1e-9
    assert not fit.matrix.flags.writeable
    sheared = np.array([[1.3, 0.4, -7.0], [-0.2, 0.8, 11.0]])  # any affine, exactly, from 4 clean points
    src = np.array([[3.0, 1], [40, 5], [37, 20], [1, 18]])
    np.testing.assert_allclose(fit_affine_ransac(src, apply(sheared, src), 0.5).matrix, sheared, atol=1e-9)


def test_affine_ransac_averages_small_noise():
    noise = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, 1.0]]) * 0.8
    fit = fit_affine_ransac(UNIT, apply(A_TRUE, UNIT) + noise, thresh_px=5.0)
    assert fit.n_inliers == 4
    lsq = np.linalg.lstsq(np.c_[UNIT, np.ones(4)], apply(A_TRUE, UNIT) + noise, rcond=None)[0].T
    np.testing.assert_allclose(fit.matrix, lsq, atol=1e-9)


@pytest.mark.parametrize("bad", range(4))
@pytest.mark.parametrize("shift", [(45.0, 30.0), (-35.0, 40.0), (30.0, -50.0)])
def test_affine_ransac_ignores_one_outlier_corner(bad, shift):
    dst = apply(A_TRUE, UNIT)
    dst[bad] += shift
    fit = fit_affine_ransac(UNIT, dst, thresh_px=3.0)
    np.testing.assert_allclose(fit.matrix, A_TRUE, atol=1e-6)
    assert fit.inliers == tuple(i != bad for i in range(4))


def test_affine_ransac_more_points_two_outliers():
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 100, (8, 2))
    a = np.array([[0.9, -0.3, 20.0], [0.25, 1.1, -5.0]])
    dst = apply(a, src) + rng.normal(0, 0.2, (8, 2))
    dst[[1, 5]] += [[40, -25], [-30, 60]]
    fit = fit_affine_ransac(src, dst, thresh_px=2.0)
    assert fit.inliers == tuple(i not in (1, 5) for i in range(8))
    assert np.abs(apply(fit.matrix, src) - apply(a, src)).max() < 0.5  # noise 0.2 px, averaged over 6 inliers


def test_affine_ransac_bad_input():
    with pytest.raises(ImageError, match="collinear"):
        fit_affine_ransac([[0, 0], [1, 1], [2, 2], [3, 3]], UNIT, 1.0)
    with pytest.raises(ImageError, match="shape"):
        fit_affine_ransac(UNIT, UNIT[:3], 1.0)
    with pytest.raises(ImageError, match="3 to"):
        fit_affine_ransac(UNIT[:2], UNIT[:2], 1.0)
    with pytest.raises(ImageError, match="threshold"):
        fit_affine_ransac(UNIT, UNIT, 0.0)


def test_warp_affine_survives_outlier_corner_where_homography_fails():
    corners = rotated(320, 180, 2 * PW, 2 * PH, 10)  # an affine (rotated, scaled) view of the plate
    frame = render(corners)
    noisy = corners.copy()
    noisy[2] += [40, 30]  # the bottom-right corner predicted badly
    affine = warp_affine_from_corners(frame, noisy, PW, PH)
    assert_blocks(affine)
    assert mad(affine, pattern()) < 6.0
    assert mad(warp_quad(frame, noisy, PW, PH), pattern()) > 4 * mad(affine, pattern())
    # clean corners: the affine warp matches the homography warp
    assert mad(warp_affine_from_corners(frame, corners, PW, PH), warp_quad(frame, corners, PW, PH)) < 2.0


def test_warp_affine_margin_and_border():
    corners = np.array([[-50.0, 100], [270, 100], [270, 196], [-50, 196]])
    frame = render(corners)
    out = warp_affine_from_corners(frame, corners, 192, 72, margin=(0.1, 0.25))
    assert mad(out[12:60, 16:176][:, 27:], pattern()[:, 27:]) < 5.0
    assert np.all(out[14:58, :40] == 128)  # left of the frame's edge (x < 0 is output x < 16 + 25)


# ------------------------------------------------------------------------------------------------------- crop_box


def ramp_frame() -> np.ndarray:
    yy, xx = np.mgrid[0:120, 0:200]
    return np.dstack([xx % 256, yy * 2, (xx + yy) % 256]).astype(np.uint8)


def test_crop_box_integer_box_is_a_slice():
    frame = ramp_frame()
    np.testing.assert_array_equal(crop_box(frame, (30, 20, 130, 60), 100, 40), frame[20:60, 30:130])


def test_crop_box_pads_outside_with_border_value():
    frame = ramp_frame()
    out = crop_box(frame, (-10, -5, 40, 25), 50, 30)
    assert np.all(out[:5] == 128) and np.all(out[:, :10] == 128)
    np.testing.assert_array_equal(out[5:, 10:], frame[0:25, 0:40])
    out = crop_box(frame, (180, 100, 220, 130), 40, 30, border_value=7)
    assert np.all(out[20:] == 7) and np.all(out[:, 20:] == 7)
    np.testing.assert_array_equal(out[:20, :20], frame[100:120, 180:200])


def test_crop_box_margin_and_shrink():
    frame = ramp_frame()
    # margin 0.25 of a 40 x 20 box adds 10 px left/right and 5 px above/below
    np.testing.assert_array_equal(crop_box(frame, (50, 30, 90, 50), 60, 30, margin=(0.25, 0.25)), frame[25:55, 40:100])
    # 4x shrink: each output pixel is the mean of a 4 x 4 block
    out = crop_box(frame, (0, 0, 160, 80), 40, 20)
    blocks = frame[:80, :160].reshape(20, 4, 40, 4, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(out - blocks).max() <= 1.0


def test_crop_box_gray_frame():
    gray = np.arange(100 * 80, dtype=np.uint32).reshape(80, 100).astype(np.uint8)
    out = crop_box(gray, (10, 10, 30, 20), 20, 10)
    assert out.shape == (10, 20, 3)
    for ch in range(3):
        np.testing.assert_array_equal(out[..., ch], gray[10:20, 10:30])


# -------------------------------------------------------------------------------------------- plausibility, rectify


def test_quad_is_plausible():
    shape = (360, 640, 3)
    assert quad_is_plausible(PERSPECTIVE, shape)
    assert quad_is_plausible(rotated(320, 180, 200, 50, 40), shape)
    assert quad_is_plausible(rotated(320, 180, 200, 50, 90), shape[:2])  # rotated plate, corners still TL..BL
    assert not quad_is_plausible(PERSPECTIVE[[0, 2, 1, 3]], shape)  # self-intersecting (bow-tie)
    assert not quad_is_plausible(PERSPECTIVE[::-1], shape)  # counter-clockwise: mirrored order
    assert not quad_is_plausible(np.array([[0.0, 0], [100, 0], [200, 0.5], [50, 0.2]]), shape)  # flat
    assert not quad_is_plausible(rotated(320, 180, 3, 3, 0), shape)  # tiny
    assert not quad_is_plausible(rotated(320, 180, 400, 20, 0), shape)  # 20:1
    assert not quad_is_plausible(rotated(320, 180, 20, 100, 0), shape)  # 1:5
    assert not quad_is_plausible(np.array([[100.0, 100], [300, 100], [220, 200], [180, 200]]), shape)  # 5:1 edges
    assert not quad_is_plausible(np.array([[100.0, 100], [300, 100], [500, 150], [300, 150]]), shape)  # 14 degrees
    assert not quad_is_plausible(rotated(700, 180, 200, 50, 0), shape)  # centre outside the frame
    assert not quad_is_plausible(np.array([[np.nan, 0], [1, 0], [1, 1], [0, 1]]), shape)
    concave = np.array([[100.0, 100], [300, 100], [200, 120], [100, 160]])
    assert not quad_is_plausible(concave, shape)
    dart = np.array([[305.0, -2], [343, 81], [513, 158], [255, 234]])  # reflex angle at TR; other checks pass
    assert not quad_is_plausible(dart, shape)
    with pytest.raises(ImageError, match="shape"):
        quad_is_plausible(PERSPECTIVE[:3], shape)


def test_rectify_dispatch():
    corners = rotated(320, 180, 2 * PW, 2 * PH, 12)
    frame = render(corners)
    box = quad_to_box(corners)
    m = (0.06, 0.1)
    np.testing.assert_array_equal(rectify(frame, corners, box, 120, 32), warp_quad(frame, corners, 120, 32, m))
    crop = crop_box(frame, box, 120, 32, m)
    np.testing.assert_array_equal(rectify(frame, None, box, 120, 32), crop)
    np.testing.assert_array_equal(rectify(frame, corners[[0, 2, 1, 3]], box, 120, 32), crop)  # implausible
    np.testing.assert_array_equal(rectify(frame, corners, box, 120, 32, method="crop"), crop)
    np.testing.assert_array_equal(rectify(frame, np.full((4, 2), np.nan), box, 120, 32), crop)
    np.testing.assert_array_equal(rectify(frame, corners[[0, 2, 1, 3]], None, 120, 32), crop)  # box from corners
    assert not np.array_equal(crop, warp_quad(frame, corners, 120, 32, m))


def test_rectify_affine_tolerates_a_wild_corner():
    corners = rotated(320, 180, 2 * PW, 2 * PH, -8)
    frame = render(corners)
    noisy = corners.copy()
    noisy[1] += [-150, 60]  # top-right thrown inside the plate: the quad is concave, not plausible
    assert not quad_is_plausible(noisy, frame.shape)
    out = rectify(frame, noisy, None, PW, PH, method="affine", margin=(0, 0))
    assert_blocks(out)
    persp = rectify(frame, noisy, None, PW, PH, margin=(0, 0))  # falls back to the bounding-box crop
    assert mad(persp, pattern()) > 20


def test_rectify_errors():
    frame = render(PERSPECTIVE)
    with pytest.raises(ImageError, match="method"):
        rectify(frame, PERSPECTIVE, None, 94, 24, method="homography")
    with pytest.raises(ImageError, match="no usable corners"):
        rectify(frame, None, None, 94, 24)
    with pytest.raises(ImageError, match="no usable corners"):
        rectify(frame, np.full((4, 2), np.inf), None, 94, 24)
    with pytest.raises(ImageError, match="shape"):
        rectify(frame, np.zeros((3, 2)), (0, 0, 10, 10), 94, 24)
    with pytest.raises(ImageError, match="threshold"):
        rectify(frame, PERSPECTIVE, None, 94, 24, method="affine", ransac_thresh=-1)


# ------------------------------------------------------------------------------------------------------ boxes, IoU


def test_quad_to_box():
    assert quad_to_box(PERSPECTIVE) == (180.0, 95.0, 470.0, 225.0)
    x0, y0, x1, y1 = quad_to_box(rotated(0, 0, 2, 2, 45))
    np.testing.assert_allclose([x0, y0, x1, y1], [-np.sqrt(2), -np.sqrt(2), np.sqrt(2), np.sqrt(2)])


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ((0, 0, 10, 10), (5, 5, 15, 15), 25 / 175),
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (2, 2, 4, 4), 4 / 100),
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # touching
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
        ((0, 0, 4, 2), (2, -1, 6, 1), 2 / 14),
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),
    ],
)
def test_iou_matrix_of_two_boxes(a, b, iou):
    assert iou_matrix([a], [b])[0, 0] == pytest.approx(iou)
    assert iou_matrix([b], [a])[0, 0] == pytest.approx(iou)


def test_polygon_iou():
    sq = np.array([[-1.0, -1], [1, -1], [1, 1], [-1, 1]])
    diamond = np.array([[0.0, -1], [1, 0], [0, 1], [-1, 0]])
    assert polygon_iou(sq, diamond) == pytest.approx(0.5)  # diamond (area 2) inside the square (area 4)
    assert polygon_iou(sq, sq[::-1]) == pytest.approx(1.0)  # orientation does not matter
    a, b = np.array([[0.0, 0], [10, 0], [10, 10], [0, 10]]), np.array([[5.0, 5], [15, 5], [15, 15], [5, 15]])
    assert polygon_iou(a, b) == pytest.approx(iou_matrix([(0, 0, 10, 10)], [(5, 5, 15, 15)])[0, 0], rel=1e-5)
    assert polygon_iou(a, b + 20) == 0.0
    # a square rotated 45 degrees about the centre of an equal square: overlap is a regular octagon
    rot = rotated(0, 0, 2, 2, 45)
    octagon = 8 * (np.sqrt(2) - 1)  # area of the octagon inside a 2 x 2 square
    assert polygon_iou(sq, rot) == pytest.approx(octagon / (8 - octagon), rel=1e-5)
    with pytest.raises(ImageError):
        polygon_iou(sq[:2], sq)


# ---------------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("corners", "out_w", "out_h", "match"),
    [
        (np.zeros((3, 2)), 94, 24, "shape"),
        (np.zeros((4, 3)), 94, 24, "shape"),
        ([[0, 0], [1, "a"], [1, 1], [0, 1]], 94, 24, "numbers"),
        (np.array([[0, 0], [10, np.nan], [10, 5], [0, 5]]), 94, 24, "non-finite"),
        (PERSPECTIVE, 1, 24, "output size"),
        (PERSPECTIVE, 94, 0, "output size"),
        (PERSPECTIVE, 94.0, 24, "output size"),
    ],
)
def test_bad_input_raises(corners, out_w, out_h, match):
    frame = render(PERSPECTIVE)
    for fn in (warp_quad, warp_affine_from_corners):
        with pytest.raises(ImageError, match=match):
            fn(frame, corners, out_w, out_h)


def test_bad_frame_box_margin_border():
    frame = render(PERSPECTIVE)
    with pytest.raises(ImageError):
        warp_quad(np.zeros((0, 0, 3), np.uint8), PERSPECTIVE, 94, 24)
    with pytest.raises(ImageError, match="x0 < x1"):
        crop_box(frame, (10, 10, 5, 20), 94, 24)
    with pytest.raises(ImageError, match="4 finite"):
        crop_box(frame, (10, 10, 20), 94, 24)
    with pytest.raises(ImageError, match="margin"):
        warp_quad(frame, PERSPECTIVE, 94, 24, margin=(0.1,))
    with pytest.raises(ImageError, match="border_value"):
        crop_box(frame, (0, 0, 10, 10), 94, 24, border_value=300)
    with pytest.raises(ImageError):
        order_corners(np.zeros((5, 2)))
