"""`avsync transcribe FILE...`: offline transcripts of media files with an exported model.

Each file is streamed through the same `StreamingRecognizer` a live session uses (chunking,
endpointing, beam search, decoder rescoring, tail padding), so its segments are what a
client of the server would get as finals. Outputs: JSON Lines (one object per file: segments
with word timings and confidences, and the AV offset when both modalities are used), SRT, or
plain text.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from avsync.errors import ConfigError
from avsync.runtime.model import ChunkResult, Model
from avsync.runtime.recognizer import Final, StreamingRecognizer
from avsync.runtime.sync import estimate_offset

MODEL_ENV = "AVSYNC_MODEL"

EPILOG = f"""\
examples:
  avsync transcribe clip.mp4 --model models/tiny
  avsync transcribe a.mp4 b.mp4 --model models/tiny --format srt --out-dir subs/
  avsync transcribe noisy.mp4 --model models/tiny --video-only      # lip reading alone
  avsync transcribe talk.mp4 --model models/tiny --faces detect     # find the face first
  {MODEL_ENV}=models/tiny avsync transcribe speech.wav --format txt

--faces whole (default) treats every frame as the face box, as in LRS2/LRS3 and the synthetic
corpus; --faces detect finds and tracks faces and reads the lips of the face seen most."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="avsync transcribe", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Transcribe audio/video files offline with an exported model directory "
                    "(no torch needed): audio-visual by default, or audio or video alone.")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--model", type=Path, default=os.environ.get(MODEL_ENV),
                   help=f"model directory from `avsync export` (default: ${MODEL_ENV})")
    p.add_argument("--format", choices=("json", "srt", "txt"), default="json",
                   help="json: one JSON object per file per line (default); srt; txt")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--audio-only", action="store_true", help="ignore the video")
    only.add_argument("--video-only", action="store_true", help="ignore the audio (lip reading)")
    p.add_argument("--faces", choices=("whole", "detect"), default="whole",
                   help="how to find the mouth (default: whole frame is the face)")
    p.add_argument("--out-dir", type=Path,
                   help="write <stem>.<format> per file there instead of printing")
    p.add_argument("--int8", action="store_true", help="run the int8 graphs")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    return p


class _Collector:
    """Keeps the embeddings of a whole stream to estimate its AV offset at the end."""

    def __init__(self) -> None:
        self.audio: list[np.ndarray] = []
        self.visual: list[np.ndarray] = []

    def accept(self, result: ChunkResult) -> None:
        track = result.primary_face
        if result.audio_embed is not None and track in result.visual_embed:
            self.audio.append(result.audio_embed)
            self.visual.append(result.visual_embed[track])


def transcribe_file(model: Model, path: Path, *, audio: bool, video: bool, faces: str
                    ) -> dict:
    """-> {"file", "text", "segments": [...], "modality", "faces", "duration", "sync"}."""
    from avsync.runtime.media_input import load_media

    media = load_media(path, model.card, audio=audio, video=video, faces=faces)  # type: ignore[arg-type]
    clip = media.clip
    collector = _Collector()
    recognizer = StreamingRecognizer(model, audio=clip.audio is not None,
                                     video=clip.rois is not None, observers=(collector,))
    recognizer.feed(audio=clip.audio, frames=clip.rois)
    recognizer.finish()
    sync = None
    if collector.audio:
        result = estimate_offset(np.concatenate(collector.audio), np.concatenate(collector.visual))
        if result is not None:
            sync = {"offset_ms": result.offset_ms, "confidence": round(result.confidence, 4),
                    "convention": "positive: audio lags video"}
    modality = "av" if clip.audio is not None and clip.rois is not None else (
        "audio" if clip.audio is not None else "video")
    return {"file": str(path), "text": " ".join(f.text for f in recognizer.finals),
            "segments": [_segment(f) for f in recognizer.finals], "modality": modality,
            "faces": media.faces, "duration": round(media.duration, 3), "sync": sync,
            "model": model.card.model_name}


def _segment(final: Final) -> dict:
    return {"text": final.text, "start_ms": final.start_ms, "end_ms": final.end_ms,
            "confidence": final.confidence, "words": [asdict(w) for w in final.words]}


def _timestamp(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d},{millis:03d}"


def to_srt(result: dict) -> str:
    cues = [f"{i}\n{_timestamp(s['start_ms'])} --> {_timestamp(s['end_ms'])}\n{s['text']}\n"
            for i, s in enumerate(result["segments"], start=1)]
    return "\n".join(cues)


def render(result: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result, ensure_ascii=False) + "\n"
    if fmt == "srt":
        return to_srt(result)
    return result["text"] + "\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.model is None:
        raise ConfigError(f"no model: pass --model DIR or set {MODEL_ENV}")
    from avsync.runtime.loader import load_model

    model = load_model(args.model, threads=args.threads, int8=args.int8)
    if args.out_dir:
        args.out_dir.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        result = transcribe_file(model, path, audio=not args.video_only,
                                 video=not args.audio_only, faces=args.faces)
        text = render(result, args.format)
        if args.out_dir:
            (args.out_dir / f"{path.stem}.{args.format}").write_text(text, "utf-8")
        else:
            if len(args.files) > 1 and args.format != "json":
                print(f"==> {path} <==")
            sys.stdout.write(text)
    return 0
