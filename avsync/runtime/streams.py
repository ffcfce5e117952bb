"""Many streams, one call: the runtime's stream API (sherpa-onnx's `decode_streams` shape).

    recognizer = Recognizer(model, StreamConfig())
    a = recognizer.open(audio=True, video=True, sync=True)
    b = recognizer.open(audio=True, video=False)
    updates = recognizer.advance([(a, StreamChunk(pcm_a, {0: rois_a}, {0: box_a})),
                                  (b, StreamChunk(pcm_b))])      # one chunk of each
    updates = recognizer.finish([a, b])                          # tail padding, last finals
    for update in updates: update.messages  # Final..., Partial, Speakers, Sync (runtime types)

A `Stream` is one stream's whole state (its `StreamingRecognizer`, active-speaker detector,
sync window, the face it reads, the last report times); callers hold it and hand it back,
nothing else. `advance` batches everything the chunks need across streams: one
`Model.advance` for every first pass, then every second pass the chunks' endpoints ask for in
one more, then every n-best rescoring in one decoder run (`Model.score_many`); `finish` does
the same for the streams' tail padding and last segments. A stream whose own decoding fails
gets its exception in its place (the others' updates stand).

Which lips are read (the same for a live stream and a file): every face track is scored
against the audio; the first pass reads the most likely speaker's lips, decided causally from
the probabilities of earlier chunks, moving to another face only when it is `switch_margin`
more likely (a face first seen has no probability yet: the caller's `preferred_face`, else the
current one, stands until the detector has spoken). A final's second pass re-picks the lips
per step, in hindsight (`avsync.runtime.segment_media`).

Throttles have one owner, here: `speakers` at most every `speakers_every_steps`, `sync` at
most every `sync_every_steps` (the offset search costs more than a chunk's beam search).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from avsync.errors import ConfigError
from avsync.runtime.asd import ActiveSpeakerDetector, AsdConfig
from avsync.runtime.chunking import StreamChunk
from avsync.runtime.model import ChunkResult, Model, TrackId
from avsync.runtime.recognizer import (
    Observer,
    RecognizerConfig,
    Rescore,
    Run,
    StreamingRecognizer,
    Work,
)
from avsync.runtime.results import Box, Event, Final, Partial, Speakers, SpeakerTrack, Sync
from avsync.runtime.sync import SyncConfig, SyncEstimator


@dataclass(frozen=True)
class StreamConfig:
    """How every stream of a `Recognizer` is set up.

    switch_margin: how much more likely to be speaking (a probability in [0, 1]) another face
    must be than the face being read before the first pass moves to its lips.
    speakers_every_steps / sync_every_steps: the least steps between two `Speakers` / `Sync`
    reports of a stream (5 = 200 ms; 25 = once a second).
    """

    recognizer: RecognizerConfig = field(default_factory=RecognizerConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    asd: AsdConfig = field(default_factory=AsdConfig)
    switch_margin: float = 0.2
    speakers_every_steps: int = 5
    sync_every_steps: int = 25

    def __post_init__(self) -> None:
        if not 0.0 <= self.switch_margin <= 1.0:
            raise ConfigError(f"StreamConfig.switch_margin must be in [0, 1], got "
                              f"{self.switch_margin}")
        if min(self.speakers_every_steps, self.sync_every_steps) < 1:
            raise ConfigError(f"StreamConfig.speakers_every_steps and sync_every_steps must be "
                              f">= 1, got {self.speakers_every_steps}, {self.sync_every_steps}")


@dataclass(frozen=True)
class StreamUpdate:
    """What one chunk (or a stream's end) changed: new finals (immutable), the open segment's
    new partial, and the speakers and sync reports that were due."""

    finals: tuple[Final, ...] = ()
    partial: Partial | None = None
    speakers: Speakers | None = None
    sync: Sync | None = None

    @property
    def messages(self) -> list[Final | Partial | Speakers | Sync]:
        """Everything in the order a client gets it: finals, partial, speakers, sync."""
        rest = [m for m in (self.partial, self.speakers, self.sync) if m is not None]
        return [*self.finals, *rest]


Updating = Generator[Work, Any, StreamUpdate]  # a stream's decoding of a chunk or its end


class Stream:
    """One stream's state inside a `Recognizer` (opaque to callers: hand it back)."""

    def __init__(self, model: Model, config: StreamConfig, *, audio: bool, video: bool,
                 transcript: bool, speakers: bool, sync: bool,
                 observers: Sequence[Observer] = ()) -> None:
        self.config = config
        self.transcript, self.report_speakers = transcript, speakers
        self.detector = ActiveSpeakerDetector(model.card.asd_calibration, config.asd)
        self.sync = SyncEstimator(config.sync, step_ms=model.card.step_ms) if sync else None
        self.recognizer = StreamingRecognizer(model, config.recognizer, audio=audio or not video,
                                              video=video, observers=(self.detector, *observers))
        self.primary: TrackId | None = None  # the face whose lips the first pass reads
        self.boxes: dict[TrackId, Box] = {}  # each face's last box
        self._speakers_step: int | None = None  # end step of the last Speakers report
        self._sync_step = -(10**9)  # end step of the last Sync estimate
        self.step_ms = model.card.step_ms

    @property
    def steps(self) -> int:
        """Steps advanced so far (stream time = steps * 40 ms)."""
        return self.recognizer.steps

    def advance(self, chunk: StreamChunk) -> Updating:
        """One chunk -> (as a decoding, see `avsync.runtime.recognizer`) its StreamUpdate."""
        primary = self._choose_face(chunk)
        state = self.recognizer.state
        for track in [t for t in state.visual if t not in chunk.faces]:
            state.forget_track(track)  # gone: a return starts fresh
        self.boxes.update({t: _rounded(b) for t, b in chunk.boxes.items()})
        request = self.recognizer.chunk(chunk.audio, chunk.faces, primary, chunk.steps)
        result = yield Run(request)
        events = yield from self.recognizer.decode(result, request)
        return self._update(events, result, chunk)

    def finish(self) -> Updating:
        """The stream's end -> (as a decoding) a StreamUpdate with its last finals."""
        events = yield from self.recognizer.closing()
        return self._update(events)

    def _update(self, events: list[Event], result: ChunkResult | None = None,
                chunk: StreamChunk | None = None) -> StreamUpdate:
        finals = tuple(replace(e, box=self.boxes.get(e.face)) if e.face is not None else e
                       for e in events if isinstance(e, Final))
        partial = next((e for e in reversed(events) if isinstance(e, Partial)), None)
        if not self.transcript:
            finals, partial = (), None
        if result is None or chunk is None:
            return StreamUpdate(finals, partial)
        return StreamUpdate(finals, partial, self._speakers(result, chunk), self._sync(result))

    def _choose_face(self, chunk: StreamChunk) -> TrackId | None:
        """The face whose lips this chunk's first pass reads (see the module docstring)."""
        if not chunk.faces:
            return None
        current = self.primary if self.primary in chunk.faces else chunk.preferred_face
        if current not in chunk.faces:
            current = next(iter(chunk.faces))
        probability = self.detector.probabilities
        known = [t for t in chunk.faces if t in probability]
        if known:
            best = max(known, key=lambda t: probability[t])
            if probability[best] >= probability.get(current, 0.0) + self.config.switch_margin:
                current = best
        if current != self.primary and self.sync is not None:
            self.sync.reset()  # the window paired another face's lips with the audio
        self.primary = current
        return current

    def _speakers(self, result: ChunkResult, chunk: StreamChunk) -> Speakers | None:
        """Every scored face with a box, when a report is due."""
        end = result.start_step + result.steps
        speaking = {t: p for t, p in self.detector.probabilities.items()
                    if t in result.asd_logits and t in chunk.boxes}
        due = self._speakers_step is None or \
            end - self._speakers_step >= self.config.speakers_every_steps
        if not (self.report_speakers and speaking and due):
            return None
        self._speakers_step = end
        return Speakers((end - 1) * self.step_ms,
                        tuple(SpeakerTrack(t, self.boxes[t], round(p, 4))
                              for t, p in sorted(speaking.items())))

    def _sync(self, result: ChunkResult) -> Sync | None:
        """Pair this chunk's audio with the read face's lips; a fresh offset estimate when
        one is due, else None."""
        sync, track = self.sync, result.primary_face
        if sync is None:
            return None
        if result.audio_embed is None or track is None or track not in result.visual_embed:
            sync.reset()  # the pairing broke: the window starts again
            return None
        sync.push(result.audio_embed, result.visual_embed[track])
        end = result.start_step + result.steps
        if end - self._sync_step < self.config.sync_every_steps:
            return None
        estimate = sync.estimate()
        if estimate is None:
            return None
        self._sync_step = end
        return Sync((end - 1) * self.step_ms, estimate.offset_ms, round(estimate.confidence, 4),
                    track)


class Recognizer:
    """Streams of one model, advanced and finished many at a time (module docstring)."""

    def __init__(self, model: Model, config: StreamConfig | None = None) -> None:
        self.model = model
        self.config = config or StreamConfig()

    def open(self, *, audio: bool = True, video: bool = True, transcript: bool = True,
             speakers: bool = True, sync: bool = False,
             observers: Sequence[Observer] = ()) -> Stream:
        """A new stream. audio/video: the modalities it has; transcript/speakers/sync: which
        reports its updates carry; observers see each real chunk's ChunkResult."""
        return Stream(self.model, self.config, audio=audio, video=video, transcript=transcript,
                      speakers=speakers, sync=sync, observers=observers)

    def advance(self, chunks: Sequence[tuple[Stream, StreamChunk]]
                ) -> list[StreamUpdate | Exception]:
        """One chunk of each stream (a stream at most once) -> each its update, in order."""
        return self._drive([stream.advance(chunk) for stream, chunk in chunks])

    def finish(self, streams: Sequence[Stream]) -> list[StreamUpdate | Exception]:
        """The end of each stream: tail padding, so the last words become finals."""
        return self._drive([stream.finish() for stream in streams])

    def _drive(self, decodings: list[Updating]) -> list[Any]:
        """Run the decodings together: each round, all their pending step-graph work in one
        `Model.advance`, else all their rescoring in one `Model.score_many`."""
        out: list[Any] = [None] * len(decodings)
        waiting: dict[int, Work] = {}

        def resume(i: int, answer: Any) -> None:
            try:
                waiting[i] = decodings[i].send(answer)
            except StopIteration as stop:
                out[i] = stop.value
            except Exception as error:  # that stream's own decoding failed
                out[i] = error

        for i in range(len(decodings)):
            resume(i, None)
        while waiting:
            runs = [i for i, w in waiting.items() if isinstance(w, Run)]
            chosen = runs or list(waiting)
            work = [waiting.pop(i) for i in chosen]
            answers: list[Any] = (
                self.model.advance([w.request for w in work if isinstance(w, Run)]) if runs
                else self.model.score_many([(w.memory, w.hypotheses) for w in work
                                            if isinstance(w, Rescore)]))
            for i, answer in zip(chosen, answers, strict=True):
                resume(i, answer)
        return out


def _rounded(box: Any) -> Box:
    """A face box as reported: (x, y, w, h) rounded to 0.1 pixel (a tuple or `roi.Box`)."""
    x, y, w, h = (box.x, box.y, box.w, box.h) if hasattr(box, "w") else box
    return (round(float(x), 1), round(float(y), 1), round(float(w), 1), round(float(h), 1))

