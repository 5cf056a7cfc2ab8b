"""Real cn crops with their province character swapped for another province's: against the province prior.

The real cn train crops are 95 % 皖 (CCPD is from Anhui), so a model fine-tuned on them reads most other
provinces' plates as 皖 with the other six characters right. Each crop written here is a real crop whose first
character was replaced, the rest of the plate (its light, blur, letters and digits) untouched, by either

- the province glyph of another real crop (spliced at the gap after the first character, as
  :mod:`training.data.splice` does, when a real crop of the drawn province exists), or
- the drawn province's glyph rendered with the synthesizer's CJK font, in the crop's own text and plate colours,
  in the box of the glyph it replaces (every province, also the ones no real crop shows).

Provinces are drawn uniformly, so every province's glyph is seen about as often. The cut after the first character
is placed by :func:`province_cut` from a recogniser bundle's read: a crop is used when the bundle reads its length
and its characters after the first right (the province itself may be misread: those are the crops this is for).

    python -m training.data.province_swap ../shared/data/crops runs/swap_cn --bundle cn --split fit -n 12000
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from sdk.dataset import SPLITS, Split, read_labels, write_labels
from sdk.formats import PROVINCES, match_format
from sdk.recognizer import Recognizer
from training.data.glyph_flip import read_steps, text_band
from training.data.splice import Aligned, splice
from training.synth.plates import CJK_FONT, glyph_mask

# Share of swaps that take a real donor's glyph when one of the drawn province exists (else a rendered glyph).
REAL_DONOR = 0.5


def text_ink(img: np.ndarray) -> tuple[int, int, np.ndarray]:
    """The text band's rows (y0, y1) and its ink mask: the minority side of the band's Otsu split (white text on
    blue, black on yellow or white)."""
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    y0, y1 = text_band(gray)
    _, ink = cv2.threshold(gray[y0:y1], 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = ink > 0
    return y0, y1, ~ink if ink.mean() > 0.5 else ink


def province_cut(img: np.ndarray, steps: list[tuple[str, float]], n_steps: int) -> int:
    """The column between a 7- or 8-character cn plate's first two characters, or -1 when none is clean.

    LPRNet emits the first two characters at the first time steps whatever their place, so their columns come
    from the plate's geometry instead: the pitch and place of characters 3.. (their steps do follow the glyphs)
    and the GB layout (45 mm glyphs 12 mm apart, 34 mm across the separator after the second) put the cut about
    1.89 pitches left of the third character's centre; it moves to the column with the least ink near there."""
    if len(steps) < 7:
        return -1
    w = img.shape[1]
    xs = (np.array([s for _, s in steps[2:]]) + 0.5) / n_steps * w
    pitch = float(np.median(np.diff(xs)))
    guess = xs[0] - 1.886 * pitch
    _, _, ink = text_ink(img)
    profile = ink.sum(axis=0).astype(np.float32)
    lo, hi = max(1, int(guess - 0.3 * pitch)), min(w - 1, int(guess + 0.5 * pitch) + 1)
    if hi - lo < 2:
        return -1
    cut = lo + int(np.argmin(profile[lo:hi] + 0.01 * np.abs(np.arange(lo, hi) - guess)))
    clean = profile[cut] <= 0.15 * ink.shape[0] and 0.6 * pitch <= cut <= 1.8 * pitch and profile[:cut].any()
    return cut if clean else -1


def align_province(rec: Recognizer, rows) -> list[Aligned]:
    """The rows whose read has the label's length and its characters after the first (the province itself may be
    misread), with a clean cut after the first character (their only cut: ``cuts == (cut,)``)."""
    out = []
    for row in tqdm(rows, desc="aligning", unit="crop", disable=None):
        img, steps, n_steps = read_steps(rec, row.path)
        read = "".join(c for c, _ in steps)
        if len(read) != len(row.text) or read[1:] != row.text[1:]:
            continue
        cut = province_cut(img, steps, n_steps)
        if cut > 0:
            out.append(Aligned(img, row.text, row.region, (cut,)))
    return out


def render_province(img: np.ndarray, cut: int, province: str, rng: random.Random) -> np.ndarray:
    """``img`` (BGR) with the glyph left of column ``cut`` redrawn as ``province`` in the crop's own colours.

    The text is the minority of the Otsu split of the text band (white on blue, black on yellow or white); the old
    glyph's box is filled with the plate colour and the new glyph drawn into it as a soft mask, blurred and noised
    like the crop around it."""
    h = img.shape[0]
    y0, y1, ink = text_ink(img)
    left = ink[:, :cut]
    cols = np.flatnonzero(left.any(axis=0))
    if len(cols) == 0 or left.all():
        return img
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    pixels = img[y0:y1, :cut].reshape(-1, 3).astype(np.float32)
    bg = np.median(pixels[~left.ravel()], axis=0) if (~left).any() else 255 - np.median(pixels, axis=0)
    stroke = pixels[left.ravel()]
    far = np.abs(stroke - bg).sum(axis=1)
    fg = np.median(stroke[far >= np.median(far)], axis=0)  # the strokes' cores, not their blurred edges
    # the plate's pixel noise: the median absolute deviation of its plate-coloured pixels (robust to the glyph
    # edges Otsu leaves on that side), capped so a textured background does not turn the glyph to static
    plate = pixels[~left.ravel()]
    noise = min(6.0, 1.4826 * float(np.median(np.abs(plate - bg)))) if len(plate) > 4 else 2.0
    # the new glyph: the font's ink scaled into the old glyph's box (its height: the text band's)
    pad = max(1, (y1 - y0) // 10)
    by0, by1 = max(0, y0 - pad), min(h, y1 + pad)
    bx0, bx1 = max(0, x0 - 1), min(cut, x1 + 1)
    gh, gw = y1 - y0, x1 - x0
    mask = glyph_mask(province, CJK_FONT, 96, rng.randint(0, 2))
    mw = min(max(gw, round(gh * mask.shape[1] / mask.shape[0] * rng.uniform(0.75, 0.95))), bx1 - bx0)
    mask = cv2.resize(mask, (max(1, mw), max(1, gh)), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    alpha = np.zeros((by1 - by0, bx1 - bx0), np.float32)
    ox = (bx1 - bx0 - mask.shape[1]) // 2
    alpha[y0 - by0 : y0 - by0 + gh, ox : ox + mask.shape[1]] = mask
    alpha = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(0.4, 1.0))
    out = img.astype(np.float32)
    box = bg + (fg - bg) * alpha[..., None]
    box += np.random.default_rng(rng.randrange(2**32)).normal(0, noise, box.shape)
    out[by0:by1, bx0:bx1] = box
    return np.clip(out, 0, 255).astype(np.uint8)


def swap_province(
    target: Aligned, province: str, donors: dict[str, list[Aligned]], rng: random.Random
) -> tuple[np.ndarray, str]:
    """``target`` with its first character replaced by ``province``: a real donor's glyph spliced in (with chance
    ``REAL_DONOR`` when ``donors`` holds that province) or a rendered one."""
    if donors.get(province) and rng.random() < REAL_DONOR:
        donor = rng.choice(donors[province])
        # the donor's size and left part, the target's characters from index 1 on
        return splice(donor, target, 1)
    return render_province(target.image, target.cuts[0], province, rng), province + target.text[1:]


def write_swapped(
    data_dir: str | Path,
    out_dir: str | Path,
    bundle: str,
    n: int,
    split: Split = "train",
    leave_out: tuple[str, ...] = (),
    seed: int = 0,
) -> Path:
    """Write ``n`` province-swapped crops of ``data_dir``'s cn rows (``split``, without texts starting with a
    ``leave_out`` prefix: neither target nor donor) into ``out_dir`` plus a ``labels.csv``."""
    rng = random.Random(seed)
    rows = [r for r in read_labels(data_dir, split, ["cn"]) if not r.text.startswith(tuple(leave_out))]
    aligned = align_province(Recognizer(bundle, second_look=False), rows)
    if not aligned:
        raise SystemExit(f"{bundle} reads no {split} cn crop of {data_dir} well enough to cut its province")
    donors: dict[str, list[Aligned]] = {}
    for a in aligned:
        donors.setdefault(a.text[0], []).append(a)
    out = Path(out_dir)
    (out / "cn").mkdir(parents=True, exist_ok=True)
    written, tries = [], 0
    while len(written) < n and tries < 20 * n:  # a label whose rest fits no cn format never yields a crop
        tries += 1
        target = rng.choice(aligned)
        province = rng.choice([p for p in PROVINCES if p != target.text[0]])
        img, text = swap_province(target, province, donors, rng)
        if match_format(text, "cn") is None:
            continue
        rel = f"cn/{len(written):06d}.jpg"
        cv2.imwrite(str(out / rel), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        written.append((rel, text, "cn", f"{target.text} province swapped"))
    real = sorted(p for p in donors if p in PROVINCES)
    print(f"{len(written)} swapped crops from {len(aligned)} of {len(rows)} crops; real donors of {''.join(real)}")
    return write_labels(out, written)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Real cn crops with the province character swapped for another's.")
    ap.add_argument("data_dir", help="folder with labels.csv (crops)")
    ap.add_argument("out_dir")
    ap.add_argument("--bundle", default="cn", help="recogniser bundle whose reads place the cut")
    ap.add_argument("-n", type=int, default=12000, help="crops to write")
    ap.add_argument("--split", default="train", choices=SPLITS)
    ap.add_argument("--leave-out", nargs="*", default=[], help="plate-text prefixes (provinces) to leave out")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(write_swapped(a.data_dir, a.out_dir, a.bundle, a.n, a.split, tuple(a.leave_out), a.seed))
