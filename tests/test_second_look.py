"""The second look (sdk.second_look): exact CTC likelihoods, rescoring, and when a real bundle takes one."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import SHARED_DATA, needs_shared_data
from test_decode import logits, peaked

from sdk.bench import sample_crop
from sdk.dataset import read_labels
from sdk.decode import Candidate, Read, ctc_log_likelihoods, decode, labels_of, softmax
from sdk.evaluate import evaluate_rows
from sdk.formats import ALPHABETS
from sdk.recognizer import Recognizer
from sdk.second_look import VIEWS, is_sure, read_crop, rescore, views

LATIN = ALPHABETS["latin"]


def brute_force(probs: np.ndarray, labels: list[int], blank: int) -> float:
    """P(labels) summed over every path of a (T, C) matrix that collapses to it."""
    total = 0.0
    for path in itertools.product(range(probs.shape[1]), repeat=probs.shape[0]):
        out = [k for i, k in enumerate(path) if k != blank and (i == 0 or k != path[i - 1])]
        if out == labels:
            total += float(np.prod(probs[np.arange(len(path)), path]))
    return total


@pytest.mark.parametrize("blank", [0, 2, 3])
def test_ctc_likelihoods_sum_every_path(blank):
    probs = softmax(np.random.default_rng(blank).normal(size=(2, 5, 4)) * 2)
    a, b, _ = (k for k in range(4) if k != blank)
    labellings = [[], [a], [a, a], [a, b], [a, b, a], [a, a, a]]  # [a, a, a] needs all 5 steps
    got = np.exp(ctc_log_likelihoods(np.log(probs), labellings, blank))
    for n, k in itertools.product(range(2), range(len(labellings))):
        assert got[n, k] == pytest.approx(brute_force(probs[n], labellings[k], blank), rel=1e-9)


def test_ctc_likelihood_is_zero_when_too_long_for_the_output():
    probs = softmax(np.zeros((1, 2, 3)))  # two steps: "11" needs three (a blank between the repeats)
    assert np.isneginf(ctc_log_likelihoods(np.log(probs), [[1, 1]], blank_index=0)[0, 0])


def test_labels_of_inverts_the_class_mapping():
    text = "AZ09"
    for blank in (0, 10, len(LATIN)):
        labels = labels_of(text, LATIN, blank)
        assert blank not in labels
        assert "".join(LATIN[i] if i < blank else LATIN[i - 1] for i in labels) == text


def test_rescore_ranks_by_the_mean_over_outputs_and_keeps_templates_first():
    """One output prefers BRA1234 (a br plate) to BRA124 (no br format); two others are sure of BRA124.
    Rescored, BRA124 ranks first, but the read stays the best candidate that fits a br format."""
    steps = peaked("BRA1234", LATIN)
    steps[10] = {"3": 0.6, "-": 0.4}
    first = logits(steps, LATIN)
    other = logits(peaked("BRA124", LATIN, 0.99) + [{"-": 0.99}] * 2, LATIN)
    read = decode(first, LATIN, len(LATIN), region="br")
    assert read.text == "BRA1234" and read.candidates[1].text == "BRA124"
    again = rescore(read, [first, other, other], LATIN, len(LATIN))
    assert again.looks == 3 and again.region == "br"
    assert again.candidates[0].text == "BRA124" and again.text == "BRA1234" and again.format is not None
    lp = np.log(softmax(np.stack([first, other, other])))
    for c in again.candidates:
        ll = ctc_log_likelihoods(lp, [labels_of(c.text, LATIN, len(LATIN))], len(LATIN))[:, 0]
        assert c.confidence == pytest.approx(np.exp(ll.mean()))
    plain = rescore(Read("", 0.0, (Candidate("", 1.0),), None, None), [first], LATIN, len(LATIN))
    assert plain.looks == 1 and plain.text == ""  # nothing to rescore: the read is kept


def test_is_sure_needs_confidence_and_a_format_when_there_is_a_region():
    assert is_sure(Read("BRA1234", 0.96, (), "br_old", "br"))
    assert not is_sure(Read("BRA1234", 0.90, (), "br_old", "br"))
    assert not is_sure(Read("BR1234", 0.99, (), None, "br"))
    assert is_sure(Read("BR1234", 0.99, (), None, None))


def test_views_are_the_crop_shifted_and_zoomed():
    img = np.zeros((40, 100, 3), np.uint8)
    img[:, 50] = 255  # one bright column in the middle
    out = views(img)
    assert len(out) == len(VIEWS) and all(v.shape == img.shape for v in out)
    cols = [int(np.argmax(v[20, :, 0])) for v in out]
    assert cols[0] == 52 and cols[1] == 48  # shifted right and left by 2 % of the width
    assert out[2][0, 0, 0] == 0 and out[3][0, 0, 0] == 0  # zoomed: edges replicated, no padding colour


def test_a_real_bundle_looks_again_only_when_unsure():
    """The shipped latin bundle: a gray gradient is no plate (unsure: five outputs decide); with the second look
    off, or a threshold nothing reaches, the reads are the plain decode's and the rescored one's."""
    rec = Recognizer("latin")
    m = rec.manifest
    img = sample_crop(*m.input_hw)
    plain = decode(rec.logits(rec.prepare(img)), m.alphabet, m.blank_index, region="us")
    assert Recognizer("latin", second_look=False).recognize(img, "us") == plain
    looked = rec.recognize(img, "us")
    assert not is_sure(plain) and looked.looks == 1 + len(VIEWS)
    assert {c.text for c in looked.candidates} == {c.text for c in plain.candidates if c.text}
    calls = []

    def logits_of(crop: np.ndarray) -> np.ndarray:
        calls.append(crop.shape)
        return rec.logits(rec.prepare(crop))

    for kw, looks in [({"accept_confidence": 0.0}, 1), ({"accept_confidence": np.inf}, 5), ({"method": "greedy"}, 1)]:
        calls.clear()
        read = read_crop(logits_of, img, m.alphabet, m.blank_index, **kw)  # no region: no format needed
        assert len(calls) == looks == read.looks, kw  # greedy has one candidate: nothing to rescore


@needs_shared_data
def test_second_look_reads_at_least_as_many_real_crops():
    """On the real cn test crops the second look must not lose plates against the plain read, and only some
    crops take it."""
    rows = read_labels(SHARED_DATA / "crops", "test", ["cn"])
    res = {}
    for on in (False, True):
        rec = Recognizer("cn", second_look=on)
        res[on] = evaluate_rows(lambda img, region, r=rec: r.recognize(img, region), rows)["overall"]
    assert res[True]["plate_accuracy"] >= res[False]["plate_accuracy"]
    assert res[False]["second_looks"] == 0 and 0 < res[True]["second_looks"] < 0.5
