"""WER of an exported model on labelled clips, through the runtime's streaming recogniser.

Each clip is transcribed exactly as a live stream would be (`avsync.runtime.transcribe_clip`:
chunking, endpointing, beam search, decoder rescoring, tail padding), so the figure is what a
user of the model directory gets.
"""

from __future__ import annotations

from collections.abc import Sequence

from avsync.export.clips import LabelledClip

from avsync.runtime.model import Model
from avsync.runtime.offline import transcribe_clip, transcript
from avsync.runtime.recognizer import RecognizerConfig
from avsync.text.metrics import cer, wer


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


MODES: dict[str, tuple[bool, bool]] = {"av": (True, True), "audio": (True, False),
                                       "video": (False, True)}  # name -> (audio, video)


def wer_table(model: Model, clips: Sequence[LabelledClip]) -> dict[str, dict[str, float | int]]:
    """`runtime_wer` for audio-visual, audio-only and video-only input."""
    return {mode: runtime_wer(model, clips, *flags) for mode, flags in MODES.items()}


def wer_increase(fp32: dict, int8: dict, max_increase: float, what: str = "int8",
                 remedy: str = "export without --int8 or with another --int8-scheme"
                 ) -> dict[str, float]:
    """`what`'s WER minus fp32's per modality (points, of two `wer_table`s);
    QuantizationError when one exceeds `max_increase` (nothing is then written)."""
    from avsync.export.quantize import QuantizationError

    increase = {m: round(int8[m]["wer"] - fp32[m]["wer"], 2) for m in int8}
    worst = max(increase, key=lambda m: increase[m])
    if increase[worst] > max_increase:
        raise QuantizationError(
            f"{what} {worst} WER {int8[worst]['wer']}% is {increase[worst]:.2f} points above "
            f"fp32 ({fp32[worst]['wer']}%), more than the allowed {max_increase}; {remedy} "
            "(nothing was written)")
    return increase
