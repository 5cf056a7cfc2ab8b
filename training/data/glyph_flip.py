"""Real crops with one glyph turned upside down into another letter, for plate fonts where one letter is the other
flipped: the old Brazilian plates print W as an upside-down M. ``M:W`` turns every real crop holding an M into one
holding a W, with the plate, light and blur of the real crop (the real train split has 11 crops with a W, 42 with
an M, and the shipped latin bundle reads most W's as M).

The glyph is found by a recogniser bundle's own CTC alignment (the time steps of its greedy read, which must equal
the label, else the crop is skipped) and the text's rows by the band of strongest vertical edges; that box is
flipped vertically.

    python -m training.data.glyph_flip ../shared/data/crops runs/br_flip_w --bundle latin --regions br --split train
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from sdk.dataset import SPLITS, Split, read_labels, write_labels
from sdk.image import read_image
from sdk.recognizer import Recognizer


def greedy_runs(logits: np.ndarray, blank_index: int) -> list[tuple[int, int, int]]:
    """The runs of the greedy CTC path of ``logits`` (T, C) that emit a character: (class, first step, last step)."""
    best = np.asarray(logits).argmax(axis=1)
    runs: list[tuple[int, int, int]] = []
    for t, k in enumerate(best.tolist()):
        if t and k == best[t - 1] and k != blank_index:
            runs[-1] = (k, runs[-1][1], t)
        elif k != blank_index:
            runs.append((k, t, t))
    return runs


def char_steps(logits: np.ndarray, alphabet: str, blank_index: int) -> list[tuple[str, float]]:
    """The greedy CTC read of ``logits`` (T, C) as (character, mean time step of its run) pairs."""
    return [(alphabet[k - (k > blank_index)], (t0 + t1) / 2) for k, t0, t1 in greedy_runs(logits, blank_index)]


def read_steps(rec: Recognizer, path: Path) -> tuple[np.ndarray, list[tuple[str, float]], int]:
    """The image at ``path``, ``rec``'s greedy read of it as :func:`char_steps` and the number of output steps."""
    img = read_image(path)
    logits = rec.logits(rec.prepare(img))
    return img, char_steps(logits, rec.manifest.alphabet, rec.manifest.blank_index), len(logits)


def text_band(gray: np.ndarray) -> tuple[int, int]:
    """Rows (y0, y1) of the text: the longest run of rows whose horizontal gradient is at least half the
    strongest row's (glyph strokes are vertical edges; plate borders and sky are mostly not)."""
    g = cv2.GaussianBlur(gray.astype(np.float32), (3, 3), 0)
    energy = np.abs(np.diff(g, axis=1)).mean(axis=1)
    energy = np.convolve(energy, np.ones(3) / 3, mode="same")
    edges = np.diff(np.concatenate([[0], (energy >= 0.5 * energy.max()).astype(int), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    i = int(np.argmax(ends - starts))
    return int(starts[i]), int(ends[i])


def flip_glyph(img: np.ndarray, steps: list[tuple[str, float]], index: int, n_steps: int) -> np.ndarray:
    """``img`` with character ``index`` of ``steps`` (from :func:`char_steps` over ``n_steps`` time steps)
    flipped upside down inside the text band, in a box one character pitch wide."""
    h, w = img.shape[:2]
    centres = np.array([s for _, s in steps])
    pitch = float(np.median(np.diff(centres))) if len(centres) > 1 else n_steps / 8
    cx, half = (centres[index] + 0.5) / n_steps * w, 0.5 * pitch / n_steps * w
    x0, x1 = max(0, round(cx - half)), min(w, round(cx + half))
    y0, y1 = text_band(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img)
    pad = max(1, (y1 - y0) // 12)
    y0, y1 = max(0, y0 - pad), min(h, y1 + pad)
    out = img.copy()
    out[y0:y1, x0:x1] = img[y0:y1, x0:x1][::-1]
    return out


def write_flipped(
    data_dir: str | Path,
    out_dir: str | Path,
    bundle: str,
    pairs: dict[str, str],
    split: Split = "train",
    regions: list[str] | None = None,
) -> Path:
    """For each crop of ``data_dir`` holding a ``pairs`` key that ``bundle`` reads right, write the crop with that
    glyph flipped into its pair (label changed to match) into ``out_dir``, plus a ``labels.csv``."""
    rec = Recognizer(bundle)
    out = Path(out_dir)
    rows, skipped = [], 0
    for i, row in enumerate(read_labels(data_dir, split, regions)):
        k = next((j for j, c in enumerate(row.text) if c in pairs), None)
        if k is None:
            continue
        img, steps, n_steps = read_steps(rec, row.path)
        if "".join(c for c, _ in steps) != row.text:
            skipped += 1
            continue
        old, new = row.text[k], pairs[row.text[k]]
        text = row.text[:k] + new + row.text[k + 1 :]
        rel = Path(row.region) / f"{i:05d}_{text}.jpg"
        (out / rel.parent).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / rel), flip_glyph(img, steps, k, n_steps), [cv2.IMWRITE_JPEG_QUALITY, 95])
        rows.append((rel.as_posix(), text, row.region, f"{old} flipped to {new} in {row.path.name}"))
    print(f"{len(rows)} crops written, {skipped} skipped (the bundle misreads them)")
    return write_labels(out, rows)


def _pairs(spec: list[str]) -> dict[str, str]:
    try:
        return dict(tuple(s.split(":")) for s in spec)  # type: ignore[misc]
    except ValueError:
        raise SystemExit(f"--flip takes FROM:TO letter pairs such as M:W, not {spec}") from None


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Real crops with one glyph flipped upside down into another letter.")
    ap.add_argument("data_dir", help="folder with labels.csv (crops)")
    ap.add_argument("out_dir")
    ap.add_argument("--bundle", default="latin", help="recogniser bundle whose CTC alignment locates the glyph")
    ap.add_argument("--flip", nargs="+", default=["M:W"], help="FROM:TO pairs (default: M:W)")
    ap.add_argument("--split", default="train", choices=SPLITS)
    ap.add_argument("--regions", nargs="+")
    a = ap.parse_args()
    print(write_flipped(a.data_dir, a.out_dir, a.bundle, _pairs(a.flip), a.split, a.regions))
