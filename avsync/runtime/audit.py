"""`avsync data audit ROOT --model DIR`: measure every clip's audio-visual offset.

Real corpora are misaligned (LRS2/LRS3 clips drift by a frame or more, re-encodes shift audio),
and a model trained on them learns the shift. Each clip is streamed through the model's audio
and visual graphs (the face box is the whole frame, as in LRS-style clips), and its offset and
confidence are estimated over the whole clip the SyncNet way (`avsync.runtime.sync`; positive
offset = the audio lags the video). A clip is
- `misaligned`: |offset| > max_offset_ms with confidence >= min_confidence;
- `uncertain`: confidence below min_confidence (e.g. silence or a still face);
- `too_short`: fewer steps than the +-15-step search needs; `error`: undecodable;
- `ok` otherwise.
The report (JSON) lists every clip; `--write-clean-split` writes `<split>.clean.txt` lists
without the misaligned and undecodable clips, in the corpus's own list format.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avsync.errors import ConfigError, MediaError
from avsync.runtime.offline import ClipInput, run_clips
from avsync.runtime.sync import estimate_offset
from avsync.timebase import SYNC_MAX_SHIFT

if TYPE_CHECKING:
    from avsync.data.index import Manifest, ManifestEntry
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


def _load(entry: ManifestEntry, manifest: Manifest, roi: int) -> ClipInput:
    """Decode one manifest entry (its segment, for cut clips) into audio + whole-frame ROIs."""
    from avsync.media.decode import decode_media
    from avsync.media.roi import crop_mouths, whole_frame_face
    from avsync.timebase import FPS, SAMPLE_RATE

    media = decode_media(manifest.media_path(entry))
    if not (media.has_audio and media.has_video) or not len(media.frames):
        raise MediaError("needs both audio and video")
    frames, audio = media.frames, media.audio
    if entry.start is not None:
        end = entry.end if entry.end is not None else media.duration
        frames = frames[int(round(entry.start * FPS)):int(round(end * FPS))]
        audio = audio[int(round(entry.start * SAMPLE_RATE)):int(round(end * SAMPLE_RATE))]
    height, width = frames.shape[1:3]
    return ClipInput(audio, crop_mouths(frames, whole_frame_face(width, height), roi))


def _measure(model: Model, batch: list[tuple[ManifestEntry, ClipInput]], config: AuditConfig
             ) -> list[ClipAudit]:
    outputs = run_clips(model, [clip for _, clip in batch])
    audits = []
    for (entry, clip), out in zip(batch, outputs, strict=True):
        steps = clip.steps(model.card.samples_per_step)
        assert out.audio_embed is not None and out.visual_embed is not None
        result = estimate_offset(out.audio_embed, out.visual_embed, SYNC_MAX_SHIFT, MIN_OVERLAP,
                                 model.card.step_ms)
        if result is None:
            audits.append(ClipAudit(entry.id, entry.split, entry.media, steps, "too_short",
                                    reason=f"{steps} steps < {SYNC_MAX_SHIFT + MIN_OVERLAP}"))
            continue
        confidence = round(result.confidence, 4)
        audits.append(ClipAudit(entry.id, entry.split, entry.media, steps,
                                classify(result.offset_ms, confidence, config),
                                result.offset_ms, confidence))
    return audits


def audit_clips(model: Model, manifest: Manifest, entries: Sequence[ManifestEntry],
                config: AuditConfig) -> Iterator[ClipAudit]:
    """Audit entries in batches of `config.batch_size` (one advance call per chunk index)."""
    batch: list[tuple[ManifestEntry, ClipInput]] = []
    for entry in entries:
        try:
            batch.append((entry, _load(entry, manifest, model.card.roi.stored)))
        except MediaError as error:
            yield ClipAudit(entry.id, entry.split, entry.media, 0, "error", reason=str(error))
            continue
        if len(batch) == config.batch_size:
            yield from _measure(model, batch, config)
            batch = []
    if batch:
        yield from _measure(model, batch, config)


def summary(audits: Sequence[ClipAudit]) -> dict[str, Any]:
    counts = Counter(a.status for a in audits)
    offsets = Counter(a.offset_ms for a in audits
                      if a.offset_ms is not None and a.status in ("ok", "misaligned"))
    return {"clips": len(audits), **{s: counts.get(s, 0) for s in STATUSES},
            "offset_ms_histogram": {str(k): offsets[k] for k in sorted(offsets)}}


def clean_lists(audits: Sequence[ClipAudit], manifest: Manifest, out_dir: Path,
                config: AuditConfig) -> list[Path]:
    """`<split>.clean.txt` for train/val/test: the clips (whole source clips: a cut clip goes
    if any of its segments is dropped) that are neither misaligned nor undecodable."""
    dropped_status = {"misaligned", "error"} | ({"uncertain"} if config.drop_uncertain else set())
    dropped = {a.id.split("#")[0] for a in audits if a.status in dropped_status}
    audited = {a.id for a in audits}
    written = []
    for split in ("train", "val", "test"):
        if not any(a.split == split for a in audits):
            continue  # not audited: leave any older list alone
        lines: dict[str, str] = {}
        for entry in manifest.split(split):
            clip = entry.id.split("#")[0]
            if entry.id in audited and clip not in dropped:
                lines.setdefault(clip, f"{clip} {entry.tag}" if entry.tag else clip)
        path = out_dir / f"{split}.clean.txt"
        path.write_text("".join(line + "\n" for line in lines.values()), "utf-8")
        written.append(path)
    return written


# ---------------------------------------------------------------------------- command line
EPILOG = """\
examples:
  avsync data audit data/synth --model models/tiny
  avsync data audit /corpora/lrs2 --model models/tiny --splits train,val --write-clean-split
  avsync data audit /corpora/lrs3 --model models/tiny --max-offset-ms 80 --limit 500

offset sign: positive = the audio lags the video (move the audio earlier by that much).
The report goes to ROOT/.avsync/audit.json (--out to change); clean lists to
ROOT/.avsync/<split>.clean.txt, in the corpus's own list format."""


def add_parser(commands: argparse._SubParsersAction, formatter: Any) -> None:
    """Register `audit` on `avsync data`'s sub-commands."""
    p = commands.add_parser(
        "audit", formatter_class=formatter, help="measure every clip's AV offset and confidence",
        description="Stream every clip of a corpus through an exported model's audio and "
                    "visual graphs and estimate its audio-visual offset and confidence "
                    "(SyncNet's way, +-15 frames). Misaligned clips are listed in a JSON "
                    "report; optionally write split lists without them.", epilog=EPILOG)
    p.add_argument("root", type=Path, help="corpus root or manifest .jsonl")
    p.add_argument("--model", type=Path, required=True, help="model directory (avsync export)")
    p.add_argument("--splits", default="train,val,test",
                   help="comma-separated splits to audit (default train,val,test)")
    p.add_argument("--max-offset-ms", type=int, default=40,
                   help="|offset| above this is misaligned (default 40 = one frame)")
    p.add_argument("--min-confidence", type=float, default=0.1,
                   help="below this a clip is 'uncertain', not judged (default 0.1)")
    p.add_argument("--limit", type=int, help="audit at most this many clips")
    p.add_argument("--out", type=Path, help="report path (default ROOT/.avsync/audit.json)")
    p.add_argument("--write-clean-split", action="store_true",
                   help="write <split>.clean.txt lists without misaligned/undecodable clips")
    p.add_argument("--drop-uncertain", action="store_true",
                   help="also leave uncertain clips out of the clean lists")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")


def run(args: argparse.Namespace, manifest: Manifest) -> int:
    """Run the audit of `manifest` as `args` say; print a summary; 0 if any clip was audited."""
    from avsync.runtime.loader import load_model

    config = AuditConfig(max_offset_ms=args.max_offset_ms, min_confidence=args.min_confidence,
                         drop_uncertain=args.drop_uncertain)
    model = load_model(args.model, threads=args.threads)
    splits = [s for s in args.splits.split(",") if s]
    entries = [e for e in manifest.entries if e.split in splits][:args.limit]
    audits = list(audit_clips(model, manifest, entries, config))
    out_dir = manifest.root / ".avsync"
    report_path = args.out or out_dir / "audit.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"root": str(manifest.root), "model": str(args.model),
              "model_name": model.card.model_name, "config": asdict(config),
              "convention": "offset_ms > 0: the audio lags the video",
              "summary": summary(audits), "clips": [asdict(a) for a in audits]}
    report_path.write_text(json.dumps(report, indent=1) + "\n", "utf-8")
    s = report["summary"]
    print(f"audited {s['clips']} clips: " + ", ".join(f"{k} {s[k]}" for k in STATUSES)
          + f"; report: {report_path}")
    if args.write_clean_split:
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in clean_lists(audits, manifest, out_dir, config):
            print(f"wrote {path}", file=sys.stderr)
    return 0 if audits else 1


def offsets_of(report: dict[str, Any]) -> np.ndarray:
    """The measured offsets (ms) of a report's judged clips, for plots and tests."""
    return np.array([c["offset_ms"] for c in report["clips"] if c["offset_ms"] is not None])
