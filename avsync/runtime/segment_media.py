"""`SegmentMedia`: the media of a stream's open segment, kept for the second pass.

A streaming encoder reads each step with at most `chunk_steps - 1` steps of look-ahead, and the
tiny models read words far worse that way than from the whole utterance (docs/training.md, "The
streaming gap"). So at an endpoint the recogniser re-reads the segment whole: the step graphs
accept a chunk of any length, and one chunk holding the whole segment, from a fresh state, is
exactly the full-utterance attention the model was also trained with. This class keeps the
audio and the primary face's mouth ROIs of the steps since the segment began, step-aligned, and
builds that one chunk.
"""

from __future__ import annotations

import numpy as np

from avsync.runtime.model import ChunkRequest, StreamState

SECOND_PASS_TRACK: int = 0  # the face track id of the re-read chunk (any id does)


class SegmentMedia:
    """Step-aligned audio and primary-face ROIs from stream step `start` on.

    A step without audio is kept as silence and one without a primary face as None (the
    nearest face frame stands in when the segment is re-read); a segment with no audio at all,
    or no face at all, is re-read without that modality, as the first pass read it.
    """

    def __init__(self, samples_per_step: int) -> None:
        self.samples_per_step = samples_per_step
        self.start = 0
        self._audio: list[np.ndarray] = []  # one (samples_per_step,) row per step
        self._heard: list[bool] = []  # did the step have real audio
        self._faces: list[np.ndarray | None] = []  # one (R, R) uint8 ROI or None per step

    @property
    def end(self) -> int:
        """The stream step after the last one kept."""
        return self.start + len(self._audio)

    def add(self, start_step: int, steps: int, audio: np.ndarray | None,
            face: np.ndarray | None) -> None:
        """One chunk's media: audio (steps * samples_per_step,) or None, face (steps, R, R)
        uint8 or None. Chunks arrive in stream order; a gap (never expected) restarts."""
        if start_step != self.end:  # never expected: start over at this chunk
            self._audio, self._heard, self._faces = [], [], []
            self.start = start_step
        if audio is None:
            self._audio += [np.zeros(self.samples_per_step, np.float32)] * steps
        else:
            self._audio += list(np.asarray(audio, np.float32).reshape(steps, -1))
        self._heard += [audio is not None] * steps
        self._faces += [None] * steps if face is None else list(face)

    def drop_before(self, step: int) -> None:
        """Forget the steps before `step` (a new segment begins there)."""
        cut = min(max(step - self.start, 0), len(self._audio))
        del self._audio[:cut], self._heard[:cut], self._faces[:cut]
        self.start += cut

    def request(self, begin: int, end: int, state: StreamState) -> ChunkRequest | None:
        """Steps [begin, end) as one chunk on `state` (a fresh one); None if not all kept."""
        if begin < self.start or end > self.end or end <= begin:
            return None
        rows = slice(begin - self.start, end - self.start)
        audio = np.concatenate(self._audio[rows]) if any(self._heard[rows]) else None
        faces = self._faces[rows]
        known = [i for i, f in enumerate(faces) if f is not None]
        if not known:
            return ChunkRequest(state, audio, {}, None, end - begin)
        filled, last = [], faces[known[0]]
        for face in faces:  # a lost face: the last frame held (the first one before it)
            last = face if face is not None else last
            filled.append(last)
        rois = {SECOND_PASS_TRACK: np.stack(filled).astype(np.uint8, copy=False)}
        return ChunkRequest(state, audio, rois, SECOND_PASS_TRACK, end - begin)
