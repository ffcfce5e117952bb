"""Open English sentences from a real text source: the fortune files Debian ships.

Why fortunes: `fortunes-min` (already a Debian dependency of the project) holds a few hundred
quotations, riddles and jokes written by people, so the open-vocabulary half of the corpus has
real English word statistics instead of a template's. Sentences are normalised the way LRS2/LRS3
transcripts are (uppercase, no punctuation, apostrophes kept) and kept only when every word is
plain ASCII letters and apostrophes, with 3-12 words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from avsync.data.synth.espeak import SpokenWord
from avsync.errors import DataError

FORTUNE_DIR = Path("/usr/share/games/fortunes")
FORTUNE_FILES: tuple[str, ...] = ("fortunes", "literature", "riddles")
MIN_WORDS, MAX_WORDS = 3, 12

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"^[A-Za-z]+(?:'[A-Za-z]+)*$")
_EDGE = "\"'`()[]{}*_,;:.!?"
_PAUSE_MARKS = ",;:"
_SPEAKER_LABELS = ("Q:", "A:")  # the riddles file's question/answer labels are not spoken


def _entries(text: str) -> list[str]:
    """Fortune entries (separated by '%' lines), attribution lines ('-- Author') dropped."""
    entries: list[str] = []
    lines: list[str] = []
    for line in text.splitlines() + ["%"]:
        if line.strip() == "%":
            entries.append(" ".join(lines))
            lines = []
        elif not line.strip().startswith("--"):
            lines.append(line.strip())
    return [e for e in entries if e.strip()]


def _sentence_words(sentence: str) -> tuple[SpokenWord, ...] | None:
    """The sentence as spoken words, or None when it is not plain enough to keep."""
    words = []
    tokens = sentence.split()
    if tokens and tokens[0] in _SPEAKER_LABELS:
        tokens = tokens[1:]
    for token in tokens:
        core = token.strip(_EDGE)
        if not _WORD.match(core):
            return None
        pause = "," if token.rstrip("\"')")[-1:] in _PAUSE_MARKS else ""
        words.append(SpokenWord(core.upper(), core.lower() + pause))
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return None
    return tuple(words)


def split_sentences(text: str) -> list[tuple[SpokenWord, ...]]:
    """Every keepable sentence of a fortune file's text, in file order."""
    kept = []
    for entry in _entries(text):
        for sentence in _SENTENCE_END.split(entry):
            words = _sentence_words(sentence.strip())
            if words is not None:
                kept.append(words)
    return kept


@cache
def sentence_pool(directory: str = str(FORTUNE_DIR),
                  files: tuple[str, ...] = FORTUNE_FILES) -> tuple[tuple[SpokenWord, ...], ...]:
    """All distinct keepable sentences of the fortune files, in a fixed order."""
    pool: dict[str, tuple[SpokenWord, ...]] = {}
    for name in files:
        path = Path(directory) / name
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise DataError(f"{path} is missing; install the Debian package fortunes-min "
                            "(make setup does) or use --text grid") from None
        for words in split_sentences(text):
            pool.setdefault(" ".join(w.word for w in words), words)
    if not pool:
        raise DataError(f"no usable sentences in {directory}/{{{','.join(files)}}}")
    return tuple(pool.values())


def open_sentence(rng: np.random.Generator,
                  pool: Sequence[tuple[SpokenWord, ...]] | None = None) -> tuple[SpokenWord, ...]:
    """One sentence drawn uniformly by `rng` (deterministic for a seeded generator)."""
    pool = sentence_pool() if pool is None else pool
    return pool[int(rng.integers(len(pool)))]
