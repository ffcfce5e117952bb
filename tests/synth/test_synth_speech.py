"""espeak-ng through ctypes, the GRID grammar and the fortune sentences (real espeak, no mocks)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from avsync.data.synth.espeak import SpokenWord, Voice, english_voices, synthesize
from avsync.data.synth.grammar import LETTERS, SLOTS, VOCABULARY, grid_sentence, spoken
from avsync.data.synth.sentences import sentence_pool, split_sentences
from avsync.data.synth.speakers import VARIANTS, make_speaker
from avsync.data.synth.visemes import known_phoneme
from avsync.errors import DataError
from avsync.timebase import SAMPLE_RATE

US = Voice("en-us", "gmw/en-US", "m3", 170, 50, 50)


def words(text: str) -> list[SpokenWord]:
    return [spoken(w) if w in VOCABULARY else SpokenWord(w, w.lower()) for w in text.split()]


def test_the_build_has_several_english_accents() -> None:
    languages = dict(english_voices())
    assert {"en-us", "en-gb", "en-gb-scotland"} <= set(languages)
    assert all(not f.startswith("mb/") for f in languages.values())


def test_synthesis_gives_16k_audio_and_ordered_exact_timings() -> None:
    speech = synthesize(words("PLACE WHITE IN A NINE SOON"), US)
    assert speech.audio.dtype == np.float32 and np.abs(speech.audio).max() <= 1.0
    assert [w.word for w in speech.words] == ["PLACE", "WHITE", "IN", "A", "NINE", "SOON"]
    starts = [w.start for w in speech.words]
    assert starts == sorted(starts) and speech.words[-1].end <= speech.duration + 1e-9
    segments = speech.phonemes
    assert all(a.end == pytest.approx(b.start) for a, b in zip(segments, segments[1:], strict=False))
    for index, word in enumerate(speech.words):
        own = [p for p in segments if p.word == index]
        assert own[0].start == word.start and own[-1].end == word.end
    white = speech.audio[int(speech.words[1].start * SAMPLE_RATE):int(speech.words[1].end * SAMPLE_RATE)]
    assert np.sqrt(np.mean(white**2)) > 0.05  # the voice is inside the word's span


def test_letters_are_said_by_name() -> None:
    speech = synthesize(words("SET RED AT A ONE NOW"), US)
    letter = [p.phoneme for p in speech.phonemes if p.word == 3]
    assert letter == ["eI"]  # the name of A, not the article "a"
    speech = synthesize(words("SET RED AT I ONE NOW"), US)
    assert [p.phoneme for p in speech.phonemes if p.word == 3] == ["aI"]


def test_words_espeak_would_merge_keep_their_own_timing() -> None:
    # espeak reads "for a" as one dictionary entry with a single word event
    voice = Voice("en-gb", "gmw/en", "m1", 175, 50, 50)
    speech = synthesize(words("SETTLE FOR A GOOD FANTASY"), voice)
    assert [w.word for w in speech.words] == ["SETTLE", "FOR", "A", "GOOD", "FANTASY"]
    assert all(w.end > w.start for w in speech.words)


def test_same_input_same_output_whatever_came_before() -> None:
    first = synthesize(words("BIN BLUE AT F TWO NOW"), US)
    synthesize(words("LAY GREEN WITH Q SEVEN PLEASE"), Voice("en-gb", "gmw/en", "f2", 150, 40, 60))
    again = synthesize(words("BIN BLUE AT F TWO NOW"), US)
    assert np.array_equal(first.audio, again.audio) and first.phonemes == again.phonemes


def test_a_missing_voice_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="no-such-voice"):
        synthesize(words("BIN BLUE"), Voice("xx", "no-such-voice", "m1", 175, 50, 50))


def test_every_phoneme_of_every_voice_has_a_viseme() -> None:
    """The grammar's 51 words in each accent and some open sentences: no fallback mapping."""
    pool = sentence_pool()
    seen: set[str] = set()
    for index, (language, voice_file) in enumerate(english_voices()):
        voice = Voice(language, voice_file, VARIANTS[index % len(VARIANTS)], 175, 50, 50)
        for slot in SLOTS:
            seen |= {p.phoneme for p in synthesize([spoken(w) for w in slot], voice).phonemes}
        for sentence in pool[index::97][:3]:
            seen |= {p.phoneme for p in synthesize(sentence, voice).phonemes}
    unknown = sorted(p for p in seen if not known_phoneme(p))
    assert not unknown, f"add these espeak phonemes to visemes.PHONEME_VISEMES: {unknown}"


def test_grid_sentences_follow_the_grammar() -> None:
    rng = np.random.default_rng(0)
    sentences = [grid_sentence(rng) for _ in range(200)]
    for sentence in sentences:
        assert [w.word in slot for w, slot in zip(sentence, SLOTS, strict=True)] == [True] * 6
    assert len(VOCABULARY) == 51 and "W" not in LETTERS
    letters = {s[3].word for s in sentences}
    assert len(letters) > 15
    again = np.random.default_rng(0)
    assert [grid_sentence(again) for _ in range(200)] == sentences


def test_open_sentences_are_normalised_like_lrs() -> None:
    pool = sentence_pool()
    assert len(pool) > 500
    for sentence in pool:
        assert 3 <= len(sentence) <= 12
        assert all(re.fullmatch(r"[A-Z]+('[A-Z]+)*", w.word) for w in sentence)
    text = 'Q:\tWhat is "green", and small?\n\t-- Anon\n%\nIt\'s a 2nd try.  Don\'t  stop now!\n%\n'
    kept = split_sentences(text)
    assert [" ".join(w.word for w in s) for s in kept] == ["WHAT IS GREEN AND SMALL",
                                                          "DON'T STOP NOW"]
    assert kept[0][2].say == "green,"  # the comma survives as a pause for espeak


def test_speakers_are_stable_and_distinct() -> None:
    first = [make_speaker(5, i) for i in range(12)]
    assert [make_speaker(5, i) for i in range(12)] == first
    assert len({(s.voice.language, s.voice.variant) for s in first}) == 12
    assert len({s.face.skin for s in first}) > 6
    assert make_speaker(6, 0) != first[0]
