"""The evaluation-backend seam: what `avsync eval` needs from a model, whatever runs it.

A backend takes clips in the runtime's own terms (`avsync.runtime.ClipInput`: audio and/or
mouth ROIs at the stored size, a missing modality is None) and returns
- `run(clips)`: per-step outputs (`avsync.runtime.ClipOutputs`: CTC log-probs, decoder memory,
  audio/visual sync embeddings, ASD logits), and
- `transcribe(clips)`: the decoded text of each clip.
`CheckpointBackend` runs a training checkpoint with PyTorch, in the streaming chunk mode the
model is served with (or whole utterances); `avsync.runtime.evaluation.RuntimeBackend` runs an
exported model directory with onnxruntime, decoding the same way, or (`finals=True`) through
the runtime's stream API as the server does (`avsync.runtime.streams`: the clips advanced
together, second passes and rescoring batched across them). `avsync eval`'s multi-face scenes
go through `avsync transcribe`'s path, the same stream API with every face and the server's
choice of lips. `open_backend` picks one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from avsync.data.dataset import LengthBucketSampler, collate
from avsync.errors import ConfigError
from avsync.models.checkpoint import load_checkpoint
from avsync.runtime.ctc import decode_rescored
from avsync.runtime.offline import ClipInput, ClipOutputs
from avsync.timebase import SAMPLES_PER_STEP


class EvalBackend(Protocol):
    roi_stored: int  # side of the uint8 mouth ROIs the backend takes
    roi_convention: str  # how they are cut (avsync.media.roi)

    def describe(self) -> dict[str, Any]: ...

    def run(self, clips: Sequence[ClipInput]) -> list[ClipOutputs]: ...

    def transcribe(self, clips: Sequence[ClipInput]) -> list[str]: ...


def clip_steps(clip: ClipInput) -> int:
    return clip.steps(SAMPLES_PER_STEP)


class CheckpointBackend:
    """A checkpoint's model in PyTorch. chunk: attention chunk in steps (default the model's
    streaming chunk; None = whole utterance). Decoding: CTC prefix beam search of width
    `beam`, then the attention decoder rescores the n-best with score = ctc_weight * CTC +
    (1 - ctc_weight) * decoder (ctc_weight 1 turns rescoring off)."""

    def __init__(self, path: Path, chunk: int | None | str = "stream", beam: int = 8,
                 ctc_weight: float = 0.5, batch_steps: int = 4000) -> None:
        loaded = load_checkpoint(path)
        self.path, self.model, self.tokenizer = path, loaded.model, loaded.tokenizer
        self.config, self.training = loaded.config, loaded.training
        if isinstance(chunk, str) and chunk != "stream":
            raise ConfigError(f"chunk must be 'stream', None (whole utterance) or steps, got "
                              f"{chunk!r}")
        self.chunk: int | None = (self.config.streaming.chunk_size if chunk == "stream"
                                  else chunk if isinstance(chunk, int) else None)
        if not 0.0 <= ctc_weight <= 1.0 or beam < 1:
            raise ConfigError(f"need beam >= 1 and ctc_weight in [0, 1], got {beam}, {ctc_weight}")
        self.beam, self.ctc_weight, self.batch_steps = beam, ctc_weight, batch_steps
        self.roi_stored = self.config.visual_frontend.roi_stored
        self.roi_convention = self.config.visual_frontend.roi_convention

    def describe(self) -> dict[str, Any]:
        return {"backend": "checkpoint", "path": str(self.path), "model": self.config.name,
                "chunk_steps": self.chunk or "full", "beam": self.beam,
                "ctc_weight": self.ctc_weight, "global_step": self.training.get("global_step"),
                "data": self.training.get("data", {}).get("source_root")}

    def run(self, clips: Sequence[ClipInput]) -> list[ClipOutputs]:
        lengths = [max(clip_steps(c), 1) for c in clips]
        out: dict[int, ClipOutputs] = {}
        for indices in LengthBucketSampler(lengths, self.batch_steps, shuffle=False):
            out.update(zip(indices, self._run_batch([clips[i] for i in indices]), strict=True))
        return [out[i] for i in range(len(clips))]

    @torch.no_grad()
    def _run_batch(self, clips: list[ClipInput]) -> list[ClipOutputs]:
        batch, audio_present, video_present = self._batch(clips)
        m = self.model
        audio = m.audio_encoder(batch["audio"], batch["audio_lengths"], self.chunk)
        visual = m.visual_encoder(batch["video"], batch["video_lengths"], self.chunk)
        fusion = m.fuse(audio.features, visual.features, batch["video_lengths"],
                        chunk_size=self.chunk, audio_present=audio_present,
                        video_present=video_present)
        asd = m.asd_head(visual.embeddings, audio.embeddings)
        outputs = []
        for i, clip in enumerate(clips):
            t = int(batch["video_lengths"][i])
            a_embed = audio.embeddings[i, :t].numpy() if clip.audio is not None else None
            v_embed = visual.embeddings[i, :t].numpy() if clip.rois is not None else None
            outputs.append(ClipOutputs(
                fusion.log_probs[i, :t].numpy(), fusion.memory[i, :t].float().numpy(),
                a_embed, v_embed,
                asd[i, :t].numpy() if a_embed is not None and v_embed is not None else None))
        return outputs

    def _batch(self, clips: list[ClipInput]) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
        """Pad with `avsync.data.collate`; an absent modality is fed zeros and flagged absent."""
        roi = self.roi_stored
        samples = []
        for clip in clips:
            t = clip_steps(clip)
            audio = np.zeros(t * SAMPLES_PER_STEP, np.float32) if clip.audio is None \
                else np.asarray(clip.audio[:t * SAMPLES_PER_STEP], np.float32)
            rois = np.zeros((t, roi, roi), np.uint8) if clip.rois is None \
                else np.array(clip.rois[:t], np.uint8)  # a writable copy for torch
            samples.append({"id": "", "audio": torch.from_numpy(audio),
                            "video": torch.from_numpy(rois),
                            "tokens": torch.zeros(0, dtype=torch.int64),
                            "speech_mask": torch.zeros(t, dtype=torch.bool)})
        present = [(c.audio is not None, c.rois is not None) for c in clips]
        return (collate(samples), torch.tensor([float(a) for a, _ in present]),
                torch.tensor([float(v) for _, v in present]))

    def transcribe(self, clips: Sequence[ClipInput]) -> list[str]:
        return [self.decode(outputs) for outputs in self.run(clips)]

    def decode(self, outputs: ClipOutputs) -> str:
        """Beam search over one clip's log-probs, n-best rescored by the attention decoder."""
        memory = torch.from_numpy(outputs.memory)

        def scorer(hypotheses: list[tuple[int, ...]]) -> np.ndarray:
            return self.model.decoder.score([list(h) for h in hypotheses], memory).numpy()

        best = decode_rescored(outputs.log_probs, scorer, self.beam, self.ctc_weight)
        return self.tokenizer.decode(list(best.tokens))


def open_backend(model: Path, threads: int | None = None, **options: Any) -> EvalBackend:
    """A checkpoint file -> `CheckpointBackend`; an exported model directory -> the runtime's
    `RuntimeBackend` (onnxruntime with `threads` intra-op threads). options: chunk, beam,
    ctc_weight."""
    if model.is_file():
        return CheckpointBackend(model, **options)
    if model.is_dir():
        from avsync.runtime.evaluation import RuntimeBackend

        return RuntimeBackend(model, threads=threads or 1, **options)
    raise ConfigError(f"{model}: no such checkpoint or model directory")
