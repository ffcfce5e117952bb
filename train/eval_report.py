"""`avsync eval`'s outputs from one result mapping: a Markdown table, JSON and a PNG plot.

The result (what `evaluate.evaluate` returns and `eval.json` holds):
    {"model": {...backend description...}, "split": "test", "seed": 0,
     "snrs": ["clean", "10", "5", "0", "-5"],
     "asr": {"audio"|"video"|"av": {"clean"|"10"|...: {"wer", "cer", "clips", "words"}}},
     "sync": {"accuracy", "exact", "windows", "window_steps", "offsets", ...} or {"skipped": why},
     "asd": {"map", "face_frames", "positives", "scenes"} or {"skipped": why}}
Rates are fractions in JSON and percentages in the table and the plot.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

MODALITY_NAMES = {"audio": "audio-only", "video": "video-only", "av": "audio-visual"}
OUTPUT_FILES = {"markdown": "eval.md", "json": "eval.json", "plot": "wer_snr.png"}


def snr_label(snr: str) -> str:
    return snr if snr == "clean" else f"{snr} dB"


def _percent(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def markdown(result: dict[str, Any]) -> str:
    """The table: WER and CER per input modality and babble SNR, then sync and ASD rows."""
    snrs = result["snrs"]
    lines = [f"# avsync eval: {result['model'].get('model', '?')} on {result['split']}",
             "", "| input | metric | " + " | ".join(snr_label(s) for s in snrs) + " |",
             "|---|---|" + "---|" * len(snrs)]
    for modality, name in MODALITY_NAMES.items():
        rows = result["asr"][modality]
        for metric in ("wer", "cer"):
            cells = " | ".join(_percent(rows[s][metric]) for s in snrs)
            lines.append(f"| {name} | {metric.upper()} % | {cells} |")
    clips = result["asr"]["av"][snrs[0]]["clips"]
    lines += ["", f"{clips} clips; babble of other {result['split']} clips, seed "
              f"{result['seed']}; video-only input hears no audio, so its row is the same at "
              "every SNR.", "", _decoding_line(result["model"]), "",
              "| task | metric | value | on |", "|---|---|---|---|"]
    lines.append(_sync_row(result["sync"]))
    lines.append(_asd_row(result["asd"]))
    return "\n".join(lines) + "\n"


def _decoding_line(model: dict[str, Any]) -> str:
    """How the transcripts were made: a live stream's finals, or one decode per clip."""
    chunk = model.get("chunk_steps", "?")
    chunk_text = "whole clips" if chunk == "full" else f"{chunk}-step chunks"
    transcripts = model.get("transcripts", "one decode per clip")
    return (f"Transcripts: {transcripts}; the model read {chunk_text}, beam "
            f"{model.get('beam', '?')}, CTC weight {model.get('ctc_weight', '?')}.")


def _sync_row(sync: dict[str, Any]) -> str:
    if "skipped" in sync:
        return f"| AV sync offset | accuracy % (±1 frame) | n/a | {sync['skipped']} |"
    return (f"| AV sync offset | accuracy % (±{sync['tolerance_steps']} frame) | "
            f"{_percent(sync['accuracy'])} (exact {_percent(sync['exact'])}) | "
            f"{sync['windows']} windows of {sync['window_steps']} steps, offsets "
            f"{sync['offsets']} (+ = audio lags video) |")


def _asd_row(asd: dict[str, Any]) -> str:
    if "skipped" in asd:
        return f"| active speaker | mAP % | n/a | {asd['skipped']} |"
    return (f"| active speaker | mAP % | {_percent(asd['map'])} | {asd['face_frames']} "
            f"face-frames ({asd['positives']} speaking) of {asd['scenes']} scenes |")


def plot(result: dict[str, Any], path: Path) -> None:
    """WER (%) against SNR, one line per input modality; 'clean' sits right of the best SNR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snrs = result["snrs"]
    numeric = [float(s) for s in snrs if s != "clean"]
    right = (max(numeric) + 5.0) if numeric else 0.0
    xs = [right if s == "clean" else float(s) for s in snrs]
    order = sorted(range(len(snrs)), key=lambda i: xs[i])
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    for modality, name in MODALITY_NAMES.items():
        ys = [100 * result["asr"][modality][snrs[i]]["wer"] for i in order]
        axes.plot([xs[i] for i in order], ys, marker="o", label=name)
    axes.set_xticks([xs[i] for i in order], [snr_label(snrs[i]) for i in order])
    axes.set_xlabel("babble SNR")
    axes.set_ylabel("WER %")
    axes.set_title(f"{result['model'].get('model', '?')}: WER against babble SNR")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_outputs(result: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write eval.md, eval.json and wer_snr.png into `out`; -> their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / name for kind, name in OUTPUT_FILES.items()}
    paths["markdown"].write_text(markdown(result), encoding="utf-8")
    paths["json"].write_text(json.dumps(result, indent=1, allow_nan=True) + "\n",
                             encoding="utf-8")
    plot(result, paths["plot"])
    return paths
