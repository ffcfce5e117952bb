"""`avsync model ...`: inspect model configs without training anything.

`avsync model info CONFIG` prints parameters per part, MFLOPs per 40 ms step per part (one
stream, streaming step at the configured chunk size) and the latency the chunk implies.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from avsync.models.config import PRESETS, load_config

EPILOG = """examples:
  avsync model info tiny                     # the CPU model
  avsync model info base --chunk 8           # the GPU-sized model, streaming with 8-step chunks
  avsync model info train/configs/my.yaml --json
  avsync model info debug --states           # also list the packed streaming state slices
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avsync model", description="Inspect avsync model configs: parameter counts, "
        "FLOPs per 40 ms step and streaming latency.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser(
        "info", help="parameters and MFLOPs per step of each part", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print parameters per part and MFLOPs per 40 ms step per part.")
    info.add_argument("config", help=f"a preset name ({', '.join(PRESETS)}) or a YAML file "
                      "with a 'model:' section")
    info.add_argument("--chunk", type=int, default=None,
                      help="streaming chunk in steps (default: the config's chunk_size)")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.add_argument("--states", action="store_true",
                      help="also print each encoder's packed state layout")
    return parser


def _states(config_name: str) -> dict[str, dict[str, Any]]:
    from avsync.models.flops import build_meta

    model = build_meta(load_config(config_name))
    return {name: {"size": enc.state_size, "slices": enc.state_layout().to_list()}
            for name, enc in (("audio", model.audio_encoder), ("visual", model.visual_encoder),
                              ("fusion", model.fusion_encoder))}


def _info(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from avsync.models.flops import format_cost, model_cost

    config = load_config(args.config)
    cost = model_cost(config, args.chunk)
    states = _states(args.config) if args.states else None
    if args.json:
        document: dict[str, Any] = {**asdict(cost), "total_params": cost.total_params,
                    "streaming_mflops_per_step": cost.streaming_mflops}
        if states is not None:
            document["states"] = states
        print(json.dumps(document, indent=2))
        return 0
    print(format_cost(cost))
    for name, layout in (states or {}).items():
        print(f"{name} state: {layout['size']} floats per stream")
        for s in layout["slices"]:
            print(f"  {s['name']:<28} {str(tuple(s['shape'])):<16} offset {s['offset']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "info":
        return _info(args)
    raise AssertionError(args.command)
