"""Training throughput of a model size on this CPU: video steps per second, fwd + bwd + AdamW.

Runs the real objective on a toy batch (avsync.models.toybatch) of --batch clips x --steps
steps at the config's roi_size, with --threads torch threads, and reports the median and the best (fastest) of
--iters iterations -- on a machine shared with other jobs the best is the figure that is not
someone else's load -- plus the fwd+bwd time of each encoder alone, as JSON in
bench/results/model_throughput_<config>.json. The target for `tiny` is >= 1500 steps/s on 2
threads at batch 16 x 50 steps (issue 3: train a useful model on 2 cores in under an hour).

    .venv/bin/python bench/model_throughput.py --config tiny --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
from record import write_result  # bench/record.py

from avsync.models.config import load_config
from avsync.models.model import AVSyncModel
from avsync.models.objective import ContrastiveGenerativeObjective, load_objective
from avsync.models.toybatch import toy_batch

RESULTS = Path(__file__).resolve().parent / "results"


def _seconds(run, iters: int, warmup: int = 2) -> tuple[float, float]:
    """(median, best) seconds of one call of `run`."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--iters", type=int, default=8)
    parser.add_argument("--chunk", default="sample", help="steps, 'full' or 'sample'")
    parser.add_argument("--bf16", action="store_true",
                        help="run the forward under CPU bf16 autocast (AVX512-BF16 CPUs)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = load_config(args.config)
    model = AVSyncModel(config).train()
    objective = ContrastiveGenerativeObjective(load_objective(args.config))
    objective.init_model(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = toy_batch(args.batch, args.steps, config.visual_frontend.roi_size, config.vocab_size)
    generator = torch.Generator().manual_seed(0)
    frames = int(batch["video_lengths"].sum())

    def chunk() -> int | None:
        if args.chunk == "sample":
            return objective.sample_chunk_size(generator)
        return None if args.chunk == "full" else int(args.chunk)

    def train_step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss, _ = objective(model, batch, chunk_size=chunk(), generator=generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def part(encoder, x, lengths):
        def run() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                out = encoder(x, lengths, chunk())
            (out.features.sum() + out.embeddings.sum()).backward()
        return run

    whole, whole_best = _seconds(train_step, args.iters)
    visual, visual_best = _seconds(
        part(model.visual_encoder, batch["video"], batch["video_lengths"]), args.iters)
    audio, audio_best = _seconds(
        part(model.audio_encoder, batch["audio"], batch["audio_lengths"]), args.iters)
    load = os.getloadavg()[0]
    result = {"config": args.config, "threads": args.threads, "batch": args.batch,
              "steps": args.steps, "chunk": args.chunk, "bf16": args.bf16, "frames_per_batch": frames,
              "params": sum(p.numel() for p in model.parameters()),
              "train_steps_per_s": frames / whole, "train_steps_per_s_best": frames / whole_best,
              "train_s_per_batch": whole,
              "visual_encoder_fwd_bwd_steps_per_s": frames / visual,
              "visual_encoder_fwd_bwd_steps_per_s_best": frames / visual_best,
              "audio_encoder_fwd_bwd_steps_per_s": frames / audio,
              "audio_encoder_fwd_bwd_steps_per_s_best": frames / audio_best,
              "load_average_1min": load,
              "target_steps_per_s": 1500, "torch": torch.__version__}
    out = RESULTS / f"model_throughput_{args.config}{'_bf16' if args.bf16 else ''}.json"
    print(json.dumps(write_result(out, result), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
