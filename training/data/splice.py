"""Real crops spliced from two real crops: the left characters of one plate joined to the right characters of
another, cut between two characters. The new crops keep the real plates' glyphs, light and blur but hold texts
no real crop holds, so a recogniser that memorises its few hundred real plates sees new character sequences
(the cn train split holds 377 crops, 357 of them 皖).

Each crop's character positions come from a recogniser bundle's own CTC alignment (its greedy read must equal
the label, else the crop is not used). A splice cuts both crops at the same character index, in the gap between
that character and the previous one (see :func:`cut_columns`); the right part is scaled to the left crop's height
and the joined image back to the left crop's width. A spliced text must fit one of the region's plate formats.

    python -m training.data.splice ../shared/data/crops runs/splice_cn --bundle cn --regions cn -n 12000
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sdk.dataset import SPLITS, LabelRow, Split, read_labels, write_labels
from sdk.formats import match_format
from sdk.recognizer import Recognizer
from training.data.glyph_flip import read_steps, text_band

# A cut column counts as a gap between glyphs when its edge energy is at most this share of the median column's.
GAP_ENERGY = 0.5


@dataclass(frozen=True)
class Aligned:
    """A real crop read right by the aligning bundle: its image, text, region and the x (pixels) of each cut."""

    image: np.ndarray
    text: str
    region: str
    cuts: tuple[int, ...]  # cuts[k - 1]: the column between characters k - 1 and k (k = 1 .. len - 1), -1: none


def cut_columns(img: np.ndarray, steps: list[tuple[str, float]], n_steps: int) -> tuple[int, ...]:
    """The columns between consecutive characters of ``img``: halfway between their time steps (from
    :func:`char_steps`; ``n_steps`` output steps span the crop evenly), moved to the column with the least edge
    energy inside the text band within a third of a character pitch (the gap between two glyphs); -1 where that
    column is no clean gap (edge energy above ``GAP_ENERGY`` times the band's median column: a tilted or touching
    pair of glyphs) or lies within half a pitch of the previous cut (or of the crop's left edge)."""
    if len(steps) < 2:
        return ()
    w = img.shape[1]
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    y0, y1 = text_band(gray)
    band = cv2.GaussianBlur(gray.astype(np.float32), (3, 3), 0)[y0:y1]
    energy = np.abs(cv2.Sobel(band, cv2.CV_32F, 1, 0)).sum(axis=0) + np.abs(cv2.Sobel(band, cv2.CV_32F, 0, 1)).sum(0)
    centres = np.array([s for _, s in steps]) + 0.5
    pitch = float(np.median(np.diff(centres))) / n_steps * w
    cuts = []
    for a, b in zip(centres, centres[1:], strict=False):
        guess = (a + b) / 2 / n_steps * w
        lo, hi = max(1, round(guess - pitch / 3)), min(w - 1, round(guess + pitch / 3) + 1)
        cuts.append(lo + int(np.argmin(energy[lo:hi])) if hi > lo else round(guess))
    clean = energy[cuts] <= GAP_ENERGY * np.median(energy)
    clean &= np.diff(np.array([0, *cuts])) >= pitch / 2  # not inside the previous character (or the first one)
    return tuple(c if ok else -1 for c, ok in zip(cuts, clean.tolist(), strict=True))


def align(rec: Recognizer, rows: list[LabelRow]) -> tuple[list[Aligned], int]:
    """The rows the bundle reads right, with their cut columns; and how many it misread (left out)."""
    out, missed = [], 0
    for row in rows:
        img, steps, n_steps = read_steps(rec, row.path)
        if "".join(c for c, _ in steps) != row.text:
            missed += 1
            continue
        out.append(Aligned(img, row.text, row.region, cut_columns(img, steps, n_steps)))
    return out, missed


def splice(a: Aligned, b: Aligned, k: int) -> tuple[np.ndarray, str]:
    """``a``'s first ``k`` characters joined to ``b``'s characters from index ``k`` on, at ``a``'s size."""
    h, w = a.image.shape[:2]
    left = a.image[:, : a.cuts[k - 1]]
    right = b.image[:, b.cuts[k - 1] :]
    scale = h / right.shape[0]
    right = cv2.resize(right, (max(1, round(right.shape[1] * scale)), h), interpolation=cv2.INTER_AREA)
    joined = np.concatenate([left, right], axis=1)
    return cv2.resize(joined, (w, h), interpolation=cv2.INTER_AREA), a.text[:k] + b.text[k:]


def write_spliced(
    data_dir: str | Path,
    out_dir: str | Path,
    bundle: str,
    n: int,
    split: Split = "train",
    regions: list[str] | None = None,
    seed: int = 0,
) -> Path:
    """Write ``n`` spliced crops of ``data_dir``'s rows (``split``, ``regions``) into ``out_dir`` plus a
    ``labels.csv``. Both halves come from the same region and from crops whose texts have the same length;
    the cut is at a random character index."""
    rng = random.Random(seed)
    aligned, missed = align(Recognizer(bundle), read_labels(data_dir, split, regions))
    groups: dict[tuple[str, int], list[Aligned]] = {}
    for a in aligned:
        groups.setdefault((a.region, len(a.text)), []).append(a)
    pools = [g for g in groups.values() if len(g) > 1 and len(g[0].text) > 1]
    if not pools:
        raise SystemExit(f"no two crops of one region and length are read right by {bundle}: nothing to splice")
    weights = [len(g) for g in pools]
    out = Path(out_dir)
    rows, tries = [], 0
    while len(rows) < n and tries < 20 * n:
        tries += 1
        pool = rng.choices(pools, weights)[0]
        a, b = rng.sample(pool, 2)
        k = rng.randint(1, len(a.text) - 1)
        if a.cuts[k - 1] < 0 or b.cuts[k - 1] < 0:
            continue
        img, text = splice(a, b, k)
        if text in (a.text, b.text) or match_format(text, a.region) is None:
            continue
        rel = Path(a.region) / f"{len(rows):06d}.jpg"
        (out / rel.parent).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / rel), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        rows.append((rel.as_posix(), text, a.region, f"{a.text}[:{k}] + {b.text}[{k}:]"))
    print(f"{len(rows)} spliced crops from {len(aligned)} aligned ({missed} misread, left out)")
    return write_labels(out, rows)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Real crops spliced from two real crops at a character boundary.")
    ap.add_argument("data_dir", help="folder with labels.csv (crops)")
    ap.add_argument("out_dir")
    ap.add_argument("--bundle", default="cn", help="recogniser bundle whose CTC alignment places the cuts")
    ap.add_argument("-n", type=int, default=10000, help="crops to write")
    ap.add_argument("--split", default="train", choices=SPLITS)
    ap.add_argument("--regions", nargs="+")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(write_spliced(a.data_dir, a.out_dir, a.bundle, a.n, a.split, a.regions, a.seed))
