"""Media as it comes -> the `StreamChunk`s of a stream: what a file's transcription feeds the
stream API (and `StreamingRecognizer.feed` its own chunks), cut the way the server cuts a live
session's media (serve/media_input.py).

Audio is 16 kHz float32 samples; video is one entry per step (frame): every face found in it,
{track id: (mouth ROI (R, R) uint8, face box (x, y, w, h))}. A chunk of C steps is cut when
both modalities cover it. Its faces are the faces of its last frame, each held from its first
frame in the chunk (a face that appeared mid-chunk takes its first ROI for the steps before);
its boxes are the last frame's; its preferred face is the one read before while it lasts, else
the largest. At the end, the rest goes in chunks of at most C, the lagging modality padded
(audio with silence, video by holding the last frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from avsync.runtime.model import TrackId
from avsync.runtime.results import Box

FaceFrame = dict[TrackId, tuple[np.ndarray, Box]]  # one step's faces: ROI and box per track


@dataclass(frozen=True)
class StreamChunk:
    """One chunk of one stream: C steps (C = card.chunk_steps; a stream's last may be less).

    audio: (C*640,) float32 in [-1, 1] @ 16 kHz, or None (video-only, or no audio for it).
    faces: {track id: (C, R, R) uint8 mouth ROIs}, R = card.roi.stored; {} without video.
    boxes: {track id: (x, y, w, h)} each face's box at the chunk's last step, frame pixels
    (what `Speakers` and a final's `box` report).
    preferred_face: the face to read while the detector has not spoken (e.g. the current or
    the largest face); None: the first face.
    steps: C, needed only when there is neither audio nor a face.
    """

    audio: np.ndarray | None = None
    faces: dict[TrackId, np.ndarray] = field(default_factory=dict)
    boxes: dict[TrackId, Box] = field(default_factory=dict)
    preferred_face: TrackId | None = None
    steps: int | None = None


def preferred_face(current: TrackId | None, boxes: dict[TrackId, Box]) -> TrackId | None:
    """The face to read before the speaker detector has spoken: `current` while it is there,
    else the largest."""
    if current in boxes:
        return current
    return max(boxes, key=lambda t: boxes[t][2] * boxes[t][3], default=None)


class ChunkCutter:
    """`push` media, take `StreamChunk`s (see the module docstring)."""

    def __init__(self, chunk_steps: int, samples_per_step: int, *, audio: bool,
                 video: bool) -> None:
        self.chunk_steps, self.samples_per_step = chunk_steps, samples_per_step
        self.audio, self.video = audio, video
        self._samples = np.zeros(0, np.float32)
        self._frames: list[FaceFrame] = []
        self._last: FaceFrame | None = None
        self._preferred: TrackId | None = None

    def push(self, audio: np.ndarray | None = None,
             frames: Sequence[FaceFrame] | None = None) -> list[StreamChunk]:
        """audio (S,) float32 @ 16 kHz; frames: one FaceFrame per step -> whole chunks."""
        if audio is not None and self.audio:
            self._samples = np.concatenate([self._samples, np.asarray(audio, np.float32)])
        if frames is not None and self.video:
            self._frames.extend(frames)
        chunks = []
        while self._buffered() >= self.chunk_steps:
            chunks.append(self._cut(self.chunk_steps))
        return chunks

    def flush(self) -> list[StreamChunk]:
        """The end of the media: what is left, in chunks of at most C steps, padded."""
        n = self.samples_per_step
        remaining = max(-(-len(self._samples) // n) if self.audio else 0,
                        len(self._frames) if self.video else 0)
        chunks = []
        while remaining > 0:
            steps = min(remaining, self.chunk_steps)
            chunks.append(self._cut(steps))
            remaining -= steps
        return chunks

    def _buffered(self) -> int:
        counts = []
        if self.audio:
            counts.append(len(self._samples) // self.samples_per_step)
        if self.video:
            counts.append(len(self._frames))
        return min(counts) if counts else 0

    def _cut(self, steps: int) -> StreamChunk:
        audio = None
        if self.audio:
            n = steps * self.samples_per_step
            audio = np.pad(self._samples[:n], (0, max(n - len(self._samples), 0)))
            self._samples = self._samples[n:]
        if not self.video:
            return StreamChunk(audio, steps=steps)
        taken = self._frames[:steps]
        del self._frames[:steps]
        if not taken and self._last is None:
            return StreamChunk(audio, steps=steps)
        taken += [taken[-1] if taken else self._last] * (steps - len(taken))  # type: ignore[list-item]
        self._last = taken[-1]
        return self._faces(audio, taken, steps)

    def _faces(self, audio: np.ndarray | None, frames: list[FaceFrame],
               steps: int) -> StreamChunk:
        last = frames[-1]
        faces = {}
        for track in last:
            fill = next(frame[track][0] for frame in frames if track in frame)
            rois = []
            for frame in frames:
                fill = frame[track][0] if track in frame else fill
                rois.append(fill)
            faces[track] = np.stack(rois).astype(np.uint8, copy=False)
        boxes = {track: box for track, (_, box) in last.items()}
        self._preferred = preferred_face(self._preferred, boxes)
        return StreamChunk(audio, faces, boxes, self._preferred, steps)
