"""`avsync export CKPT --out models/NAME [--int8] [--chunk-steps N] [--data CACHE]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from avsync.runtime.precision import DEFAULT_INT8_SCHEME, Int8Scheme

DESCRIPTION = """\
Export a training checkpoint to an ONNX model directory: one graph per streaming part (audio
step with log-mel inside, visual step with ROI crop/normalisation inside, fusion step, ASD
head, attention decoder), the tokenizer, and model.json mirrored into every graph's
metadata_props. The exporter streams clips through the exported graphs with avsync.runtime and
compares them with PyTorch (max |diff| of log-probs <= 1e-3 for audio+video, audio only and
video only); a model that fails is not written. Without --data the check runs on seeded toy
clips; with a prepared cache it runs on the test split, the ASD calibration is fitted on the
val split, and the test WER (audio, video, both) goes into the model card."""

EPILOG = """\
examples:
  avsync export runs/tiny/checkpoints/best.ckpt --out models/tiny
  avsync export best.ckpt --out models/tiny --int8 --data data/synth/.avsync/cache
  avsync export best.ckpt --out models/tiny --int8 --int8-scheme u8u8 --force
  avsync export --requantize models/tiny --data data/synth/.avsync/cache   # new int8 graphs
  avsync export --compact models/tiny --data data/synth/.avsync/cache      # fp16-stored weights
  avsync export --add-lm models/tiny --lm data/synth/.avsync/lm.arpa.gz     # word LM
  avsync export --add-lm models/tiny --lm LM.arpa.gz --data CACHE   # weight tuned on val
  avsync export best.ckpt --out models/tiny-c8 --chunk-steps 8 --force
  avsync export best.ckpt --out models/x --tokenizer data/synth/.avsync/tok.model

the model directory is described in docs/model-format.md; run it with avsync.runtime
(`avsync transcribe FILE --model models/tiny`) or plain onnxruntime (docs/embedding.md)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="avsync export", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, metavar="CKPT", nargs="?",
                   help="Lightning checkpoint from `avsync train` (or a plain avsync one)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="model directory to write (e.g. models/tiny); with --requantize, "
                        "write there instead of replacing MODEL_DIR")
    p.add_argument("--add-lm", type=Path, metavar="MODEL_DIR",
                   help="no checkpoint: put the word language model --lm into an exported "
                        "model directory (model.json names it; the runtime fuses it into "
                        "the CTC beam search)")
    p.add_argument("--lm", type=Path, metavar="FILE.arpa.gz",
                   help="with --add-lm: the ARPA model from `avsync data lm`")
    p.add_argument("--lm-weight", type=float,
                   help="with --add-lm: fusion weight of the LM's log-probability (0.5; with "
                        "--data and without this, weight and bonus are tuned by grid on the "
                        "val split's finals, --max-clips of them)")
    p.add_argument("--lm-word-bonus", type=float,
                   help="with --add-lm: score added per word (1.0)")
    p.add_argument("--requantize", type=Path, metavar="MODEL_DIR",
                   help="no checkpoint: rebuild the int8 graphs of an exported model directory "
                        "from its fp32 graphs in --int8-scheme (with --data, the WER change "
                        "is measured and this CPU recorded in model.json)")
    p.add_argument("--compact", type=Path, metavar="MODEL_DIR",
                   help="no checkpoint: store the weights of an exported model directory's "
                        "graphs as float16 (half the files; see --fp32-weights), measuring the "
                        "log-prob change and, with --data, each modality's WER change")
    p.add_argument("--int8", action="store_true",
                   help="also write dynamically quantised *.int8.onnx graphs (MatMul/Gemm)")
    p.add_argument("--int8-scheme", choices=[s.value for s in Int8Scheme],
                   default=DEFAULT_INT8_SCHEME.value,
                   help="u8s7 (default): 7-bit weights, exact on every x86-64 CPU; u8u8: "
                        "exact everywhere, slower with VNNI; u8s8: 8-bit weights, exact only "
                        "on CPUs with VNNI/AMX (saturates on AVX2-only CPUs)")
    p.add_argument("--chunk-steps", type=int, metavar="N",
                   help="streaming chunk in 40 ms steps for the card and the parity check "
                        "(default: the model config's chunk_size)")
    p.add_argument("--tokenizer", type=Path, metavar="MODEL",
                   help="sentencepiece .model to use instead of the checkpoint's")
    p.add_argument("--data", type=Path, metavar="CACHE",
                   help="prepared cache (`avsync data prepare`): val calibrates ASD, test "
                        "checks parity and measures WER (and the int8 WER change)")
    p.add_argument("--max-clips", type=int, default=64, metavar="N",
                   help="clips per split taken from --data (default 64)")
    p.add_argument("--max-int8-wer-increase", type=float, default=1.0, metavar="POINTS",
                   help="refuse int8 graphs whose audio, video or AV WER exceeds fp32's by "
                        "more (default 1.0)")
    p.add_argument("--fp32-weights", action="store_true",
                   help="store the weights in full float32 (default: large weights as float16, "
                        "cast back to float32 when onnxruntime loads the graph: half the file, "
                        "the same fp32 compute; the exporter checks what the rounding costs)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.add_lm:
        if not args.lm:
            parser.error("--add-lm needs --lm FILE.arpa.gz")
        return _add_lm(args)
    if args.requantize:
        if args.checkpoint:
            parser.error("--requantize takes a model directory, not a checkpoint")
        return _requantize(args)
    if args.compact:
        if args.checkpoint:
            parser.error("--compact takes a model directory, not a checkpoint")
        from avsync.export.requantize import CompactOptions, compact

        card = compact(CompactOptions(model_dir=args.compact, data=args.data,
                                      max_clips=args.max_clips, out=args.out))
        print(json.dumps({"out": str(args.out or args.compact),
                          "fp16_weights": card.metrics["fp16_weights"]}, indent=2))
        return 0
    if not args.checkpoint or not args.out:
        parser.error("give a checkpoint and --out DIR (or --requantize MODEL_DIR)")
    from avsync.export.exporter import ExportOptions, export_model

    card = export_model(ExportOptions(
        checkpoint=args.checkpoint, out=args.out, int8=args.int8,
        int8_scheme=Int8Scheme(args.int8_scheme), chunk_steps=args.chunk_steps,
        tokenizer=args.tokenizer, data=args.data, max_clips=args.max_clips, force=args.force,
        max_int8_wer_increase=args.max_int8_wer_increase, fp16_weights=not args.fp32_weights))
    summary = {"out": str(args.out), "model": card.model_name, "chunk_steps": card.chunk_steps,
               "int8": card.has_int8, "metrics": card.metrics}
    print(json.dumps(summary, indent=2))
    return 0


def _add_lm(args: argparse.Namespace) -> int:
    from avsync.export.lm import attach_lm, attach_tuned_lm

    if args.data is not None and args.lm_weight is None and args.lm_word_bonus is None:
        from avsync.export.clips import cache_clips

        from avsync.runtime.model_card import read_card

        card = read_card(args.add_lm)
        clips = cache_clips(args.data, "val", card.roi.stored, args.max_clips,
                            card.roi.convention)
        card, tuning = attach_tuned_lm(args.add_lm, args.lm, clips)
        for point, row in tuning.grid.items():
            print(f"weight/bonus {point:>7}: " + "  ".join(
                f"{mode} {value:5.1f} %" for mode, value in row.items()), file=sys.stderr)
    else:
        card = attach_lm(args.add_lm, args.lm, args.lm_weight, args.lm_word_bonus)
    print(json.dumps({"out": str(args.add_lm), "lm": {k: v for k, v in (card.lm or {}).items()
                                                      if k != "tuned"}}, indent=2))
    return 0


def _requantize(args: argparse.Namespace) -> int:
    from avsync.export.requantize import RequantizeOptions, requantize

    card = requantize(RequantizeOptions(
        model_dir=args.requantize, scheme=Int8Scheme(args.int8_scheme), data=args.data,
        max_clips=args.max_clips, max_wer_increase=args.max_int8_wer_increase, out=args.out))
    print(json.dumps({"out": str(args.out or args.requantize), "int8": card.metrics["int8"]},
                     indent=2))
    return 0
