"""CTC decoding of recogniser outputs in pure numpy: greedy (best path), prefix beam search, and the exact
probability of given labellings (the forward algorithm) for rescoring candidates.

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
    looks: int = 1  # the model outputs it was decided on: 1, or more after a second look (sdk.second_look)


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
    return choose(candidates, region)


def choose(candidates: tuple[Candidate, ...], region: str | None, looks: int = 1) -> Read:
    """The read among ``candidates`` (most probable first): the first that fits one of ``region``'s plate formats,
    else the first (``format=None``)."""
    if region is not None:
        for cand in candidates:
            fmt = match_format(cand.text, region)
            if fmt is not None:
                return Read(cand.text, cand.confidence, candidates, fmt.name, region, looks)
    if not candidates:
        return Read("", 0.0, candidates, None, region, looks)
    return Read(candidates[0].text, candidates[0].confidence, candidates, None, region, looks)


def ctc_log_likelihoods(log_probs: np.ndarray, labellings: list[list[int]], blank_index: int) -> np.ndarray:
    """``log P(labelling | output)`` under CTC (the forward algorithm over every path), for each output and
    labelling at once.

    Args:
        log_probs: ``(N, T, C)`` log probabilities of N outputs (e.g. views of one plate).
        labellings: K labellings as class indices (no blanks).
        blank_index: class index of the CTC blank.

    Returns:
        ``(N, K)`` log likelihoods; ``-inf`` where a labelling needs more steps than ``T``.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    lengths = np.array([len(x) for x in labellings])
    s_max = 2 * int(lengths.max(initial=0)) + 1
    ext = np.full((len(labellings), s_max), blank_index)  # blank, l1, blank, l2, ..., blank
    for k, labels in enumerate(labellings):
        ext[k, 1 : 2 * len(labels) : 2] = labels
    skip = np.zeros(ext.shape, bool)  # a state may be entered from two back: a label unlike the one before it
    skip[:, 2:] = (ext[:, 2:] != blank_index) & (ext[:, 2:] != ext[:, :-2])
    emit = np.where(np.arange(s_max) < 2 * lengths[:, None] + 1, lp[:, :, ext], -np.inf)  # (N, T, K, S)
    alpha = np.full(emit[:, 0].shape, -np.inf)
    alpha[..., :2] = emit[:, 0, :, :2]
    pad = np.full((*alpha.shape[:-1], 2), -np.inf)
    with np.errstate(divide="ignore"):
        for t in range(1, lp.shape[1]):
            shifted = np.concatenate([pad, alpha[..., :-1]], axis=-1)  # [-inf, -inf, a0, a1, ...]
            from_two = np.where(skip, shifted[..., :-1], -np.inf)
            alpha = np.logaddexp(np.logaddexp(alpha, shifted[..., 1:]), from_two) + emit[:, t]
    last = 2 * lengths  # the final blank; a path may also end on the last label just before it
    ends = np.take_along_axis(alpha, last[None, :, None], axis=-1)[..., 0]
    before = np.take_along_axis(alpha, np.maximum(last - 1, 0)[None, :, None], axis=-1)[..., 0]
    return np.where(lengths > 0, np.logaddexp(ends, before), ends)


def labels_of(text: str, alphabet: str, blank_index: int) -> list[int]:
    """Class indices of ``text`` (the inverse of the class-to-character mapping)."""
    return [i if i < blank_index else i + 1 for i in (alphabet.index(ch) for ch in text)]


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
