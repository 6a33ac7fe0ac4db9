"""Division codes as districts write them, made canonical: 2/4/6/9/12 digits or a Corps code.

``normalise_division_code`` is used wherever a code arrives (file cells, envelopes, file
names, the register itself): one rule for text, numbers, full-width digits and zero padding.
"""

from __future__ import annotations

import math
import re
import unicodedata
from decimal import Decimal
from numbers import Integral
from typing import Any

__all__ = ["DIGITS", "canonical", "normalise_division_code"]


_CIVIL_LENGTHS = (2, 4, 6, 9, 12)
_CORPS_CODE = re.compile(r"XPCC(?:\d{2}(?:R\d{3}(?:C\d{2})?)?)?", re.ASCII)
DIGITS = re.compile(r"[0-9]+")
_WHOLE_DECIMAL_TEXT = re.compile(r"([0-9]+)\.0+")  # '652801412005.0': a number written as text


def canonical(digits: str) -> str | None:
    """Strip the zero padding of a 2/4/6/9/12-digit code; None if it cannot be a code.

    Province codes never start with 0 and no prefecture segment is 00. County and township
    segments can be all zeros inside a real code: 441900003 (a 街道 of 东莞市, a prefecture
    without counties) and 350527000000 (金门县); only trailing padding is removed."""
    for length, pad in ((12, 3), (9, 3), (6, 2), (4, 2)):
        if len(digits) == length and digits.endswith("0" * pad):
            digits = digits[:-pad]
    if digits.startswith("0") or digits[2:4] == "00":
        return None
    return digits


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float | Decimal):
        finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
        if not finite or value != int(value):  # not an exact integer: digits were lost or never there
            return None
        return str(int(value))
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, str):
        return unicodedata.normalize("NFKC", value).strip()  # NFKC: full-width digits and spaces
    return None


def normalise_division_code(value: Any) -> str | None:
    """The canonical (shortest) form of a division code, or None if it is malformed.

    Accepts 2/4/6/9/12 digits as text or number, strips surrounding spaces and zero padding
    (652801000000 -> 652801, 652801412000 -> 652801412, 650000 -> 65, 652800 -> 6528); an
    integer-valued float (652801412005.0) is fine. Refused: scientific notation as text
    (3.70213E+11: Excel has dropped digits that cannot be recovered), non-integer numbers,
    other lengths, a leading 0 and a 00 prefecture segment. The Corps tree's synthetic codes
    (XPCC, XPCC04R064, XPCC04R064C01) are returned unchanged.

    A few official codes are padded forms of their parent's (441900 东莞市 as a county,
    350527000 金门县 as a township): they normalise to the parent's code (4419, 350527), the
    same place one level up.
    """
    text = _as_text(value)
    if not text:
        return None
    if _CORPS_CODE.fullmatch(text):
        return text
    whole = _WHOLE_DECIMAL_TEXT.fullmatch(text)
    if whole:
        text = whole.group(1)
    if not DIGITS.fullmatch(text) or len(text) not in _CIVIL_LENGTHS:
        return None
    return canonical(text)
