"""Runtime speed in one run: ONNX vs eager PyTorch, int8 vs fp32, early vs late in a stream.

All on one thread each (onnxruntime intra-op threads = torch threads = 1), medians over
interleaved repeats, as ratios against a baseline measured in the same process:
1. the same streaming steps (audio step + visual step + fusion step + ASD head for one chunk
   of the card's size) in eager PyTorch and through `avsync.runtime` (`Model.advance`), for
   one stream and for 8 streams batched; target ONNX fp32 >= 2x faster than PyTorch;
2. int8 vs fp32 graphs: speed ratio, and the WER change on the test split (measured by the
   exporter when --data is given with a trained checkpoint);
3. the cost of one chunk 5 s into a stream vs 60 s into it (state caching, not
   recomputation; target ratio <= 1.2).
Without --checkpoint the model is a freshly initialised `tiny` (speed does not depend on the
weights; WER then is not measured).

    .venv/bin/python bench/runtime.py
    .venv/bin/python bench/runtime.py --checkpoint runs/tiny/checkpoints/best.ckpt \\
        --data data/synth/.avsync/cache
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from avsync.models.config import load_config
from avsync.models.model import AVSyncModel
from avsync.runtime import ChunkRequest, Model, load_model
from avsync.text.tokenizer import Tokenizer
from export.checkpoint import load_checkpoint, save_plain
from export.exporter import ExportOptions, export_model

RESULTS = Path(__file__).resolve().parent / "results"
SENTENCES = ["bin blue at f two now", "place red by g nine again", "set white with p four soon",
             "lay green in s zero please", "the quick brown fox jumps over the lazy dog"]


def random_tiny_checkpoint(path: Path) -> Path:
    tokenizer = Tokenizer.train(SENTENCES * 4, vocab_size=48, model_type="char")
    config = dataclasses.replace(load_config("tiny"), vocab_size=tokenizer.vocab_size)
    torch.manual_seed(0)
    return save_plain(path, AVSyncModel(config).eval(), tokenizer, {"data": "none (random)"})


def stream_data(model: Model, steps: int, streams: int, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """(audio (streams, steps*640) float32, rois (streams, steps, R, R) uint8)."""
    rng = np.random.default_rng(seed)
    r = model.card.roi.stored
    audio = (0.1 * rng.standard_normal((streams, steps * 640))).astype(np.float32)
    return audio, rng.integers(0, 256, (streams, steps, r, r), dtype=np.uint8)


def onnx_stream(model: Model, audio: np.ndarray, rois: np.ndarray, chunk: int) -> list[float]:
    """Seconds per chunk of streaming every row of audio/rois (batched) from fresh states."""
    states = [model.new_state() for _ in range(len(audio))]
    times = []
    for s in range(0, rois.shape[1] - chunk + 1, chunk):
        requests = [ChunkRequest(st, audio[i, s * 640:(s + chunk) * 640],
                                 {0: rois[i, s:s + chunk]}, 0) for i, st in enumerate(states)]
        start = time.perf_counter()
        model.advance(requests)
        times.append(time.perf_counter() - start)
    return times


@torch.no_grad()
def torch_stream(model: AVSyncModel, audio: np.ndarray, rois: np.ndarray, chunk: int
                 ) -> list[float]:
    """The same chunks through the PyTorch modules' `step` (eager, no_grad)."""
    b = len(audio)
    sa = model.audio_encoder.initial_state(b)
    sv = model.visual_encoder.initial_state(b)
    sf = model.fusion_encoder.initial_state(b)
    ones = torch.ones(b)
    a_all, v_all = torch.from_numpy(audio), torch.from_numpy(rois)
    times = []
    for s in range(0, rois.shape[1] - chunk + 1, chunk):
        start = time.perf_counter()
        a_feat, a_emb, sa = model.audio_encoder.step(a_all[:, s * 640:(s + chunk) * 640], sa)
        v_feat, v_emb, sv = model.visual_encoder.step(v_all[:, s:s + chunk], sv)
        _, _, sf = model.fusion_encoder.step(a_feat, v_feat, ones, ones, sf)
        model.asd_head(v_emb, a_emb)
        times.append(time.perf_counter() - start)
    return times


def interleaved(runs: dict[str, Callable[[], list[float]]], repeats: int) -> dict[str, float]:
    """Median seconds per chunk of each run, repeats interleaved so load drifts hit all."""
    medians: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            medians[name].append(statistics.median(run()))
    return {name: statistics.median(values) for name, values in medians.items()}


def compare_engines(torch_model: AVSyncModel, fp32: Model, int8: Model, streams: int,
                    steps: int, repeats: int) -> dict[str, float]:
    chunk = fp32.card.chunk_steps
    audio, rois = stream_data(fp32, steps, streams)
    medians = interleaved({
        "torch": lambda: torch_stream(torch_model, audio, rois, chunk),
        "onnx_fp32": lambda: onnx_stream(fp32, audio, rois, chunk),
        "onnx_int8": lambda: onnx_stream(int8, audio, rois, chunk)}, repeats)
    chunk_s = chunk * 0.04
    return {"streams": streams, "chunk_steps": chunk,
            **{f"{k}_ms_per_chunk": round(1000 * v, 3) for k, v in medians.items()},
            "onnx_fp32_speedup_vs_torch": round(medians["torch"] / medians["onnx_fp32"], 2),
            "int8_speedup_vs_fp32": round(medians["onnx_fp32"] / medians["onnx_int8"], 2),
            "onnx_fp32_real_time_factor": round(medians["onnx_fp32"] / (chunk_s * streams), 4)}


def early_vs_late(model: Model, repeats: int) -> dict[str, float]:
    """One stream of 62 s: median chunk time in [4, 6) s vs [58, 62) s of stream time."""
    chunk = model.card.chunk_steps
    audio, rois = stream_data(model, 62 * 25, 1, seed=1)
    early, late = [], []
    for _ in range(repeats):
        times = onnx_stream(model, audio, rois, chunk)
        starts = np.arange(len(times)) * chunk * 0.04
        early.append(statistics.median(np.asarray(times)[(starts >= 4) & (starts < 6)]))
        late.append(statistics.median(np.asarray(times)[starts >= 58]))
    e, lt = statistics.median(early), statistics.median(late)
    return {"ms_per_chunk_at_5s": round(1000 * e, 3), "ms_per_chunk_at_60s": round(1000 * lt, 3),
            "ratio_60s_vs_5s": round(lt / e, 3), "target_ratio_max": 1.2}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="default: a random tiny model")
    parser.add_argument("--data", type=Path, help="prepared cache: int8 WER change on test")
    parser.add_argument("--steps", type=int, default=200, help="steps streamed per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "runtime.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = args.checkpoint or random_tiny_checkpoint(Path(scratch) / "tiny.ckpt")
        card = export_model(ExportOptions(checkpoint=checkpoint, out=Path(scratch) / "model",
                                          int8=True, data=args.data,
                                          max_int8_wer_increase=float("inf")))
        torch_model = load_checkpoint(checkpoint).model
        fp32 = load_model(Path(scratch) / "model", threads=1)
        int8 = load_model(Path(scratch) / "model", threads=1, int8=True)
        result = {
            "model": card.model_name, "checkpoint": str(args.checkpoint or "random tiny"),
            "threads": 1, "chunk_steps": card.chunk_steps,
            "single_stream": compare_engines(torch_model, fp32, int8, 1, args.steps,
                                             args.repeats),
            "eight_streams": compare_engines(torch_model, fp32, int8, 8, args.steps // 2,
                                             args.repeats),
            "stream_position": early_vs_late(fp32, max(3, args.repeats // 2)),
            "int8_wer": _wer_change(card.metrics),
            "parity": card.metrics["parity"],
            "targets": {"onnx_fp32_speedup_vs_torch_min": 2.0, "ratio_60s_vs_5s_max": 1.2,
                        "int8_wer_increase_max_points": 1.0},
            "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
            "cpus": os.cpu_count(),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(json.dumps(result, indent=2))
    return 0


def _wer_change(metrics: dict) -> dict:
    int8 = metrics.get("int8", {})
    if "test" not in metrics:
        return {"measured": False, "why": "no --data (and a trained --checkpoint) given"}
    return {"measured": True, "fp32_av_wer": metrics["test"]["av"]["wer"],
            "int8_av_wer": int8["test"]["av"]["wer"],
            "change_points": int8["wer_increase_av"], "clips": metrics["test"]["av"]["clips"]}


if __name__ == "__main__":
    raise SystemExit(main())
