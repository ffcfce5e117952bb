"""Whole clips through the streaming graphs: what parity checks, audits, evaluation and the
benchmark need. Each clip is streamed chunk by chunk exactly as a live stream would be, and
many clips share each `Model.advance` call (one ONNX run per graph per chunk index).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from avsync.errors import MediaError
from avsync.runtime.chunking import StreamChunk
from avsync.runtime.model import ChunkRequest, ChunkResult, Model
from avsync.runtime.recognizer import RecognizerConfig, StreamingRecognizer
from avsync.runtime.results import Final
from avsync.runtime.streams import Recognizer, StreamConfig

TRACK: int = 0


@dataclass(frozen=True)
class ClipInput:
    """audio: (S,) float32 in [-1, 1] @ 16 kHz or None; rois: (T, R, R) uint8 mouth ROIs at
    card.roi.stored or None. With both, the clip has min(S // 640, T) steps."""

    audio: np.ndarray | None = None
    rois: np.ndarray | None = None

    def steps(self, samples_per_step: int) -> int:
        counts = []
        if self.audio is not None:
            counts.append(len(self.audio) // samples_per_step)
        if self.rois is not None:
            counts.append(len(self.rois))
        if not counts:
            raise MediaError("a clip needs audio, mouth ROIs or both")
        return min(counts)


@dataclass(frozen=True)
class ClipOutputs:
    """Per step of a whole clip: log_probs (T, V), memory (T, D), audio_embed / visual_embed
    (T, E) or None for an absent modality, asd_logits (T,) or None (needs both)."""

    log_probs: np.ndarray
    memory: np.ndarray
    audio_embed: np.ndarray | None
    visual_embed: np.ndarray | None
    asd_logits: np.ndarray | None


def _request(model: Model, clip: ClipInput, state, start: int, stop: int) -> ChunkRequest:
    n = model.card.samples_per_step
    audio = None if clip.audio is None else np.asarray(clip.audio[start * n:stop * n],
                                                       np.float32)
    faces = {} if clip.rois is None else {TRACK: clip.rois[start:stop]}
    return ChunkRequest(state, audio, faces, TRACK if faces else None, stop - start)


def _present(array: np.ndarray | None) -> np.ndarray:
    assert array is not None
    return array


def _join(results: list[ChunkResult], clip: ClipInput) -> ClipOutputs:
    def cat(arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(arrays) if arrays else np.zeros((0,), np.float32)

    return ClipOutputs(
        log_probs=cat([r.ctc_logprobs for r in results]),
        memory=cat([r.memory for r in results]),
        audio_embed=None if clip.audio is None else cat([_present(r.audio_embed) for r in results]),
        visual_embed=None if clip.rois is None else cat([r.visual_embed[TRACK] for r in results]),
        asd_logits=None if clip.audio is None or clip.rois is None
        else cat([r.asd_logits[TRACK] for r in results]))


def _lockstep(model: Model, group: Sequence[ClipInput], chunk_steps: int,
              request: Callable[[int, int, int], ChunkRequest],
              accept: Callable[[int, ChunkResult], object]) -> None:
    """Stream a group of clips from their starts in chunks of `chunk_steps`, one
    `Model.advance` per chunk index: request(clip index, start, stop) -> its ChunkRequest,
    accept(clip index, result)."""
    lengths = [clip.steps(model.card.samples_per_step) for clip in group]
    for start in range(0, max(lengths, default=0), chunk_steps):
        active = [i for i, length in enumerate(lengths) if start < length]
        requests = [request(i, start, min(start + chunk_steps, lengths[i])) for i in active]
        for i, result in zip(active, model.advance(requests), strict=True):
            accept(i, result)


def run_clips(model: Model, clips: Sequence[ClipInput], chunk_steps: int | None = None,
              batch_size: int = 16) -> list[ClipOutputs]:
    """Stream every clip from a fresh state in chunks of `chunk_steps` (default: the card's);
    up to `batch_size` clips share each `advance` call. -> outputs per clip, in order."""
    c = chunk_steps or model.card.chunk_steps
    return [out for first in range(0, len(clips), batch_size)
            for out in _run_group(model, clips[first:first + batch_size], c)]


def _run_group(model: Model, group: Sequence[ClipInput], chunk_steps: int
               ) -> list[ClipOutputs]:
    states = [model.new_state() for _ in group]
    results: list[list[ChunkResult]] = [[] for _ in group]
    _lockstep(model, group, chunk_steps,
              lambda i, start, stop: _request(model, group[i], states[i], start, stop),
              lambda i, result: results[i].append(result))
    return [_join(r, clip) for r, clip in zip(results, group, strict=True)]


def transcribe_clip(model: Model, clip: ClipInput, config: RecognizerConfig | None = None,
                    feed_steps: int | None = None) -> list[Final]:
    """The finals a live stream of this clip would get: fed in pieces of `feed_steps` steps
    (default one chunk), then finished (tail padding included)."""
    recognizer = StreamingRecognizer(model, config, audio=clip.audio is not None,
                                     video=clip.rois is not None)
    n = model.card.samples_per_step
    piece = feed_steps or model.card.chunk_steps
    total = max(len(clip.audio) // n if clip.audio is not None else 0,
                len(clip.rois) if clip.rois is not None else 0)
    for start in range(0, total + piece, piece):
        recognizer.feed(
            audio=None if clip.audio is None else clip.audio[start * n:(start + piece) * n],
            frames=None if clip.rois is None else clip.rois[start:start + piece])
    recognizer.finish()
    return list(recognizer.finals)


def transcribe_clips(model: Model, clips: Sequence[ClipInput],
                     config: RecognizerConfig | None = None, batch_size: int = 16
                     ) -> list[list[Final]]:
    """`transcribe_clip` for many clips at once: up to `batch_size` streams of the stream API
    (`avsync.runtime.streams`) advance in lockstep, one `Recognizer.advance` per chunk index
    and one `finish` for all, as a server batches its sessions."""
    return [finals for first in range(0, len(clips), batch_size)
            for finals in _transcribe_group(model, clips[first:first + batch_size], config)]


def _transcribe_group(model: Model, group: Sequence[ClipInput],
                      config: RecognizerConfig | None) -> list[list[Final]]:
    recognizer = Recognizer(model, StreamConfig(recognizer=config or RecognizerConfig()))
    streams = [recognizer.open(audio=clip.audio is not None, video=clip.rois is not None,
                               speakers=False) for clip in group]

    def chunk(i: int, start: int, stop: int) -> StreamChunk:
        clip, n = group[i], model.card.samples_per_step
        audio = None if clip.audio is None else np.asarray(clip.audio[start * n:stop * n],
                                                           np.float32)
        faces = {} if clip.rois is None else {TRACK: clip.rois[start:stop]}
        return StreamChunk(audio, faces, preferred_face=TRACK if faces else None,
                           steps=stop - start)

    lengths = [clip.steps(model.card.samples_per_step) for clip in group]
    c = model.card.chunk_steps
    for start in range(0, max(lengths, default=0), c):
        active = [i for i, length in enumerate(lengths) if start < length]
        _raised(recognizer.advance([(streams[i], chunk(i, start, min(start + c, lengths[i])))
                                    for i in active]))
    _raised(recognizer.finish(streams))
    return [list(stream.recognizer.finals) for stream in streams]


def _raised(updates: Sequence[object]) -> None:
    """The first stream's failure, raised (offline, one failure fails the call)."""
    for update in updates:
        if isinstance(update, Exception):
            raise update


def transcript(finals: Sequence[Final]) -> str:
    """The text of a stream: its finals joined by spaces."""
    return " ".join(f.text for f in finals if f.text)
