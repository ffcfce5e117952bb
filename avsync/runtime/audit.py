"""Audio-visual offset audit of clips: measured with a model, classified by thresholds.

`avsync data audit ROOT --model DIR` (`avsync.data.audit`) runs it over a corpus. Real corpora
are misaligned (LRS2/LRS3 clips drift by a frame or more, re-encodes shift audio), and a model
trained on them learns the shift. Each clip is streamed through the model's audio
and visual graphs (the face box is the whole frame, as in LRS-style clips), and its offset and
confidence are estimated over the whole clip the SyncNet way (`avsync.runtime.sync`; positive
offset = the audio lags the video). A clip is
- `misaligned`: |offset| > max_offset_ms with confidence >= min_confidence;
- `uncertain`: confidence below min_confidence (e.g. silence or a still face);
- `too_short`: fewer steps than the +-15-step search needs; `error`: undecodable;
- `ok` otherwise.
This module measures clips it is given (numpy + onnxruntime); reading a corpus, reports and
clean split lists are the data layer's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from avsync.errors import ConfigError
from avsync.runtime.offline import ClipInput, run_clips
from avsync.runtime.sync import estimate_offset
from avsync.timebase import SYNC_MAX_SHIFT

if TYPE_CHECKING:
    from avsync.runtime.model import Model

MIN_OVERLAP: int = 10  # steps paired at the largest shift
STATUSES: tuple[str, ...] = ("ok", "misaligned", "uncertain", "too_short", "error")


@dataclass(frozen=True)
class AuditConfig:
    max_offset_ms: int = 40  # one frame either way is within tolerance
    min_confidence: float = 0.1
    drop_uncertain: bool = False  # also leave uncertain clips out of the clean lists
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.max_offset_ms < 0 or self.batch_size < 1:
            raise ConfigError(f"max_offset_ms must be >= 0 and batch_size >= 1, got "
                              f"{self.max_offset_ms}, {self.batch_size}")


@dataclass(frozen=True)
class ClipLabel:
    """Which clip an input is: its id, split and media path (for the report)."""

    id: str
    split: str
    media: str


@dataclass(frozen=True)
class ClipAudit:
    id: str
    split: str
    media: str
    steps: int
    status: str
    offset_ms: int | None = None
    confidence: float | None = None
    reason: str = ""


def classify(offset_ms: int, confidence: float, config: AuditConfig) -> str:
    if confidence < config.min_confidence:
        return "uncertain"
    return "misaligned" if abs(offset_ms) > config.max_offset_ms else "ok"


def measure(model: Model, batch: Sequence[tuple[ClipLabel, ClipInput]], config: AuditConfig
            ) -> list[ClipAudit]:
    """Stream a batch of clips through the model together and audit each."""
    outputs = run_clips(model, [clip for _, clip in batch])
    audits = []
    for (label, clip), out in zip(batch, outputs, strict=True):
        steps = clip.steps(model.card.samples_per_step)
        assert out.audio_embed is not None and out.visual_embed is not None
        result = estimate_offset(out.audio_embed, out.visual_embed, SYNC_MAX_SHIFT, MIN_OVERLAP,
                                 model.card.step_ms)
        if result is None:
            audits.append(ClipAudit(label.id, label.split, label.media, steps, "too_short",
                                    reason=f"{steps} steps < {SYNC_MAX_SHIFT + MIN_OVERLAP}"))
            continue
        confidence = round(result.confidence, 4)
        audits.append(ClipAudit(label.id, label.split, label.media, steps,
                                classify(result.offset_ms, confidence, config),
                                result.offset_ms, confidence))
    return audits


def summary(audits: Sequence[ClipAudit]) -> dict[str, Any]:
    counts = Counter(a.status for a in audits)
    offsets = Counter(a.offset_ms for a in audits
                      if a.offset_ms is not None and a.status in ("ok", "misaligned"))
    return {"clips": len(audits), **{s: counts.get(s, 0) for s in STATUSES},
            "offset_ms_histogram": {str(k): offsets[k] for k in sorted(offsets)}}


def offsets_of(report: dict[str, Any]) -> np.ndarray:
    """The measured offsets (ms) of a report's judged clips, for plots and tests."""
    return np.array([c["offset_ms"] for c in report["clips"] if c["offset_ms"] is not None])
