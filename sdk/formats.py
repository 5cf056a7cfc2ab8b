"""Plate formats per region: alphabets, templates and layouts, shared by the training and device sides.

A format is data: a regular expression that a plate's text (stored without separators) must match, the
layouts the synthetic renderer draws from, where separators go for display, and the plate colours.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

from sdk.errors import RegionError

PROVINCES = "京津沪渝冀晋蒙辽吉黑苏浙皖闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新"
DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CN_LETTERS = LETTERS.replace("I", "").replace("O", "")

# Alphabets (the blank is appended after the last character by the models: blank_index == len(alphabet)).
ALPHABETS: dict[str, str] = {
    "cn": PROVINCES + DIGITS + CN_LETTERS,
    "latin": DIGITS + LETTERS,
}

_P = f"[{PROVINCES}]"
_L_CN = f"[{CN_LETTERS}]"
_A_CN = f"[{CN_LETTERS}{DIGITS}]"
# cn standard: at most two letters among the last five.
_CN_TAIL = rf"(?!(?:[0-9]*[A-Z]){{3}}){_A_CN}{{5}}"
# Polish plates: a voivodeship letter and 1-2 more letters, then the vehicle's part, which never uses B, D, I, O, Z
# and has at most two letters. After a 2-letter district: 12345, 1234A, 123AB, 1A234, 1AB23; after a 3-letter one
# four characters (A123, 12A3, 1A23, 12AB, 1AB2, 1234) or five (12345, 1234A, 123AB).
_PL_L = "[ACEFGHJKLMNPQRSTUVWXY]"
_PL_V = "[BCDEFGHKLNOPRSTUWZ]"


def _pl_forms(*forms: str) -> str:
    """Alternatives of the vehicle's part: ``D`` a digit, ``L`` a letter it may use."""
    return "|".join("".join("[0-9]" if c == "D" else _PL_L for c in f) for f in forms)


# Romania's county codes (Bucharest is the lone B).
_RO_COUNTIES = (
    "AB|AG|AR|BC|BH|BN|BR|BT|BV|BZ|CJ|CL|CS|CT|CV|DB|DJ|GJ|GL|GR|HD|HR|IF|IL|IS|MH|MM|MS|NT|OT|PH|SB|SJ|SM|SV|TL|TM|TR|"
    "VL|VN|VS"
)
_PL_FIVE = ("DDDDD", "DDDDL", "DDDLL")
_PL = (
    rf"{_PL_V}[A-Z](?:{_pl_forms(*_PL_FIVE, 'DLDDD', 'DLLDD')})"
    rf"|{_PL_V}[A-Z]{{2}}(?:{_pl_forms('LDDD', 'DDLD', 'DLDD', 'DDLL', 'DLLD', 'DDDD', *_PL_FIVE)})"
)


@dataclass(frozen=True)
class PlateFormat:
    """One plate layout family of a region.

    Attributes:
        name: short id, e.g. ``cn_blue``.
        region: region code (``cn``, ``us``, ``br``, ``eu``).
        regex: full-match pattern for the plate text without separators.
        layouts: layouts for synthesis; ``P`` province, ``L`` letter, ``D`` digit, ``A`` letter or digit,
            any other character is a literal separator shown on the plate (space, ``-``, ``·``).
        colors: (background, foreground) RGB pairs seen on such plates.
        band: EU-style blue band with a country code on the left, or None.
    """

    name: str
    region: str
    regex: str
    layouts: tuple[str, ...]
    colors: tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...]
    band: str | None = None

    def matches(self, text: str) -> bool:
        return _compiled(self.regex).fullmatch(text) is not None

    def display(self, text: str, layout: str | None = None) -> str:
        """Insert the separators of ``layout`` (default: the first whose length fits) into ``text``."""
        candidates = [layout] if layout else [lay for lay in self.layouts if _n_slots(lay) == len(text)]
        if not candidates or _n_slots(candidates[0]) != len(text):
            return text
        chars = iter(text)
        return "".join(next(chars) if c in "PLDA" else c for c in candidates[0])


def _n_slots(layout: str) -> int:
    return sum(c in "PLDA" for c in layout)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_WHITE = (236, 236, 232)
_BLACK = (20, 20, 20)
_BLUE_CN = (18, 60, 170)
_YELLOW = (230, 190, 30)

FORMATS: tuple[PlateFormat, ...] = (
    PlateFormat(
        "cn_blue",  # the "blue" formats include the yellow plates; blue (in three shades) is by far the most common
        "cn",
        rf"{_P}{_L_CN}{_CN_TAIL}",
        ("PL·AAAAA",),
        ((_BLUE_CN, _WHITE), ((28, 86, 210), _WHITE), ((45, 110, 235), _WHITE), (_YELLOW, _BLACK)),
    ),
    PlateFormat(
        "cn_green",
        "cn",
        rf"{_P}{_L_CN}(?:[DF]{_A_CN}[0-9]{{4}}|[0-9]{{5}}[DF])",
        ("PL·LADDDD", "PL·DDDDDL"),
        (((120, 200, 120), _BLACK), ((200, 230, 160), _BLACK)),
    ),
    PlateFormat(
        "us",
        "us",
        r"[A-Z0-9]{2,8}",
        (
            "DLLLDDD",
            "LLL DDDD",
            "LLL-DDDD",
            "DDD LLL",
            "LLL DDD",
            "DDD-LLL",
            "LL DDDDD",
            "DDDDDD",
            "D LLL DDD",
            "LLDDDD",
            "DLLDDD",
            "LDDDDDD",
            "DDD DDD",
            "LLLL",
            "AAAAA",
            "AAAAAAA",
            "DLL DDD",
        ),
        (
            (_WHITE, (20, 40, 120)),
            (_WHITE, (140, 20, 20)),
            (_WHITE, _BLACK),
            ((250, 250, 210), (20, 90, 40)),
            ((20, 40, 90), (230, 190, 60)),
            ((240, 200, 40), _BLACK),
        ),
    ),
    PlateFormat(
        "br_old",
        "br",
        r"[A-Z]{3}[0-9]{4}",
        ("LLL-DDDD", "LLL·DDDD"),
        ((_WHITE, _BLACK), ((150, 150, 150), _BLACK), ((180, 40, 40), _WHITE)),
    ),
    PlateFormat("br_mercosul", "br", r"[A-Z]{3}[0-9][A-Z][0-9]{2}", ("LLLDLDD",), ((_WHITE, _BLACK),), band="BR"),
    PlateFormat(
        "eu_de",
        "eu",
        r"[A-Z]{1,3}[A-Z]{1,2}[0-9]{1,4}",
        ("LL LL DDDD", "L LL DDD", "LLL L DD", "LL L DDDD"),
        ((_WHITE, _BLACK),),
        band="D",
    ),
    PlateFormat("eu_sk", "eu", r"[A-Z]{2}[0-9]{3}[A-Z]{2}", ("LL-DDDLL", "LL DDDLL"), ((_WHITE, _BLACK),), band="SK"),
    PlateFormat(
        "eu_pl",
        "eu",
        _PL,
        ("LL DDDDD", "LLL DDDD", "LL DDDLL", "LLL DDLL"),
        ((_WHITE, _BLACK),),
        band="PL",
    ),
    PlateFormat("eu_fr", "eu", r"[A-Z]{2}[0-9]{3}[A-Z]{2}", ("LL-DDD-LL",), ((_WHITE, _BLACK),), band="F"),
    PlateFormat(
        "eu_ro",  # Bucharest B + 2-3 digits, or a county's two letters + 2 digits; then three letters
        "eu",
        rf"(?:B[0-9]{{2,3}}|(?:{_RO_COUNTIES})[0-9]{{2}})[A-Z]{{3}}",
        ("L DD LLL", "L DDD LLL", "LL DD LLL"),
        ((_WHITE, _BLACK),),
        band="RO",
    ),
)

REGIONS: dict[str, str] = {"cn": "cn", "us": "latin", "br": "latin", "eu": "latin"}
"""Region code -> alphabet name."""


def check_region(region: str) -> str:
    """Return ``region`` if known, else raise :class:`RegionError` naming the known ones."""
    if region not in REGIONS:
        raise RegionError(f"unknown region {region!r}: choose one of {', '.join(REGIONS)}")
    return region


def formats_for(region: str) -> tuple[PlateFormat, ...]:
    """The plate formats of ``region``."""
    check_region(region)
    return tuple(f for f in FORMATS if f.region == region)


def alphabet_for(region: str) -> str:
    """The alphabet a recogniser for ``region`` uses."""
    return ALPHABETS[REGIONS[check_region(region)]]


def normalise_text(text: str, alphabet: str) -> str:
    """Another reader's text as plate text: NFKC (full-width -> ASCII), uppercase, only ``alphabet``'s characters."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).upper() if c in alphabet)


def match_format(text: str, region: str) -> PlateFormat | None:
    """The first format of ``region`` that ``text`` matches, or None."""
    return next((f for f in formats_for(region) if f.matches(text)), None)
