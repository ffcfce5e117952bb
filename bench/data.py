"""Data pipeline throughput, in one run: synthesis, mp4 decode+crop, prepared-cache reads.

    .venv/bin/python bench/data.py [--clips 8] [--repeats 5] [--out bench/results/data.json]

Measures, as medians over repeats in this one process (so the ratio compares like with like):
1. synthetic clips generated per second (`avsync.data.synth`, one worker);
2. clips decoded + mouth-cropped per second from their mp4 (`decode_media` + the prepare
   crop at the stored ROI size), one process;
3. clips per second read from the prepared cache: random access through `AVSpeechDataset`
   (centre crop) and `collate` in batches, one process with one torch thread (as in a
   DataLoader worker);
and the ratio 3 / 2, which must be at least 10: the reason the cache exists.

4. what preparing costs on one core, part by part (`avsync data prepare`, mean-face crops):
   the clips upscaled to LRS3's 224x224 and re-encoded, then frames per second of one core
   (thread CPU time) for decoding, face detection + landmarks (the tracker follows the face,
   BlazeFace re-detects every 10th frame) and the similarity-warp crop; CPU hours per hour of
   video, and the wall time of LRS3's ~430 hours on 1, 16 and 64 cores (parts of
   `--shard K/N`, ideal scaling, storage not counted).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from record import write_result  # bench/record.py

from avsync.timebase import FPS, ROI_CROP, ROI_STORED

REQUIRED_RATIO = 10.0
RESULTS = Path(__file__).resolve().parent / "results" / "data.json"


def median_rate(count: int, run: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """(median clips per second, seconds of each repeat)."""
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - began)
    return count / statistics.median(seconds), seconds


def synthesize(root: Path, clips: int, seed: int) -> None:
    from avsync.data.synth.corpus import SynthConfig, generate_corpus

    speakers = 2
    generate_corpus(SynthConfig(out=root, speakers=speakers,
                                utts_per_speaker=max(1, clips // speakers), seed=seed,
                                workers=1), progress=False)


def decode_and_crop(paths: list[Path], roi_size: int) -> None:
    from avsync.data.prepare import clip_arrays
    from avsync.media.decode import decode_media

    for path in paths:
        clip = decode_media(path, gray=True)
        clip_arrays(clip.frames, clip.audio, roi_size)


def read_cache(cache_path: Path, order: np.ndarray, batch: int) -> None:
    import torch

    from avsync.data.cache import PreparedCache
    from avsync.data.dataset import AVSpeechDataset, collate

    # One intra-op thread, as PyTorch gives each DataLoader worker: on a busy machine two
    # threads per tiny tensor op cost ten times more in synchronisation than they save.
    torch.set_num_threads(1)
    data = AVSpeechDataset(PreparedCache(cache_path), "all", roi_size=ROI_CROP)
    for start in range(0, len(order), batch):
        collate([data[int(i)] for i in order[start:start + batch]])


def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    from avsync.data.index import index_dataset, with_entries
    from avsync.data.prepare import PrepareConfig, prepare_cache
    from avsync.text.tokenizer import Tokenizer

    synth_rate, synth_seconds = median_rate(
        args.clips, lambda: synthesize(work / f"synth-{time.perf_counter_ns()}", args.clips, 1),
        args.repeats)
    corpus = work / "corpus"
    synthesize(corpus, args.clips, 0)
    manifest = index_dataset(corpus)
    manifest = with_entries(manifest, [_all(e) for e in manifest.entries])
    paths = [manifest.media_path(e) for e in manifest.entries]
    count = len(paths)
    decode_rate, decode_seconds = median_rate(
        count, lambda: decode_and_crop(paths, args.roi_size), args.repeats)

    cache = work / "cache"
    tokenizer = Tokenizer.train([e.text for e in manifest.entries], vocab_size=64)
    result = prepare_cache(manifest, cache, PrepareConfig(roi_size=args.roi_size),
                           tokenizer=tokenizer, progress=False)
    assert result.kept, result.summary
    passes = args.cache_passes
    rng = np.random.default_rng(0)
    orders = np.concatenate([rng.permutation(count) for _ in range(passes)])
    read_cache(cache, orders[:count], args.batch)  # page cache warm, as in training
    cache_rate, cache_seconds = median_rate(
        count * passes, lambda: read_cache(cache, orders, args.batch), args.repeats)

    steps = result_steps(cache)
    costs = prepare_costs(paths[:args.cost_clips], work, args.roi_size, args.repeats)
    return {
        "prepare_costs": costs,
        "clips": count, "repeats": args.repeats, "roi_stored": args.roi_size,
        "roi_crop": ROI_CROP, "batch": args.batch,
        "clip_seconds_mean": round(float(np.mean(steps)) / FPS, 3),
        "clip_seconds_range": [round(min(steps) / FPS, 3), round(max(steps) / FPS, 3)],
        "synth_clips_per_s": round(synth_rate, 3),
        "decode_crop_clips_per_s": round(decode_rate, 3),
        "cache_clips_per_s": round(cache_rate, 3),
        "cache_over_decode": round(cache_rate / decode_rate, 2),
        "required_ratio": REQUIRED_RATIO,
        "seconds": {"synth": synth_seconds, "decode_crop": decode_seconds,
                    "cache": cache_seconds},
    }


LRS3_HOURS = 430
LRS3_SIDE = 224


def prepare_costs(paths: list[Path], work: Path, roi_size: int, repeats: int) -> dict:
    """Frames per second of one core for each part of preparing, on LRS3-sized frames."""
    import cv2

    from avsync.media.decode import MediaReader, decode_media
    from avsync.media.encode import write_mp4
    from avsync.media.face_tracking import FaceCentredCropper
    from avsync.media.mouths import working_format
    from avsync.media.roi import MEAN_FACE, crop_faces

    big = []
    for k, path in enumerate(paths):
        clip = decode_media(path, gray=True)
        frames = np.stack([cv2.resize(f, (LRS3_SIDE, LRS3_SIDE), interpolation=cv2.INTER_CUBIC)
                           for f in clip.frames])
        target = work / f"lrs3-{k}.mp4"
        write_mp4(target, frames, clip.audio)
        big.append(target)
    rates: dict[str, list[float]] = {"decode": [], "face_landmarks": [], "crop": []}
    for _ in range(repeats):
        for path in big:
            began = time.thread_time()
            with MediaReader(path, frames=working_format(roi_size)) as reader:
                frames = np.concatenate([p.frames for p in reader.pieces() if len(p.frames)])
            decoded = time.thread_time()
            cropper = FaceCentredCropper(roi_size, MEAN_FACE)
            faces = cropper.faces(frames)
            found = time.thread_time()
            crop_faces(frames, faces, roi_size, MEAN_FACE)
            done = time.thread_time()
            n = len(frames)
            for part, seconds in (("decode", decoded - began), ("face_landmarks", found - decoded),
                                  ("crop", done - found)):
                rates[part].append(n / max(seconds, 1e-9))
    fps = {part: statistics.median(values) for part, values in rates.items()}
    per_hour = {part: round(FPS * 3600 / rate / 3600, 3) for part, rate in fps.items()}
    total = sum(per_hour.values())
    return {"frame": f"{LRS3_SIDE}x{LRS3_SIDE}", "roi_stored": roi_size, "convention": MEAN_FACE,
            "clock": "thread CPU time, one core",
            "frames_per_s_one_core": {k: round(v, 1) for k, v in fps.items()},
            "cpu_hours_per_video_hour": {**per_hour, "total": round(total, 3)},
            "lrs3_hours": LRS3_HOURS,
            "lrs3_wall_hours": {str(c): round(LRS3_HOURS * total / c, 2) for c in (1, 16, 64)}}


def _all(entry):
    """Every clip of the bench corpus in one split, so the cache read covers them all."""
    from dataclasses import replace

    return replace(entry, split="all")


def result_steps(cache_path: Path) -> list[int]:
    from avsync.data.cache import PreparedCache

    return PreparedCache(cache_path).lengths.tolist()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8, help="synthetic clips (default 8)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per measurement (5)")
    parser.add_argument("--roi-size", type=int, default=ROI_STORED, help="stored ROI (96)")
    parser.add_argument("--batch", type=int, default=4, help="clips per collated batch")
    parser.add_argument("--cache-passes", type=int, default=20,
                        help="random-order passes over the cache per repeat (it is fast)")
    parser.add_argument("--cost-clips", type=int, default=4,
                        help="clips timed part by part for the preparing cost (default 4)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results path")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="avsync-bench-data-") as work:
        results = run(args, Path(work))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_result(args.out, results, indent=1)
    print(f"data pipeline, {results['clips']} synthetic clips of {results['clip_seconds_mean']} s "
          f"mean ({results['clip_seconds_range'][0]}-{results['clip_seconds_range'][1]} s), "
          f"ROI {results['roi_stored']} stored / {results['roi_crop']} crop, medians of "
          f"{results['repeats']}:")
    print(f"  synthetic clips generated   {results['synth_clips_per_s']:>10.2f} clips/s")
    print(f"  mp4 decoded + cropped       {results['decode_crop_clips_per_s']:>10.2f} clips/s")
    print(f"  prepared cache + collate    {results['cache_clips_per_s']:>10.2f} clips/s")
    ratio = results["cache_over_decode"]
    print(f"  cache / decode              {ratio:>10.1f}x  (need >= {REQUIRED_RATIO:g}x)")
    costs = results["prepare_costs"]
    fps, hours = costs["frames_per_s_one_core"], costs["cpu_hours_per_video_hour"]
    print(f"preparing {costs['frame']} video, one core: " + ", ".join(
        f"{k} {v:.0f} frames/s ({hours[k]:.3f} CPU h per video h)" for k, v in fps.items()))
    print(f"  LRS3 ({costs['lrs3_hours']} h): " + ", ".join(
        f"{v} h on {c} cores" for c, v in costs["lrs3_wall_hours"].items()))
    print(f"wrote {args.out}")
    return 0 if ratio >= REQUIRED_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
