"""Pieces -> words (against sentencepiece itself), word timings, endpoint rules."""

from __future__ import annotations

import numpy as np
import pytest

from avsync.runtime.endpoint import Endpoint, EndpointConfig, Endpointer
from avsync.runtime.words import speech_onset, timed_words, tokens_to_text
from avsync.text.tokenizer import Tokenizer

SENTENCES = ["bin blue at f two now", "place red by g nine again", "lay green in s zero soon",
             "the quick brown fox jumps over the lazy dog", "set white with p four please"]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(SENTENCES * 3, vocab_size=60, model_type="unigram")


def test_piece_text_equals_sentencepiece_decode(tokenizer: Tokenizer) -> None:
    special = {tokenizer.blank_id, tokenizer.bos_id, tokenizer.eos_id}
    for text in [*SENTENCES, "a brand new sentence", "zero"]:
        ids = tokenizer.encode(text)
        assert tokens_to_text(ids, tokenizer.pieces, special) == tokenizer.decode(ids)
    ids = tokenizer.encode("bin blue")
    assert tokens_to_text([tokenizer.bos_id, *ids, tokenizer.eos_id], tokenizer.pieces,
                          special) == "bin blue"


def test_words_take_their_tokens_times_and_posteriors(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode("bin blue now")
    pieces = tokenizer.pieces
    starts = [i for i, t in enumerate(ids) if pieces[t].startswith("\u2581")]
    assert len(starts) == 3
    spans = [(3 * k + 2, 3 * k + 3) for k in range(len(ids))]  # each token one step
    log_probs = np.full((3 * len(ids) + 4, len(pieces)), np.log(0.5))
    words = timed_words(ids, spans, log_probs, pieces, set(), offset_step=10, step_ms=40)
    assert [w.text for w in words] == ["bin", "blue", "now"]
    # the spike marks where a word ends (see timed_words): at the start of its last step; no
    # audio: a word starts at most VIDEO_WORD_STEPS before its spike, not before the last end
    assert words[0].start_ms == 10 * 40
    assert words[1].start_ms == words[0].end_ms
    assert words[0].end_ms == (10 + 3 * (starts[1] - 1) + 2) * 40
    assert words[2].end_ms == (10 + 3 * (len(ids) - 1) + 2) * 40
    assert all(w.confidence == pytest.approx(0.5) for w in words)


def test_words_start_where_their_speech_starts() -> None:
    pieces = ["<b>", "\u2581a", "\u2581b"]
    log_probs = np.full((40, 3), np.log(0.5))
    levels = np.full(40, -45.0)
    levels[8:14] = -20.0  # word a: speech from step 8, emitted at 14
    levels[14:16] = -44.0  # a stop's closure ...
    levels[16:22] = -18.0  # ... inside word b, emitted at 24 (after its speech ended)
    levels[30:] = -120.0  # tail padding: digital silence is not the noise floor
    words = timed_words([1, 2], [(14, 15), (24, 25)], log_probs, pieces, {0}, offset_step=0,
                        step_ms=40, levels=levels)
    assert [(w.start_ms, w.end_ms) for w in words] == [(8 * 40, 14 * 40), (16 * 40, 24 * 40)]
    assert speech_onset(24, 0, levels > -30) == 8  # a closure of 2 steps is crossed...
    assert speech_onset(24, 0, np.r_[[True] * 10, [False] * 3, [True] * 27]) == 13  # ...not 3
    assert speech_onset(5, 0, np.zeros(40, bool)) == 5  # no speech at all: the spike


def test_endpoint_after_trailing_blanks_only_when_something_was_said() -> None:
    config = EndpointConfig(trailing_blank_ms=200, max_silence_ms=400, max_segment_ms=2000)
    e = Endpointer(config, step_ms=40)
    assert [e.update(True, False) for _ in range(9)] == [Endpoint.NONE] * 9  # 360 ms silence
    assert e.update(True, False) is Endpoint.RESET  # 400 ms with nothing: drop it
    e.reset()
    assert e.update(False, True) is Endpoint.NONE
    decisions = [e.update(True, True) for _ in range(5)]  # 200 ms of blanks after speech
    assert decisions == [Endpoint.NONE] * 4 + [Endpoint.FINAL]
    e.defer()  # the second pass still heard words: count the trailing blanks again
    assert [e.update(True, True) for _ in range(5)] == [Endpoint.NONE] * 4 + [Endpoint.FINAL]


def test_endpoint_on_long_segments() -> None:
    e = Endpointer(EndpointConfig(trailing_blank_ms=200, max_silence_ms=400,
                                  max_segment_ms=400), step_ms=40)
    decisions = [e.update(False, True) for _ in range(10)]
    assert decisions == [Endpoint.NONE] * 9 + [Endpoint.FINAL] and e.at_max_length


def test_endpoint_config_is_checked() -> None:
    from avsync.errors import ConfigError

    with pytest.raises(ConfigError, match="> 0 ms"):
        EndpointConfig(trailing_blank_ms=0)
