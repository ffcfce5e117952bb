"""Peak memory and wall time of `avsync transcribe` on long files: flat in duration.

Makes three files from the synthetic corpus's test clips (its speech and faces, looped): 60 s
and 10 min of 1280x720 H.264 + AAC video (each 160x160 face scaled up into the middle of the
frame, so `--faces whole` reads it), and 60 min of 44.1 kHz stereo AAC audio (.m4a). Each is
transcribed by `avsync transcribe` in its own process, whose peak RSS (`wait4`'s ru_maxrss)
and wall time are recorded. The baseline, in the same run: the peak RSS of decoding the 60 s
file whole into arrays (`decode_media`, what transcription did before it streamed).
Writes bench/results/transcribe_memory.json (targets: 10 min within 1.2x of 60 s).

    .venv/bin/python bench/transcribe_memory.py --corpus data/synth-tiny
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from record import write_result  # noqa: E402  (bench/record.py)

from avsync.media.decode import decode_media  # noqa: E402

WIDTH, HEIGHT = 1280, 720


def source_clips(corpus: Path, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(frames (T, 160, 160) gray, audio (T * 640,)) of the first test clips."""
    ids = [line.split()[0] for line in (corpus / "test.txt").read_text().splitlines()
           if line.strip()][:count]
    out = []
    for clip_id in ids:
        clip = decode_media(corpus / "main" / f"{clip_id}.mp4")
        steps = min(len(clip.frames), len(clip.audio) // 640)
        out.append((clip.frames[:steps], clip.audio[:steps * 640]))
    return out


def _frame(face: np.ndarray) -> av.VideoFrame:
    import cv2

    canvas = np.full((HEIGHT, WIDTH), 96, np.uint8)
    left = (WIDTH - HEIGHT) // 2
    canvas[:, left:left + HEIGHT] = cv2.resize(face, (HEIGHT, HEIGHT),
                                               interpolation=cv2.INTER_LINEAR)
    return av.VideoFrame.from_ndarray(canvas, format="gray").reformat(format="yuv420p")


def write_video(path: Path, clips: list, seconds: float) -> None:
    """`seconds` of 720p video + 16 kHz mono AAC, the clips looped, written as generated."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25, options={"preset": "veryfast", "crf": "26"})
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        sound = out.add_stream("aac", rate=16_000, layout="mono")
        step, sample = 0, 0
        while step < seconds * 25:
            for frames, audio in clips:
                for image in frames:
                    frame = _frame(image)
                    frame.pts, frame.time_base = step, Fraction(1, 25)
                    out.mux(video.encode(frame))
                    step += 1
                sample = _write_audio(out, sound, audio, sample, 16_000, "mono")
                if step >= seconds * 25:
                    break
        out.mux(video.encode(None))
        out.mux(sound.encode(None))


def write_audio(path: Path, clips: list, seconds: float) -> None:
    """`seconds` of 44.1 kHz stereo AAC (.m4a): the clips' speech looped."""
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=44_100)
    with av.open(str(path), "w") as out:
        sound = out.add_stream("aac", rate=44_100, layout="stereo")
        done, pts = 0.0, 0
        while done < seconds:
            for _, audio in clips:
                frame = av.AudioFrame.from_ndarray(audio[None].astype(np.float32), format="fltp",
                                                   layout="mono")
                frame.sample_rate, frame.pts = 16_000, None
                for converted in resampler.resample(frame):
                    converted.pts, pts = pts, pts + converted.samples
                    for packet in sound.encode(converted):
                        out.mux(packet)
                done += len(audio) / 16_000
                if done >= seconds:
                    break
        out.mux(sound.encode(None))


def _write_audio(out, sound, audio: np.ndarray, start: int, rate: int, layout: str) -> int:
    frame = av.AudioFrame.from_ndarray(audio[None].astype(np.float32), format="fltp",
                                       layout=layout)
    frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
    out.mux(sound.encode(frame))
    return start + len(audio)


def peak(argv: list[str], log: Path) -> dict:
    """Run a command and wait for it ourselves: its own peak RSS (MiB), wall time, status;
    its stdout is returned, its stderr goes to `log`."""
    began = time.monotonic()
    with log.open("wb") as errors:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors)
        out = process.stdout.read() if process.stdout else b""
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return {"wall_s": round(time.monotonic() - began, 1), "status": process.returncode,
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "stdout": out.decode()}


def transcribe(path: Path, model: Path, work: Path) -> dict:
    run = peak([sys.executable, "-m", "avsync.cli", "transcribe", str(path), "--model",
                str(model)], work / f"{path.stem}.stderr")
    result = json.loads(run.pop("stdout").splitlines()[-1]) if run["status"] == 0 else {}
    words = sum(len(s["words"]) for s in result.get("segments", []))
    duration = result.get("duration", 0.0)
    last = result["segments"][-1]["words"][-1]["end_ms"] / 1000 if words else None
    return {**run, "file": path.name, "bytes": path.stat().st_size, "duration_s": duration,
            "modality": result.get("modality"), "words": words, "last_word_end_s": last,
            "real_time_factor": round(run["wall_s"] / duration, 4) if duration else None}


def decode_whole(path: Path, work: Path) -> dict:
    """The baseline: the file decoded whole into arrays (`decode_media`)."""
    code = f"from avsync.media.decode import decode_media; decode_media({str(path)!r})"
    run = peak([sys.executable, "-c", code], work / "decode_whole.stderr")
    run.pop("stdout")
    return {**run, "file": path.name}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "avsync-tiny-grid")
    parser.add_argument("--corpus", type=Path, default=REPO / "data" / "synth-tiny")
    parser.add_argument("--work", type=Path, default=Path("/tmp/avsync-bench-memory"),
                        help="where the long files are made (kept for a re-run)")
    parser.add_argument("--minutes", type=float, nargs=3, default=[1.0, 10.0, 60.0],
                        metavar=("SHORT", "LONG", "AUDIO"),
                        help="lengths of the short and long video and of the audio file")
    parser.add_argument("--out", type=Path,
                        default=REPO / "bench" / "results" / "transcribe_memory.json")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    short_m, long_m, audio_m = args.minutes
    files = {"short": args.work / f"talk-{short_m:g}min-720p.mp4",
             "long": args.work / f"talk-{long_m:g}min-720p.mp4",
             "audio": args.work / f"talk-{audio_m:g}min-44k-stereo.m4a"}
    clips = source_clips(args.corpus, 40)
    for key, minutes in (("short", short_m), ("long", long_m), ("audio", audio_m)):
        if not files[key].exists():
            started = time.monotonic()
            (write_audio if key == "audio" else write_video)(files[key], clips, 60 * minutes)
            print(f"made {files[key]} in {time.monotonic() - started:.0f} s", flush=True)
    baseline = decode_whole(files["short"], args.work)
    print("baseline", baseline, flush=True)
    runs = {}
    for key in ("short", "long", "audio"):
        runs[key] = transcribe(files[key], args.model, args.work)
        print(key, runs[key], flush=True)
    result = {
        "model": str(args.model.relative_to(REPO) if args.model.is_relative_to(REPO)
                     else args.model),
        "video": f"{WIDTH}x{HEIGHT} H.264 25 fps + AAC 16 kHz mono", "audio": "AAC 44.1 kHz stereo",
        "baseline_decode_whole_60s": baseline, "transcribe": runs,
        "ratios": {
            "peak_rss_long_vs_short": round(runs["long"]["peak_rss_mib"]
                                            / runs["short"]["peak_rss_mib"], 3),
            "peak_rss_audio_vs_short": round(runs["audio"]["peak_rss_mib"]
                                             / runs["short"]["peak_rss_mib"], 3),
            "peak_rss_transcribe_short_vs_decode_whole": round(
                runs["short"]["peak_rss_mib"] / baseline["peak_rss_mib"], 3)},
        "targets": {"peak_rss_long_vs_short_max": 1.2},
    }
    print(json.dumps(write_result(args.out, result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
