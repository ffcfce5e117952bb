"""Synthetic corpus generation speed: clips per second with 1 and with 2 worker processes.

    .venv/bin/python bench/synth.py [--clips 12] [--repeats 3] [--out bench/results/synth.json]

Each repeat generates the same corpus (same seed) into a fresh directory: mp4 + txt written,
split lists and corpus.json included, worker start-up included. Reported as medians over the
repeats, with 2 workers also as a ratio to 1 worker measured in this same process (the machine
is shared, so absolute numbers move; the ratio says what parallelism buys here).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from record import write_result  # bench/record.py

from avsync.data.synth.corpus import SynthConfig, generate_corpus

RESULTS = Path(__file__).resolve().parent / "results" / "synth.json"


def seconds_for(clips: int, workers: int, repeats: int, seed: int) -> tuple[list[float], float]:
    """Wall-clock seconds of each repeat and the media seconds one corpus holds."""
    speakers = 2
    taken, media = [], 0.0
    for repeat in range(repeats):
        with tempfile.TemporaryDirectory() as work:
            config = SynthConfig(out=Path(work) / f"r{repeat}", speakers=speakers,
                                 utts_per_speaker=max(1, clips // speakers), seed=seed,
                                 workers=workers, val_speakers=0, test_speakers=0)
            began = time.perf_counter()
            summary = generate_corpus(config, progress=False)
            taken.append(time.perf_counter() - began)
            media = summary.seconds
    return taken, media


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    clips = 2 * max(1, args.clips // 2)
    result: dict[str, object] = {"clips": clips, "repeats": args.repeats}
    rates = {}
    for workers in (1, 2):
        taken, media = seconds_for(clips, workers, args.repeats, args.seed)
        rates[workers] = clips / statistics.median(taken)
        result[f"workers_{workers}"] = {"clips_per_s": round(rates[workers], 3),
                                        "realtime_factor": round(media / statistics.median(taken), 2),
                                        "seconds": taken}
        result["media_seconds"] = round(media, 2)
        print(f"{workers} worker(s): {rates[workers]:.2f} clips/s "
              f"({media / statistics.median(taken):.1f}x real time)")
    result["two_over_one"] = round(rates[2] / rates[1], 3)
    result["load_avg_1min"] = round(os.getloadavg()[0], 2)
    write_result(args.out, result, indent=1)
    print(f"2 workers / 1 worker: {rates[2] / rates[1]:.2f}x -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
