"""`avsync data audit ROOT --model DIR`: measure every clip's audio-visual offset in a corpus.

Each manifest entry is decoded (its segment, for cut clips; the face box is the whole frame,
as in LRS-style clips) and measured by `avsync.runtime.audit` in batches. The report (JSON)
lists every clip; `write_clean_split` writes `<split>.clean.txt` lists without the misaligned
and undecodable clips, in the corpus's own list format.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avsync.data.index import Manifest, ManifestEntry
from avsync.errors import ConfigError, MediaError
from avsync.runtime.audit import STATUSES, AuditConfig, ClipAudit, ClipLabel, measure, summary
from avsync.runtime.offline import ClipInput

if TYPE_CHECKING:
    from avsync.runtime.model import Model


@dataclass(frozen=True)
class AuditOptions:
    """One audit run: which model, which clips, where the outputs go."""

    model: Path
    splits: tuple[str, ...] = ("train", "val", "test")
    limit: int | None = None
    out: Path | None = None  # default ROOT/.avsync/audit.json
    write_clean_split: bool = False
    threads: int = 1
    config: AuditConfig = field(default_factory=AuditConfig)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1 or self.threads < 1 or not self.splits:
            raise ConfigError(f"need limit >= 1, threads >= 1 and a split: {self}")


def _load(entry: ManifestEntry, manifest: Manifest, roi: int, convention: str) -> ClipInput:
    """Decode one manifest entry (its segment, for cut clips) into audio + mouth ROIs cut by
    the model's crop convention, piece by piece; a damaged file is an error, not a clip."""
    from avsync.media.mouths import read_mouths
    from avsync.timebase import FPS, SAMPLE_RATE

    media = read_mouths(manifest.media_path(entry), roi, convention)
    if media.damage:
        raise MediaError("damaged: " + "; ".join(d.describe() for d in media.damage))
    if not (media.has_audio and media.has_video):
        raise MediaError("needs both audio and video")
    rois, audio = media.rois, media.audio
    if entry.start is not None:
        end = entry.end if entry.end is not None else len(rois) / FPS
        rois = rois[int(round(entry.start * FPS)):int(round(end * FPS))]
        audio = audio[int(round(entry.start * SAMPLE_RATE)):int(round(end * SAMPLE_RATE))]
    return ClipInput(audio, rois)


def audit_clips(model: Model, manifest: Manifest, entries: Sequence[ManifestEntry],
                config: AuditConfig) -> Iterator[ClipAudit]:
    """Audit entries in batches of `config.batch_size` (one advance call per chunk index)."""
    batch: list[tuple[ClipLabel, ClipInput]] = []
    for entry in entries:
        label = ClipLabel(entry.id, entry.split, entry.media)
        try:
            batch.append((label, _load(entry, manifest, model.card.roi.stored,
                                       model.card.roi.convention)))
        except MediaError as error:
            yield ClipAudit(entry.id, entry.split, entry.media, 0, "error", reason=str(error))
            continue
        if len(batch) == config.batch_size:
            yield from measure(model, batch, config)
            batch = []
    if batch:
        yield from measure(model, batch, config)


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


def run_audit(options: AuditOptions, manifest: Manifest) -> dict[str, Any]:
    """Audit `manifest` as `options` say, write the report (and clean lists); -> the report."""
    from avsync.runtime.loader import load_model

    model = load_model(options.model, threads=options.threads)
    entries = [e for e in manifest.entries if e.split in options.splits][:options.limit]
    audits = list(audit_clips(model, manifest, entries, options.config))
    out_dir = manifest.root / ".avsync"
    report_path = options.out or out_dir / "audit.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"root": str(manifest.root), "model": str(options.model),
              "model_name": model.card.model_name, "config": asdict(options.config),
              "convention": "offset_ms > 0: the audio lags the video",
              "summary": summary(audits), "clips": [asdict(a) for a in audits],
              "report": str(report_path)}
    report_path.write_text(json.dumps(report, indent=1) + "\n", "utf-8")
    if options.write_clean_split:
        out_dir.mkdir(parents=True, exist_ok=True)
        report["clean_lists"] = [str(p) for p in clean_lists(audits, manifest, out_dir,
                                                               options.config)]
    return report


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


def options_from_args(args: argparse.Namespace) -> AuditOptions:
    """The command line's options, typed (the only place that reads the Namespace)."""
    return AuditOptions(
        model=args.model, splits=tuple(s for s in args.splits.split(",") if s),
        limit=args.limit, out=args.out, write_clean_split=args.write_clean_split,
        threads=args.threads,
        config=AuditConfig(max_offset_ms=args.max_offset_ms,
                           min_confidence=args.min_confidence,
                           drop_uncertain=args.drop_uncertain))


def print_report(report: dict[str, Any]) -> int:
    """A summary line (and the clean lists written); 0 if any clip was audited."""
    s = report["summary"]
    print(f"audited {s['clips']} clips: " + ", ".join(f"{k} {s[k]}" for k in STATUSES)
          + f"; report: {report['report']}")
    for path in report.get("clean_lists", []):
        print(f"wrote {path}", file=sys.stderr)
    return 0 if s["clips"] else 1


