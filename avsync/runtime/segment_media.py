"""`SegmentMedia`: the media of a stream's open segment, kept for the second pass.

A streaming encoder reads each step with at most `chunk_steps - 1` steps of look-ahead. At an
endpoint the recogniser re-reads the segment whole: the step graphs accept a chunk of any
length, and one chunk holding the whole segment, from a fresh state, is exactly the
full-utterance attention the model was also trained with. This class keeps the audio and every
face's mouth ROIs of the steps since the segment began, step-aligned, with the ASD logits the
first pass gave each face, and builds that one chunk.

Which lips the second pass reads is decided in hindsight. The stream had to pick its face
causally, and moves to another face only once the ASD is clearly surer of it (about a second
after a new speaker starts, in the two-face demo): those first words were read from the wrong,
closed lips. The second pass reads, at each step, the face whose ASD logits averaged over the
steps around it (`HINDSIGHT_STEPS` either side) are highest, so it switches faces where the
turn actually changed.
"""

from __future__ import annotations

import numpy as np

from avsync.runtime.asd import calibrate
from avsync.runtime.model import ChunkRequest, StreamState, TrackId
from avsync.runtime.model_card import AsdCalibration

SECOND_PASS_TRACK: int = 0  # the face track id of the re-read chunk (any id does)
HINDSIGHT_STEPS: int = 6  # ASD logits averaged over 6 steps (240 ms) each side of a step
SPEAKING_PROBABILITY: float = 0.3  # a word is a face's when its mean P(speaking) is above


UNCALIBRATED = AsdCalibration()  # P(speaking) = sigmoid(logit)


class SegmentMedia:
    """Step-aligned audio, mouth ROIs of every face and their ASD logits from stream step
    `start` on.

    A step without audio is kept as silence and one without a face as empty (the nearest
    chosen face frame stands in when the segment is re-read); a segment with no audio at all,
    or no face at all, is re-read without that modality, as the first pass read it.
    """

    def __init__(self, samples_per_step: int,
                 calibration: AsdCalibration = UNCALIBRATED) -> None:
        self.samples_per_step = samples_per_step
        self.calibration = calibration  # the model's Platt scaling of its ASD logits
        self.start = 0
        self._audio: list[np.ndarray] = []  # one (samples_per_step,) row per step
        self._heard: list[bool] = []  # did the step have real audio
        self._faces: list[dict[TrackId, np.ndarray]] = []  # per step: track -> (R, R) ROI
        self._primary: list[TrackId | None] = []  # the face the stream read at each step
        self._scores: list[dict[TrackId, float]] = []  # per step: track -> ASD logit

    @property
    def end(self) -> int:
        """The stream step after the last one kept."""
        return self.start + len(self._audio)

    def add(self, start_step: int, steps: int, audio: np.ndarray | None,
            faces: dict[TrackId, np.ndarray], primary: TrackId | None) -> None:
        """One chunk's media: audio (steps * samples_per_step,) or None, faces {track:
        (steps, R, R) uint8}, the face the stream reads. Chunks arrive in stream order; a gap
        (never expected) starts over."""
        if start_step != self.end:
            self._audio, self._heard, self._faces = [], [], []
            self._primary, self._scores = [], []
            self.start = start_step
        if audio is None:
            self._audio += [np.zeros(self.samples_per_step, np.float32)] * steps
        else:
            self._audio += list(np.asarray(audio, np.float32).reshape(steps, -1))
        self._heard += [audio is not None] * steps
        self._faces += [{t: rois[k] for t, rois in faces.items()} for k in range(steps)]
        self._primary += [primary] * steps
        self._scores += [{} for _ in range(steps)]

    def score(self, start_step: int, asd_logits: dict[TrackId, np.ndarray]) -> None:
        """The first pass's ASD logits {track: (C,)} for the chunk at `start_step`."""
        for track, logits in asd_logits.items():
            for k, logit in enumerate(np.asarray(logits, np.float32)):
                row = start_step + k - self.start
                if 0 <= row < len(self._scores):
                    self._scores[row][track] = float(logit)

    def drop_before(self, step: int) -> None:
        """Forget the steps before `step` (a new segment begins there)."""
        cut = min(max(step - self.start, 0), len(self._audio))
        for kept in (self._audio, self._heard, self._faces, self._primary, self._scores):
            del kept[:cut]
        self.start += cut

    def _hindsight(self, rows: range) -> list[tuple[TrackId | None, float | None]]:
        """Per step of `rows`: the face whose ASD logits around the step are highest (among
        the faces at that step), else the face the stream read, else None; with that mean
        logit (None without ASD scores)."""
        chosen: list[tuple[TrackId | None, float | None]] = []
        for i in rows:
            present = self._faces[i]
            lo, hi = max(i - HINDSIGHT_STEPS, rows.start), min(i + HINDSIGHT_STEPS + 1, rows.stop)
            means = {}
            for track in present:
                values = [self._scores[j][track] for j in range(lo, hi)
                          if track in self._scores[j]]
                if values:
                    means[track] = float(np.mean(values))
            if means:
                best = max(means, key=lambda t: means[t])
                chosen.append((best, means[best]))
            elif self._primary[i] in present:
                chosen.append((self._primary[i], None))
            else:
                chosen.append((next(iter(present), None), None))
        return chosen

    def _chosen_faces(self, rows: range) -> list[TrackId | None]:
        return [track for track, _ in self._hindsight(rows)]

    def lip_match(self, begin: int, end: int) -> float | None:
        """How far the lips the second pass would read over steps [begin, end) belong to the
        voice: the mean calibrated P(speaking) of each step's chosen face, over the steps the
        ASD scored (not the tail padding); None when not all kept, or without ASD scores (no
        audio: nothing to match)."""
        if begin < self.start or end > self.end or end <= begin:
            return None
        return self._match(self._hindsight(range(begin - self.start, end - self.start)))

    def _match(self, chosen: list[tuple[TrackId | None, float | None]]) -> float | None:
        """`lip_match` of `_hindsight`'s choices."""
        logits = np.array([logit for _, logit in chosen if logit is not None])
        if not len(logits):
            return None
        return float(calibrate(logits, self.calibration).mean())

    def speaker_of(self, begin: int, end: int) -> TrackId | None:
        """The face that said what was heard in stream steps [begin, end): the face whose
        calibrated P(speaking), averaged over those steps and `HINDSIGHT_STEPS` either side,
        is highest and above `SPEAKING_PROBABILITY`; None when no face is speaking then (a
        voice off screen) or none was seen. Without ASD scores (no audio), the face whose lips
        were read. The floor is below one half because a new speaker's ASD rises late (about
        half a second on the bundled model); mismatched lips stay near 0.04 on average."""
        lo = max(begin - HINDSIGHT_STEPS - self.start, 0)
        hi = min(end + HINDSIGHT_STEPS - self.start, len(self._scores))
        if hi <= lo:
            return None
        totals: dict[TrackId, list[float]] = {}
        for row in range(lo, hi):
            for track, logit in self._scores[row].items():
                totals.setdefault(track, []).append(logit)
        if totals:
            means = {t: float(calibrate(np.array(v), self.calibration).mean())
                     for t, v in totals.items()}
            best = max(means, key=lambda t: means[t])
            return best if means[best] > SPEAKING_PROBABILITY else None
        inner = range(max(begin - self.start, 0), min(end - self.start, len(self._faces)))
        read = [t for t in self._chosen_faces(inner) if t is not None] if len(inner) else []
        return max(set(read), key=read.count) if read else None

    def levels(self, begin: int, end: int) -> np.ndarray | None:
        """(end - begin,) float32: each step's audio level (RMS, dB full scale) for steps
        [begin, end); None when they are not all kept or none had audio."""
        if begin < self.start or end > self.end or end <= begin:
            return None
        rows = slice(begin - self.start, end - self.start)
        if not any(self._heard[rows]):
            return None
        power = np.array([float(np.mean(np.square(a))) for a in self._audio[rows]])
        return (10 * np.log10(np.maximum(power, 1e-12))).astype(np.float32)

    def request(self, begin: int, end: int, state: StreamState,
                lips_from: float | None = None) -> ChunkRequest | None:
        """Steps [begin, end) as one chunk on `state` (a fresh one); None if not all kept.
        lips_from: re-read the audio alone when the lips' `lip_match` is below it (lips
        that are not the voice's: an off-screen speaker, a listener, a dub)."""
        if begin < self.start or end > self.end or end <= begin:
            return None
        rows = range(begin - self.start, end - self.start)
        audio = (np.concatenate(self._audio[rows.start:rows.stop])
                 if any(self._heard[rows.start:rows.stop]) else None)
        chosen = self._hindsight(rows)  # once: the gate and the frames both read it
        if audio is not None and lips_from is not None:
            match = self._match(chosen)
            if match is not None and match < lips_from:
                return ChunkRequest(state, audio, {}, None, end - begin)
        frames = [None if t is None else self._faces[i][t]
                  for i, (t, _) in zip(rows, chosen, strict=True)]
        known = [f for f in frames if f is not None]
        if not known:
            return ChunkRequest(state, audio, {}, None, end - begin)
        filled, last = [], known[0]
        for frame in frames:  # a step without a face: the last frame held (the first before)
            last = frame if frame is not None else last
            filled.append(last)
        rois = {SECOND_PASS_TRACK: np.stack(filled).astype(np.uint8, copy=False)}
        return ChunkRequest(state, audio, rois, SECOND_PASS_TRACK, end - begin)
