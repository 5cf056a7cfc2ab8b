"""Tests of the plate formats in sdk.formats."""

from __future__ import annotations

import pytest

from sdk.errors import RegionError
from sdk.formats import ALPHABETS, FORMATS, alphabet_for, check_region, formats_for, match_format


def fmt(text: str, region: str) -> str | None:
    f = match_format(text, region)
    return f.name if f else None


def by_name(name: str):
    return next(f for f in FORMATS if f.name == name)


@pytest.mark.parametrize("text", ["皖AB3U58", "京A12345", "粤BU1234", "川ZAB123"])
def test_cn_blue_accepts(text):
    assert fmt(text, "cn") == "cn_blue"


@pytest.mark.parametrize(
    "text",
    [
        "皖ABCU58",  # three letters among the last five
        "皖A3BCU8",  # three letters, not leading
        "皖AI3U58",  # I is not used
        "皖AB3O58",  # O is not used
        "皖OB3U58",  # nor as the city letter
        "XAB3U58",  # not a province
        "皖AB3U5",  # too short
        "皖1B3U58",  # second character must be a letter
    ],
)
def test_cn_rejects(text):
    assert fmt(text, "cn") is None


@pytest.mark.parametrize("text", ["皖AD12345", "皖A12345D", "沪AF12345", "京ADA1234", "粤B12345F"])
def test_cn_green_accepts(text):
    assert fmt(text, "cn") == "cn_green"


@pytest.mark.parametrize("text", ["皖AA12345", "皖A12345A", "皖AD1234"])
def test_cn_green_rejects(text):
    assert by_name("cn_green").matches(text) is False


def test_br_old_and_mercosul():
    assert fmt("ABC1234", "br") == "br_old"
    assert fmt("ABC1D23", "br") == "br_mercosul"
    assert fmt("AB12345", "br") is None
    assert fmt("ABC12345", "br") is None


@pytest.mark.parametrize(
    "text, ok",
    [
        ("A", False),
        ("AB", True),
        ("7ABC123", True),
        ("ABCD1234", True),
        ("ABCDE1234", False),
        ("ab123", False),
        ("AB-123", False),
    ],
)
def test_us_lengths(text, ok):
    assert (fmt(text, "us") == "us") is ok


def test_eu_formats():
    assert fmt("BAB1234", "eu") == "eu_de"
    assert fmt("MA123", "eu") == "eu_de"
    assert fmt("BA123CD", "eu") == "eu_sk"  # eu_fr has the same pattern: the first format listed wins
    assert by_name("eu_fr").matches("AB123CD")
    assert by_name("eu_pl").matches("WA12345")
    assert by_name("eu_pl").matches("KRA1234")
    assert by_name("eu_pl").matches("WA1AC23") and by_name("eu_pl").matches("KRA12AC")
    assert not by_name("eu_pl").matches("BB135B0")  # 3 digits, letter, digit is no Polish form
    assert not by_name("eu_pl").matches("WA123BO")  # B, D, I, O, Z never appear in the vehicle's part
    assert not by_name("eu_pl").matches("AA12345")  # A is no voivodeship letter
    assert fmt("BB135BO", "eu") == "eu_sk"
    assert fmt("123", "eu") is None
    assert fmt("B276WOW", "eu") == fmt("B95GSV", "eu") == fmt("CJ12ABC", "eu") == "eu_ro"
    assert not by_name("eu_ro").matches("XY12ABC")  # XY is no county
    assert not by_name("eu_ro").matches("CJ123ABC")  # three digits only after Bucharest's B
    assert {f.band for f in formats_for("eu")} == {"D", "SK", "PL", "F", "RO"}


def test_display_inserts_separators():
    assert by_name("cn_blue").display("皖AB3U58") == "皖A·B3U58"
    assert by_name("cn_green").display("皖AD12345") == "皖A·D12345"
    assert by_name("br_old").display("ABC1234") == "ABC-1234"
    assert by_name("us").display("ABC1234", "LLL-DDDD") == "ABC-1234"
    assert by_name("eu_fr").display("AB123CD") == "AB-123-CD"
    assert by_name("cn_blue").display("皖AB3U5") == "皖AB3U5"  # no layout fits: unchanged
    assert by_name("us").display("ABC1234", "LLL DDD") == "ABC1234"


def test_alphabets():
    assert len(ALPHABETS["cn"]) == 65 and len(set(ALPHABETS["cn"])) == 65
    assert len(ALPHABETS["latin"]) == 36 and len(set(ALPHABETS["latin"])) == 36
    assert "I" not in ALPHABETS["cn"] and "O" not in ALPHABETS["cn"]
    assert alphabet_for("cn") == ALPHABETS["cn"]
    assert alphabet_for("us") == alphabet_for("br") == alphabet_for("eu") == ALPHABETS["latin"]


def test_layouts_fit_their_regex_and_alphabet():
    # Layout slots can be filled from the region's alphabet, and display() only adds the separators.
    filler = {"P": "皖", "L": "A", "D": "1", "A": "2"}
    for f in FORMATS:
        alphabet = alphabet_for(f.region)
        for layout in f.layouts:
            text = "".join(filler[c] for c in layout if c in filler)
            assert all(ch in alphabet for ch in text)
            shown = f.display(text, layout)
            assert len(shown) == len(layout) and "".join(c for c in shown if c in text) == text


def test_check_region():
    assert check_region("cn") == "cn"
    with pytest.raises(RegionError, match="unknown region"):
        check_region("mars")
    with pytest.raises(RegionError):
        formats_for("latin")
    with pytest.raises(RegionError):
        match_format("ABC1234", "xx")
