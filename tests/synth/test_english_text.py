"""The `english` text source: enough distinct open sentences, spoken and normalised the LRS
way, split by sentence so held-out sentences never reach the training text."""

from __future__ import annotations

import re

import numpy as np
import pytest

from avsync.data.synth.clips import choose_words
from avsync.data.synth.english import (
    MAX_WORDS,
    MIN_WORDS,
    SPLITS,
    english_text,
    sentence_split,
    spoken_sentence,
)
from avsync.errors import ConfigError
from avsync.text.spoken import number_words, spoken_text, year_words


def test_numbers_money_and_symbols_are_spelled_as_said() -> None:
    assert spoken_text("In 1984 he paid $4.20 for 3.5 kg & 50% more.") == (
        "IN NINETEEN EIGHTY FOUR HE PAID FOUR DOLLARS TWENTY CENTS FOR THREE POINT FIVE KG "
        "AND FIFTY PERCENT MORE")
    assert spoken_text("the 21st of 2007, 1,250,000 people; 12th; 007") == (
        "THE TWENTY FIRST OF TWO THOUSAND SEVEN ONE MILLION TWO HUNDRED FIFTY THOUSAND "
        "PEOPLE TWELFTH ZERO ZERO SEVEN")
    assert number_words(101) == "ONE HUNDRED ONE" and year_words(1905) == "NINETEEN OH FIVE"
    sentence = spoken_sentence("Wait, it's 3 o'clock!")
    assert sentence is not None and [w.word for w in sentence] == ["WAIT", "IT'S", "THREE",
                                                                   "O'CLOCK"]
    assert sentence[0].say == "wait,"  # the comma stays a pause for the synthesiser


def test_tens_of_thousands_of_sentences_split_by_sentence() -> None:
    text = english_text()
    counts = {split: len(text.sentences[split]) for split in SPLITS}
    assert sum(counts.values()) >= 20_000 and min(counts.values()) >= 1000
    assert set(text.per_source) == {"fortunes", "wordnet"}
    seen: dict[str, str] = {}
    for split in SPLITS:
        for sentence in text.texts(split):
            assert seen.setdefault(sentence, split) == split == sentence_split(sentence)
            words = sentence.split()
            assert MIN_WORDS <= len(words) <= MAX_WORDS
            assert all(re.fullmatch(r"[A-Z]+('[A-Z]+)*", w) for w in words)
    rate = text.oov_rate("test")
    assert 0.005 < rate < 0.10, rate  # unseen words exist, but most are known


def test_speakers_of_a_split_say_only_its_sentences() -> None:
    rng = np.random.default_rng(0)
    test = set(english_text().texts("test"))
    drawn = [" ".join(w.word for w in choose_words(rng, "english", "test")) for _ in range(50)]
    assert set(drawn) <= test and len(set(drawn)) > 40
    with pytest.raises(ConfigError, match="pretrain"):
        choose_words(rng, "english", "pretrain")
