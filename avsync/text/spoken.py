"""Written English -> the words a speaker says: numbers, years, money and symbols spelled out.

Why: LRS2/LRS3 transcripts hold only what was said ("NINETEEN EIGHTY FOUR", "TEN PERCENT"),
and a synthesis engine must be handed exactly the words the transcript will hold, so text from
books and quotation files is turned into spoken words before it is normalised
(`normalize_transcript`). American style, no "AND" inside numbers: 123 -> ONE HUNDRED TWENTY
THREE; 1984 -> NINETEEN EIGHTY FOUR; 2007 -> TWO THOUSAND SEVEN; 3.5 -> THREE POINT FIVE;
$4.20 -> FOUR DOLLARS TWENTY CENTS; 21st -> TWENTY FIRST; 50% -> FIFTY PERCENT.
"""

from __future__ import annotations

import re

from avsync.text.normalize import normalize_transcript

_ONES = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "TEN", "ELEVEN", "TWELVE", "THIRTEEN", "FOURTEEN", "FIFTEEN", "SIXTEEN", "SEVENTEEN", "EIGHTEEN", "NINETEEN"]
_TENS = ["_", "_", "TWENTY", "THIRTY", "FORTY", "FIFTY", "SIXTY", "SEVENTY", "EIGHTY", "NINETY"]
_SCALES = ((10**12, "TRILLION"), (10**9, "BILLION"), (10**6, "MILLION"), (1000, "THOUSAND"))
_ORDINAL = {"ONE": "FIRST", "TWO": "SECOND", "THREE": "THIRD", "FIVE": "FIFTH", "EIGHT": "EIGHTH",
            "NINE": "NINTH", "TWELVE": "TWELFTH"}
_SYMBOLS = {"&": " AND ", "%": " PERCENT ", "+": " PLUS ", "=": " EQUALS ", "@": " AT ",
            "#": " NUMBER ", "°": " DEGREES "}
_CURRENCY = {"$": ("DOLLAR", "DOLLARS", "CENT", "CENTS"), "£": ("POUND", "POUNDS", "PENNY", "PENCE"),
             "€": ("EURO", "EUROS", "CENT", "CENTS")}
_MONEY = re.compile(r"([$£€])(\d[\d,]*)(?:\.(\d{1,2}))?")
_ORDINAL_NUM = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.I)
_DECIMAL = re.compile(r"\b(\d+)\.(\d+)\b")
_NUMBER = re.compile(r"\b\d{1,3}(?:,\d{3})+\b|\b\d+\b")
_YEARS = range(1100, 2100)


def number_words(n: int) -> str:
    """0 <= n < 10**15 as words."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " HUNDRED" + ("" if rest == 0 else " " + number_words(rest))
    for scale, name in _SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return number_words(high) + f" {name}" + ("" if rest == 0 else " " + number_words(rest))
    raise AssertionError(n)


def year_words(n: int) -> str:
    """A year as said: 1984 NINETEEN EIGHTY FOUR, 1900 NINETEEN HUNDRED, 2007 TWO THOUSAND
    SEVEN, 2019 TWENTY NINETEEN."""
    high, low = divmod(n, 100)
    if 2000 <= n < 2010:
        return number_words(n)
    if low == 0:
        return number_words(high) + " HUNDRED"
    return number_words(high) + (" OH " + _ONES[low] if low < 10 else " " + number_words(low))


def ordinal_words(n: int) -> str:
    words = number_words(n).split()
    last = words[-1]
    if last in _ORDINAL:
        words[-1] = _ORDINAL[last]
    elif last.endswith("Y"):
        words[-1] = last[:-1] + "IETH"
    else:
        words[-1] = last + "TH"
    return " ".join(words)


def _integer(text: str) -> str:
    digits = text.replace(",", "")
    if len(digits) > 15:  # a phone number or an id: digit by digit
        return " ".join(_ONES[int(d)] for d in digits)
    value = int(digits)
    if "," not in text and len(digits) == 4 and value in _YEARS:
        return year_words(value)
    if len(digits) > 1 and digits.startswith("0"):
        return " ".join(_ONES[int(d)] for d in digits)  # 007: ZERO ZERO SEVEN
    return number_words(value)


def _money(match: re.Match[str]) -> str:
    one, many, cent, cents = _CURRENCY[match[1]]
    whole = int(match[2].replace(",", ""))
    words = f" {number_words(whole)} {one if whole == 1 else many}"
    if match[3]:
        small = int(match[3].ljust(2, "0"))
        if small:
            words += f" {number_words(small)} {cent if small == 1 else cents}"
    return words + " "


def spoken_text(text: str) -> str:
    """`text` with numbers, money, ordinals and symbols spelled out, then LRS-normalised."""
    text = _MONEY.sub(_money, text)
    text = _ORDINAL_NUM.sub(lambda m: " " + ordinal_words(int(m[1])) + " ", text)
    text = _DECIMAL.sub(lambda m: f" {_integer(m[1])} POINT "
                        + " ".join(_ONES[int(d)] for d in m[2]) + " ", text)
    text = _NUMBER.sub(lambda m: " " + _integer(m[0]) + " ", text)
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    return normalize_transcript(text)
