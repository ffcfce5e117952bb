"""`Model`: the five graphs of a model directory behind one batched streaming call.

`advance(requests)` takes one chunk of each of many streams (a server hands it the pending
chunks of every session at once) and runs each graph once for all of them: the audio step for
every stream that has audio, the visual step for every face track of every stream, the fusion
step for every stream, the ASD head for every (track, audio) pair. Streams whose chunks have
different lengths (a stream's last chunk may be short) are grouped, one run per length.

Time base: a stream starts at step 0; a chunk of C steps is C * 40 ms of audio (C * 640
samples) and C video frames. States are updated in place: a `StreamState` must only be in one
`advance` call at a time (different streams may run in parallel threads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avsync.errors import MediaError
from avsync.runtime.lm import LmFusion, NgramLM
from avsync.runtime.model_card import (
    ASD_HEAD,
    AUDIO_STEP,
    DECODER,
    FUSION_STEP,
    VISUAL_STEP,
    ModelCard,
)
from avsync.runtime.precision import Precision, PrecisionChoice
from avsync.runtime.sessions import Graph

FP32 = PrecisionChoice(Precision.FP32, "fp32 requested")
TrackId = int  # a face track's id, as the face tracker and protocol number them


@dataclass
class StreamState:
    """The packed states of one stream: audio, fusion, and one visual state per face track.

    Arrays are (S,) float32 rows (all zeros for a fresh stream); `steps` counts the steps
    advanced so far. A face track seen for the first time starts from a fresh visual state.
    """

    audio: np.ndarray
    fusion: np.ndarray
    visual: dict[TrackId, np.ndarray] = field(default_factory=dict)
    steps: int = 0

    def forget_track(self, track: TrackId) -> None:
        """Drop a face track's visual state (the face left; a later return starts fresh)."""
        self.visual.pop(track, None)


@dataclass(frozen=True)
class ChunkRequest:
    """One chunk of one stream.

    audio: (C*640,) float32 in [-1, 1] @ 16 kHz, or None (video-only, or audio missing).
    faces: {track id: (C, R, R) uint8 mouth ROIs}, R = card.roi.stored; {} without video.
    primary_face: the track whose lips the recogniser reads (None: the fusion sees no video).
    steps: C, needed only when there is neither audio nor a face.
    """

    state: StreamState
    audio: np.ndarray | None = None
    faces: dict[TrackId, np.ndarray] = field(default_factory=dict)
    primary_face: TrackId | None = None
    steps: int | None = None


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk of one stream produced, per step (C steps from `start_step`).

    ctc_logprobs: (C, V) float32 log-probabilities (blank 0); memory: (C, d_fusion) float32
    (the attention decoder reads it); audio_embed: (C, E) unit-norm or None without audio;
    visual_embed: {track: (C, E)}; asd_logits: {track: (C,)} raw logits, only for tracks
    with audio in the chunk (calibrate with `avsync.runtime.asd`).
    """

    start_step: int
    steps: int
    ctc_logprobs: np.ndarray
    memory: np.ndarray
    audio_embed: np.ndarray | None
    visual_embed: dict[TrackId, np.ndarray]
    asd_logits: dict[TrackId, np.ndarray]
    primary_face: TrackId | None = None


class Model:
    """A loaded model directory (build it with `avsync.runtime.load_model`)."""

    def __init__(self, card: ModelCard, graphs: dict[str, Graph], model_dir: Path,
                 precision: PrecisionChoice = FP32, lm: NgramLM | None = None) -> None:
        self.card = card
        self.graphs = graphs
        self.model_dir = model_dir
        self.precision = precision
        self.lm = lm  # the word language model beside the graphs, if any

    def lm_fusion(self, weight: float | None = None, word_bonus: float | None = None
                  ) -> LmFusion | None:
        """Shallow fusion of the model's language model into CTC beam search, with the card's
        weight and word bonus unless given; None without an LM or with weight 0."""
        if self.lm is None or self.card.lm is None:
            return None
        weight = self.card.lm["weight"] if weight is None else weight
        if weight <= 0:
            return None
        bonus = self.card.lm["word_bonus"] if word_bonus is None else word_bonus
        return LmFusion(self.lm, self.card.vocab, float(weight), float(bonus))

    @property
    def int8(self) -> bool:
        """Whether the int8 graphs run (`precision` says why)."""
        return self.precision.int8

    def __repr__(self) -> str:
        return (f"Model({str(self.model_dir)!r}, name={self.card.model_name!r}, "
                f"precision={self.precision.precision.value}, "
                f"chunk_steps={self.card.chunk_steps})")

    def new_state(self) -> StreamState:
        """The state of a fresh stream."""
        states = self.card.states
        return StreamState(np.zeros(states["audio"].size, np.float32),
                           np.zeros(states["fusion"].size, np.float32))

    # the batched streaming call --------------------------------------------------------------
    def advance(self, requests: Sequence[ChunkRequest]) -> list[ChunkResult]:
        """One chunk for each request, batched; results in request order; states updated."""
        steps = [self._check(r) for r in requests]
        results: list[ChunkResult | None] = [None] * len(requests)
        for c in sorted(set(steps)):
            group = [i for i, s in enumerate(steps) if s == c]
            for i, result in zip(group, self._advance_group(c, [requests[i] for i in group]),
                                 strict=True):
                results[i] = result
        return results  # type: ignore[return-value]

    def _check(self, request: ChunkRequest) -> int:
        """Validate one request's arrays (converting audio to float32); -> its step count."""
        counts = set()
        if request.audio is not None:
            audio = request.audio
            per_step = self.card.samples_per_step
            if audio.ndim != 1 or audio.shape[0] % per_step or audio.shape[0] == 0:
                raise MediaError(f"chunk audio must be (C*{per_step},) samples, a whole number "
                                 f"of steps, got shape {audio.shape}")
            counts.add(audio.shape[0] // per_step)
        r = self.card.roi.stored
        for track, rois in request.faces.items():
            if rois.ndim != 3 or rois.shape[1:] != (r, r) or rois.dtype != np.uint8:
                raise MediaError(f"face track {track!r}: ROIs must be (C, {r}, {r}) uint8 "
                                 f"(the model's roi.stored), got {rois.shape} {rois.dtype}")
            counts.add(rois.shape[0])
        if request.steps is not None:
            counts.add(int(request.steps))
        if len(counts) != 1 or min(counts) < 1:
            raise MediaError(f"a chunk needs one step count >= 1 shared by its audio, faces and "
                             f"`steps`, got {sorted(counts)}")
        if request.primary_face is not None and request.primary_face not in request.faces:
            raise MediaError(f"primary_face {request.primary_face!r} is not among the chunk's "
                             f"face tracks {list(request.faces)}")
        return counts.pop()

    def _advance_group(self, c: int, requests: list[ChunkRequest]) -> list[ChunkResult]:
        audio = self._run_audio(requests)
        visual = self._run_visual(requests)
        log_probs, memory = self._run_fusion(c, requests, audio, visual)
        asd = self._run_asd(requests, audio, visual)
        results = []
        for i, request in enumerate(requests):
            results.append(ChunkResult(
                start_step=request.state.steps, steps=c, ctc_logprobs=log_probs[i],
                memory=memory[i], audio_embed=audio[i][1] if i in audio else None,
                visual_embed={t: visual[(i, t)][1] for t in request.faces},
                asd_logits={t: asd[(i, t)] for t in request.faces if (i, t) in asd},
                primary_face=request.primary_face))
            request.state.steps += c
        return results

    def _run_audio(self, requests: list[ChunkRequest]
                   ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """-> {request index: (features (C, d), embed (C, E))} for requests with audio."""
        index = [i for i, r in enumerate(requests) if r.audio is not None]
        if not index:
            return {}
        pcm = np.stack([np.asarray(requests[i].audio, np.float32) for i in index])
        state = np.stack([requests[i].state.audio for i in index])
        features, embed, new = self.graphs[AUDIO_STEP.name](audio=pcm, state=state)
        out = {}
        for k, i in enumerate(index):
            requests[i].state.audio = new[k]
            out[i] = (features[k], embed[k])
        return out

    def _run_visual(self, requests: list[ChunkRequest]
                    ) -> dict[tuple[int, TrackId], tuple[np.ndarray, np.ndarray]]:
        """-> {(request index, track): (features (C, d), embed (C, E))}: every track, one run."""
        pairs = [(i, t) for i, r in enumerate(requests) for t in r.faces]
        if not pairs:
            return {}
        fresh = np.zeros(self.card.states["visual"].size, np.float32)
        video = np.stack([requests[i].faces[t] for i, t in pairs])
        state = np.stack([requests[i].state.visual.get(t, fresh) for i, t in pairs])
        features, embed, new = self.graphs[VISUAL_STEP.name](video=video, state=state)
        out = {}
        for k, (i, t) in enumerate(pairs):
            requests[i].state.visual[t] = new[k]
            out[(i, t)] = (features[k], embed[k])
        return out

    def _run_fusion(self, c: int, requests: list[ChunkRequest], audio: dict, visual: dict
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Fused CTC log-probs (B, C, V) and memory (B, C, D); a missing modality is zeros
        with its presence flag 0 (as the model was trained)."""
        card = self.card
        a_zero = np.zeros((c, card.audio_dim), np.float32)
        v_zero = np.zeros((c, card.visual_dim), np.float32)
        a_feat, v_feat, a_on, v_on = [], [], [], []
        for i, r in enumerate(requests):
            a_feat.append(audio[i][0] if i in audio else a_zero)
            a_on.append(1.0 if i in audio else 0.0)
            has_video = r.primary_face is not None
            v_feat.append(visual[(i, r.primary_face)][0] if has_video else v_zero)
            v_on.append(1.0 if has_video else 0.0)
        log_probs, memory, new = self.graphs[FUSION_STEP.name](
            audio_features=np.stack(a_feat), visual_features=np.stack(v_feat),
            audio_present=np.asarray(a_on, np.float32), video_present=np.asarray(v_on, np.float32),
            state=np.stack([r.state.fusion for r in requests]))
        for k, r in enumerate(requests):
            r.state.fusion = new[k]
        return log_probs, memory

    def _run_asd(self, requests: list[ChunkRequest], audio: dict, visual: dict
                 ) -> dict[tuple[int, TrackId], np.ndarray]:
        """ASD logits (C,) for every track of every request with audio: the audio is encoded
        once per stream and paired with each of its faces."""
        pairs = [(i, t) for i, r in enumerate(requests) for t in r.faces if i in audio]
        if not pairs:
            return {}
        logits = self.asd_logits(np.stack([visual[p][1] for p in pairs]),
                                 np.stack([audio[i][1] for i, _ in pairs]))
        return {p: logits[k] for k, p in enumerate(pairs)}

    # non-streaming heads ---------------------------------------------------------------------
    def asd_logits(self, visual_embed: np.ndarray, audio_embed: np.ndarray) -> np.ndarray:
        """visual_embed, audio_embed: (B, T, E) float32 -> raw ASD logits (B, T) float32."""
        (logits,) = self.graphs[ASD_HEAD.name](visual_embed=np.asarray(visual_embed, np.float32),
                                               audio_embed=np.asarray(audio_embed, np.float32))
        return logits

    def score(self, memory: np.ndarray, hypotheses: Sequence[Sequence[int]]) -> np.ndarray:
        """Attention-decoder rescoring: log P(hypothesis + eos | memory) of each hypothesis.

        memory: (T, d_fusion) float32, one segment's fusion memory; hypotheses: token id lists
        (no bos/eos) -> (N,) float32 summed log-probabilities, one decoder run for all N.
        """
        return self.score_many([(memory, hypotheses)])[0]

    def score_many(self, segments: Sequence[tuple[np.ndarray, Sequence[Sequence[int]]]]
                   ) -> list[np.ndarray]:
        """`score` for many segments (of many streams) in one decoder run: each (memory
        (T_i, d_fusion), hypotheses) -> (N_i,) float32. Memories are zero-padded to the
        longest, `memory_lengths` masking the padding out (the scores equal `score`'s)."""
        rows = [(memory, list(h)) for memory, hypotheses in segments for h in hypotheses]
        counts = [len(hypotheses) for _, hypotheses in segments]
        if not rows:
            return [np.zeros(0, np.float32) for _ in segments]
        card = self.card
        n, width = len(rows), max(len(h) for _, h in rows) + 1
        steps, dim = max(m.shape[0] for m, _ in rows), rows[0][0].shape[1]
        memory = np.zeros((n, steps, dim), np.float32)
        tokens = np.zeros((n, width), np.int64)
        targets = np.zeros((n, width), np.int64)
        for k, (m, h) in enumerate(rows):
            memory[k, :m.shape[0]] = m
            tokens[k, :len(h) + 1] = [card.bos_id, *h]
            targets[k, :len(h) + 1] = [*h, card.eos_id]
        lengths = np.asarray([len(h) + 1 for _, h in rows], np.int64)
        (log_probs,) = self.graphs[DECODER.name](
            memory=memory, memory_lengths=np.asarray([m.shape[0] for m, _ in rows], np.int64),
            tokens=tokens, token_lengths=lengths)
        picked = np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
        valid = np.arange(width)[None, :] < lengths[:, None]
        scores = (picked * valid).sum(axis=1).astype(np.float32)
        return list(np.split(scores, np.cumsum(counts)[:-1]))
