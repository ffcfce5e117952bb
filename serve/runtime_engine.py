"""`RuntimeEngine`: the production `serve.engine.Engine`, an exported model run by `avsync.runtime`.

The one seam between the server and the runtime (docs/architecture.md, "Runtime contract"):
- `open_stream` makes a `StreamingRecognizer` with an `ActiveSpeakerDetector` as its
  observer, and a `SyncEstimator` when the session asked for sync (fed every chunk, its
  offset search run at most once per `sync_every_steps`);
- `advance` asks each stream's recogniser for its `ChunkRequest`, runs ONE `model.advance` for
  the whole cross-session batch (each session's audio encoded once, every face track of every
  session in one visual batch, one fusion run, one ASD run), then hands each stream its result;
- `finish` is `recognizer.finish()` (tail padding, so the last words become finals).

Faces: the server sends every tracked face (whole frame, client boxes or detected). ASD scores
each of them against the session's audio; the lips that feed recognition and sync are the
most likely speaker's, decided causally from the probabilities of earlier chunks, with a
margin so the choice does not flicker between faces. A face first seen has no probability yet,
so the server's choice (the current face, else the largest) stands until ASD has spoken.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from avsync.serve.engine import ChunkInput, ChunkOutput, EngineInfo, Segment, SyncEstimate
from avsync.serve.protocol import Task, Word

from avsync.errors import ConfigError, ModelLoadError
from avsync.media import roi as media_roi
from avsync.runtime import (
    ActiveSpeakerDetector,
    AsdConfig,
    ChunkResult,
    Final,
    Model,
    RecognizerConfig,
    StreamingRecognizer,
    SyncConfig,
    SyncEstimator,
    load_model,
)
from avsync.timebase import FPS, SAMPLE_RATE, SAMPLES_PER_STEP


@dataclass(frozen=True)
class RuntimeEngineConfig:
    """How the runtime's per-stream parts are set up for every session.

    switch_margin: how much more likely to be speaking (a probability in [0, 1]) another face
    must be than the face being read before recognition moves to its lips. This is the
    streaming pass's choice; a final's second pass picks its lips in hindsight, step by step,
    from the ASD logits around each step (`avsync.runtime.segment_media`).
    sync_every_steps: the offset search over the window costs more than the beam search of a
    chunk, so it runs at most this often (the server reports sync at most once a second).
    """

    recognizer: RecognizerConfig = field(default_factory=RecognizerConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    asd: AsdConfig = field(default_factory=AsdConfig)
    switch_margin: float = 0.2
    sync_every_steps: int = 25

    def __post_init__(self) -> None:
        if not 0.0 <= self.switch_margin <= 1.0:
            raise ConfigError(f"RuntimeEngineConfig.switch_margin must be in [0, 1], got "
                              f"{self.switch_margin}")
        if self.sync_every_steps < 1:
            raise ConfigError(f"RuntimeEngineConfig.sync_every_steps must be >= 1, got "
                              f"{self.sync_every_steps}")


@dataclass
class RuntimeStream:
    """One session's runtime state (opaque to the server)."""

    tasks: frozenset[Task]
    recognizer: StreamingRecognizer
    speakers: ActiveSpeakerDetector
    sync: SyncEstimator | None  # None when the session did not ask for sync
    primary: int | None = None  # the face whose lips are read
    sync_step: int = -(10**9)  # end step of the last sync estimate


class RuntimeEngine:
    """Satisfies `serve.engine.Engine` over a loaded `avsync.runtime.Model`."""

    def __init__(self, model: Model, config: RuntimeEngineConfig | None = None) -> None:
        _check_conventions(model)
        self.model = model
        self.config = config or RuntimeEngineConfig()
        card = model.card
        self.info = EngineInfo(name=card.model_name, version=card.model_version,
                               chunk_steps=card.chunk_steps, roi_stored=card.roi.stored,
                               tasks=tuple(Task), roi_convention=card.roi.convention)

    @classmethod
    def load(cls, model_dir: Path, threads: int = 1, precision: str = "fp32",
             config: RuntimeEngineConfig | None = None) -> RuntimeEngine:
        """threads: onnxruntime intra-op threads per graph (the batcher adds its own);
        precision: fp32, int8 or auto (`avsync.runtime.precision`)."""
        return cls(load_model(model_dir, threads=threads, precision=precision), config)

    def open_stream(self, tasks: frozenset[Task], audio: bool, video: bool) -> RuntimeStream:
        cfg = self.config
        sync = SyncEstimator(cfg.sync, step_ms=self.model.card.step_ms) \
            if Task.SYNC in tasks else None
        speakers = ActiveSpeakerDetector(self.model.card.asd_calibration, cfg.asd)
        recognizer = StreamingRecognizer(self.model, cfg.recognizer, audio=audio or not video,
                                         video=video, observers=(speakers,))
        return RuntimeStream(tasks, recognizer, speakers, sync)

    def advance(self, batch: Sequence[tuple[RuntimeStream, ChunkInput]]
                ) -> list[ChunkOutput | Exception]:
        """One chunk of each stream (see ChunkInput for shapes); one `model.advance` for the
        whole batch. A stream whose own decoding fails gets its exception in its place."""
        requests = []
        for stream, chunk in batch:
            assert chunk.start_step == stream.recognizer.steps, (chunk.start_step,
                                                                 stream.recognizer.steps)
            primary = self._choose_face(stream, chunk)
            for track in [t for t in stream.recognizer.state.visual if t not in chunk.faces]:
                stream.recognizer.state.forget_track(track)  # gone: a return starts fresh
            requests.append(stream.recognizer.request(chunk.audio, chunk.faces, primary,
                                                      chunk.steps))
        results = self.model.advance(requests)
        return [_guarded(self._output, stream, result)
                for (stream, _), result in zip(batch, results, strict=True)]

    def finish(self, stream: RuntimeStream) -> ChunkOutput:
        finals = [e for e in stream.recognizer.finish() if isinstance(e, Final)]
        return ChunkOutput(finals=tuple(_segment(f) for f in finals))

    # --- per stream ----------------------------------------------------------------------
    def _choose_face(self, stream: RuntimeStream, chunk: ChunkInput) -> int | None:
        """The face whose lips this chunk's recognition reads (see the module docstring)."""
        if not chunk.faces:
            return None
        current = stream.primary if stream.primary in chunk.faces else chunk.primary_face
        if current not in chunk.faces:
            current = next(iter(chunk.faces))
        probability = stream.speakers.probabilities
        known = [t for t in chunk.faces if t in probability]
        if known:
            best = max(known, key=lambda t: probability[t])
            if probability[best] >= probability.get(current, 0.0) + self.config.switch_margin:
                current = best
        if current != stream.primary and stream.sync is not None:
            stream.sync.reset()  # the window paired another face's lips with the audio
        stream.primary = current
        return current

    def _output(self, stream: RuntimeStream, result: ChunkResult) -> ChunkOutput:
        events = stream.recognizer.accept(result)
        finals = tuple(_segment(e) for e in events if isinstance(e, Final))
        speaking = {t: p for t, p in stream.speakers.probabilities.items()
                    if t in result.asd_logits}
        return ChunkOutput(partial=stream.recognizer.partial, finals=finals, speaking=speaking,
                           sync=self._sync(stream, result))

    def _sync(self, stream: RuntimeStream, result: ChunkResult) -> SyncEstimate | None:
        """Pair this chunk's audio with the read face's lips; a fresh offset estimate when
        one is due (see RuntimeEngineConfig.sync_every_steps), else None."""
        sync, track = stream.sync, result.primary_face
        if sync is None:
            return None
        if result.audio_embed is None or track is None or track not in result.visual_embed:
            sync.reset()  # the pairing broke: the window starts again
            return None
        sync.push(result.audio_embed, result.visual_embed[track])
        end = result.start_step + result.steps
        if end - stream.sync_step < self.config.sync_every_steps:
            return None
        estimate = sync.estimate()
        if estimate is None:
            return None
        stream.sync_step = end
        return SyncEstimate(estimate.offset_ms, estimate.confidence, track)


def _guarded(output: Callable[[RuntimeStream, ChunkResult], ChunkOutput], stream: RuntimeStream,
             result: ChunkResult) -> ChunkOutput | Exception:
    """One stream's decoding; a failure there is that stream's alone (see Engine.advance)."""
    try:
        return output(stream, result)
    except Exception as error:
        return error


def _segment(final: Final) -> Segment:
    """The runtime's Final → the server's Segment (the runtime's `Word.text` is `word` here)."""
    words = tuple(Word(w.text, w.start_ms, w.end_ms, w.confidence, w.face)
                  for w in final.words)
    return Segment(final.text, final.start_ms, final.end_ms, words, final.face)


def _check_conventions(model: Model) -> None:
    """The server crops mouths and cuts steps with avsync.media and avsync.timebase; a model
    trained on other conventions would be fed subtly wrong input, so refuse it at load."""
    card, roi = model.card, model.card.roi
    ours = (SAMPLE_RATE, FPS, SAMPLES_PER_STEP, media_roi.MOUTH_CENTER_X,
            media_roi.MOUTH_CENTER_Y, media_roi.MOUTH_SIDE)
    theirs = (card.sample_rate, card.fps, card.samples_per_step, roi.mouth_center_x,
              roi.mouth_center_y, roi.mouth_side)
    if any(abs(a - b) > 1e-6 for a, b in zip(ours, theirs, strict=True)):
        raise ModelLoadError(
            f"{model.model_dir / 'model.json'}: sample rate, fps, samples per step and mouth "
            f"box {theirs} differ from this server's {ours} (avsync.timebase, "
            "avsync.media.roi); re-export the model with this version of avsync")
    if card.chunk_steps < 1:
        raise ModelLoadError(f"{model.model_dir / 'model.json'}: chunk_steps "
                             f"{card.chunk_steps} cannot stream; export with --chunk-steps N")
