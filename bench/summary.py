"""The README's performance table, generated from bench/results/*.json.

Why generated: figures copied by hand go stale the day a benchmark is re-run. The README holds
this script's output between two markers, and a test fails when they differ, so whoever
re-runs a benchmark runs `python bench/summary.py --write README.md` too.

    python bench/summary.py                 # print the table
    python bench/summary.py --write README.md
    python bench/summary.py --check README.md   # exit 1 if the README's copy is stale
    python bench/summary.py --compare old/runtime.json bench/results/runtime.json

Every row names the CPU kind its result was measured on (bench/record.py); ratios of two
results are compared only within one CPU kind.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
BEGIN, END = "<!-- bench:begin (bench/summary.py writes this table) -->", "<!-- bench:end -->"

Row = tuple[str, str, str, str]  # what, figure, baseline / ratio, file


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def _runtime(d: dict) -> list[Row]:
    one, eight = d["single_stream"], d["eight_streams"]
    checkpoint = d.get("checkpoint", "")
    model = checkpoint if checkpoint.startswith("random") else f"{d['model']}, trained"
    int8 = d.get("int8_wer", {})
    change = int8.get("change_points")
    wer = ("" if not int8.get("measured") else
           f"; int8 WER {change:+.2f} points" if isinstance(change, int | float) else
           "; int8 WER " + ", ".join(f"{k} {v:+.2f}" for k, v in change.items()) + " points")
    position = d["stream_position"]
    return [
        (f"runtime, 1 stream ({model}, {d['chunk_steps']}-step chunks)",
         f"{one['onnx_fp32_ms_per_chunk']} ms per {40 * d['chunk_steps']} ms chunk "
         f"(RTF {one['onnx_fp32_real_time_factor']})",
         f"ONNX {one['onnx_fp32_speedup_vs_torch']}x eager PyTorch; int8 "
         f"{one['int8_speedup_vs_fp32']}x fp32{wer}", "runtime.json"),
        ("runtime, 8 streams batched",
         f"{eight['onnx_fp32_ms_per_chunk']} ms per chunk of 8 streams",
         f"ONNX {eight['onnx_fp32_speedup_vs_torch']}x eager PyTorch", "runtime.json"),
        ("runtime, a chunk 60 s into a stream", f"{position['ms_per_chunk_at_60s']} ms",
         f"{position['ratio_60s_vs_5s']}x a chunk 5 s in (cached state)", "runtime.json"),
    ]


def _second_pass(d: dict) -> list[Row]:
    w = d["wer_percent"]
    return [("runtime: a final's second pass (its segment re-read whole)",
             f"{d['median_reread_ms_per_speech_s']} ms per second of speech",
             f"{d['median_reread_over_stream']}x streaming it in chunks; clean WER of finals "
             f"{w['audio_wer_first_pass_only']} -> {w['audio_wer_second_pass']} % audio-only, "
             f"{w['av_wer_first_pass_only']} -> {w['av_wer_second_pass']} % AV",
             "second_pass.json")]


def _int8(d: dict) -> list[Row]:
    one, emulated = d["speed_one_stream"]["speedup_vs_fp32"], d["emulated_avx2"]
    line = ", ".join(f"{k} {v}x" for k, v in one.items())
    rows = [("int8 schemes vs fp32, 1 stream (bench/int8.py)", line,
             "WER change (points, AV/audio/video): " + "; ".join(
                 f"{k} " + "/".join(f"{v['wer_increase'][m]:+.2f}" for m in ("av", "audio",
                                                                            "video"))
                 for k, v in d["this_cpu"].items()), "int8.json")]
    if emulated.get("measured"):
        diffs = {k: max(v["max_abs_diff_log_probs"].values())
                 for k, v in emulated["schemes"].items()}
        rows.append(("int8 on an AVX2-only CPU (qemu Haswell, accuracy only)",
                     ", ".join(f"{k} max abs diff of log-probs {v:.2f}" for k, v in diffs.items()),
                     "against fp32: u8s8 saturates without VNNI, u8s7 and u8u8 do not (emulated on the host below)", "int8.json"))
    return rows


def _serve(name: str) -> Callable[[dict], list[Row]]:
    def rows(d: dict) -> list[Row]:
        held = d["sessions_held"]
        kind = "bundled " if "avsync-tiny-grid" in d["model"]["dir"] else ""
        return [(f"server, {kind}{d['model']['name']} model: real-time AV sessions at p95 partial "
                 f"latency <= 300 ms", f"{held['batched']} sessions (2 cores)",
                 f"{d['sessions_held_ratio']}x one inference per session "
                 f"({held['one_inference_per_session']})", name)]
    return rows


def _data(d: dict) -> list[Row]:
    rows = [("training data: prepared cache vs decoding mp4s",
             f"{d['cache_clips_per_s']:.0f} clips/s",
             f"{d['cache_over_decode']:.0f}x decode + crop", "data.json")]
    costs = d.get("prepare_costs")
    if costs:
        fps, wall = costs["frames_per_s_one_core"], costs["lrs3_wall_hours"]
        rows.append((f"preparing {costs['frame']} video, one core (decode / face + landmarks "
                     "/ mean-face crop)", " / ".join(f"{v:.0f}" for v in fps.values())
                     + " frames/s", f"LRS3 ({costs['lrs3_hours']} h): " + ", ".join(
                         f"{v} h on {c} cores" for c, v in wall.items()), "data.json"))
    return rows


def _media(d: dict) -> list[Row]:
    det = d["detection"]["640x480"]
    return [("media: decode mp4 to 25 fps gray", f"{d['decode']['decode_media_mp4_frames_per_s']:.0f}"
             " frames/s", f"{d['decode']['decode_media_vs_bare_ratio']}x a bare PyAV loop",
             "media.json"),
            ("media: Haar face tracking 640x480", f"{det['tracker_detect_every_5_ms_per_frame']} ms/frame",
             f"{det['tracker_every_5_vs_every_frame_ratio']}x the time of detecting every frame",
             "media.json"), *_faces(d)]


def _faces(d: dict) -> list[Row]:
    """The landmark path (detect mode): per face per frame against the Haar tracker."""
    if "faces" not in d:
        return []
    speed = d["faces"]["speed"]["640x480"]
    return [("media: landmarks + mean-face crop 640x480",
             f"{speed['landmarks_ms_per_face_per_frame']} ms per face per frame",
             f"{speed['landmarks_vs_haar_ratio']}x the Haar tracker + crop", "media.json")]


def _synth(d: dict) -> list[Row]:
    return [("synthetic corpus generation (2 workers)", f"{d['workers_2']['clips_per_s']} clips/s",
             f"{d['two_over_one']}x 1 worker", "synth.json")]


def _throughput(d: dict) -> list[Row]:
    return [(f"training throughput ({d['config']}, {d['threads']} threads"
             f"{', bf16' if d['bf16'] else ''})", f"{d['train_steps_per_s']:.0f} steps/s",
             f"target {d['target_steps_per_s']}", "model_throughput_tiny"
             f"{'_bf16' if d['bf16'] else ''}.json")]


def _transcribe_memory(d: dict) -> list[Row]:
    runs, whole = d["transcribe"], d["baseline_decode_whole_60s"]
    return [("avsync transcribe: peak RSS, 10 min of 720p video",
             f"{runs['long']['peak_rss_mib']} MiB ({runs['long']['wall_s']} s wall)",
             f"{d['ratios']['peak_rss_long_vs_short']}x 60 s of it; 60 min of audio "
             f"{runs['audio']['peak_rss_mib']} MiB ({runs['audio']['wall_s']} s); decoding the "
             f"60 s video whole {whole['peak_rss_mib']:.0f} MiB", "transcribe_memory.json")]


def _word_times(d: dict) -> list[Row]:
    av, audio = d["audio_visual"]["start_error_ms"], d["audio_only"]["start_error_ms"]
    return [(f"avsync transcribe: word start error vs the synthetic corpus ({d['clips']} clips)",
             f"{av['mean']:+} ms mean, {av['mean_abs']} ms mean absolute (AV)",
             f"max {av['max_abs']} ms; audio-only {audio['mean']:+} / {audio['mean_abs']} ms",
             "word_times.json")]


SOURCES: list[tuple[str, Callable[[dict], list[Row]]]] = [
    ("runtime.json", _runtime), ("int8.json", _int8), ("second_pass.json", _second_pass),
    ("serve-tiny-grid.json", _serve("serve-tiny-grid.json")),
    ("serve-tiny-random.json", _serve("serve-tiny-random.json")),
    ("serve.json", _serve("serve.json")), ("data.json", _data), ("media.json", _media),
    ("synth.json", _synth), ("model_throughput_tiny.json", _throughput),
    ("model_throughput_tiny_bf16.json", _throughput),
    ("transcribe_memory.json", _transcribe_memory), ("word_times.json", _word_times)]


def cpu_kind(result: dict) -> str:
    """The CPU kind a result was measured on (bench/record.py), or "not recorded"."""
    cpu = result.get("cpu")
    return cpu["kind"] if isinstance(cpu, dict) and "kind" in cpu else "not recorded"


def table() -> str:
    rows: list[tuple[Row, str]] = []
    for name, make in SOURCES:
        data = _load(name)
        if data is not None:
            rows += [(row, cpu_kind(data)) for row in make(data)]
    lines = ["| what | median | against the same-process baseline | CPU | bench/results/ |",
             "|---|---|---|---|---|"]
    lines += [f"| {what} | {figure} | {ratio} | {cpu} | `{file}` |"
              for (what, figure, ratio, file), cpu in rows]
    return "\n".join(lines)


def compare(before: Path, after: Path) -> list[str]:
    """Every ratio (a key with "speedup", "ratio" or "_over_" in its name) of two results of
    the same benchmark, side by side; refused across CPU kinds, whose ratios differ by design
    (int8 gains with VNNI, not without)."""
    a, b = (json.loads(p.read_text()) for p in (before, after))
    if cpu_kind(a) != cpu_kind(b) or cpu_kind(a) == "not recorded":
        raise SystemExit(f"not comparable: {before} ran on {cpu_kind(a)}, {after} on "
                         f"{cpu_kind(b)}; re-run both on one CPU kind")
    flat_a, flat_b = _ratios(a), _ratios(b)
    return [f"{key}: {flat_a[key]} -> {flat_b[key]}" for key in flat_a if key in flat_b]


def _ratios(data: object, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}{key}"
            if isinstance(value, int | float) and not isinstance(value, bool) and any(
                    word in key for word in ("speedup", "ratio", "_over_")):
                out[name] = value
            else:
                out.update(_ratios(value, name + "."))
    return out


def block() -> str:
    return f"{BEGIN}\n{table()}\n{END}"


def current(readme: Path) -> str:
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{readme}: no '{BEGIN}' ... '{END}' block")
    return text[text.index(BEGIN):text.index(END) + len(END)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", type=Path, metavar="README", help="replace the README's table")
    parser.add_argument("--check", type=Path, metavar="README",
                        help="exit 1 if the README's table is not this script's output")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"),
                        help="the ratios of two results of one benchmark (same CPU kind only)")
    args = parser.parse_args(argv)
    if args.compare:
        print("\n".join(compare(*args.compare)))
    elif args.write:
        args.write.write_text(args.write.read_text().replace(current(args.write), block()))
    elif args.check:
        if current(args.check) != block():
            print(f"{args.check}: the performance table is stale; run "
                  f"`python bench/summary.py --write {args.check}`", file=sys.stderr)
            return 1
    else:
        print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
