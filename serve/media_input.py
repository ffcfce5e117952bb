"""One session's media → stream chunks: 16 kHz audio and per-step mouth ROIs, aligned in time.

Runs on a media thread (decoding, resampling, face detection and cropping are CPU work the
event loop must not do); one session's calls are sequential, so no locks.

Alignment: stream time 0 is the capture timestamp of the first audio or video message. Audio
is placed by sample count from its first timestamp (leading samples before 0 are dropped, a
late start or a gap of more than `GAP_US` in the timestamps is filled with silence); each video
frame goes to the nearest 40 ms step of its timestamp, the last frame of a step wins, and a
step without a frame holds the previous one. A chunk of `chunk_steps` steps is handed on when
the audio covers it and a frame at or after its last step arrived, or when one modality runs
more than `max_av_skew_s` ahead of the other: a stalled camera holds its last frame, a stalled
microphone is heard as silence (audio arriving later for those steps is dropped). So neither
buffer grows past the skew, whatever a client sends.

Bounded work: the session's stream clock (serve/clock.py) refuses raw media whose timestamps
would open long gaps; container times, which only the decoder sees, are held to the same
`max_gap_s` here (a jump past it ends the stream as undecodable), and frames to
`max_frame_pixels`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from avsync.serve.audio_input import invalid_samples_error, pcm_to_float
from avsync.serve.config import ServerConfig
from avsync.serve.frames import FaceFinder, decode_frame
from avsync.serve.protocol import (
    BinaryKind,
    ErrorCode,
    MediaHeader,
    Start,
    unpack_face_boxes,
)

from avsync.errors import MediaError, ProtocolError
from avsync.media.resample import StreamingResampler
from avsync.media.roi import FACE_BOX, Box, crop_face
from avsync.runtime import StreamChunk
from avsync.timebase import FPS, SAMPLE_RATE, SAMPLES_PER_STEP, STEP_MS

if TYPE_CHECKING:
    from avsync.media.container_stream import ContainerStreamDecoder, StreamOutput

GAP_US: int = 100_000
STEP_US: int = STEP_MS * 1000


@dataclass(frozen=True)
class Chunk:
    """A stream chunk (`input`: audio, every face's ROIs and box, the preferred face) of
    `input.steps` steps from stream step `start_step`, and its faces' boxes."""

    start_step: int
    input: StreamChunk
    boxes: dict[int, Box]  # face boxes (declared frame pixels) at the chunk's last step


@dataclass
class Fed:
    chunks: list[Chunk] = field(default_factory=list)
    errors: list[ProtocolError] = field(default_factory=list)  # non-fatal unless marked


@dataclass
class _Step:
    rois: dict[int, np.ndarray]
    boxes: dict[int, Box]


class MediaInput:
    """Feed accepted media messages; take aligned chunks. See the module docstring."""

    def __init__(self, start: Start, chunk_steps: int, roi_size: int,
                 limits: ServerConfig | None = None, roi_convention: str = FACE_BOX) -> None:
        """roi_convention: how the model's mouth crops are cut (`avsync.media.roi`)."""
        limits = limits or ServerConfig()
        self.start, self.chunk_steps, self.roi_size = start, chunk_steps, roi_size
        self.roi_convention = roi_convention
        self.max_skew_steps = max(chunk_steps, int(limits.max_av_skew_s * 1000 / STEP_MS))
        self.max_gap_steps = int(limits.max_gap_s * 1000 / STEP_MS)
        self.max_pixels = limits.max_frame_pixels
        self.has_audio = start.audio is not None or bool(start.video and start.video.encoding
                                                          .is_container)
        self.has_video = start.video is not None
        self._origin_us: int | None = None
        self._audio = np.zeros(0, np.float32)  # 16 kHz samples from step self._next on
        self._audio_total = 0  # samples placed since stream time 0
        self._audio_first_us: int | None = None
        self._rate_samples = 0  # samples at the client's rate placed after _audio_first_us
        self._drop = 0  # 16 kHz samples still to drop (audio that started before time 0)
        self._resampler = (StreamingResampler(start.audio.sample_rate, SAMPLE_RATE)
                           if start.audio and start.audio.sample_rate != SAMPLE_RATE else None)
        self._steps: dict[int, _Step] = {}  # frames not yet consumed, by step
        self._held: _Step | None = None  # the last consumed frame
        self._last_frame_step = -1
        self._next = 0  # first step not yet handed on
        self.faces = (FaceFinder(start.video, roi_size, limits.max_faces, roi_convention)
                      if start.video else None)
        self.container: ContainerStreamDecoder | None = None
        self.frames_accepted = 0
        self.late_frames = 0

    # --- feeding -------------------------------------------------------------------------
    def feed(self, header: MediaHeader, payload: bytes | memoryview) -> Fed:
        fed = Fed()
        try:
            if header.kind is BinaryKind.AUDIO:
                self._feed_audio(header, payload, fed)
            elif header.kind is BinaryKind.VIDEO:
                self._feed_frame(header, decode_frame(payload, self.start.video, self.max_pixels))
            elif header.kind is BinaryKind.FACE_BOXES:
                assert self.faces is not None
                self.faces.set_client_boxes(unpack_face_boxes(payload))
            elif header.kind is BinaryKind.CONTAINER:
                self._feed_container(payload)
        except ProtocolError as error:
            fed.errors.append(error)
        except MediaError as error:
            fed.errors.append(_media_error(header, error))
        fed.chunks = self._take(final=False)
        return fed

    def flush(self) -> list[Chunk]:
        """End of stream: everything left, the last step padded with silence."""
        if self.container is not None:
            with contextlib.suppress(MediaError):  # reported when its bytes came
                self._container_output(self.container.close())
        if self._resampler is not None:
            self._append_audio(self._resampler.flush())
        return self._take(final=True)

    @property
    def audio_ms(self) -> int:
        return self._audio_total * 1000 // SAMPLE_RATE

    def _feed_audio(self, header: MediaHeader, payload: bytes | memoryview, fed: Fed) -> None:
        assert self.start.audio is not None
        samples, repaired = pcm_to_float(payload, self.start.audio)
        if repaired:
            fed.errors.append(invalid_samples_error(repaired, header.seq))
        self._place_audio(header.timestamp_us, len(samples), self.start.audio.sample_rate)
        if self._resampler is not None:
            samples = self._resampler.push(samples)
        self._append_audio(samples)

    def _place_audio(self, timestamp_us: int, count: int, rate: int) -> None:
        """Before appending `count` samples captured at `timestamp_us`: align their start."""
        origin = self._set_origin(timestamp_us)
        if self._audio_first_us is None:
            self._audio_first_us = timestamp_us
            self._start_audio_at((timestamp_us - origin) * SAMPLE_RATE // 1_000_000)
        else:
            expected = self._audio_first_us + self._rate_samples * 1_000_000 // rate
            if timestamp_us - expected > GAP_US:  # the client lost audio: keep time with silence
                gap = (timestamp_us - expected) * rate // 1_000_000
                self._rate_samples += gap
                filler = np.zeros(gap, np.float32)
                self._append_audio(self._resampler.push(filler) if self._resampler else filler)
        self._rate_samples += count

    def _start_audio_at(self, offset: int) -> None:
        """The first audio sample belongs at 16 kHz sample `offset` of stream time."""
        self._append_audio(np.zeros(max(0, offset), np.float32))
        self._drop += max(0, -offset)

    def _append_audio(self, samples: np.ndarray) -> None:
        drop = min(self._drop, len(samples))
        if drop:
            samples, self._drop = samples[drop:], self._drop - drop
        self._audio = np.concatenate([self._audio, samples.astype(np.float32, copy=False)])
        self._audio_total += len(samples)

    def _set_origin(self, timestamp_us: int) -> int:
        if self._origin_us is None:
            self._origin_us = timestamp_us
        return self._origin_us

    def _feed_frame(self, header: MediaHeader, gray: np.ndarray) -> None:
        step = int(round((header.timestamp_us - self._set_origin(header.timestamp_us))
                         / STEP_US))
        self._add_frame(step, gray)

    def _add_frame(self, step: int, gray: np.ndarray) -> None:
        assert self.faces is not None
        self.frames_accepted += 1
        if step < self._next:
            self.late_frames += 1  # its step was already recognised; keep it as the held frame
        faces = self.faces.find_faces(gray)
        rois = {track: crop_face(gray, face, self.roi_size, self.roi_convention)
                for track, face in faces.items()}
        entry = _Step(rois, {track: face.box for track, face in faces.items()})
        if step < self._next:
            self._held = entry
            return
        self._steps[step] = entry
        self._last_frame_step = max(self._last_frame_step, step)

    def _feed_container(self, payload: bytes | memoryview) -> None:
        """webm/mp4 bytes: decoded on the decoder's own thread; take what is ready now."""
        from avsync.media.container_stream import ContainerStreamDecoder  # noqa: F811

        if self.container is None:  # the format is sniffed: garbage is refused at once
            self.container = ContainerStreamDecoder(gray=True)
            self._set_origin(0)  # container time 0 is stream time 0
        self.container.push(bytes(payload))
        self._container_output(self.container.poll())

    def _container_output(self, out: StreamOutput) -> None:
        for frame in out.frames:
            self._check_container_media(frame.time, frame.image.size)
            self._add_frame(int(round(frame.time * FPS)), frame.image)
        if out.audio is not None and len(out.audio.samples):
            if self._audio_first_us is None:
                self._check_container_media(out.audio.start, 0)
                self._audio_first_us = int(out.audio.start * 1e6)
                self._start_audio_at(int(round(out.audio.start * SAMPLE_RATE)))
            self._append_audio(out.audio.samples)

    def _check_container_media(self, time_s: float, pixels: int) -> None:
        """Container media must stay within max_gap_s of what came before (its timestamps are
        not in our headers) and frames within max_frame_pixels."""
        if pixels > self.max_pixels:
            raise MediaError(f"the container's frames have {pixels} pixels, more than this "
                             f"server's {self.max_pixels}; scale the video down")
        reached = max(self._last_frame_step, self._next + len(self._audio) // SAMPLES_PER_STEP)
        step = time_s * FPS
        if not step <= max(reached, 0) + self.max_gap_steps:  # also refuses NaN
            raise MediaError(f"container media at {time_s:.3f} s jumps more than "
                             f"{self.max_gap_steps * STEP_MS / 1000:g} s past the stream so far")

    # --- chunking ------------------------------------------------------------------------
    def _take(self, final: bool) -> list[Chunk]:
        chunks = []
        while (end := self._ready_end(final)) > self._next:
            chunks.append(self._make_chunk(self._next, end))
        return chunks

    def _ready_end(self, final: bool) -> int:
        """End step of the next chunk that can be handed on now (≤ self._next: none)."""
        audio_steps = self._next + len(self._audio) // SAMPLES_PER_STEP
        want = self._next + self.chunk_steps
        if final:
            audio_end = self._next + -(-len(self._audio) // SAMPLES_PER_STEP)
            return min(want, max(audio_end, self._last_frame_step + 1))
        if self.has_audio and audio_steps < want:
            if self._audio_silent_container():
                self.has_audio = False  # a container without an audio track: video only
            elif not self._audio_stalled(audio_steps):
                return self._next
        if self.has_video and self._last_frame_step < want - 1:
            skew_ok = self.has_audio and audio_steps - self._last_frame_step > self.max_skew_steps
            return want if skew_ok else self._next
        return want

    def _audio_stalled(self, audio_steps: int) -> bool:
        """Video ran max_skew ahead of the audio: go on, the missing audio heard as silence."""
        return self.has_video and self._last_frame_step - audio_steps > self.max_skew_steps

    def _audio_silent_container(self) -> bool:
        """A container stream whose video ran max_skew ahead without any audio at all."""
        return (self.container is not None and self._audio_first_us is None
                and self._last_frame_step - self._next > self.max_skew_steps)

    def _make_chunk(self, start: int, end: int) -> Chunk:
        steps = end - start
        audio = None
        if self.has_audio:
            audio = self._audio[:steps * SAMPLES_PER_STEP]
            missing = steps * SAMPLES_PER_STEP - len(audio)
            audio = np.pad(audio, (0, missing))
            self._audio = self._audio[steps * SAMPLES_PER_STEP:]
            self._drop += missing  # audio for these steps, if it ever comes, is too late
        faces, boxes, primary = self._chunk_faces(start, end)
        self._next = end
        reported = {t: (b.x, b.y, b.w, b.h) for t, b in boxes.items()}
        return Chunk(start, StreamChunk(audio, faces, reported, primary, steps), boxes)

    def _chunk_faces(self, start: int, end: int) -> tuple[dict, dict[int, Box], int | None]:
        if not self.has_video:
            return {}, {}, None
        per_step = []
        for step in range(start, end):
            self._held = self._steps.pop(step, self._held)
            per_step.append(self._held)
        known = [s for s in per_step if s is not None]
        if not known:
            return {}, {}, None
        latest = known[-1]
        faces = {}
        for track in latest.rois:
            fill = next(s.rois[track] for s in known if track in s.rois)
            rois = []
            for s in per_step:
                fill = s.rois.get(track, fill) if s is not None else fill
                rois.append(fill)
            faces[track] = np.stack(rois)
        assert self.faces is not None
        return faces, latest.boxes, self.faces.primary(latest.boxes)


def _media_error(header: MediaHeader, error: MediaError) -> ProtocolError:
    if header.kind is BinaryKind.CONTAINER:
        return ProtocolError(ErrorCode.UNDECODABLE_CONTAINER,
                             f"container bytes of message {header.seq} cannot be decoded: "
                             f"{error}; the stream cannot continue", fatal=True)
    return ProtocolError(ErrorCode.UNDECODABLE_FRAME,
                         f"video frame {header.seq} cannot be decoded ({error}); it was skipped "
                         "and the previous frame holds its place")
