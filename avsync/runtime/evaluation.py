"""An exported model directory as an evaluation backend for `avsync eval`.

It has the two methods of the evaluation seam (`train/eval_backend.py`'s `EvalBackend`):
`run(clips)` -> per-step outputs of whole clips streamed through the graphs, and
`transcribe(clips)` -> text by CTC prefix beam search with attention-decoder rescoring over
each whole clip, the same decoding the checkpoint backend does, so a checkpoint and its export
are compared like for like. `chunk=None` streams each clip as a single chunk, which is the
model's full-utterance mode (a step attends to the whole clip). With `finals=True` the
transcripts are instead what a live stream gets: the finals of the runtime's stream API
(`avsync.runtime.streams`: endpointing, the second pass over each segment, rescoring), the
clips advanced in lockstep as a server's sessions are, their first passes, second passes and
rescoring batched across clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avsync.errors import ConfigError
from avsync.runtime.ctc import decode_rescored
from avsync.runtime.loader import load_model
from avsync.runtime.offline import ClipInput, ClipOutputs, run_clips, transcribe_clips, transcript
from avsync.runtime.recognizer import RecognizerConfig
from avsync.runtime.words import tokens_to_text


class RuntimeBackend:
    """`avsync.runtime` behind the evaluation seam. chunk: "stream" (the card's chunk), an
    int, or None (whole clips); ctc_weight 1 turns rescoring off; finals: transcripts are the
    recogniser's finals (then `chunk` only sets what `run` streams, for sync and ASD)."""

    def __init__(self, path: Path, chunk: int | None | str = "stream", beam: int = 8,
                 ctc_weight: float = 0.5, threads: int = 1, precision: str = "fp32",
                 finals: bool = False) -> None:
        if not 0.0 <= ctc_weight <= 1.0 or beam < 1:
            raise ConfigError(f"need beam >= 1 and ctc_weight in [0, 1], got {beam}, {ctc_weight}")
        self.path = Path(path)
        self.model = load_model(self.path, threads=threads, precision=precision)
        card = self.model.card
        self.chunk = card.chunk_steps if chunk == "stream" else chunk
        self.beam, self.ctc_weight, self.finals = beam, ctc_weight, finals
        self.roi_stored = card.roi.stored
        self.roi_convention = card.roi.convention
        self._special = {card.blank_id, card.bos_id, card.eos_id}

    def describe(self) -> dict[str, Any]:
        card = self.model.card
        return {"backend": "onnx-runtime", "path": str(self.path), "model": card.model_name,
                "precision": self.model.precision.precision.value,
                "chunk_steps": self.chunk or "full", "beam": self.beam,
                "ctc_weight": self.ctc_weight, "training": card.training,
                "transcripts": "finals (first pass in chunks, second pass over each segment)"
                if self.finals else "one decode per clip"}

    def run(self, clips: Sequence[ClipInput]) -> list[ClipOutputs]:
        if self.chunk is not None:
            return run_clips(self.model, clips, int(self.chunk))
        n = self.model.card.samples_per_step
        return [run_clips(self.model, [clip], max(clip.steps(n), 1))[0] for clip in clips]

    def transcribe(self, clips: Sequence[ClipInput]) -> list[str]:
        if self.finals:
            config = RecognizerConfig(beam=self.beam, ctc_weight=self.ctc_weight,
                                      rescore=self.ctc_weight < 1.0)
            return [transcript(f) for f in transcribe_clips(self.model, clips, config)]
        return [self.decode(outputs) for outputs in self.run(clips)]

    def decode(self, outputs: ClipOutputs) -> str:
        """Beam search over one clip's log-probs, n-best rescored by the decoder graph."""
        best = decode_rescored(outputs.log_probs,
                               lambda hyps: self.model.score(outputs.memory, hyps),
                               self.beam, self.ctc_weight, self.model.lm_fusion())
        return tokens_to_text(best.tokens, self.model.card.vocab, self._special)
