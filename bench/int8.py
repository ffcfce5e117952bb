"""int8 quantisation schemes side by side, on this CPU and on an emulated AVX2-only CPU.

For each scheme (`avsync.runtime.precision`: u8s7, u8u8, u8s8) the model's fp32 graphs are
re-quantised (`avsync export --requantize`), then:
1. accuracy on this CPU: max |diff| of CTC log-probs against the fp32 graphs and the WER
   change for audio, video and audio-visual input on the test split;
2. speed on this CPU: ms per chunk of fp32 and int8 through `Model.advance`, one stream and
   8 streams batched, one thread, thread CPU time, runners taking turns (bench/runtime.py's
   method), as ratios against fp32 in the same process;
3. accuracy on an AVX2-only CPU (no VNNI), when `qemu-x86_64` is installed: the same
   measurements on the first --emulated-clips test clips inside `qemu-x86_64 -cpu Haswell-v4`,
   whose AVX2 instructions onnxruntime's kernels take as on a real AVX2 machine (the U8S8
   saturation reproduces exactly). Emulated timings mean nothing and are not taken.

    .venv/bin/python bench/int8.py --data data/synth-tiny/.avsync/cache
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from avsync.export.clips import cache_clips
from avsync.export.requantize import RequantizeOptions, log_prob_diffs, requantize, wer_change
from record import write_result  # bench/record.py

from avsync.runtime.loader import load_model
from avsync.runtime.model import Model
from avsync.runtime.precision import Int8Scheme

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
EMULATED_CPU = "Haswell-v4"  # AVX2 + FMA, no AVX-512, no VNNI


def speed(fp32: Model, int8: dict[str, Model], streams: int, steps: int, repeats: int
          ) -> dict:
    """Median ms per chunk of fp32 and each int8 variant, and each variant's speed-up."""
    from runtime import alternate, onnx_runner, stream_data  # bench/runtime.py (imports torch)

    chunk = fp32.card.chunk_steps
    audio, rois = stream_data(fp32, steps, streams)
    starts = range(0, steps - chunk + 1, chunk)
    models = {"fp32": fp32, **int8}
    medians = alternate(lambda: {name: (onnx_runner(m, audio, rois, chunk), starts)
                                 for name, m in models.items()}, repeats)
    return {"streams": streams,
            "ms_per_chunk": {k: round(1000 * v, 3) for k, v in medians.items()},
            "speedup_vs_fp32": {k: round(medians["fp32"] / medians[k], 2) for k in int8}}


def accuracy(model_dir: Path, data: Path, clips: int) -> dict:
    """Log-prob diffs and WER change of one re-quantised directory, on this (maybe emulated)
    CPU."""
    fp32, int8 = load_model(model_dir, precision="fp32"), load_model(model_dir, precision="int8")
    test = cache_clips(data, "test", fp32.card.roi.stored, clips)
    return {"max_abs_diff_log_probs": log_prob_diffs(fp32, int8, test),
            **wer_change(fp32, int8, test, float("inf")), "clips": len(test)}


def emulated(dirs: dict[str, Path], data: Path, clips: int) -> dict:
    """`accuracy` of every scheme inside qemu's AVX2-only CPU (a child process)."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        return {"measured": False, "why": "qemu-x86_64 not installed (Debian qemu-user)"}
    command = [qemu, "-cpu", EMULATED_CPU, sys.executable, __file__, "--data", str(data),
               "--emulated-clips", str(clips), "--worker", *[f"{k}={v}" for k, v in dirs.items()]]
    begin = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return {"measured": True, "cpu": f"qemu-x86_64 -cpu {EMULATED_CPU} (AVX2, no VNNI), "
                                     "accuracy only", "seconds": round(time.monotonic() - begin),
            "schemes": json.loads(done.stdout.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "avsync-tiny-grid")
    parser.add_argument("--data", type=Path, required=True, help="prepared cache (test split)")
    parser.add_argument("--schemes", default=",".join(s.value for s in Int8Scheme))
    parser.add_argument("--max-clips", type=int, default=64)
    parser.add_argument("--emulated-clips", type=int, default=8,
                        help="test clips measured under emulation (0: skip; ~50x slower)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "int8.json")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:  # inside qemu: accuracy of each NAME=DIR, one JSON line
        dirs = dict(item.split("=", 1) for item in args.worker)
        print(json.dumps({k: accuracy(Path(v), args.data, args.emulated_clips)
                          for k, v in dirs.items()}))
        return 0
    schemes = [Int8Scheme(s) for s in args.schemes.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        dirs = {s.value: Path(scratch) / s.value for s in schemes}
        native = {s.value: requantize(RequantizeOptions(
            args.model, s, args.data, args.max_clips, float("inf"), dirs[s.value])
        ).metrics["int8"] for s in schemes}
        fp32 = load_model(args.model, precision="fp32")
        int8 = {k: load_model(d, precision="int8") for k, d in dirs.items()}
        result = {
            "model": str(args.model), "threads": 1,
            "clock": "thread CPU time", "chunk_steps": fp32.card.chunk_steps,
            "this_cpu": {k: {key: v[key] for key in ("max_abs_diff_log_probs_per_modality",
                                                     "test", "fp32_test", "wer_increase")}
                         for k, v in native.items()},
            "speed_one_stream": speed(fp32, int8, 1, args.steps, args.repeats),
            "speed_eight_streams": speed(fp32, int8, 8, args.steps // 2, args.repeats),
            "emulated_avx2": (emulated(dirs, args.data, args.emulated_clips)
                              if args.emulated_clips else {"measured": False, "why": "skipped"}),
        }
    print(json.dumps(write_result(args.out, result), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
