"""Tests of sdk.decode on hand-made probability matrices."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sdk.decode import Candidate, Read, beam_search, decode, decode_batch, greedy_decode, softmax
from sdk.errors import RegionError
from sdk.formats import ALPHABETS

CN = ALPHABETS["cn"]
LATIN = ALPHABETS["latin"]


def probs_matrix(steps: list[dict[str, float]], alphabet: str, blank_index: int | None = None) -> np.ndarray:
    """Turn per-step ``{char: prob}`` dicts (``"-"`` is the blank) into a (T, C) matrix; unnamed classes get 1e-9."""
    blank = len(alphabet) if blank_index is None else blank_index
    index = {ch: (i if i < blank else i + 1) for i, ch in enumerate(alphabet)} | {"-": blank}
    m = np.full((len(steps), len(alphabet) + 1), 1e-9)
    for t, step in enumerate(steps):
        for ch, p in step.items():
            m[t, index[ch]] = p
    return m / m.sum(axis=1, keepdims=True)


def logits(steps: list[dict[str, float]], alphabet: str) -> np.ndarray:
    return np.log(probs_matrix(steps, alphabet))


def peaked(text: str, alphabet: str, p: float = 0.9) -> list[dict[str, float]]:
    """Steps spelling ``text`` with a blank between characters, each step ``p`` sure."""
    steps: list[dict[str, float]] = []
    for ch in text:
        steps += [{ch: p, "-": 1 - p}, {"-": p, ch: 1 - p}]
    return steps


def test_softmax_rows_sum_to_one_and_is_stable():
    p = softmax(np.array([[1000.0, 1000.0], [0.0, math.log(3)]]))
    np.testing.assert_allclose(p, [[0.5, 0.5], [0.25, 0.75]])


def test_greedy_collapses_repeats_and_drops_blanks():
    steps = [{"A": 0.9, "-": 0.1}, {"A": 0.8, "-": 0.2}, {"-": 0.7, "A": 0.3}, {"A": 0.6, "-": 0.4}]
    cand = greedy_decode(probs_matrix(steps, "AB"), "AB", 2)  # best path "AA-A"
    assert cand.text == "AA"
    assert cand.confidence == pytest.approx(0.9 * 0.8 * 0.7 * 0.6, rel=1e-6)


def test_beam_beats_best_path():
    # Best path "--" -> "" with 0.36, but the paths "AA", "A-", "-A" all give "A": 0.16 + 0.24 + 0.24 = 0.64.
    m = probs_matrix([{"A": 0.4, "-": 0.6}] * 2, "A")
    best_path = greedy_decode(m, "A", 1)
    assert best_path.text == "" and best_path.confidence == pytest.approx(0.36)
    cands = beam_search(m, "A", 1)
    assert [c.text for c in cands] == ["A", ""]  # "AA" needs three steps: impossible, so not listed
    assert cands[0].confidence == pytest.approx(0.64, rel=1e-6)
    assert cands[1].confidence == pytest.approx(0.36, rel=1e-6)
    assert sum(c.confidence for c in cands) <= 1 + 1e-9


def test_beam_matches_brute_force():
    rng = np.random.default_rng(0)
    m = rng.uniform(0.1, 1.0, size=(4, 3))
    m /= m.sum(axis=1, keepdims=True)
    exact: dict[str, float] = {}
    for path in itertools.product(range(3), repeat=4):
        text = "".join(k for k, _ in itertools.groupby("AB-"[i] for i in path)).replace("-", "")
        exact[text] = exact.get(text, 0.0) + float(np.prod(m[np.arange(4), path]))
    cands = beam_search(m, "AB", 2, beam_width=100, top_n=100)
    assert {c.text: c.confidence for c in cands} == pytest.approx(exact)
    assert sum(c.confidence for c in cands) == pytest.approx(1.0)


def test_top_n_sorted_distinct_and_bounded():
    rng = np.random.default_rng(1)
    m = softmax(rng.normal(size=(24, len(LATIN) + 1)) * 2)
    cands = beam_search(m, LATIN, len(LATIN), beam_width=8, top_n=5)
    assert len(cands) == 5
    confs = [c.confidence for c in cands]
    assert confs == sorted(confs, reverse=True)
    assert len({c.text for c in cands}) == 5
    assert all(type(c) is float and 0 <= c <= 1 for c in confs) and sum(confs) <= 1 + 1e-9
    assert type(greedy_decode(m, LATIN, len(LATIN)).confidence) is float


def test_blank_index_anywhere():
    steps = peaked("AB", "AB") + [{"B": 0.5, "-": 0.5}]
    last = beam_search(probs_matrix(steps, "AB"), "AB", 2)
    first = beam_search(probs_matrix(steps, "AB", blank_index=0), "AB", 0)
    middle = beam_search(probs_matrix(steps, "AB", blank_index=1), "AB", 1)
    assert [c.text for c in first] == [c.text for c in middle] == [c.text for c in last]
    assert greedy_decode(probs_matrix(steps, "AB", blank_index=0), "AB", 0).text == "AB"


def test_long_flat_output_does_not_underflow():
    m = np.full((64, len(CN) + 1), 1.0 / (len(CN) + 1))
    cands = beam_search(m, CN, len(CN), beam_width=5, top_n=3)
    assert len(cands) == 3 and all(c.confidence > 0 for c in cands)


def test_greedy_and_beam_agree_on_peaked_matrix():
    x = logits(peaked("皖AB3U58", CN), CN)
    greedy = decode(x, CN, len(CN), method="greedy")
    beam = decode(x, CN, len(CN), method="beam")
    assert greedy.text == beam.text == "皖AB3U58"
    assert greedy.candidates == (Candidate(greedy.text, greedy.confidence),)
    assert beam.confidence >= greedy.confidence


def _cn_steps(last_step: dict[str, float]) -> list[dict[str, float]]:
    # "皖AB" then a 60/40 "C" vs "3" step, then "U5" and a final step.
    return peaked("皖AB", CN, 0.99) + [{"C": 0.6, "3": 0.4}, {"-": 0.99}] + peaked("U5", CN, 0.99) + [last_step]


def test_template_filter_picks_valid_lower_candidate():
    x = logits(_cn_steps({"8": 0.99}), CN)
    plain = decode(x, CN, len(CN))
    assert plain.text == "皖ABCU58" and plain.format is None and plain.region is None
    read = decode(x, CN, len(CN), region="cn")
    # Three letters among the last five is not a cn plate: the 40% "3" reading wins.
    assert read.text == "皖AB3U58"
    assert read.format == "cn_blue" and read.region == "cn"
    assert read.candidates[0].text == "皖ABCU58"
    assert read.confidence == next(c.confidence for c in read.candidates if c.text == "皖AB3U58")
    assert read.confidence == pytest.approx(0.4, rel=0.05)


def test_eu_template_prefers_the_slovak_o_over_a_zero_no_polish_plate_has():
    x = logits(peaked("BB135B", LATIN, 0.99) + [{"0": 0.6, "O": 0.4}, {"-": 0.99, "0": 0.01}], LATIN)
    assert decode(x, LATIN, len(LATIN)).text == "BB135B0"
    read = decode(x, LATIN, len(LATIN), region="eu")
    assert read.text == "BB135BO" and read.format == "eu_sk"


def test_template_filter_falls_back_when_nothing_matches():
    # Every candidate is either three letters in the tail, or too short.
    x = logits(peaked("皖ABCU5", CN, 0.99) + [{"8": 0.7, "-": 0.3}], CN)
    read = decode(x, CN, len(CN), region="cn")
    assert read.text == read.candidates[0].text == "皖ABCU58"
    assert read.format is None and read.region == "cn"
    assert isinstance(read, Read)


def test_greedy_with_region_sets_format():
    read = decode(logits(peaked("皖AD12345", CN), CN), CN, len(CN), region="cn", method="greedy")
    assert read.text == "皖AD12345" and read.format == "cn_green"
    assert len(read.candidates) == 1


def test_are_logits_false_and_batch():
    m = probs_matrix(peaked("ABC123", LATIN), LATIN)
    assert decode(m, LATIN, len(LATIN), are_logits=False, region="us").format == "us"
    reads = decode_batch(np.log(np.stack([m, m])), LATIN, len(LATIN), method="greedy", region="br")
    assert [r.text for r in reads] == ["ABC123"] * 2
    assert reads[0].format is None  # not a Brazilian format


@pytest.mark.parametrize("shape", [(5,), (2, 5, 37), (5, 36), (5, 38)])
def test_bad_shapes_raise(shape):
    with pytest.raises(ValueError):
        beam_search(np.ones(shape) / 37, LATIN, len(LATIN))
    with pytest.raises(ValueError):
        greedy_decode(np.ones(shape) / 37, LATIN, len(LATIN))


def test_bad_arguments_raise():
    m = np.ones((3, 37)) / 37
    with pytest.raises(ValueError):
        decode(m, LATIN, 37)
    with pytest.raises(ValueError):
        decode(m, LATIN, 36, method="viterbi")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        decode_batch(m, LATIN, 36)


def test_unknown_region_raises():
    with pytest.raises(RegionError):
        decode(np.zeros((3, 37)), LATIN, 36, region="xx")
