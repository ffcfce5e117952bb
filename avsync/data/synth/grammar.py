"""GRID-style commands: a closed six-slot grammar ("BIN BLUE AT F TWO NOW").

Why: the GRID corpus' grammar gives a closed 51-word vocabulary in which every word recurs
often, so even a tiny model trained for minutes can learn it; the open sentences give the
realistic long tail. Transcripts are LRS-style uppercase words; a letter is transcribed as the
letter itself ("A") and spoken as its name, which for "A" and "I" needs phoneme input because
espeak would otherwise read the article "a" and the pronoun.
"""

from __future__ import annotations

import string

import numpy as np

from avsync.data.synth.espeak import SpokenWord

COMMANDS: tuple[str, ...] = ("BIN", "LAY", "PLACE", "SET")
COLOURS: tuple[str, ...] = ("BLUE", "GREEN", "RED", "WHITE")
PREPOSITIONS: tuple[str, ...] = ("AT", "BY", "IN", "WITH")
LETTERS: tuple[str, ...] = tuple(c for c in string.ascii_uppercase if c != "W")
DIGITS: tuple[str, ...] = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN",
                           "EIGHT", "NINE")
ADVERBS: tuple[str, ...] = ("AGAIN", "NOW", "PLEASE", "SOON")
SLOTS: tuple[tuple[str, ...], ...] = (COMMANDS, COLOURS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)
VOCABULARY: tuple[str, ...] = tuple(sorted({w for slot in SLOTS for w in slot}))

# Letter names where espeak's reading of the bare capital is not the name (phoneme input).
_LETTER_NAMES: dict[str, str] = {"A": "[['eI]]", "I": "[['aI]]"}


def spoken(word: str) -> SpokenWord:
    """How a grammar word is said: letters by name, everything else as the lowercase word."""
    if word in LETTERS:
        return SpokenWord(word, _LETTER_NAMES.get(word, word))
    return SpokenWord(word, word.lower())


def grid_sentence(rng: np.random.Generator) -> tuple[SpokenWord, ...]:
    """One command, each slot drawn uniformly by `rng` (deterministic for a seeded generator)."""
    return tuple(spoken(slot[int(rng.integers(len(slot)))]) for slot in SLOTS)
