"""`StreamingRecognizer`: partial hypotheses and immutable finals from a stream of chunks.

Per step: the CTC prefix beam search advances, the endpointer looks at the trailing blanks.
At an endpoint the segment is read again, whole (the second pass, `RecognizerConfig.
second_pass`): its kept media run through the same step graphs as one chunk from a fresh state,
so every step sees the whole segment instead of at most a chunk of look-ahead, and the lips it
reads are chosen in hindsight from the ASD logits (`avsync.runtime.segment_media`). A CTC prefix
beam search over those log-probabilities gives the n-best, the attention decoder rescores it
over the segment's fusion memory (score = ctc_weight * CTC + (1 - ctc_weight) * decoder), the
winner is aligned to the log-probabilities (Viterbi) for word timings and confidences, and a
`Final` is emitted: it never changes afterwards, and the next segment starts from an empty beam.
Partials come from the first pass alone (160 ms chunks for the tiny model).

Two ways in:
- one stream on its own: `feed(audio=..., frames=...)` as media arrives (any sizes; the
  recogniser cuts chunks of `card.chunk_steps`), then `finish()`;
- many streams batched: `avsync.runtime.streams.Recognizer` advances (and finishes) many
  streams in one call, each stream's recogniser below it.
Both run the same decoding: a chunk's work is a generator (`step`, `closing`) that yields the
model work it needs (`Run`: a chunk through the step graphs, for the first pass, the second
pass and the tail padding; `Rescore`: n-best hypotheses through the attention decoder) and
returns the chunk's events. `run_alone` serves one stream's work call by call; the stream
API gathers the work of every stream and runs each kind as one batched call.
`finish()` adds `tail_padding_steps` of silence (and the last mouth frame held still), so the
last words, which a causal model emits a little late, are not lost: with the second pass, only
to the media the last segment is re-read from (the streaming pass over it would be thrown
away); without it, through the streaming pass.
Observers (a `SyncEstimator`, an `ActiveSpeakerDetector`) passed in see every real chunk.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from avsync.errors import ConfigError, MediaError
from avsync.runtime.chunking import ChunkCutter, StreamChunk
from avsync.runtime.ctc import PrefixBeamSearch, align, rescore
from avsync.runtime.endpoint import Endpoint, EndpointConfig, Endpointer
from avsync.runtime.model import ChunkRequest, ChunkResult, Model, TrackId
from avsync.runtime.results import Event, Final, Partial
from avsync.runtime.segment_media import SegmentMedia
from avsync.runtime.words import Word, timed_words, tokens_to_text

FEED_TRACK: int = 0  # the face track id `feed` uses for its frames
_NO_BOX = (0.0, 0.0, 0.0, 0.0)  # `feed` knows no face boxes


@dataclass(frozen=True)
class RecognizerConfig:
    beam: int = 8
    # the streaming pass's beam when the second pass reads the finals: it only shows partials
    # (and says whether the segment has words yet), so it runs narrower; None = `beam`
    partial_beam: int | None = 4
    token_beam: int = 8
    prune: float = 10.0  # nats below a step's best label
    nbest: int = 8  # hypotheses the decoder rescores at a final
    rescore: bool = True
    ctc_weight: float = 0.5
    tail_padding_steps: int = 12  # 480 ms of silence after the end of a stream
    second_pass: bool = True  # finals re-read their segment whole (see the module docstring)
    # The second pass of a segment starts this many steps before the endpoint that opened it:
    # the first pass emits a word between its middle and a little after its end, so an
    # endpoint after 800 ms of blanks can fall inside the next utterance's first word.
    reread_lead_steps: int = 10
    # the model directory's word LM (shallow fusion): None = its card's weight, 0 = off
    lm_weight: float | None = None
    lm_word_bonus: float | None = None
    # the second pass re-reads a segment from the audio alone when its lips' mean P(speaking)
    # (`SegmentMedia.lip_match`) is below this: lips that are not the voice's never cost words
    lips_from: float | None = 0.05
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)

    def __post_init__(self) -> None:
        if min(self.beam, self.token_beam, self.nbest, self.partial_beam or 1) < 1:
            raise ConfigError(f"beam, partial_beam, token_beam and nbest must be >= 1, got "
                              f"{self.beam}, {self.partial_beam}, {self.token_beam}, "
                              f"{self.nbest}")
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise ConfigError(f"ctc_weight must be in [0, 1], got {self.ctc_weight}")
        if self.tail_padding_steps < 0:
            raise ConfigError(f"tail_padding_steps must be >= 0, got {self.tail_padding_steps}")
        if self.lips_from is not None and not 0.0 <= self.lips_from <= 1.0:
            raise ConfigError(f"lips_from must be in [0, 1] or None, got {self.lips_from}")
        if self.reread_lead_steps < 0:
            raise ConfigError(f"reread_lead_steps must be >= 0, got {self.reread_lead_steps}")


@dataclass(frozen=True)
class Run:
    """Model work: one chunk through the step graphs (`Model.advance`) -> its ChunkResult."""

    request: ChunkRequest


@dataclass(frozen=True)
class Rescore:
    """Model work: the attention decoder's log P(hypothesis + eos | memory) of each hypothesis
    (`Model.score`); memory (T, D) of one segment -> (N,) float32."""

    memory: np.ndarray
    hypotheses: tuple[tuple[int, ...], ...]


Work = Run | Rescore
# A stream's decoding of a chunk (or of its end): yields the model work it needs, is sent
# each answer (ChunkResult for Run, scores for Rescore), returns the events.
Decoding = Generator[Work, Any, list[Event]]


def run_alone(model: Model, decoding: Decoding) -> list[Event]:
    """Serve one stream's decoding with one model call per piece of work."""
    answer: Any = None
    try:
        while True:
            work = decoding.send(answer)
            if isinstance(work, Run):
                answer = model.advance([work.request])[0]
            else:
                answer = model.score(work.memory, work.hypotheses)
    except StopIteration as stop:
        return stop.value


@dataclass(frozen=True)
class Reading:
    """One reading of a segment: its CTC search, log-probs (T, V) and fusion memory (T, D),
    the log-probs' first row being stream step `first_step`."""

    search: PrefixBeamSearch
    log_probs: np.ndarray
    memory: np.ndarray
    first_step: int


class Observer(Protocol):
    def accept(self, result: ChunkResult) -> object: ...


class StreamingRecognizer:
    """One stream's recogniser. `audio`/`video`: which modalities `feed` waits for."""

    def __init__(self, model: Model, config: RecognizerConfig | None = None, *,
                 audio: bool = True, video: bool = True,
                 observers: Sequence[Observer] = ()) -> None:
        if not (audio or video):
            raise ConfigError("a recogniser needs audio, video or both")
        self.model = model
        self.card = model.card
        self.config = config or RecognizerConfig()
        self.audio, self.video = audio, video
        self.observers = tuple(observers)
        self.state = model.new_state()
        self.finals: list[Final] = []
        self._special = {self.card.blank_id, self.card.bos_id, self.card.eos_id}
        self._endpointer = Endpointer(self.config.endpoint, self.card.step_ms)
        self._segment = 0
        self._partial = ""
        self._cutter = ChunkCutter(self.card.chunk_steps, self.card.samples_per_step,
                                   audio=audio, video=video)  # what `feed` buffers
        self._last_face: tuple[TrackId, np.ndarray] | None = None  # for tail padding
        self._end_limit_step: int | None = None  # set by finish: words end by the real end
        self._saw_audio = False
        self._finished = False
        self._media = SegmentMedia(self.card.samples_per_step,  # for the second pass
                                   self.card.asd_calibration)
        self._last_word_step = 0  # where the last final's last word ended
        self._start_segment(0)

    # segment bookkeeping ---------------------------------------------------------------------
    def _new_search(self, streaming: bool = False) -> PrefixBeamSearch:
        c = self.config
        beam = c.partial_beam or c.beam if streaming and c.second_pass else c.beam
        return PrefixBeamSearch(beam, c.token_beam, c.prune, self.card.blank_id,
                                self.model.lm_fusion(c.lm_weight, c.lm_word_bonus))

    def _start_segment(self, step: int, lead: bool = True) -> None:
        """A new segment from `step`; its second pass reads from `reread_lead_steps` earlier
        (`lead`: not after a forced final) but never into the last final's words."""
        c = self.config
        self._search = self._new_search(streaming=True)
        self._segment_start = step
        self._reread_start = max(step - (c.reread_lead_steps if lead else 0),
                                 min(self._last_word_step, step))
        self._log_probs: list[np.ndarray] = []
        self._memory: list[np.ndarray] = []
        self._endpointer.reset()
        self._partial = ""
        self._media.drop_before(self._reread_start)

    @property
    def partial(self) -> str:
        """Text of the open segment's best hypothesis ("" when nothing is open)."""
        return self._partial

    @property
    def steps(self) -> int:
        """Steps consumed so far (stream time = steps * 40 ms)."""
        return self.state.steps

    # one chunk, one stream's end: decodings (see the module docstring) -------------------------
    def step(self, audio: np.ndarray | None = None,
             faces: dict[TrackId, np.ndarray] | None = None,
             primary_face: TrackId | None = None, steps: int | None = None) -> Decoding:
        """This stream's next chunk (shapes as `ChunkRequest`: audio (C*640,) float32, faces
        {track: (C, R, R) uint8}, primary_face: the lips the fusion reads) -> its events."""
        request = self.chunk(audio, faces, primary_face, steps)
        result = yield Run(request)
        return (yield from self.decode(result, request))

    def chunk(self, audio: np.ndarray | None, faces: dict[TrackId, np.ndarray] | None,
              primary_face: TrackId | None, steps: int | None) -> ChunkRequest:
        """The `ChunkRequest` of this stream's next chunk, on its state (for `step`, or a
        caller that runs it and hands the result to `decode`); remembers the read face's last
        frame for the tail padding."""
        faces = faces or {}
        if primary_face is not None and primary_face in faces and len(faces[primary_face]):
            self._last_face = (primary_face, faces[primary_face][-1])
        self._saw_audio |= audio is not None
        return ChunkRequest(self.state, audio, faces, primary_face, steps)

    def accept(self, result: ChunkResult) -> list[Event]:
        """Decode a chunk's result the model already gave (no media kept for the second
        pass, which then reads the first pass's log-probabilities) -> its events."""
        return run_alone(self.model, self.decode(result))

    def decode(self, result: ChunkResult, request: ChunkRequest | None = None, *,
               padding: bool = False) -> Decoding:
        """Consume one chunk's result (of `request`, whose media the second pass keeps) ->
        new events (finals first, then the latest partial, if it changed and is not empty)."""
        if not padding:
            for observer in self.observers:
                observer.accept(result)
        if request is not None and self.config.second_pass:
            self._media.add(result.start_step, result.steps, request.audio, request.faces,
                            request.primary_face)
            self._media.score(result.start_step, result.asd_logits)
        events: list[Event] = []
        blank = self.card.blank_id
        for k in range(result.steps):
            row = result.ctc_logprobs[k]
            self._search.advance(row[None])
            self._log_probs.append(row)
            self._memory.append(result.memory[k])
            has_text = bool(self._search.best.tokens)
            decision = self._endpointer.update(int(row.argmax()) == blank, has_text)
            if decision is Endpoint.FINAL:
                next_step = result.start_step + k + 1
                reread = yield from self._second_pass(next_step)
                if self._speech_goes_on(reread.log_probs):
                    self._endpointer.defer()
                    continue
                final = yield from self._close(next_step, reread)
                if final is not None:
                    events.append(final)
            elif decision is Endpoint.RESET:
                self._start_segment(result.start_step + k + 1)
        text = tokens_to_text(self._search.best.tokens, self.card.vocab, self._special)
        if text != self._partial:
            self._partial = text
            if text:
                events.append(Partial(self._segment, text))
        return events

    def _choose(self, search: PrefixBeamSearch, memory: np.ndarray
                ) -> Generator[Work, Any, tuple[int, ...]]:
        """The segment's winning tokens: CTC n-best rescored by the attention decoder."""
        nbest = search.nbest(self.config.nbest)
        if not self.config.rescore or len(nbest) == 1:
            return nbest[0].tokens
        decoder = yield Rescore(memory, tuple(h.tokens for h in nbest))
        return rescore(nbest, decoder, self.config.ctc_weight).tokens

    def _second_pass(self, next_step: int, padded: int = 0) -> Generator[Work, Any, Reading]:
        """The open segment read again as one chunk from a fresh state (from its reread
        start); the first pass's own reading when off or the media was not all kept.
        padded: steps of tail padding kept after the first pass's last step (never run)."""
        request = None
        first_pass_steps = next_step - padded - self._segment_start
        if self.config.second_pass and first_pass_steps == len(self._log_probs):
            # lips that read the segment as silence keep it silent (babble behind a closed
            # mouth is not the speaker's); only a segment with words can be re-read without them
            worded = bool((np.stack(self._log_probs).argmax(axis=-1) != self.card.blank_id).any())
            request = self._media.request(self._reread_start, next_step, self.model.new_state(),
                                          self.config.lips_from if worded else None)
        if request is None:
            return Reading(self._search, np.stack(self._log_probs), np.stack(self._memory),
                           self._segment_start)
        result = yield Run(request)
        search = self._new_search()
        search.advance(result.ctc_logprobs)
        return Reading(search, result.ctc_logprobs, result.memory, self._reread_start)

    def _speech_goes_on(self, log_probs: np.ndarray) -> bool:
        """Does the second pass read words in the trailing blanks the first pass endpointed
        on? (A streaming pass that falls silent mid-sentence would otherwise cut it in two.)
        Never at the segment's maximum length, nor without a second pass."""
        if not self.config.second_pass or self._endpointer.at_max_length:
            return False
        trailing = -(-self.config.endpoint.trailing_blank_ms // self.card.step_ms)
        return bool((log_probs[-trailing:].argmax(axis=-1) != self.card.blank_id).any())

    def _close(self, next_step: int, reread: Reading | None = None, padded: int = 0
               ) -> Generator[Work, Any, Final | None]:
        """End the open segment at `next_step` -> its Final (None if it decodes to nothing).
        reread: the segment's second pass when the caller already ran it; padded: as
        `_second_pass`."""
        final = None
        forced = self._endpointer.at_max_length
        if self._log_probs:
            reading = reread or (yield from self._second_pass(next_step, padded))
            tokens = yield from self._choose(reading.search, reading.memory)
            log_probs = reading.log_probs
            spans = align(log_probs, tokens, self.card.blank_id)
            levels = self._media.levels(reading.first_step,
                                        reading.first_step + len(log_probs))
            words = timed_words(tokens, spans, log_probs, self.card.vocab, self._special,
                                offset_step=reading.first_step, step_ms=self.card.step_ms,
                                levels=levels)
            if self._end_limit_step is not None:
                limit = self._end_limit_step * self.card.step_ms
                words = [replace(w, start_ms=min(w.start_ms, limit), end_ms=min(w.end_ms, limit))
                         for w in words]
            words = self._attributed(words)
            if words:
                final = Final(self._segment, " ".join(w.text for w in words), words[0].start_ms,
                              words[-1].end_ms, tuple(words), face=_most_said(words),
                              confidence=round(float(np.mean([w.confidence for w in words])), 4),
                              tokens=tuple(tokens))
                self.finals.append(final)
                self._segment += 1
                self._last_word_step = -(-words[-1].end_ms // self.card.step_ms)
        self._start_segment(next_step, lead=not forced)
        return final

    def _attributed(self, words: list[Word]) -> list[Word]:
        """Each word with the face that said it (`SegmentMedia.speaker_of`)."""
        if not self.video:
            return words
        step = self.card.step_ms
        return [replace(w, face=self._media.speaker_of(w.start_ms // step, -(-w.end_ms // step)))
                for w in words]

    # the single-stream path ------------------------------------------------------------------
    def feed(self, audio: np.ndarray | None = None, frames: np.ndarray | None = None
             ) -> list[Event]:
        """Media as it arrives: audio (S,) float32 in [-1, 1] @ 16 kHz, frames (T, R, R)
        uint8 mouth ROIs at card.roi.stored (one face). Runs every whole chunk available."""
        if self._finished:
            raise MediaError("this stream was finished; start a new StreamingRecognizer")
        if audio is not None and not self.audio:
            raise MediaError("this recogniser was made with audio=False")
        if frames is not None and not self.video:
            raise MediaError("this recogniser was made with video=False")
        faces = None if frames is None else [{FEED_TRACK: (roi, _NO_BOX)}
                                             for roi in np.asarray(frames)]
        return self._run(self._cutter.push(audio, faces))

    def _run(self, chunks: list[StreamChunk]) -> list[Event]:
        return [event for chunk in chunks for event in run_alone(self.model, self.step(
            chunk.audio, chunk.faces, FEED_TRACK if chunk.faces else None, chunk.steps))]

    def finish(self) -> list[Event]:
        """End of stream: run what is buffered, the tail padding, and close the last segment."""
        if self._finished:
            return []
        self._finished = True
        events = self._run(self._cutter.flush())  # a lagging modality padded
        return events + run_alone(self.model, self.closing())

    def closing(self) -> Decoding:
        """The end of the stream, after its last real chunk: the tail padding and the last
        segment's final -> the finals."""
        self._finished = True
        self._end_limit_step = self.state.steps
        events: list[Event] = []
        left = self.config.tail_padding_steps
        if self.config.second_pass and left > 0:
            # The final re-reads the segment with the padding whole; the streaming pass over
            # the padding would only be thrown away (a quarter of a server's work was ends).
            end = self.state.steps + left
            self._media.add(self.state.steps, left, *self._padding(left))
            final = yield from self._close(end, padded=left)
            return events if final is None else [final]
        while left > 0:
            c = min(left, self.card.chunk_steps)
            audio, faces, primary = self._padding(c)
            request = ChunkRequest(self.state, audio, faces, primary, c)
            result = yield Run(request)
            decoded = yield from self.decode(result, request, padding=True)
            events += [e for e in decoded if isinstance(e, Final)]
            left -= c
        final = yield from self._close(self.state.steps)
        if final is not None:
            events.append(final)
        return events

    def _padding(self, steps: int) -> tuple[np.ndarray | None, dict[TrackId, np.ndarray],
                                            TrackId | None]:
        """`steps` of tail padding: (silence if the stream had audio, the last read face's
        last frame held, that face)."""
        audio = np.zeros(steps * self.card.samples_per_step, np.float32) \
            if self._saw_audio else None
        if self._last_face is None:
            return audio, {}, None
        primary, frame = self._last_face
        return audio, {primary: np.repeat(frame[None], steps, axis=0)}, primary


def _most_said(words: Sequence[Word]) -> int | None:
    """The face that said the most of `words` by time (None if the off-screen voice did)."""
    said: dict[int | None, int] = {}
    for word in words:
        said[word.face] = said.get(word.face, 0) + word.end_ms - word.start_ms
    return max(said, key=lambda f: (said[f], f is not None)) if said else None
