"""LRS-style transcript normalisation."""

from __future__ import annotations

import pytest

from avsync.text import normalize_transcript


@pytest.mark.parametrize(("raw", "expected"), [
    ("Hello, world!", "HELLO WORLD"),
    ("  don't   STOP  ", "DON'T STOP"),
    ("It\u2019s a well-known fact.", "IT'S A WELL KNOWN FACT"),
    ("Caf\u00e9 na\u00efve", "CAFE NAIVE"),
    ("{LG} yes [noise] no", "YES NO"),
    ("in 1984 ' we", "IN 1984 WE"),
    ("", ""),
    ("?!.", ""),
])
def test_normalize_transcript(raw: str, expected: str) -> None:
    assert normalize_transcript(raw) == expected


def test_normalized_text_is_a_fixed_point() -> None:
    text = normalize_transcript("We're here -- aren't we? Yes: 100%.")
    assert normalize_transcript(text) == text == "WE'RE HERE AREN'T WE YES 100"
