"""`avsync <command>`: the one command line, importing each subcommand's package lazily.

Each subcommand lives where its layer lives and exposes `main(argv: list[str]) -> int`.
The table below is all `avsync --help` needs, so help never imports torch or onnxruntime.
"""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass

from avsync import __version__
from avsync.errors import AvsyncError


@dataclass(frozen=True)
class Command:
    name: str
    target: str  # "package.module:function", called with the remaining argv
    summary: str


COMMANDS: tuple[Command, ...] = (
    Command("synth", "avsync.data.synth.cli:main",
            "generate a synthetic LRS2-style corpus (espeak-ng voices, rendered talking faces)"),
    Command("data", "avsync.data.cli:main",
            "index an LRS2/LRS3 copy, prepare a training cache, train a tokenizer, audit AV sync"),
    Command("model", "avsync.models.cli:main",
            "inspect model configs: parameter counts and FLOPs per 40 ms step"),
    Command("train", "avsync.train.cli:main",
            "train a model with Lightning (fit / validate), configured by YAML"),
    Command("eval", "avsync.train.evaluate:main",
            "WER/CER for audio, video and audio-visual input over SNRs, sync accuracy, ASD mAP"),
    Command("export", "avsync.export.cli:main",
            "export a checkpoint to an ONNX model directory (parity-checked, optional int8)"),
    Command("transcribe", "avsync.runtime.transcribe:main",
            "transcribe audio/video files offline with an exported model (JSON, SRT, text)"),
    Command("serve", "avsync.serve.cli:main",
            "run the websocket server: streaming AVSR, active speakers and AV sync"),
    Command("stream", "avsync.serve.client:main",
            "stream a media file to a running server like a live client and print results"),
    Command("demo", "avsync.serve.demo:main",
            "start a server on the bundled model, stream the sample clip, draw a timeline"),
)


def _usage() -> str:
    width = max(len(c.name) for c in COMMANDS)
    lines = [
        f"avsync {__version__}: streaming audio-visual speech recognition, active-speaker",
        "detection and AV sync; train on LRS2/LRS3 or a synthetic corpus, export to ONNX, serve.",
        "",
        "usage: avsync <command> [options]     (avsync <command> --help for each)",
        "",
        "commands:",
    ]
    lines += [f"  {c.name.ljust(width)}  {c.summary}" for c in COMMANDS]
    lines += [
        "",
        "a typical path (README.md runs it at toy size; `make demo` shows the result):",
        "  avsync synth --out data/grid --speakers 24 --utts-per-speaker 50 --text grid",
        "  avsync data tokenizer data/grid --vocab-size 256 --out data/grid/.avsync/tok",
        "  avsync data prepare data/grid --roi-size 40 --tokenizer data/grid/.avsync/tok.model",
        "  avsync train fit --config train/configs/tiny.yaml --data.cache data/grid/.avsync/cache \\",
        "      --data.tokenizer data/grid/.avsync/tok.model --trainer.default_root_dir runs/tiny",
        "  avsync export runs/tiny/checkpoints/best.ckpt --out models/my-model --int8",
        "  avsync serve --model models/my-model --port 8765",
    ]
    return "\n".join(lines)


def _resolve(target: str):
    module_name, _, function_name = target.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        print(f"avsync {__version__}")
        return 0
    by_name = {c.name: c for c in COMMANDS}
    command = by_name.get(args[0])
    if command is None:
        print(f"avsync: unknown command {args[0]!r}; run 'avsync --help' for the list",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(_resolve(command.target)(args[1:]) or 0)
    except AvsyncError as error:
        print(f"avsync {command.name}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"avsync {command.name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
