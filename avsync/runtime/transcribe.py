"""`avsync transcribe FILE...`: offline transcripts of media files with an exported model.

Each file is streamed through the stream API a live session uses (`avsync.runtime.streams`:
chunking, endpointing, beam search, the second pass, decoder rescoring, tail padding, and with
several faces the same choice of lips, causal for the first pass and per step in hindsight
for the second), so its segments are what a client of the server streaming the file would get
as finals. The file is read piece by piece
(`avsync.runtime.media_input.MediaStream`), so memory stays flat for any duration and
resolution; `-` reads stdin (spooled to a temporary file: an mp4 needs its index, which may
come last). Outputs: JSON Lines (one object per file: segments with word timings and
confidences, the AV offset when both modalities are used, and whether the file decoded
completely), SRT, or plain text.

Every file is attempted; failures are listed on stderr at the end. Exit status: 0 when every
file was transcribed completely, 1 when any file failed, 3 when all were transcribed but some
were damaged (part of their media could not be decoded: `"complete": false` and the lost
stretches in `"damage"`, and a warning on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from avsync.errors import AvsyncError, ConfigError
from avsync.runtime.chunking import ChunkCutter, StreamChunk
from avsync.runtime.model import ChunkResult, Model
from avsync.runtime.precision import add_precision_argument
from avsync.runtime.results import Final
from avsync.runtime.streams import Recognizer, Stream, StreamUpdate
from avsync.runtime.sync import RunningOffset

MODEL_ENV = "AVSYNC_MODEL"
STDIN = "-"
EXIT_FAILED: int = 1  # at least one file gave no transcript
EXIT_DAMAGED: int = 3  # every file transcribed, at least one with media lost to damage

EPILOG = f"""\
examples:
  avsync transcribe clip.mp4 --model models/tiny
  avsync transcribe a.mp4 b.mp4 --model models/tiny --format srt --out-dir subs/
  avsync transcribe noisy.mp4 --model models/tiny --video-only      # lip reading alone
  avsync transcribe talk.mp4 --model models/tiny --faces detect     # find the face first
  ffmpeg -i rtsp://cam -t 60 -f matroska - | avsync transcribe - --model models/tiny
  {MODEL_ENV}=models/tiny avsync transcribe speech.wav --format txt

--faces whole (default) treats every frame as the face box, as in LRS2/LRS3 and the synthetic
corpus; --faces detect finds and tracks every face and reads, step by step, the lips of the
face that is speaking (as the server does), labelling each segment with its face.
Rotated (phone) video is read upright; cover art and still images are not video.
exit status: 0 all files transcribed completely; 1 a file failed (listed on stderr);
3 all transcribed, but some damaged ("complete": false, the lost stretches in "damage")."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="avsync transcribe", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Transcribe audio/video files offline with an exported model directory "
                    "(no torch needed): audio-visual by default, or audio or video alone.")
    p.add_argument("files", nargs="+", metavar="FILE", help=f"media files; {STDIN} for stdin")
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
                   help="write one file per input there instead of printing: <stem>.<format>; "
                        "<name>.<format> where stems collide, -2, -3 where names do")
    add_precision_argument(p)
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    return p


class _OffsetObserver:
    """Feeds every chunk with audio and the read face to a whole-stream RunningOffset."""

    def __init__(self) -> None:
        self.offset = RunningOffset()

    def accept(self, result: ChunkResult) -> None:
        track = result.primary_face
        if result.audio_embed is not None and track in result.visual_embed:
            self.offset.push(result.audio_embed, result.visual_embed[track])


def transcribe_file(model: Model, path: str | Path, *, audio: bool, video: bool, faces: str,
                    name: str | None = None) -> dict:
    """-> {"file", "text", "segments": [...], "modality", "faces", "duration", "sync",
    "model", "complete", "damage": [...], "warnings": [...]}; `name`: what "file" says."""
    from avsync.runtime.media_input import MediaStream

    media = MediaStream(path, model.card, audio=audio, video=video,
                        faces=faces)  # type: ignore[arg-type]
    observer = _OffsetObserver()
    recognizer = Recognizer(model)
    stream = recognizer.open(audio=media.has_audio, video=media.has_rois, speakers=False,
                             observers=(observer,))
    cutter = ChunkCutter(model.card.chunk_steps, model.card.samples_per_step,
                         audio=media.has_audio, video=media.has_rois)
    finals: list[Final] = []
    for audio_piece, frames in media.steps():
        finals += _advanced(recognizer, stream, cutter.push(audio_piece, frames))
    finals += _advanced(recognizer, stream, cutter.flush())
    finals += _update(recognizer.finish([stream])[0]).finals
    offset = observer.offset.result()
    sync = None if offset is None else {
        "offset_ms": offset.offset_ms, "confidence": round(offset.confidence, 4),
        "convention": "positive: audio lags video"}
    modality = "av" if media.has_audio and media.has_rois else (
        "audio" if media.has_audio else "video")
    return {"file": str(path) if name is None else name,
            "text": " ".join(f.text for f in finals),
            "segments": [_segment(f) for f in finals], "modality": modality,
            "faces": media.face_mode, "duration": round(media.duration, 3), "sync": sync,
            "model": model.card.model_name, "complete": not media.damage,
            "damage": [{"stream": d.stream, "start_s": d.start, "end_s": d.end,
                        "lost_s": round(d.seconds, 3), "reason": d.reason}
                       for d in media.damage],
            "warnings": list(media.warnings)}


def _advanced(recognizer: Recognizer, stream: Stream, chunks: list[StreamChunk]
              ) -> list[Final]:
    """Run the chunks of one stream -> the finals they closed."""
    return [final for chunk in chunks
            for final in _update(recognizer.advance([(stream, chunk)])[0]).finals]


def _update(update: StreamUpdate | Exception) -> StreamUpdate:
    if isinstance(update, Exception):
        raise update
    return update


def _segment(final: Final) -> dict:
    """face: the face track that said most of the segment (words: each its own), None for a
    voice no visible face is saying or without video; box: that face's last box (x, y, w, h
    frame pixels), as the server's finals carry it."""
    return {"text": final.text, "start_ms": final.start_ms, "end_ms": final.end_ms,
            "confidence": final.confidence, "face": final.face,
            "box": None if final.box is None else [round(float(v), 1) for v in final.box],
            "words": [asdict(w) for w in final.words]}


def labelled(segment: dict) -> str:
    """A segment's text after who said it: `[face 1] ...` (faces counted from 1, track id +
    1), the bare text when no visible face said it."""
    face = segment.get("face")
    return segment["text"] if face is None else f"[face {face + 1}] {segment['text']}"


def _timestamp(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d},{millis:03d}"


def to_srt(result: dict) -> str:
    cues = [f"{i}\n{_timestamp(s['start_ms'])} --> {_timestamp(s['end_ms'])}\n{labelled(s)}\n"
            for i, s in enumerate(result["segments"], start=1)]
    return "\n".join(cues)


def render(result: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result, ensure_ascii=False) + "\n"
    if fmt == "srt":
        return to_srt(result)
    return "\n".join(labelled(s) for s in result["segments"]) + "\n"  # a segment a line


def output_names(files: Sequence[str], fmt: str) -> list[str]:
    """One output file name per input, never two alike: <stem>.<fmt>; where different names
    share a stem (talk.ogg, talk.webm) <name>.<fmt>; where names repeat (a/talk.mp4,
    b/talk.mp4), -2, -3, ... after the later ones."""
    stems = [("stdin" if f == STDIN else Path(f).stem) for f in files]
    full = [("stdin" if f == STDIN else Path(f).name) for f in files]
    names = [s if len({n for s2, n in zip(stems, full, strict=True) if s2 == s}) == 1 else name
             for s, name in zip(stems, full, strict=True)]
    taken: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate.lower() in taken:  # case-insensitive file systems too
            n += 1
            candidate = f"{name}-{n}"
        taken.add(candidate.lower())
        out.append(f"{candidate}.{fmt}")
    return out


@contextlib.contextmanager
def readable(file: str) -> Iterator[Path]:
    """A path PyAV can seek in: the file itself, or stdin / a pipe copied to a temporary file
    (chunk by chunk: memory stays flat; the copy is deleted afterwards)."""
    path = Path(file)
    if file != STDIN and (path.is_file() or not path.exists() or path.is_dir()):
        yield path
        return
    with tempfile.NamedTemporaryFile(prefix="avsync-stdin-", suffix=".media") as spool:
        if file == STDIN:
            shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
        else:
            with path.open("rb") as source:
                shutil.copyfileobj(source, spool, 1 << 20)
        spool.flush()
        yield Path(spool.name)


def _warn(file: str, result: dict) -> None:
    for warning in result["warnings"]:
        print(f"avsync transcribe: warning: {file}: {warning}", file=sys.stderr)
    for damage in result["damage"]:
        print(f"avsync transcribe: warning: {file}: {damage['stream']} "
              f"{damage['start_s']:.2f}-{damage['end_s']:.2f} s lost "
              f"({damage['lost_s']:.2f} s): {damage['reason']}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.model is None:
        raise ConfigError(f"no model: pass --model DIR or set {MODEL_ENV}")
    from avsync.runtime.loader import load_model

    model = load_model(args.model, threads=args.threads, precision=args.precision)
    if args.out_dir:
        args.out_dir.mkdir(parents=True, exist_ok=True)
    names = output_names(args.files, args.format)
    failures: list[tuple[str, str]] = []
    damaged = 0
    for file, out_name in zip(args.files, names, strict=True):
        try:
            with readable(file) as path:
                result = transcribe_file(model, path, audio=not args.video_only,
                                         video=not args.audio_only, faces=args.faces,
                                         name=file)
        except AvsyncError as error:
            failures.append((file, str(error)))
            if args.format == "json" and not args.out_dir:
                sys.stdout.write(json.dumps({"file": file, "error": str(error)}) + "\n")
            continue
        _warn(file, result)
        damaged += not result["complete"]
        text = render(result, args.format)
        if args.out_dir:
            (args.out_dir / out_name).write_text(text, "utf-8")
        else:
            if len(args.files) > 1 and args.format != "json":
                print(f"==> {file} <==")
            sys.stdout.write(text)
            sys.stdout.flush()
    return _summary(len(args.files), failures, damaged)


def _summary(total: int, failures: list[tuple[str, str]], damaged: int) -> int:
    """Lists the failures on stderr -> the exit status (see the module doc)."""
    if failures:
        print(f"avsync transcribe: {len(failures)} of {total} file(s) failed:", file=sys.stderr)
        for file, reason in failures:  # a MediaError names its file already
            print(f"  {reason}" if reason.startswith(f"{file}:") else f"  {file}: {reason}",
                  file=sys.stderr)
        return EXIT_FAILED
    if damaged:
        print(f"avsync transcribe: {damaged} of {total} file(s) damaged: their transcripts "
              "miss the lost stretches (\"complete\": false)", file=sys.stderr)
        return EXIT_DAMAGED
    return 0
