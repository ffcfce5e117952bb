"""WER of an exported model on labelled clips, through the runtime's streaming recogniser.

Each clip is transcribed exactly as a live stream would be (`avsync.runtime.transcribe_clip`:
chunking, endpointing, beam search, decoder rescoring, tail padding), so the figure is what a
user of the model directory gets.
"""

from __future__ import annotations

from collections.abc import Sequence

from avsync.runtime.model import Model
from avsync.runtime.offline import transcribe_clip, transcript
from avsync.runtime.recognizer import RecognizerConfig
from avsync.text.metrics import cer, wer
from export.clips import LabelledClip


def runtime_transcripts(model: Model, clips: Sequence[LabelledClip], audio: bool = True,
                        video: bool = True, config: RecognizerConfig | None = None) -> list[str]:
    return [transcript(transcribe_clip(model, clip.runtime_input(audio, video), config))
            for clip in clips]


def runtime_wer(model: Model, clips: Sequence[LabelledClip], audio: bool = True,
                video: bool = True) -> dict[str, float | int]:
    """-> {"wer": %, "cer": %, "clips": n} (percentages, rounded to 0.01)."""
    hyps = runtime_transcripts(model, clips, audio, video)
    refs = [clip.text for clip in clips]
    return {"wer": round(100 * wer(refs, hyps), 2), "cer": round(100 * cer(refs, hyps), 2),
            "clips": len(clips)}
