"""What the runtime's second pass costs and what it buys, in one run.

On one onnxruntime thread, CPU time of that thread, for each test clip of a prepared cache:
- baseline: the clip streamed through `Model.advance` in the card's chunks (the first pass);
- the second pass: the same clip re-read as one chunk from a fresh state (what a final costs
  on top of the stream, once per segment).
It reports the median ratio (re-read / streaming) and the median ms a re-read costs per second
of speech, then the clean WER of a live stream's finals with the second pass and without it
(`transcribe_clips` on the same clips, audio-only and audio-visual). Writes
bench/results/second_pass.json.

    .venv/bin/python bench/second_pass.py --model models/avsync-tiny-grid \\
        --data data/synth-tiny/.avsync/cache
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from avsync.train.eval_data import load_clips  # noqa: E402
from record import write_result  # noqa: E402  (bench/record.py)

from avsync.data.cache import PreparedCache  # noqa: E402
from avsync.runtime import RecognizerConfig, load_model  # noqa: E402
from avsync.runtime.model import Model  # noqa: E402
from avsync.runtime.offline import ClipInput, run_clips, transcribe_clips, transcript  # noqa: E402
from avsync.text.metrics import wer  # noqa: E402


def thread_ms(work) -> float:
    start = time.thread_time()
    work()
    return 1000 * (time.thread_time() - start)


def reread(model: Model, clip: ClipInput) -> None:
    """The clip as one chunk from a fresh state: what a second pass runs."""
    run_clips(model, [clip], clip.steps(model.card.samples_per_step))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "avsync-tiny-grid")
    parser.add_argument("--data", type=Path, required=True, help="a prepared cache (test split)")
    parser.add_argument("--clips", type=int, default=60, help="test clips to use (default 60)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "second_pass.json")
    args = parser.parse_args(argv)
    model = load_model(args.model, threads=1)
    clips = load_clips(PreparedCache(args.data), "test", args.clips)
    inputs = [ClipInput(c.audio, c.rois) for c in clips]
    n = model.card.samples_per_step
    for clip in inputs[:3]:  # warm the sessions up
        run_clips(model, [clip])
        reread(model, clip)
    stream_ms, reread_ms, per_second = [], [], []
    for clip in inputs:
        streamed = thread_ms(lambda c=clip: run_clips(model, [c]))
        again = thread_ms(lambda c=clip: reread(model, c))
        stream_ms.append(streamed)
        reread_ms.append(again)
        per_second.append(again / (clip.steps(n) * model.card.step_ms / 1000))
    refs = [c.text.upper() for c in clips]
    quality = {}
    for name, make in (("audio", lambda c: ClipInput(c.audio, None)),
                       ("av", lambda c: ClipInput(c.audio, c.rois))):
        for second in (False, True):
            config = RecognizerConfig(second_pass=second)
            hyps = [transcript(f) for f in transcribe_clips(model, [make(c) for c in clips],
                                                            config)]
            quality[f"{name}_wer_{'second_pass' if second else 'first_pass_only'}"] = \
                round(100 * wer(refs, [h.upper() for h in hyps]), 2)
    result = {
        "what": "the second pass: one re-read of a segment vs streaming it in chunks, and the "
                "clean test WER of finals with and without it",
        "command": "bench/second_pass.py " + " ".join(argv),
        "model": str(args.model.resolve().relative_to(REPO)
                     if args.model.resolve().is_relative_to(REPO) else args.model), "clips": len(clips), "chunk_steps": model.card.chunk_steps,
        "threads": 1,
        "median_stream_ms_per_clip": round(statistics.median(stream_ms), 2),
        "median_reread_ms_per_clip": round(statistics.median(reread_ms), 2),
        "median_reread_over_stream": round(statistics.median(
            r / s for r, s in zip(reread_ms, stream_ms, strict=True)), 3),
        "median_reread_ms_per_speech_s": round(statistics.median(per_second), 2),
        "wer_percent": quality,
    }
    print(json.dumps(write_result(args.out, result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
