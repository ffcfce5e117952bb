"""The exporter's own numerical check: chunked ONNX streaming against PyTorch.

For each modality mix (audio+video, audio only, video only), every clip is streamed through the
exported graphs by `avsync.runtime` chunk by chunk from a fresh state, and compared with the
PyTorch model's forward pass (`AVSyncModel.forward`, the absent modality not given) over the
whole padded batch with the same chunk size (which equals its own `step` streaming, tested in
tests/models). Compared per valid step: CTC log-probs (the gate: max abs diff <= tolerance),
and reported beside it: sync embeddings, decoder memory, ASD logits and whether the greedy
transcripts are identical. A failing model is never written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from avsync.export.clips import LabelledClip

from avsync.errors import AvsyncError
from avsync.models.model import AVSyncModel
from avsync.runtime.ctc import greedy, prefix_beam_search
from avsync.runtime.model import Model
from avsync.runtime.offline import ClipOutputs, run_clips
from avsync.timebase import SAMPLES_PER_STEP

TOLERANCE: float = 1e-3
MODALITIES: dict[str, tuple[bool, bool]] = {"av": (True, True), "audio": (True, False),
                                            "video": (False, True)}


class ParityError(AvsyncError):
    """The exported graphs do not reproduce the PyTorch model; nothing was written."""


@dataclass(frozen=True)
class ParityReport:
    clips: int
    steps: int
    batch: int
    chunk_steps: int
    tolerance: float
    max_abs_diff_log_probs: float
    max_abs_diff_embed: float
    max_abs_diff_memory: float
    max_abs_diff_asd_logits: float
    greedy_identical: bool
    beam_identical: bool  # best of the CTC prefix beam search, as the runtime decodes
    per_modality: dict[str, float]  # max abs diff of log-probs per modality mix

    @property
    def passed(self) -> bool:
        # The gate is the numbers; identical greedy transcripts are reported (an untrained
        # model's near-uniform log-probs can flip an argmax tie at 1e-6).
        return self.max_abs_diff_log_probs <= self.tolerance

    def to_json(self) -> dict:
        return {**asdict(self), "passed": self.passed}


@torch.no_grad()
def torch_outputs(model: AVSyncModel, clips: Sequence[LabelledClip], chunk_steps: int | None,
                  audio: bool, video: bool) -> list[ClipOutputs]:
    """PyTorch's forward pass over the whole padded batch with the given chunking, each
    modality given or absent."""
    lengths = torch.tensor([c.steps for c in clips])
    t, n = int(lengths.max()), len(clips)
    r = clips[0].rois.shape[-1]
    pcm = torch.zeros(n, t * SAMPLES_PER_STEP)
    rois = torch.zeros(n, t, r, r, dtype=torch.uint8)
    for i, clip in enumerate(clips):
        pcm[i, :len(clip.audio)] = torch.from_numpy(clip.audio)
        rois[i, :clip.steps] = torch.from_numpy(clip.rois)
    out = model(pcm if audio else None, lengths * SAMPLES_PER_STEP if audio else None,
                rois if video else None, lengths if video else None, chunk_size=chunk_steps)

    def rows(x: torch.Tensor | None, i: int, length: int) -> np.ndarray | None:
        return None if x is None else x[i, :length].numpy()

    return [ClipOutputs(out.fusion.log_probs[i, :length].numpy(),
                        out.fusion.memory[i, :length].numpy(),
                        rows(None if out.audio is None else out.audio.embeddings, i, length),
                        rows(None if out.visual is None else out.visual.embeddings, i, length),
                        rows(out.asd_logits, i, length))
            for i, length in enumerate(lengths.tolist())]


def _max_diff(pairs: list[tuple[np.ndarray | None, np.ndarray | None]]) -> float:
    diffs = [float(np.abs(a - b).max()) for a, b in pairs
             if a is not None and b is not None and a.size]
    return max(diffs, default=0.0)


def check_parity(torch_model: AVSyncModel, onnx_model: Model, clips: Sequence[LabelledClip],
                 chunk_steps: int, tolerance: float = TOLERANCE) -> ParityReport:
    """Compare for every modality mix; -> the report (raise nothing: see `require_parity`)."""
    worst = {"log_probs": 0.0, "embed": 0.0, "memory": 0.0, "asd": 0.0}
    per_modality, identical, beam_identical = {}, True, True
    for name, (audio, video) in MODALITIES.items():
        ours = run_clips(onnx_model, [c.runtime_input(audio, video) for c in clips], chunk_steps)
        theirs = torch_outputs(torch_model, clips, chunk_steps, audio, video)
        pairs = list(zip(ours, theirs, strict=True))
        per_modality[name] = _max_diff([(a.log_probs, b.log_probs) for a, b in pairs])
        worst["log_probs"] = max(worst["log_probs"], per_modality[name])
        worst["embed"] = max(worst["embed"], _max_diff(
            [(a.audio_embed, b.audio_embed) for a, b in pairs]
            + [(a.visual_embed, b.visual_embed) for a, b in pairs]))
        worst["memory"] = max(worst["memory"], _max_diff([(a.memory, b.memory) for a, b in pairs]))
        worst["asd"] = max(worst["asd"], _max_diff([(a.asd_logits, b.asd_logits)
                                                   for a, b in pairs]))
        identical &= all(greedy(a.log_probs) == greedy(b.log_probs) for a, b in pairs)
        beam_identical &= all(prefix_beam_search(a.log_probs)[0].tokens
                              == prefix_beam_search(b.log_probs)[0].tokens for a, b in pairs)
    return ParityReport(
        clips=len(clips), steps=sum(c.steps for c in clips), batch=len(clips),
        chunk_steps=chunk_steps, tolerance=tolerance,
        max_abs_diff_log_probs=worst["log_probs"], max_abs_diff_embed=worst["embed"],
        max_abs_diff_memory=worst["memory"], max_abs_diff_asd_logits=worst["asd"],
        greedy_identical=identical, beam_identical=beam_identical, per_modality=per_modality)


def require_parity(report: ParityReport, what: str) -> None:
    """Raise ParityError with the figures when the report fails."""
    if not report.passed:
        raise ParityError(
            f"{what}: ONNX streaming differs from PyTorch: max |diff| of log-probs "
            f"{report.max_abs_diff_log_probs:.3g} (limit {report.tolerance:g}; per modality "
            f"{report.per_modality}), greedy transcripts identical: {report.greedy_identical}; "
            "the model was not written. Check that every op of the streaming step exports "
            "(see export/onnx_export.py) and report the figures.")
