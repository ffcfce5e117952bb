"""StreamingRecognizer: endpointing, immutable finals, word timings, tail flush, feeding."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import numpy as np
import pytest
from runtime_helpers import random_chunk

from avsync.errors import MediaError
from avsync.runtime import (
    ChunkResult,
    EndpointConfig,
    Final,
    Model,
    Partial,
    Recognizer,
    RecognizerConfig,
    StreamChunk,
    StreamingRecognizer,
    StreamUpdate,
)
from avsync.runtime.ctc import prefix_beam_search
from avsync.runtime.words import tokens_to_text

QUICK = RecognizerConfig(rescore=False, tail_padding_steps=0,
                         endpoint=EndpointConfig(trailing_blank_ms=200))


def piece_id(model: Model, piece: str) -> int:
    return model.card.vocab.index(piece)


def spelled(model: Model, plan: list[str | None]) -> np.ndarray:
    """(T, V) log-probs whose best label at each step is the piece named (None: blank)."""
    lp = np.full((len(plan), model.card.vocab_size), -20.0, np.float32)
    for t, piece in enumerate(plan):
        lp[t, model.card.blank_id if piece is None else piece_id(model, piece)] = 0.0
    return lp


def results(model: Model, log_probs: np.ndarray, chunk: int = 2) -> list[ChunkResult]:
    out = []
    for s in range(0, len(log_probs), chunk):
        part = log_probs[s:s + chunk]
        out.append(ChunkResult(s, len(part), part,
                               np.zeros((len(part), model.card.fusion_dim), np.float32),
                               None, {}, {}))
    return out


def test_finals_after_trailing_blanks_with_word_times(model: Model) -> None:
    # "▁b i n" at steps 2-4, "▁a t" at 6-7, then 5 blanks (200 ms) -> final; then "▁s o" + end
    plan = [None, None, "\u2581", "b", "i", "n", None, "\u2581", "a", "t",
            None, None, None, None, None, None, "\u2581", "s", "o"]
    recognizer = StreamingRecognizer(model, QUICK)
    events = []
    for result in results(model, spelled(model, plan)):
        events += recognizer.accept(result)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == ["bin at"]
    words = finals[0].words
    # no audio here: a word ends where its tokens' last step begins, and starts up to 8 steps
    # before their spike (which marks its end), not before the previous word's end
    assert [(w.text, w.start_ms, w.end_ms) for w in words] == [("bin", 0, 200), ("at", 200, 360)]
    assert all(w.confidence > 0.99 for w in words)
    partials = [e.text for e in events if isinstance(e, Partial)]
    assert partials[:3] == ["b", "bin", "bin at"] and partials[-1] == "so"  # per chunk
    assert recognizer.partial == "so"
    # the open segment is flushed at the end of the stream, its words end by the stream's end
    last = recognizer.finish()
    assert [f.text for f in last if isinstance(f, Final)] == ["so"]
    assert recognizer.finals[1].segment == 1 and recognizer.finals[1].end_ms <= 19 * 40
    assert recognizer.finish() == []


def test_silence_resets_without_an_empty_final(model: Model) -> None:
    config = dataclasses.replace(QUICK, endpoint=EndpointConfig(trailing_blank_ms=200,
                                                                max_silence_ms=400))
    recognizer = StreamingRecognizer(model, config)
    events = []
    for result in results(model, spelled(model, [None] * 30 + ["\u2581", "a"])):
        events += recognizer.accept(result)
    assert not any(isinstance(e, Final) for e in events)
    assert recognizer.partial == "a"


def test_rescoring_picks_the_best_combined_score(model: Model) -> None:
    rng = np.random.default_rng(0)
    lp = spelled(model, [None, "\u2581", "a", None, None, None, None, None])
    lp[2, piece_id(model, "i")] = -0.05  # a near tie: "a" or "i"
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    memory = rng.standard_normal((8, model.card.fusion_dim)).astype(np.float32)
    chosen = []
    for w in (0.0, 0.5, 1.0):
        config = dataclasses.replace(QUICK, rescore=True, ctc_weight=w)
        recognizer = StreamingRecognizer(model, config)
        recognizer.accept(ChunkResult(0, 8, lp.astype(np.float32), memory, None, {}, {}))
        hyps = prefix_beam_search(lp, beam=config.beam)[:config.nbest]
        decoder = model.score(memory, [h.tokens for h in hyps])
        combined = [w * h.log_prob + (1 - w) * d for h, d in zip(hyps, decoder, strict=True)]
        expected = hyps[int(np.argmax(combined))].tokens
        # a winner without any word closes the segment without a final
        said = tokens_to_text(expected, model.card.vocab, {0, 2, 3})
        assert [f.tokens for f in recognizer.finals] == ([expected] if said else [])
        chosen.append(expected)
    assert chosen[-1] == (piece_id(model, "\u2581"), piece_id(model, "a"))  # CTC alone


def test_finals_never_change_while_the_stream_goes_on(model: Model) -> None:
    config = RecognizerConfig(endpoint=EndpointConfig(trailing_blank_ms=120))
    recognizer = StreamingRecognizer(model, config)
    seen: list[Final] = []
    for k in range(30):
        audio, rois = random_chunk(model, 3, seed=k)
        recognizer.feed(audio=audio * (k % 4 == 0), frames=rois)
        assert recognizer.finals[:len(seen)] == seen  # earlier finals are untouched
        seen = list(recognizer.finals)
    recognizer.finish()
    assert recognizer.finals[:len(seen)] == seen
    with pytest.raises(dataclasses.FrozenInstanceError):
        recognizer.finals[0].text = "changed"  # type: ignore[misc]
    with pytest.raises(MediaError, match="finished"):
        recognizer.feed(audio=np.zeros(640, np.float32))


def test_feeding_pieces_of_any_size_gives_the_same_finals(model: Model) -> None:
    audio, rois = random_chunk(model, 37, seed=3)
    audio = audio[:-100]  # the last step is incomplete: finish() pads it
    whole = StreamingRecognizer(model)
    whole.feed(audio=audio, frames=rois)
    whole.finish()
    pieces = StreamingRecognizer(model)
    a, v = 0, 0
    for k in range(200):
        pieces.feed(audio=audio[a:a + 333 + k], frames=rois[v:v + k % 3])
        a, v = a + 333 + k, v + k % 3
    pieces.feed(audio=audio[a:], frames=rois[v:])
    pieces.finish()
    assert pieces.finals == whole.finals
    assert pieces.steps == whole.steps == 37  # the tail padding is only re-read
    streamed = StreamingRecognizer(model, RecognizerConfig(second_pass=False))
    streamed.feed(audio=audio, frames=rois)
    streamed.finish()
    assert streamed.steps == 37 + RecognizerConfig().tail_padding_steps  # through the model


def test_stream_api_equals_feed_path(model: Model) -> None:
    """Two interleaved streams advanced and finished together by the stream API (batched
    first passes, second passes and rescoring) = feed() for each alone."""
    data = [random_chunk(model, 20, seed=s) for s in (11, 12)]
    expected = []
    for audio, rois in data:
        r = StreamingRecognizer(model)
        r.feed(audio=audio, frames=rois)
        r.finish()
        expected.append(r.finals)
    recognizer = Recognizer(model)
    streams = [recognizer.open() for _ in data]
    got: list[list[Final]] = [[] for _ in data]
    c, n = model.card.chunk_steps, model.card.samples_per_step
    for s in range(0, 20, c):
        chunks = [(stream, StreamChunk(audio[s * n:(s + c) * n], {4: rois[s:s + c]}))
                  for stream, (audio, rois) in zip(streams, data, strict=True)]
        for i, update in enumerate(recognizer.advance(chunks)):
            assert isinstance(update, StreamUpdate)
            got[i] += update.finals
    for i, update in enumerate(recognizer.finish(streams)):
        assert isinstance(update, StreamUpdate)
        got[i] += update.finals
    for finals, stream, want in zip(got, streams, expected, strict=True):
        assert finals == stream.recognizer.finals
        assert [_renamed(f, {4: 0}) for f in finals] == want  # feed() calls its face 0


def _renamed(final: Final, ids: dict[int, int]) -> Final:
    """A final with its face track ids renamed."""
    words = tuple(replace(w, face=ids.get(w.face, w.face)) for w in final.words)
    return replace(final, words=words, face=ids.get(final.face, final.face))


def test_audio_only_and_video_only_streams(model: Model) -> None:
    audio, rois = random_chunk(model, 11, seed=8)
    for kwargs, feed in (({"video": False}, {"audio": audio}), ({"audio": False},
                                                                 {"frames": rois})):
        recognizer = StreamingRecognizer(model, **kwargs)
        recognizer.feed(**feed)
        recognizer.finish()
        assert recognizer.steps == 11  # the real steps (the tail padding is only re-read)
    with pytest.raises(MediaError, match="video=False"):
        StreamingRecognizer(model, video=False).feed(frames=rois)


class StepRecorder:
    def __init__(self) -> None:
        self.chunks: list[tuple[int, bool, bool]] = []

    def accept(self, result: ChunkResult) -> None:
        self.chunks.append((result.steps, result.audio_embed is not None,
                            bool(result.visual_embed)))


def test_a_missing_modality_is_flushed_in_chunks_at_the_end(model: Model) -> None:
    """An audio-visual recogniser that never gets frames waits, then finish() runs the audio
    in chunks of the card's size with the video absent (not one long chunk)."""
    audio, _ = random_chunk(model, 9, seed=30)
    recorder = StepRecorder()
    recognizer = StreamingRecognizer(model, observers=(recorder,))
    assert recognizer.feed(audio=audio) == [] and recognizer.steps == 0
    recognizer.finish()
    assert recorder.chunks == [(2, True, False)] * 4 + [(1, True, False)]
