"""Runtime speed in one run: ONNX vs eager PyTorch, int8 vs fp32, early vs late in a stream.

All on one thread each (onnxruntime intra-op threads = torch threads = 1), in CPU time of that
thread, medians over chunks run in turns, as ratios against a baseline measured in the same
process:
1. the same streaming steps (audio step + visual step + fusion step + ASD head for one chunk
   of the card's size) in eager PyTorch and through `avsync.runtime` (`Model.advance`), for
   one stream and for 8 streams batched; floor (issue 13) ONNX fp32 >= 3x PyTorch, one stream;
2. int8 vs fp32 graphs: speed ratio (floor 1.5x, one stream), and the WER change per
   modality on the test split (with --data and a trained model);
3. the cost of one chunk 5 s into a stream vs 60 s into it (state caching, not
   recomputation; target ratio <= 1.2);
4. one stream through the step graphs' sessions specialised to one stream and one chunk
   (`avsync.runtime.loader.OneStreamGraph`) vs their general sessions, fp32 and int8;
5. with --profile, where one stream's chunk goes inside each step graph: onnxruntime's
   profiler, per-node median kernel time summed by operator type, fp32 and int8, and the
   share of MatMul/Gemm/Conv kernels (what int8 can speed up at all).
Without --checkpoint or --model the model is a freshly initialised `tiny` (speed does not
depend on the weights; WER then is not measured). With --model (an exported directory, e.g.
the bundled one) its own fp32 and int8 graphs run, and eager PyTorch runs a random model of the
same config.

    .venv/bin/python bench/runtime.py
    .venv/bin/python bench/runtime.py --checkpoint runs/tiny/checkpoints/best.ckpt \\
        --data data/synth/.avsync/cache
    .venv/bin/python bench/runtime.py --model models/avsync-tiny-grid \\
        --data data/synth-tiny/.avsync/cache
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from avsync.export.checkpoint import load_checkpoint, save_plain
from avsync.export.clips import cache_clips
from avsync.export.exporter import ExportOptions, export_model
from avsync.export.requantize import wer_change
from record import write_result  # bench/record.py

from avsync.models.config import load_config
from avsync.models.model import AVSyncModel
from avsync.runtime import ChunkRequest, Model, StreamState, load_model
from avsync.runtime.loader import ONE_STREAM_DISABLED_OPTIMIZERS, one_chunk_dims
from avsync.runtime.model_card import read_card
from avsync.runtime.sessions import Graph, session_options
from avsync.text.tokenizer import Tokenizer

RESULTS = Path(__file__).resolve().parent / "results"
# CPU time of the calling thread: onnxruntime (1 intra-op thread) and torch (1 thread) compute
# on it, and unlike wall time it does not count the time other processes hold the core (the
# 2-core machine is shared); caches are still shared, so medians over many chunks.
CLOCK = time.thread_time
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


Runner = Callable[[int], object]  # runs the chunk that starts at a step


def onnx_runner(model: Model, audio: np.ndarray, rois: np.ndarray, chunk: int,
                states: list[StreamState] | None = None) -> Runner:
    """Streams every row of audio/rois (batched) through `Model.advance`."""
    states = states or [model.new_state() for _ in range(len(audio))]

    def run(s: int) -> None:
        model.advance([ChunkRequest(st, audio[i, s * 640:(s + chunk) * 640],
                                    {0: rois[i, s:s + chunk]}, 0) for i, st in enumerate(states)])
    return run


def torch_runner(model: AVSyncModel, audio: np.ndarray, rois: np.ndarray, chunk: int) -> Runner:
    """The same chunks through the PyTorch modules' `step` (eager, no_grad)."""
    b = len(audio)
    states = [model.audio_encoder.initial_state(b), model.visual_encoder.initial_state(b),
              model.fusion_encoder.initial_state(b)]
    ones = torch.ones(b)
    a_all, v_all = torch.from_numpy(audio), torch.from_numpy(rois)

    @torch.no_grad()
    def run(s: int) -> None:
        a_feat, a_emb, states[0] = model.audio_encoder.step(
            a_all[:, s * 640:(s + chunk) * 640], states[0])
        v_feat, v_emb, states[1] = model.visual_encoder.step(v_all[:, s:s + chunk], states[1])
        _, _, states[2] = model.fusion_encoder.step(a_feat, v_feat, ones, ones, states[2])
        model.asd_head(v_emb, a_emb)
    return run


def alternate(make: Callable[[], dict[str, tuple[Runner, range]]], repeats: int
              ) -> dict[str, float]:
    """Median seconds per chunk of each runner; the runners take turns chunk by chunk (who goes
    first rotates), so a change in the machine's load (other processes) hits them all alike."""
    times: dict[str, list[float]] = {}
    for _ in range(repeats):
        runners = make()
        names = list(runners)
        for k in range(min(len(starts) for _, starts in runners.values())):
            for name in names[k % len(names):] + names[:k % len(names)]:
                run, starts = runners[name]
                begin = CLOCK()
                run(starts[k])
                times.setdefault(name, []).append(CLOCK() - begin)
    return {name: statistics.median(values) for name, values in times.items()}


def compare_engines(torch_model: AVSyncModel, fp32: Model, int8: Model, streams: int,
                    steps: int, repeats: int) -> dict[str, float]:
    chunk = fp32.card.chunk_steps
    audio, rois = stream_data(fp32, steps, streams)
    starts = range(0, steps - chunk + 1, chunk)
    medians = alternate(lambda: {
        "torch": (torch_runner(torch_model, audio, rois, chunk), starts),
        "onnx_fp32": (onnx_runner(fp32, audio, rois, chunk), starts),
        "onnx_int8": (onnx_runner(int8, audio, rois, chunk), starts)}, repeats)
    chunk_s = chunk * 0.04
    return {"streams": streams, "chunk_steps": chunk,
            **{f"{k}_ms_per_chunk": round(1000 * v, 3) for k, v in medians.items()},
            "onnx_fp32_speedup_vs_torch": round(medians["torch"] / medians["onnx_fp32"], 2),
            "int8_speedup_vs_fp32": round(medians["onnx_fp32"] / medians["onnx_int8"], 2),
            "onnx_fp32_real_time_factor": round(medians["onnx_fp32"] / (chunk_s * streams), 4)}


def _pair(eager: Callable[[], object], onnx: Callable[[], object]
          ) -> Callable[[], dict[str, tuple[Runner, range]]]:
    """Two runners that call the same part 20 times each, taking turns."""
    def make() -> dict[str, tuple[Runner, range]]:
        return {"torch": (lambda _s: eager(), range(20)), "onnx": (lambda _s: onnx(), range(20))}
    return make


def per_part(torch_model: AVSyncModel, model: Model, streams: int, repeats: int
             ) -> dict[str, dict[str, float]]:
    """ms per chunk of each streaming part alone (fresh states each call), PyTorch vs ONNX:
    where the time goes, and where onnxruntime gains least (the visual convolutions)."""
    card, c = model.card, model.card.chunk_steps
    audio, rois = stream_data(model, c, streams)
    zeros = {k: np.zeros((streams, card.states[k].size), np.float32) for k in card.states}
    a_feat = np.ones((streams, c, card.audio_dim), np.float32)
    v_feat = np.ones((streams, c, card.visual_dim), np.float32)
    ones = np.ones(streams, np.float32)
    t = {k: torch.from_numpy(v) for k, v in
         {"audio": audio, "video": rois, "a_feat": a_feat, "v_feat": v_feat, "ones": ones,
          **{f"s_{k}": v for k, v in zeros.items()}}.items()}
    g = model.graphs
    parts: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "audio_step": (lambda: torch_model.audio_encoder.step(t["audio"], t["s_audio"]),
                       lambda: g["audio_step"](audio=audio, state=zeros["audio"])),
        "visual_step": (lambda: torch_model.visual_encoder.step(t["video"], t["s_visual"]),
                        lambda: g["visual_step"](video=rois, state=zeros["visual"])),
        "fusion_step": (lambda: torch_model.fusion_encoder.step(
            t["a_feat"], t["v_feat"], t["ones"], t["ones"], t["s_fusion"]),
            lambda: g["fusion_step"](audio_features=a_feat, visual_features=v_feat,
                                     audio_present=ones, video_present=ones,
                                     state=zeros["fusion"]))}
    out = {}
    with torch.no_grad():
        for name, (eager, onnx) in parts.items():
            medians = alternate(_pair(eager, onnx), repeats)
            out[name] = {"torch_ms": round(1000 * medians["torch"], 3),
                         "onnx_ms": round(1000 * medians["onnx"], 3),
                         "speedup": round(medians["torch"] / medians["onnx"], 2)}
    return out


def general_sessions(model: Model) -> Model:
    """The same model with every graph on its general (any batch, any length) session."""
    graphs = {k: Graph(g.session, g.input_names, g.output_names, g.path)
              for k, g in model.graphs.items()}
    return Model(model.card, graphs, model.model_dir, model.precision, model.lm)


def one_stream_sessions(fp32: Model, int8: Model, steps: int, repeats: int) -> dict:
    """ms per chunk of one stream, specialised sessions vs general ones, taking turns."""
    chunk = fp32.card.chunk_steps
    audio, rois = stream_data(fp32, steps, 1)
    starts = range(0, steps - chunk + 1, chunk)
    models = {"fp32_general": general_sessions(fp32), "fp32": fp32,
              "int8_general": general_sessions(int8), "int8": int8}
    medians = alternate(lambda: {name: (onnx_runner(m, audio, rois, chunk), starts)
                                 for name, m in models.items()}, repeats)
    return {**{f"{k}_ms_per_chunk": round(1000 * v, 3) for k, v in medians.items()},
            "fp32_speedup": round(medians["fp32_general"] / medians["fp32"], 3),
            "int8_speedup": round(medians["int8_general"] / medians["int8"], 3),
            "int8_vs_fp32_general": round(medians["fp32_general"] / medians["int8_general"], 3),
            "int8_vs_fp32_specialised": round(medians["fp32"] / medians["int8"], 3)}


COMPUTE_OPS = ("MatMul", "Gemm", "FusedMatMul", "DynamicQuantizeMatMul", "MatMulInteger",
               "Conv", "ConvInteger", "QLinearConv")


def profile_step_graphs(model: Model, runs: int) -> dict[str, dict]:
    """onnxruntime's profile of each one-stream step graph (the session `load_model` runs for
    one stream and one chunk): nodes, per-node median kernel µs summed by op type (top 8),
    and the compute kernels' share."""
    card, c = model.card, model.card.chunk_steps
    audio, rois = stream_data(model, c, 1)
    states = {k: np.zeros((1, card.states[k].size), np.float32) for k in card.states}
    ones = np.ones(1, np.float32)
    feeds = {"audio_step": {"audio": audio, "state": states["audio"]},
             "visual_step": {"video": rois, "state": states["visual"]},
             "fusion_step": {"audio_features": np.ones((1, c, card.audio_dim), np.float32),
                             "visual_features": np.ones((1, c, card.visual_dim), np.float32),
                             "audio_present": ones, "video_present": ones,
                             "state": states["fusion"]}}
    return {name: _profile(model.graphs[name].path, feed, one_chunk_dims(card), runs)
            for name, feed in feeds.items()}


def _profile(path: Path, feed: dict, dims: dict[str, int], runs: int) -> dict:
    options = session_options(1)
    options.enable_profiling = True
    for name, value in dims.items():
        options.add_free_dimension_override_by_name(name, value)
    with tempfile.TemporaryDirectory() as scratch:
        options.profile_file_prefix = str(Path(scratch) / "profile")
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"],
            disabled_optimizers=list(ONE_STREAM_DISABLED_OPTIMIZERS))
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    per_node: dict[str, list[float]] = {}
    op_of: dict[str, str] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node.setdefault(e["name"], []).append(e["dur"])
            op_of[e["name"]] = e["args"]["op_name"]
    by_op: dict[str, float] = {}
    for node, durations in per_node.items():
        by_op[op_of[node]] = by_op.get(op_of[node], 0.0) + statistics.median(durations)
    total = sum(by_op.values())
    top = sorted(by_op.items(), key=lambda kv: -kv[1])[:8]
    return {"nodes": len(per_node), "kernel_us": round(total, 1),
            "kernel_us_by_op": {k: round(v, 1) for k, v in top},
            "compute_share": round(sum(by_op.get(k, 0.0) for k in COMPUTE_OPS) / total, 3)}


def early_vs_late(model: Model, repeats: int) -> dict[str, float]:
    """Chunks 4-6 s into a stream vs 58-62 s into another, taking turns (states snapshotted
    after streaming the first 4 s and 58 s once)."""
    chunk = model.card.chunk_steps
    audio, rois = stream_data(model, 62 * 25, 1, seed=1)
    snapshots = {}
    for name, seconds in (("early", 4), ("late", 58)):
        state = model.new_state()
        warm = onnx_runner(model, audio, rois, chunk, [state])
        for s in range(0, seconds * 25, chunk):
            warm(s)
        snapshots[name] = (state, seconds * 25)

    def make() -> dict[str, tuple[Runner, range]]:
        runners = {}
        for name, (state, first) in snapshots.items():
            copy = StreamState(state.audio.copy(), state.fusion.copy(),
                               {k: v.copy() for k, v in state.visual.items()}, state.steps)
            runners[name] = (onnx_runner(model, audio, rois, chunk, [copy]),
                             range(first, first + 2 * 25 - chunk + 1, chunk))
        return runners

    medians = alternate(make, repeats)
    e, lt = medians["early"], medians["late"]
    return {"ms_per_chunk_at_5s": round(1000 * e, 3), "ms_per_chunk_at_60s": round(1000 * lt, 3),
            "ratio_60s_vs_5s": round(lt / e, 3), "target_ratio_max": 1.2}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", type=Path, help="default: a random tiny model")
    source.add_argument("--model", type=Path,
                        help="an exported model directory (its fp32 and int8 graphs, no "
                             "checkpoint needed); eager PyTorch then runs a randomly "
                             "initialised model of the same config and vocabulary")
    parser.add_argument("--data", type=Path, help="prepared cache: int8 WER change on test")
    parser.add_argument("--steps", type=int, default=200, help="steps streamed per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, metavar="RUNS",
                        help="also profile each one-stream step graph over RUNS runs")
    parser.add_argument("--out", type=Path, default=RESULTS / "runtime.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir, torch_model, what = _models(args, Path(scratch))
        card = read_card(model_dir)
        fp32 = load_model(model_dir, threads=1, precision="fp32")
        int8 = load_model(model_dir, threads=1, precision="int8")
        result = {
            "model": card.model_name, "checkpoint": what,
            "threads": 1, "chunk_steps": card.chunk_steps, "clock": "thread CPU time",
            "int8_scheme": sorted(card.int8_schemes),
            "single_stream": compare_engines(torch_model, fp32, int8, 1, args.steps,
                                             args.repeats),
            "eight_streams": compare_engines(torch_model, fp32, int8, 8, args.steps // 2,
                                             args.repeats),
            "per_part_one_stream": per_part(torch_model, fp32, 1, args.repeats),
            "per_part_eight_streams": per_part(torch_model, fp32, 8, args.repeats),
            "stream_position": early_vs_late(fp32, 4 * args.repeats),
            "one_stream_sessions": one_stream_sessions(fp32, int8, args.steps, args.repeats),
            "int8_wer": _int8_wer(fp32, int8, args.data),
            "profile_one_stream": None if not args.profile else {
                "fp32": profile_step_graphs(fp32, args.profile),
                "int8": profile_step_graphs(int8, args.profile),
                "note": "onnxruntime profiler (wall µs, per-node medians): its per-node "
                        "timing inflates small nodes; shares, not absolute times"},
            "parity": card.metrics.get("parity"),
            "targets": {"onnx_fp32_speedup_vs_torch_min": 3.0, "int8_speedup_vs_fp32_min": 1.5,
                        "ratio_60s_vs_5s_max": 1.2, "int8_wer_increase_max_points": 0.5},
            "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        }
    print(json.dumps(write_result(args.out, result), indent=2))
    return 0


def _models(args: argparse.Namespace, scratch: Path) -> tuple[Path, AVSyncModel, str]:
    """(model directory, eager model, what was measured)."""
    if args.model:
        card = read_card(args.model)
        config = dataclasses.replace(load_config(card.model_name), vocab_size=card.vocab_size)
        torch.manual_seed(0)
        return args.model, AVSyncModel(config).eval(), f"{args.model} (eager: random weights)"
    checkpoint = args.checkpoint or random_tiny_checkpoint(scratch / "tiny.ckpt")
    export_model(ExportOptions(checkpoint=checkpoint, out=scratch / "model", int8=True))
    return (scratch / "model", load_checkpoint(checkpoint).model,
            str(args.checkpoint or "random tiny"))


def _int8_wer(fp32: Model, int8: Model, data: Path | None) -> dict:
    """The test split's WER of both precisions per modality, and int8's change (points)."""
    if data is None:
        return {"measured": False, "why": "no --data given"}
    test = cache_clips(data, "test", fp32.card.roi.stored, 64)
    change = wer_change(fp32, int8, test, float("inf"))
    return {"measured": True, "clips": len(test), "fp32": change["fp32_test"],
            "int8": change["test"], "change_points": change["wer_increase"]}


if __name__ == "__main__":
    raise SystemExit(main())
