"""Experiment: does a small M/W orientation classifier, asked after the recogniser, fix the br W misreads?

Old Brazilian plates print W much like an upside-down M, and the latin bundle reads most misread W's as M with
high confidence, so its features hardly see which way up the glyph is. This trains a tiny CNN on 32x20 grey
windows around each M and W of the real train crops (located by the bundle's own CTC alignment, as
``training.data.glyph_flip`` does), each also flipped upside down with the other label, so orientation is the
only cue; optionally with the same windows from rendered plates (``--synth``). Read-time it splits the
recogniser's M+W probability at the glyph's time steps by the classifier's (mean of ``--seeds`` models, three
1-px shifts each), then decodes as usual (beam + templates); it prints plate accuracy before / after and every
read it changed on the test split.

    python benchmarks/mw_verifier.py --data ../shared/data/crops [--synth runs/synth_br_mw] [--epochs 150]
"""

from __future__ import annotations

import argparse
import contextlib

import cv2
import numpy as np

from sdk.dataset import read_labels
from sdk.decode import decode, labels_of, softmax
from sdk.errors import ImageError
from sdk.image import plate_input, read_image
from sdk.recognizer import Recognizer
from training.data.glyph_flip import char_steps, greedy_runs

GLYPHS = "MW"
WIN_H, WIN_W, SLACK = 32, 20, 4  # window size at the model input's scale; SLACK px each side for shift augmentation


def window(px: np.ndarray, cx: float, slack: int = 0) -> np.ndarray:
    """Grey float window of ``px`` (H, W, 3) centred on column ``cx``, ``slack`` px wider on each side."""
    g = cv2.copyMakeBorder(
        cv2.cvtColor(px, cv2.COLOR_RGB2GRAY).astype(np.float32), 0, 0, 2 * WIN_W, 2 * WIN_W, cv2.BORDER_REPLICATE
    )
    x0 = int(round(cx - WIN_W / 2)) + 2 * WIN_W
    return g[:, x0 - slack : x0 + WIN_W + slack]


def standardise(w: np.ndarray) -> np.ndarray:
    w = w - w.mean()
    return w / (w.std() + 8.0)


def read_rows(rec: Recognizer, data: str, split: str, regions: list[str] | None, scale: int = 1) -> list[tuple]:
    """(label row, the crop at ``scale`` times the model input's size, logits) for every readable crop."""
    out = []
    for row in read_labels(data, split, regions):  # type: ignore[arg-type]
        img = read_image(row.path)
        with contextlib.suppress(ImageError):  # a flat crop has no read
            logits = rec.logits(rec.prepare(img))
            out.append((row, plate_input(img, rec.height * scale, rec.width * scale), logits))
    return out


def glyph_windows(rows: list[tuple], rec: Recognizer) -> tuple[np.ndarray, np.ndarray]:
    """Windows (with slack) and labels (index in GLYPHS) of every M/W of crops whose greedy read has the label's
    length (so its time steps line up with the label's characters)."""
    m, xs, ys = rec.manifest, [], []
    for row, px, logits in rows:
        steps = char_steps(logits, m.alphabet, m.blank_index)
        if len(steps) != len(row.text):
            continue
        for k, c in enumerate(row.text):
            if c in GLYPHS:
                xs.append(window(px, (steps[k][1] + 0.5) / len(logits) * px.shape[1], SLACK))
                ys.append(GLYPHS.index(c))
    return np.array(xs), np.array(ys)


def train(xs: np.ndarray, ys: np.ndarray, epochs: int, seed: int):
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    xs, ys = np.concatenate([xs, xs[:, ::-1]]), np.concatenate([ys, 1 - ys])  # flipped M is a W and back

    def augment(x: np.ndarray) -> np.ndarray:
        a = cv2.getRotationMatrix2D((x.shape[1] / 2, WIN_H / 2), rng.uniform(-4, 4), rng.uniform(0.9, 1.1))
        a[:, 2] += rng.integers(-SLACK + 1, SLACK), rng.integers(-SLACK // 2, SLACK // 2 + 1)
        w = cv2.warpAffine(x, a, (x.shape[1], WIN_H), borderMode=cv2.BORDER_REPLICATE)[:, SLACK : SLACK + WIN_W]
        if rng.random() < 0.5:
            w = cv2.GaussianBlur(w, (3, 3), rng.uniform(0.3, 1.2))
        w = w * rng.uniform(0.6, 1.4) + rng.normal(0, 4, w.shape)
        return standardise(-w if rng.random() < 0.3 else w)  # both plate polarities

    inp = keras.Input((WIN_H, WIN_W, 1))
    h = inp
    for f in (16, 32, 48):
        h = layers.Conv2D(f, 3, padding="same", use_bias=False)(h)
        h = layers.MaxPool2D(2)(layers.ReLU()(layers.BatchNormalization()(h)))
    net = keras.Model(inp, layers.Dense(len(GLYPHS))(layers.Dropout(0.3)(layers.Flatten()(h))))
    lr = keras.optimizers.schedules.CosineDecay(2e-3, epochs * (len(xs) // 64 + 1))
    net.compile(keras.optimizers.Adam(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for _ in range(epochs):
        net.fit(np.stack([augment(x) for x in xs])[..., None], ys, batch_size=64, epochs=1, verbose=0)
    return net


def verified(logits: np.ndarray, px: np.ndarray, nets: list, classes: list[int], blank_index: int) -> np.ndarray:
    """``logits`` with the M+W probability of each greedy M/W run (and one step either side) split by the nets."""
    p, n = softmax(logits), len(logits)
    for k, t0, t1 in greedy_runs(logits, blank_index):
        if k not in classes:
            continue
        cx = ((t0 + t1) / 2 + 0.5) / n * px.shape[1]
        ws = np.stack([standardise(window(px, cx + d * SLACK / 4)) for d in (-1, 0, 1)])[..., None]
        q = np.mean([softmax(np.asarray(net(ws, training=False))).mean(0) for net in nets], axis=0)
        for u in range(max(0, t0 - 1), min(n, t1 + 2)):
            p[u, classes] = p[u, classes].sum() * q
    return np.log(np.maximum(p, 1e-12))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="real crops (labels.csv)")
    ap.add_argument("--bundle", default="latin")
    ap.add_argument("--synth", help="rendered plates (labels.csv) whose M/W windows join the training set")
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--scale", type=int, default=1, help="windows cut from the crop at this multiple of the input size")
    a = ap.parse_args()
    global WIN_H, WIN_W, SLACK
    WIN_H, WIN_W, SLACK = WIN_H * a.scale, WIN_W * a.scale, SLACK * a.scale
    rec = Recognizer(a.bundle)
    m = rec.manifest
    classes = labels_of(GLYPHS, m.alphabet, m.blank_index)
    rows = {s: read_rows(rec, a.data, s, ["br", "us"], a.scale) for s in ("train", "test")}
    xs, ys = glyph_windows(rows["train"], rec)
    if a.synth:
        sx, sy = glyph_windows(
            [r for r in read_rows(rec, a.synth, "all", None, a.scale) if set(r[0].text) & set(GLYPHS)], rec
        )
        xs, ys = np.concatenate([xs, sx]), np.concatenate([ys, sy])
    print(f"training windows (M, W): {np.bincount(ys, minlength=2).tolist()}, plus their flips")
    nets = [train(xs, ys, a.epochs, s) for s in range(a.seeds)]
    for split, region in [(s, r) for s in ("train", "test") for r in ("br", "us")]:
        before = after = n = 0
        for row, px, logits in (r for r in rows[split] if r[0].region == region):
            r0 = decode(logits, m.alphabet, m.blank_index, region=region).text
            r1 = decode(
                verified(logits, px, nets, classes, m.blank_index), m.alphabet, m.blank_index, region=region
            ).text
            n, before, after = n + 1, before + (r0 == row.text), after + (r1 == row.text)
            if split == "test" and r1 != r0:
                print(f"  {row.text}: {r0} -> {r1}")
        print(f"{split} {region}: {n} crops, plate accuracy {before / n:.3f} -> {after / n:.3f}")


if __name__ == "__main__":
    main()
