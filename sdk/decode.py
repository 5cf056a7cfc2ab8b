"""CTC decoding of recogniser outputs in pure numpy: greedy (best path) and prefix beam search.

Outputs are ``(T, C)`` matrices over ``C = len(alphabet) + 1`` classes, one of which (``blank_index``) is the
CTC blank; class ``i`` maps to ``alphabet[i]`` below the blank and to ``alphabet[i - 1]`` above it.
With a region, the chosen read is post-filtered by the plate templates of :mod:`sdk.formats`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sdk.formats import check_region, match_format

# Beam-search pruning: at each step only characters above MIN_CHAR_PROB extend the beams. A trained model's rows
# are peaked (mostly one blank), so most steps try no extension at all; a flat row (1/C each) still passes.
MIN_CHAR_PROB = 1e-3
# Beam probabilities are rescaled to sum to 1 every this many steps: a step keeps at least 1/C of the best beam's
# mass, so between two rescales it shrinks by at most C**-8 (1e-15 for 66 classes), far from float64's limits.
RESCALE_EVERY = 8


@dataclass(frozen=True)
class Candidate:
    """One labelling and its probability."""

    text: str
    confidence: float


@dataclass(frozen=True)
class Read:
    """The decoded read of one plate: the chosen text, its candidates (best first) and matched format."""

    text: str
    confidence: float
    candidates: tuple[Candidate, ...]
    format: str | None
    region: str | None


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax.

    Args:
        logits: array of scores.
        axis: axis to normalise over.

    Returns:
        Float64 probabilities of the same shape, summing to 1 along ``axis``.
    """
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _check(probs: np.ndarray, alphabet: str, blank_index: int) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"expected a (T, C) matrix, got shape {probs.shape}")
    if probs.shape[1] != len(alphabet) + 1:
        raise ValueError(
            f"{probs.shape[1]} classes but the alphabet has {len(alphabet)} characters: expected len(alphabet) + 1"
        )
    if not 0 <= blank_index < probs.shape[1]:
        raise ValueError(f"blank_index {blank_index} outside [0, {probs.shape[1]})")
    return probs


def _text(labels: tuple[int, ...] | list[int], alphabet: str, blank_index: int) -> str:
    return "".join(alphabet[i] if i < blank_index else alphabet[i - 1] for i in labels)


def greedy_decode(probs: np.ndarray, alphabet: str, blank_index: int) -> Candidate:
    """Best-path decoding: argmax per step, collapse repeats, drop blanks.

    Args:
        probs: ``(T, C)`` probabilities, rows summing to 1.
        alphabet: the ``C - 1`` characters.
        blank_index: class index of the CTC blank.

    Returns:
        The best path's labelling; confidence is the product of the per-step maxima (the path probability).

    Raises:
        ValueError: on a bad shape or blank index.
    """
    probs = _check(probs, alphabet, blank_index)
    best = np.argmax(probs, axis=1)
    labels, prev = [], blank_index
    for k in best.tolist():
        if k != prev and k != blank_index:
            labels.append(k)
        prev = k
    conf = float(np.prod(probs[np.arange(len(best)), best]))
    return Candidate(_text(labels, alphabet, blank_index), min(conf, 1.0))


def _normalise(beams: dict[tuple[int, ...], list[float]]) -> float:
    """Rescale the beams' probabilities to sum to 1; return the log of the factor taken out (0 if empty)."""
    mass = sum(pb + pnb for pb, pnb in beams.values())
    if mass <= 0.0:
        return 0.0
    for v in beams.values():
        v[0] /= mass
        v[1] /= mass
    return math.log(mass)


def beam_search(
    probs: np.ndarray, alphabet: str, blank_index: int, beam_width: int = 10, top_n: int = 5
) -> tuple[Candidate, ...]:
    """CTC prefix beam search.

    Each prefix keeps the probability of its paths ending in a blank and in a non-blank. Probabilities stay
    linear but are rescaled to sum to 1 every ``RESCALE_EVERY`` steps (the log of the scale is carried), so long
    or flat outputs do not underflow. For speed, a step only extends prefixes with characters whose probability
    exceeds ``MIN_CHAR_PROB``.

    Args:
        probs: ``(T, C)`` probabilities, rows summing to 1.
        alphabet: the ``C - 1`` characters.
        blank_index: class index of the CTC blank.
        beam_width: prefixes kept after each step.
        top_n: labellings returned.

    Returns:
        Up to ``top_n`` distinct labellings, most probable first; each confidence is the total probability of
        the paths collapsing to it (among those the beam kept).

    Raises:
        ValueError: on a bad shape, blank index, ``beam_width`` or ``top_n``.
    """
    probs = _check(probs, alphabet, blank_index)
    if beam_width < 1 or top_n < 1:
        raise ValueError(f"beam_width and top_n must be >= 1, got {beam_width} and {top_n}")
    beams: dict[tuple[int, ...], list[float]] = {(): [1.0, 0.0]}  # prefix -> [p_blank, p_non_blank]
    log_scale = 0.0
    candidates = probs > MIN_CHAR_PROB
    candidates[:, blank_index] = False
    active = candidates.any(axis=1).tolist()
    for t, (row, mask) in enumerate(zip(probs.tolist(), candidates, strict=True)):  # plain floats: faster loops
        if not active[t]:  # no character is likely here: prefixes only continue, none is added or reordered
            for prefix, v in beams.items():
                v[0], v[1] = (v[0] + v[1]) * row[blank_index], (v[1] * row[prefix[-1]] if prefix else 0.0)
            beams = {prefix: v for prefix, v in beams.items() if v[0] + v[1] > 0.0}
        else:
            chars = np.flatnonzero(mask).tolist()
            nxt: dict[tuple[int, ...], list[float]] = {}
            for prefix, (pb, pnb) in beams.items():
                total = pb + pnb
                entry = nxt.setdefault(prefix, [0.0, 0.0])
                entry[0] += total * row[blank_index]
                last = prefix[-1] if prefix else None
                if last is not None:
                    entry[1] += pnb * row[last]  # repeated last char collapses into the same prefix
                for c in chars:
                    ext = nxt.setdefault((*prefix, c), [0.0, 0.0])
                    # A repeat only extends the prefix when a blank separates it from the previous one.
                    ext[1] += (pb if c == last else total) * row[c]
            ranked = sorted(nxt.items(), key=lambda kv: kv[1][0] + kv[1][1], reverse=True)
            beams = {prefix: v for prefix, v in ranked[:beam_width] if v[0] + v[1] > 0.0}  # drop impossible ones
        if t % RESCALE_EVERY == RESCALE_EVERY - 1:
            log_scale += _normalise(beams)
    best = sorted(beams.items(), key=lambda kv: kv[1][0] + kv[1][1], reverse=True)[:top_n]
    return tuple(
        Candidate(_text(prefix, alphabet, blank_index), min(float((pb + pnb) * math.exp(log_scale)), 1.0))
        for prefix, (pb, pnb) in best
    )


def decode(
    logits_or_probs: np.ndarray,
    alphabet: str,
    blank_index: int,
    *,
    region: str | None = None,
    method: Literal["greedy", "beam"] = "beam",
    beam_width: int = 10,
    top_n: int = 5,
    are_logits: bool = True,
) -> Read:
    """Decode one ``(T, C)`` output into a :class:`Read`.

    With a region, the chosen read is the most probable candidate whose text matches one of the region's plate
    formats (template post-filtering, as in LPRNet); if none matches it is the most probable one, with
    ``format=None``. Candidates stay ordered by confidence either way.

    Args:
        logits_or_probs: ``(T, C)`` logits (``are_logits=True``) or probabilities.
        alphabet: the ``C - 1`` characters.
        blank_index: class index of the CTC blank.
        region: region code for template filtering, or None.
        method: ``"greedy"`` (one candidate) or ``"beam"`` (prefix beam search).
        beam_width: beam width for ``"beam"``.
        top_n: candidates kept for ``"beam"``.
        are_logits: apply a softmax first.

    Returns:
        The read.

    Raises:
        RegionError: for an unknown region.
        ValueError: on a bad shape, blank index or method.
    """
    if region is not None:
        check_region(region)
    probs = softmax(logits_or_probs) if are_logits else np.asarray(logits_or_probs, dtype=np.float64)
    if method == "greedy":
        candidates: tuple[Candidate, ...] = (greedy_decode(probs, alphabet, blank_index),)
    elif method == "beam":
        candidates = beam_search(probs, alphabet, blank_index, beam_width=beam_width, top_n=top_n)
    else:
        raise ValueError(f"unknown method {method!r}: choose 'greedy' or 'beam'")
    if region is not None:
        for cand in candidates:
            fmt = match_format(cand.text, region)
            if fmt is not None:
                return Read(cand.text, cand.confidence, candidates, fmt.name, region)
    if not candidates:
        return Read("", 0.0, candidates, None, region)
    return Read(candidates[0].text, candidates[0].confidence, candidates, None, region)


def decode_batch(logits: np.ndarray, alphabet: str, blank_index: int, **kw) -> list[Read]:
    """Decode a batch of outputs.

    Args:
        logits: ``(N, T, C)`` logits (or probabilities with ``are_logits=False``).
        alphabet: the ``C - 1`` characters.
        blank_index: class index of the CTC blank.
        **kw: keyword arguments of :func:`decode`.

    Returns:
        One :class:`Read` per item.

    Raises:
        ValueError: if ``logits`` is not 3-D, or as :func:`decode`.
    """
    logits = np.asarray(logits)
    if logits.ndim != 3:
        raise ValueError(f"expected an (N, T, C) batch, got shape {logits.shape}")
    return [decode(x, alphabet, blank_index, **kw) for x in logits]
