"""Write MODEL_CARD.md for an exported model: recipe, data, parameters, training, the eval table
exactly as `avsync eval` printed it, and the known limits.

Why generated: a card typed by hand drifts from the model beside it. Every figure here is read
from a file the recipe wrote (model.json, the corpus's corpus.json, the run's metrics.csv, the
eval's eval.md); `tests/test_model_card.py` checks that the card's table is the eval's.

    python train/recipes/model_card.py MODEL_DIR --corpus DATA --run RUN --eval EVAL_DIR
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

LIMITS = """\
- Trained on synthetic data only: espeak-ng voices and rendered cartoon faces saying GRID-style
  commands (a closed 51-word grammar: command, colour, preposition, letter, digit, adverb). It
  does not transcribe real people or open vocabulary; real video needs a model trained on real
  data (README: "Training on your own LRS2 / LRS3 copy").
- The mouth ROI is 40 px grey (36 px after the centre crop), enough for the rendered lips.
- Faces must be frontal enough for OpenCV's Haar cascade in `detect` mode.
- The ASD calibration was fitted on the synthetic val split; on other data refit it
  (`avsync export --data`)."""


def _training_summary(run: Path) -> dict:
    metrics = sorted(run.glob("csv/version_*/metrics.csv"))
    rows = list(csv.DictReader(metrics[-1].open())) if metrics else []
    steps = max((int(r["step"]) for r in rows if r.get("step")), default=0)
    epochs = max((int(r["epoch"]) for r in rows if r.get("epoch")), default=-1) + 1
    return {"steps": steps, "epochs": epochs}


def _exported(training: dict, run: Path) -> str:
    """Which weights the graphs come from: a checkpoint (best.ckpt is chosen by validation) or
    the mean of several (`avsync train average`), and what validation said between them."""
    choice_file = run / "checkpoints" / "averaged.json"
    choice = json.loads(choice_file.read_text()) if choice_file.is_file() else None
    versus = ""
    if choice is not None:
        scores = {Path(p).name: v for p, v in choice["scores"].items()}
        versus = " (" + " vs ".join(f"`{name}` {100 * v:.1f} %" for name, v in scores.items()) \
            + f" {choice['monitor']})"
    averaged = training.get("averaged")
    if averaged:
        steps = averaged["global_steps"]
        return (f"; the exported weights are the mean of {len(steps)} checkpoints, steps "
                f"{steps[0]} to {steps[-1]} (`avsync train average`), chosen by validation"
                + versus)
    if "epoch" not in training or "global_step" not in training:
        return ""
    kept = f"; the mean of the last epochs validated no better{versus}" if choice else ""
    return (f"; the exported `{training.get('checkpoint', 'checkpoint')}` is from epoch "
            f"{training['epoch'] + 1}, step {training['global_step']}" + kept)


def _measured_limits(eval_dir: Path) -> str:
    """What the eval says this model is good and bad at, in words."""
    asr = json.loads((eval_dir / "eval.json").read_text()).get("asr", {})
    try:
        audio, av = 100 * asr["audio"]["clean"]["wer"], 100 * asr["av"]["clean"]["wer"]
    except (KeyError, TypeError):
        return ""
    weak = (" — weak: see docs/training.md (\"What makes the text losses learn\", \"The "
            "streaming gap, and what closed it\") for what held earlier runs back.")
    return (f"- Recognition: clean test WER {audio:.1f} % audio-only, {av:.1f} % audio-visual"
            + (weak if audio > 30 else "."))


def _first_pass_line(first_pass: Path | None) -> list[str]:
    """The partials' accuracy: the first pass alone, one decode per clip."""
    if first_pass is None:
        return []
    result = json.loads((first_pass / "eval.json").read_text())
    clean = {m: 100 * result["asr"][m]["clean"]["wer"] for m in ("audio", "video", "av")}
    chunk = result["model"].get("chunk_steps")
    return [f"The first pass alone ({chunk}-step chunks, what the partials read; "
            f"`avsync eval MODEL`, `{first_pass}/eval.md`): clean WER {clean['audio']:.1f} % "
            f"audio-only, {clean['video']:.1f} % video-only, {clean['av']:.1f} % audio-visual.",
            ""]


def card(model_dir: Path, corpus: Path, run: Path, eval_dir: Path, recipe: str,
         first_pass: Path | None = None) -> str:
    model = json.loads((model_dir / "model.json").read_text())
    data = json.loads((corpus / "corpus.json").read_text())
    cfg = data["config"]
    table = (eval_dir / "eval.md").read_text().strip()
    trained = _training_summary(run)
    files = sorted(p.name for p in model_dir.glob("*.onnx"))
    size_mb = sum(p.stat().st_size for p in model_dir.iterdir() if p.is_file()) / 1e6
    train_speakers = cfg["speakers"] - cfg["val_speakers"] - cfg["test_speakers"]
    test = model.get("metrics", {}).get("test")
    int8 = model.get("metrics", {}).get("int8")
    lines = [
        f"# Model card: {model_dir.name}",
        "",
        f"The `{model['model_name']}` avsync model (streaming audio-visual CTC + attention "
        f"decoder, sync embeddings, active-speaker head), exported to ONNX by avsync "
        f"{model['model_version']}: fp32 and int8 graphs ({len(files)} files, "
        f"{size_mb:.1f} MB in all). Chunks of {model['chunk_steps']} steps "
        f"({40 * model['chunk_steps']} ms), {model['left_context']} steps of left context, "
        f"{model['roi']['stored']} px grey mouth ROIs, {len(model['vocab'])} sentencepiece "
        f"pieces.",
        "",
        "## Recipe",
        "",
        f"`{recipe}` (synth, index, tokenizer, prepare, fit, checkpoint averaging, export, eval "
        f"of the finals and of the first pass) on 2 CPU cores; "
        f"`avsync model info {model['model_name']}` prints the parameter count and MFLOPs per "
        f"step. Training ran {trained['epochs']} epochs, {trained['steps']} optimiser steps"
        + _exported(model.get("training", {}), run) + ".",
        "",
        "## Data",
        "",
        f"`avsync synth --speakers {cfg['speakers']} --utts-per-speaker "
        f"{cfg['utts_per_speaker']} --val-speakers {cfg['val_speakers']} --test-speakers "
        f"{cfg['test_speakers']} --text {cfg['text']} --scenes {cfg['scenes']} "
        f"--seed {cfg['seed']}{_voices(cfg)}`: {data['clips']} clips, "
        f"{data['seconds'] / 3600:.2f} h; "
        f"{train_speakers} training speakers, {cfg['val_speakers']} validation and "
        f"{cfg['test_speakers']} test speakers (unseen in training); {cfg['scenes']} "
        f"multi-face scenes for the active-speaker mAP. Noise mixed in training at -5..20 dB "
        f"SNR (the kinds the training config's `data.noise` names).",
        "",
        "## Evaluation (`avsync eval` on the exported model, test speakers)",
        "",
        table,
        "",
        *_first_pass_line(first_pass),
    ]
    if test:
        lines += ["At export (`model.json` `metrics`): "
                  + json.dumps({"test": test}, sort_keys=True), ""]
    if int8:
        lines += [int8_summary(int8), ""]
    lines += ["## Known limits", "", _measured_limits(eval_dir), LIMITS, ""]
    return "\n".join(lines)


def _voices(cfg: dict) -> str:
    """The synth options of corpora made with other engines or rates than the defaults."""
    engines, rate = cfg.get("engines", ["espeak"]), cfg.get("rate_wpm", [140, 195])
    return ("" if list(engines) == ["espeak"] and list(rate) == [140, 195] else
            f" --engines {','.join(engines)} --rate-wpm {rate[0]}-{rate[1]}")


def int8_summary(int8: dict) -> str:
    """The int8 graphs in one paragraph: scheme, WER change per modality, and the CPU that
    measured them (int8 accuracy and speed depend on its instruction sets)."""
    scheme = int8.get("scheme", "u8s8")
    line = (f"int8 graphs: scheme `{scheme}` (docs/model-format.md, \"int8 graphs and CPUs\": "
            + ("exact on every x86-64 CPU" if scheme != "u8s8" else
               "exact only on CPUs with VNNI or AMX") + ")")
    if "wer_increase" in int8:
        change = ", ".join(f"{m} {v:+.2f}" for m, v in sorted(int8["wer_increase"].items()))
        line += f"; test WER change against fp32: {change} points"
    cpu = int8.get("cpu")
    measured = (f"{cpu['model']} ({cpu['kind']}), onnxruntime {cpu['onnxruntime']}" if cpu
                else "a CPU not recorded (before avsync recorded it)")
    rebuilt = (" They were rebuilt from the fp32 graphs by `avsync export --requantize`."
               if "reference" in int8 else "")
    return (line + f"; measured on {measured}.{rebuilt} `model.json` `metrics.int8` has every "
            "figure.")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--eval", type=Path, required=True, help="folder holding eval.md")
    parser.add_argument("--first-pass", type=Path,
                        help="folder of an eval of the first pass alone (`avsync eval` without "
                             "--finals): its clean WERs are quoted under the table")
    parser.add_argument("--recipe", default="train/recipes/synth-tiny.sh")
    args = parser.parse_args(argv)
    text = card(args.model_dir, args.corpus, args.run, args.eval, args.recipe, args.first_pass)
    (args.model_dir / "MODEL_CARD.md").write_text(text)
    print(f"wrote {args.model_dir / 'MODEL_CARD.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
