"""Transcript normalisation in the LRS2/LRS3 style, applied to every transcript we index.

LRS transcripts are upper case with apostrophes kept ("DON'T") and no other punctuation, so
the same rule applied to our synthetic corpus, to hypotheses and to user text makes WER
comparisons fair and keeps the tokenizer's alphabet small.
"""

from __future__ import annotations

import re
import unicodedata

# Curly and typographic apostrophes all become the ASCII one.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
# Non-speech tags such as LRS3's {LG} (laughter) or [NOISE] say nothing a listener hears as words.
_TAGS = re.compile(r"\{[^}]*\}|\[[^\]]*\]|<[^>]*>")
# Characters that join words ("WELL-KNOWN", "AND/OR") separate them once dropped.
_SEPARATORS = re.compile(r"[-\u2010-\u2015/_]+")
_NOT_KEPT = re.compile(r"[^A-Z0-9' ]+")
_SPACES = re.compile(r"\s+")


def normalize_transcript(text: str) -> str:
    """LRS-style text: upper case, apostrophes kept, other punctuation dropped, single spaces.

    Accents are folded to ASCII (CAFÉ -> CAFE), bracketed tags ({LG}, [NOISE]) are removed,
    hyphens and slashes become spaces, and a word made only of apostrophes disappears.
    """
    folded = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    ascii_text = folded.encode("ascii", "ignore").decode("ascii")
    ascii_text = _SEPARATORS.sub(" ", _TAGS.sub(" ", ascii_text)).upper()
    kept = _NOT_KEPT.sub("", ascii_text)
    words = [w for w in _SPACES.split(kept) if w.strip("'")]
    return " ".join(words)

