"""`avsync eval`'s outputs from one result mapping: a Markdown table, JSON and a PNG plot.

The result (what `evaluate.evaluate` returns and `eval.json` holds):
    {"model": {...backend description...}, "split": "test", "seed": 0,
     "snrs": ["clean", "10", "5", "0", "-5"],
     "asr": {"audio"|"video"|"av": {"clean"|"10"|...: {"wer", "cer", "clips", "words"}}},
     "sync": {"accuracy", "exact", "windows", "window_steps", "offsets", ...} or {"skipped": why},
     "asd": {"map", "face_frames", "positives", "scenes"} or {"skipped": why},
     "noise": {"white"|"pink"|"brown"|"keyboard": {"audio"|"av": {snr: rates}}},
     "mismatched": {"av": {snr: rates}} (another speaker's lips) or {"skipped": why},
     "vocabulary": {"train_words", "test_oov_rate",
                    "rates": {modality: {snr: {"in_vocabulary"|"oov": {"wer", "words"},
                                               "insertions"}}}} (when the cache has a train split),
     "engines": {engine: {modality: {snr: rates}}} (synthetic corpora),
     "scene_asr": {"av"|"audio"|"video": rates, "attribution": {"accuracy", "words", ...},
                   "scenes"} or {"skipped": why}}
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
    if "scene_asr" in result:
        lines.append(_scene_row(result["scene_asr"]))
    for section in (_fusion_lines, _noise_lines, _mismatched_lines, _vocabulary_lines,
                    _engine_lines):
        lines += section(result)
    return "\n".join(lines) + "\n"


def _wer_cells(rows: dict[str, Any], snrs: list[str]) -> str:
    return " | ".join(_percent(rows[s]["wer"]) if s in rows else "" for s in snrs)


def _fusion_lines(result: dict[str, Any]) -> list[str]:
    """Does adding video ever cost? The largest AV WER above the better of audio-only and
    video-only, over every SNR of babble and of each other noise kind."""
    video = result["asr"]["video"]
    worst: tuple[float, str] | None = None
    conditions = [("babble", result["asr"])] + list(result.get("noise", {}).items())
    for kind, rows in conditions:
        for snr, av in rows["av"].items():
            better = min(rows["audio"][snr]["wer"], next(iter(video.values()))["wer"])
            cost = 100 * (av["wer"] - better)
            if worst is None or cost > worst[0]:
                worst = (cost, f"{kind} {snr_label(snr)}")
    if worst is None:
        return []
    return ["", f"Fusion: at worst the AV WER is {worst[0]:+.1f} points from the better of "
            f"audio-only and video-only ({worst[1]}; the floor: at most +1)."]


def _noise_lines(result: dict[str, Any]) -> list[str]:
    noise = result.get("noise", {})
    if not noise:
        return []
    snrs = [s for s in result["snrs"] if s != "clean"]
    lines = ["", "WER % in other noise (clean: the main table):", "",
             "| noise | input | " + " | ".join(snr_label(s) for s in snrs) + " |",
             "|---|---|" + "---|" * len(snrs)]
    for kind, rows in noise.items():
        for modality in ("audio", "av"):
            lines.append(f"| {kind} | {MODALITY_NAMES[modality]} | "
                         f"{_wer_cells(rows[modality], snrs)} |")
    return lines


def _mismatched_lines(result: dict[str, Any]) -> list[str]:
    wrong = result.get("mismatched", {})
    if "av" not in wrong:
        return []
    snrs, asr = result["snrs"], result["asr"]
    delta = " | ".join(f"{100 * (wrong['av'][s]['wer'] - asr['audio'][s]['wer']):+.1f}"
                       for s in snrs)
    return ["", "WER % with the wrong lips (another speaker's clip; babble as the main "
            "table):", "", "| input | " + " | ".join(snr_label(s) for s in snrs) + " |",
            "|---|" + "---|" * len(snrs),
            f"| audio-only | {_wer_cells(asr['audio'], snrs)} |",
            f"| AV, the speaker's lips | {_wer_cells(asr['av'], snrs)} |",
            f"| AV, wrong lips | {_wer_cells(wrong['av'], snrs)} |",
            f"| wrong lips - audio-only, points | {delta} |"]


def _vocabulary_lines(result: dict[str, Any]) -> list[str]:
    vocabulary = result.get("vocabulary")
    if not vocabulary:
        return []
    snrs = result["snrs"]
    lines = ["", f"WER % of in-vocabulary and out-of-vocabulary reference words (the train "
             f"split's {vocabulary['train_words']} words; {_percent(vocabulary['test_oov_rate'])}"
             " % of the test words are OOV; insertions belong to neither):", "",
             "| input | words | " + " | ".join(snr_label(s) for s in snrs) + " |",
             "|---|---|" + "---|" * len(snrs)]
    for modality, rows in vocabulary["rates"].items():
        for kind, name in (("in_vocabulary", "in vocabulary"), ("oov", "OOV")):
            cells = " | ".join(_percent(rows[s][kind]["wer"]) for s in snrs)
            lines.append(f"| {MODALITY_NAMES[modality]} | {name} | {cells} |")
    return lines


def _engine_lines(result: dict[str, Any]) -> list[str]:
    engines = result.get("engines")
    if not engines:
        return []
    snrs = result["snrs"]
    lines = ["", "WER % per synthesis engine of the test speakers' voices:", "",
             "| engine | input | clips | " + " | ".join(snr_label(s) for s in snrs) + " |",
             "|---|---|---|" + "---|" * len(snrs)]
    for engine, modalities in engines.items():
        for modality, rows in modalities.items():
            clips = next(iter(rows.values()))["clips"]
            lines.append(f"| {engine} | {MODALITY_NAMES[modality]} | {clips} | "
                         f"{_wer_cells(rows, snrs)} |")
    return lines


def _scene_row(scene: dict[str, Any]) -> str:
    if "skipped" in scene:
        return f"| multi-face scenes | WER % | n/a | {scene['skipped']} |"
    attribution = scene["attribution"]
    return (f"| multi-face scenes | WER % AV / audio / video | {_percent(scene['av']['wer'])} / "
            f"{_percent(scene['audio']['wer'])} / {_percent(scene['video']['wer'])} | "
            f"{scene['scenes']} scenes transcribed as files, faces found; who said what: "
            f"{_percent(attribution['accuracy'])} % of {attribution['words']} words on the "
            "right face |")


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
