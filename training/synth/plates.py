"""Synthetic plate renderer: text from the region's formats, drawn with real fonts, then degraded like a camera.

Each sample is a plate drawn flat (colours, border, band, clutter text), warped in perspective onto a random
background, cropped with detector-like jitter (tight, loose, cut) and degraded (blur, motion blur, noise,
brightness/contrast, low resolution, JPEG).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from sdk.dataset import write_labels
from sdk.formats import CN_LETTERS, DIGITS, LETTERS, PROVINCES, PlateFormat, formats_for

FONT_DIR = Path(__file__).resolve().parent / "fonts"
CJK_FONT = "wqy-microhei-plates.ttf"
LATIN_FONTS = (
    "OSP-DIN.ttf",
    "DejaVuSansCondensed-Bold.ttf",
    "LiberationSansNarrow-Bold.ttf",
    "LiberationMono-Bold.ttf",
)
# Plate size (w, h) in render pixels per region family.
PLATE_SIZE = {"cn": (440, 140), "us": (360, 180), "br": (400, 130), "eu": (520, 112)}
# Output crop size (w, h) ranges per region: roughly what a detector hands the recogniser.
OUT_WIDTH = {"cn": (94, 160), "us": (90, 320), "br": (120, 230), "eu": (110, 260)}
# How often the main text is set in fixed-pitch cells, as plate fonts do. Only cn uses it: on latin plates it
# did not help synthetic-only training read real crops (configs/experiments/synth_latin_*.yaml).
FIXED_PITCH = {"cn": 0.8, "us": 0.0, "br": 0.0, "eu": 0.0}
# How often a cn plate is set as the GB standard prints it (``_draw_cn_cells``: tall narrow glyphs filling equal
# cells, 1 as a plain bar, a wide gap with a dot after the second character) rather than by ``_draw_text_fit``.
CN_CELLS = 0.8
# Stroke weight of those GB-cell glyphs as a fraction of their height, drawn uniformly from this range by thinning
# the (bold) bundled fonts; None keeps the fonts' own 0.14-0.23. The GB plate font's stroke is 10 mm on a 90 mm
# glyph (0.11), and the CCPD crops' strokes look that thin next to the bold rendered ones.
CN_STROKE: tuple[float, float] | None = None
# How often a region's crops get the washed-out, low-contrast look of the real br crops (degrade's ``dull``).
DULL = {"cn": 0.0, "us": 0.0, "br": 0.6, "eu": 0.0}
# The lowest resolution degrade() drops a crop to before scaling it back up, as a fraction of the output size.
MIN_SCALE = 0.35
# The old Brazilian plates' font (Mandatory) draws W as an upside-down M: straight outer stems, the middle rising
# to a point. None of the bundled fonts has that W (theirs is wide and slanted, and the model reads the real one as
# M or U), so it is drawn flipped from the font's M on this share of the br_old plates.
FLIPPED_M_W = {"br_old": 0.8}
# How often each format of a region is drawn.
FORMAT_WEIGHTS = {"cn_blue": 0.8, "cn_green": 0.2, "br_old": 0.75, "br_mercosul": 0.25}
WORDS = (
    "STATE",
    "CALIFORNIA",
    "TEXAS",
    "FLORIDA",
    "NEW YORK",
    "OHIO",
    "VIRGINIA",
    "IDAHO",
    "LOUISIANA",
    "DMV",
    "SUNSHINE STATE",
    "LAND OF LINCOLN",
    "GARDEN STATE",
    "LIVE FREE OR DIE",
    "BRASIL",
    "SP SAO PAULO",
    "PR CURITIBA",
)


@dataclass(frozen=True)
class SynthPlate:
    image: np.ndarray  # HxWx3 uint8, RGB
    text: str
    region: str
    format: str


def _chance(rng: random.Random, p: float) -> bool:
    """True with probability ``p``; draws nothing when ``p`` is 0, so a region without the option renders as before."""
    return p > 0 and rng.random() < p


@cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / name), size)


def random_text(fmt: PlateFormat, rng: random.Random) -> tuple[str, str]:
    """A random (text, layout) of ``fmt``: layout slots filled, then rejected until the regex matches."""
    letters = CN_LETTERS if fmt.region == "cn" else LETTERS
    for _ in range(1000):
        layout = rng.choice(fmt.layouts)
        pools = {"P": PROVINCES, "L": letters, "D": DIGITS}
        text = "".join(
            rng.choice(pools[c]) if c in pools else rng.choice(letters if rng.random() < 0.3 else DIGITS)
            for c in layout
            if c in "PLDA"
        )
        if fmt.matches(text):
            return text, layout
    raise RuntimeError(f"format {fmt.name}: layouts never match its regex")


def _pick_format(region: str, rng: random.Random) -> PlateFormat:
    fmts = formats_for(region)
    return rng.choices(fmts, weights=[FORMAT_WEIGHTS.get(f.name, 1.0) for f in fmts])[0]


def _jitter(color: tuple[int, int, int], rng: random.Random, amount: int = 25) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.randint(-amount, amount), 0, 255)) for c in color)  # type: ignore[return-value]


def _draw_text_fit(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    text: str,
    font_name: str,
    fill: tuple[int, int, int],
    rng: random.Random,
    cjk_first: bool = False,
    pitch: bool = False,
    flipped_m_w: bool = False,
) -> None:
    """Draw ``text`` spread over ``box`` (x0, y0, x1, y1), each glyph scaled to the box height.

    With ``pitch`` the letters and digits sit in equal cells as on plates printed in a fixed-pitch plate font: a
    glyph wider than the cell (the median glyph width) is squeezed to it, a narrower one is centred in it. With
    ``flipped_m_w`` each W is drawn as the font's M upside down.
    """
    x0, y0, x1, y1 = box
    h = y1 - y0
    glyphs = []
    for i, ch in enumerate(text):
        name = CJK_FONT if (cjk_first and i == 0) else font_name
        font = _font(name, h)
        drawn = "M" if flipped_m_w and ch == "W" else ch
        bbox = font.getbbox(drawn) if ch.strip() else (0, 0, h // 3, h)
        glyphs.append((ch, font, bbox))
    natural = [max(1, b[2] - b[0]) for _, _, b in glyphs]
    cell = int(np.median([w for (ch, _, _), w in zip(glyphs, natural, strict=True) if ch.isalnum()] or [1]))
    widths = [cell if pitch and ch.isalnum() else w for (ch, _, _), w in zip(glyphs, natural, strict=True)]
    gap = rng.uniform(0.05, 0.2) * h
    total = sum(widths) + gap * (len(text) - 1)
    scale_x = min(1.0, (x1 - x0) / total)
    layer = Image.new("L", (int(total) + 4, h * 2), 0)
    ldraw = ImageDraw.Draw(layer)
    x = 0.0
    for (ch, font, bbox), nat, w in zip(glyphs, natural, widths, strict=True):
        if flipped_m_w and ch == "W":  # centred on the layer's middle row, so the flip keeps it in line
            y = (h - (bbox[3] - bbox[1])) / 2 - bbox[1] + h / 2
            glyph = Image.new("L", (nat, h * 2), 0)
            ImageDraw.Draw(glyph).text((-bbox[0], y), "M", font=font, fill=255)
            glyph = glyph.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
            layer.paste(255, (int(x + max(0, w - nat) / 2), 0), glyph.resize((min(w, nat), h * 2)))
        elif ch.strip():
            y = (h - (bbox[3] - bbox[1])) / 2 - bbox[1] + h / 2
            if nat > w:  # squeezed into its cell
                glyph = Image.new("L", (nat, h * 2), 0)
                ImageDraw.Draw(glyph).text((-bbox[0], y), ch, font=font, fill=255)
                layer.paste(255, (int(x), 0), glyph.resize((w, h * 2)))
            else:  # centred in its cell
                ldraw.text((x + (w - nat) / 2 - bbox[0], y), ch, font=font, fill=255)
        x += w + gap
    layer = layer.crop((0, h // 2, layer.width, h // 2 + h))
    new_w = max(1, int(layer.width * scale_x))
    layer = layer.resize((new_w, h))
    ox = x0 + ((x1 - x0) - new_w) // 2
    draw.bitmap((ox, y0), layer, fill=fill)


def _glyph(ch: str, font_name: str, size: int, stroke: int) -> Image.Image:
    """``ch``'s ink, cropped tight, white on black (``L``), drawn at ``size`` px with ``stroke`` px of extra weight."""
    font = _font(font_name, size)
    x0, y0, x1, y1 = font.getbbox(ch, stroke_width=stroke)
    img = Image.new("L", (x1 - x0 + 2, y1 - y0 + 2), 0)
    ImageDraw.Draw(img).text((1 - x0, 1 - y0), ch, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    return img.crop(img.getbbox() or (0, 0, 1, 1))


def glyph_mask(ch: str, font_name: str, size: int, stroke: int = 0) -> np.ndarray:
    """``ch``'s ink as a tight uint8 mask (255: ink), drawn at ``size`` px with ``stroke`` px of extra weight."""
    return np.asarray(_glyph(ch, font_name, size, stroke), np.uint8)


@cache
def _stem(font_name: str) -> tuple[int, int]:
    """(stem width, cap height) of ``font_name``'s H at 160 px."""
    ink = np.asarray(_glyph("H", font_name, 160, 0)) > 127
    row = np.flatnonzero(np.diff(np.r_[0, ink[ink.shape[0] // 4].astype(int), 0]))
    return int(row[1] - row[0]), ink.shape[0]


def _thinned(glyph: Image.Image, font_name: str, ratio: float) -> Image.Image:
    """``glyph`` (drawn at 160 px) eroded so its stems are about ``ratio`` of the font's cap height wide."""
    stem, cap = _stem(font_name)
    t = round((stem - ratio * cap) / 2)
    if t <= 0:
        return glyph
    padded = Image.new("L", (glyph.width + 2 * t, glyph.height + 2 * t), 0)  # so ink at the edge erodes too
    padded.paste(glyph, (t, t))
    thin = padded.filter(ImageFilter.MinFilter(2 * t + 1))
    return thin.crop(thin.getbbox() or (0, 0, 1, 1))


def _draw_cn_cells(
    img: Image.Image, shown: str, font_name: str, fill: tuple[int, int, int], rng: random.Random
) -> None:
    """Draw a cn plate's text as the GB standard lays it out (440x140 mm plate: 45x90 mm glyph cells 12 mm apart,
    34 mm with a dot between the 2nd and 3rd character), with the glyph height drawn from what tight CCPD crops
    show (64-80 % of the plate). Each glyph fills its cell's height and is squeezed to the cell's width when wider;
    the digit 1 is often a plain bar (the font's I), as in the plate font."""
    w, h = img.size
    chars = [c for c in shown if c != "·"]
    n = len(chars)
    gh = h * rng.uniform(0.64, 0.8)
    # Widths in glyph heights: cell 0.5, gap 0.133, separator gap 0.378 (7 chars: 3.5 + 0.67 + 0.38 = 4.54 h).
    cell, gap, sep = 0.5 * gh, 0.133 * gh, 0.378 * gh
    total = n * cell + (n - 2) * gap + sep
    scale = min(1.0, 0.96 * w / total)  # 8-char green plates are squeezed to fit
    cell, gap, sep, total = cell * scale, gap * scale, sep * scale, total * scale
    x, top = (w - total) / 2 + rng.uniform(-0.01, 0.01) * w, (h - gh) / 2 + rng.uniform(-0.04, 0.04) * h
    stroke = rng.randint(0, 2)
    ratio = rng.uniform(*CN_STROKE) if CN_STROKE else None
    layer = Image.new("L", (w, h), 0)
    for i, ch in enumerate(chars):
        if i == 0:
            glyph = _glyph(ch, CJK_FONT, 160, stroke // 2)
        else:
            glyph = _glyph("I" if ch == "1" and rng.random() < 0.7 else ch, font_name, 160, 0 if ratio else stroke)
            glyph = _thinned(glyph, font_name, ratio) if ratio else glyph
        gw = min(cell, glyph.width * gh / glyph.height)
        layer.paste(255, (int(x + (cell - gw) / 2), int(top)), glyph.resize((max(1, int(gw)), max(1, int(gh)))))
        x += cell + (sep if i == 1 else gap)
        if i == 1:  # the separator dot
            r, cx, cy = 0.055 * gh, x - sep / 2, top + gh / 2
            ImageDraw.Draw(layer).ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    ImageDraw.Draw(img).bitmap((0, 0), layer, fill=fill)


def draw_flat_plate(text: str, layout: str, fmt: PlateFormat, rng: random.Random) -> Image.Image:
    """The plate as printed: background, border, optional band and clutter, the characters."""
    family = fmt.region
    w, h = PLATE_SIZE[family]
    bg, fg = rng.choice(fmt.colors)
    bg, fg = _jitter(bg, rng), _jitter(fg, rng, 15)
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    border = rng.randint(2, 6)
    d.rounded_rectangle(
        (border, border, w - border - 1, h - border - 1), radius=rng.randint(4, 14), outline=fg, width=rng.randint(1, 4)
    )
    x0, x1 = int(w * 0.05), int(w * 0.95)
    text_top, text_bot = 0.18, 0.84
    if fmt.band:  # EU / Mercosul blue band with a country code
        bw = int(w * 0.09)
        d.rectangle((border + 2, border + 2, border + 2 + bw, h - border - 3), fill=_jitter((20, 50, 160), rng, 15))
        _draw_text_fit(
            d, (border + 4, int(h * 0.62), border + bw, int(h * 0.88)), fmt.band, LATIN_FONTS[0], (240, 240, 240), rng
        )
        x0 = border + bw + int(w * 0.03)
    if family in ("us", "br") and rng.random() < 0.8:  # state / city name and slogan in small type
        top = rng.choice(WORDS)
        _draw_text_fit(
            d,
            (int(w * 0.2), int(h * 0.04), int(w * 0.8), int(h * 0.17)),
            top,
            rng.choice(LATIN_FONTS),
            _jitter(fg, rng, 60),
            rng,
        )
        if family == "us" and rng.random() < 0.6:
            _draw_text_fit(
                d,
                (int(w * 0.2), int(h * 0.85), int(w * 0.8), int(h * 0.95)),
                rng.choice(WORDS),
                rng.choice(LATIN_FONTS),
                _jitter(fg, rng, 60),
                rng,
            )
        text_top, text_bot = 0.22, 0.82
    if family == "us":
        text_top, text_bot = rng.uniform(0.2, 0.3), rng.uniform(0.72, 0.82)
    shown = "".join(c for c in fmt.display(text, layout))
    font = rng.choice(LATIN_FONTS)
    pitch = _chance(rng, FIXED_PITCH[family])
    flip = "W" in shown and _chance(rng, FLIPPED_M_W.get(fmt.name, 0.0))
    if family == "cn" and _chance(rng, CN_CELLS):
        _draw_cn_cells(img, shown, font, fg, rng)
        return img
    box = (x0, int(h * text_top), x1, int(h * text_bot))
    _draw_text_fit(d, box, shown, font, fg, rng, family == "cn", pitch, flip)
    return img


def render_flat_plate(region: str, rng: random.Random) -> SynthPlate:
    """A random plate of ``region`` as printed: flat, undegraded, ``PLATE_SIZE`` pixels, RGB."""
    fmt = _pick_format(region, rng)
    text, layout = random_text(fmt, rng)
    return SynthPlate(np.asarray(draw_flat_plate(text, layout, fmt, rng)), text, region, fmt.name)


def _background(w: int, h: int, rng: random.Random) -> np.ndarray:
    base = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.float32)
    noise = cv2.resize(np.random.default_rng(rng.getrandbits(32)).uniform(-60, 60, (h // 8 + 2, w // 8 + 2, 3)), (w, h))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def degrade(
    img: np.ndarray, rng: random.Random, out_w: int, out_h: int, min_scale: float = MIN_SCALE, dull: bool = False
) -> np.ndarray:
    """Blur, motion blur, low resolution (down to ``min_scale`` of the output), brightness/contrast, noise and JPEG,
    then resize to (out_w, out_h). ``dull``: first a washed-out, low-contrast, soft look, as on old plates seen by a
    cheap camera."""
    if dull:
        grey = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB).astype(np.float32)
        out = grey + (img.astype(np.float32) - grey) * rng.uniform(0.2, 0.7)  # desaturate
        out = out.mean() + (out - out.mean()) * rng.uniform(0.35, 0.75)  # flatten the contrast
        img = cv2.GaussianBlur(np.clip(out, 0, 255).astype(np.uint8), (5, 5), 0)
    if rng.random() < 0.4:
        k = rng.choice((3, 5))
        img = cv2.GaussianBlur(img, (k, k), 0)
    if rng.random() < 0.3:
        k = rng.randint(3, 9)
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
        img = cv2.filter2D(img, -1, cv2.warpAffine(kernel, rot, (k, k)))
    small = rng.uniform(min_scale, 1.0)
    img = cv2.resize(img, (max(8, int(out_w * small)), max(4, int(out_h * small))), interpolation=cv2.INTER_AREA)
    img = cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    alpha, beta = rng.uniform(0.5, 1.4), rng.uniform(-60, 50)
    out = img.astype(np.float32) * alpha + beta
    if rng.random() < 0.3:  # colour cast
        out *= np.array([rng.uniform(0.8, 1.2) for _ in range(3)], np.float32)
    out += np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(0, 12), out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    if rng.random() < 0.5:
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(30, 90)])
        out = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)
    return out


def render_plate(region: str, rng: random.Random, text: str | None = None) -> SynthPlate:
    """Render one synthetic plate crop of ``region`` (random text unless ``text`` is given)."""
    fmt = _pick_format(region, rng)
    if text is None:
        text, layout = random_text(fmt, rng)
    else:
        fmt = next((f for f in formats_for(region) if f.matches(text)), fmt)
        layout = next((lay for lay in fmt.layouts if sum(c in "PLDA" for c in lay) == len(text)), "A" * len(text))
    flat = np.asarray(draw_flat_plate(text, layout, fmt, rng))
    ph, pw = flat.shape[:2]
    # Place the plate on a larger canvas with a random perspective, then crop around it with jitter.
    pad_x, pad_y = int(pw * 0.35), int(ph * 0.6)
    cw, ch = pw + 2 * pad_x, ph + 2 * pad_y
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    d = 0.08
    dst = np.float32([[pad_x + rng.uniform(-d, d) * pw, pad_y + rng.uniform(-d, d) * ph * 2] for _ in range(4)])
    dst += src
    angle = np.deg2rad(rng.uniform(-6, 6))
    centre = dst.mean(axis=0)
    rotm = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    dst = (dst - centre) @ rotm.T + centre
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    canvas = _background(cw, ch, rng)
    warped = cv2.warpPerspective(flat, m, (cw, ch))
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), m, (cw, ch))
    canvas = np.where(mask[..., None] > 127, warped, canvas)
    # Detector-like crop around the plate's bounding box: tight, loose or cut.
    x_lo, y_lo = dst.min(axis=0)
    x_hi, y_hi = dst.max(axis=0)
    bw, bh = x_hi - x_lo, y_hi - y_lo
    mode = rng.random()
    j = (0.02, 0.06) if mode < 0.6 else ((-0.04, 0.0) if mode < 0.75 else (0.06, 0.2))
    left, right = (x_lo - rng.uniform(*j) * bw, x_hi + rng.uniform(*j) * bw)
    top, bot = (y_lo - rng.uniform(*j) * bh * 2, y_hi + rng.uniform(*j) * bh * 2)
    x0, x1 = int(np.clip(left, 0, cw - 2)), int(np.clip(right, 1, cw))
    y0, y1 = int(np.clip(top, 0, ch - 2)), int(np.clip(bot, 1, ch))
    crop = canvas[y0 : max(y1, y0 + 2), x0 : max(x1, x0 + 2)]
    lo, hi = OUT_WIDTH[region]
    out_w = rng.randint(lo, hi)
    out_h = max(12, int(round(out_w * crop.shape[0] / crop.shape[1])))
    min_scale = MIN_SCALE
    dull = _chance(rng, DULL[region])
    if region == "cn" and rng.random() < 0.7:  # CCPD-style: the plate's own corners (a little off) warped to 94x24
        out_w, out_h, min_scale = 94, 24, 0.6  # from plates that were larger in the frame: less resolution loss
        quad = dst + np.float32([[rng.uniform(-0.03, 0.03) * pw, rng.uniform(-0.08, 0.08) * ph] for _ in range(4)])
        rect = np.float32([[0, 0], [2 * out_w, 0], [2 * out_w, 2 * out_h], [0, 2 * out_h]])
        crop = cv2.warpPerspective(canvas, cv2.getPerspectiveTransform(quad, rect), (2 * out_w, 2 * out_h))
    return SynthPlate(degrade(crop, rng, out_w, out_h, min_scale, dull), text, region, fmt.name)


def render_dataset(out_dir: str | Path, regions: list[str], n: int, seed: int = 0) -> Path:
    """Write ``n`` plates (spread evenly over ``regions``) as JPEGs plus ``labels.csv`` into ``out_dir``."""
    out = Path(out_dir)
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        region = regions[i % len(regions)]
        plate = render_plate(region, rng)
        rel = Path(region) / f"{i:07d}.jpg"
        (out / region).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / rel), cv2.cvtColor(plate.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        rows.append((rel.as_posix(), plate.text, region, f"synth {plate.format}"))
    return write_labels(out, rows)
