"""`avsync train average`: the mean of the weights of a run's last checkpoints.

Late in a run the weights wander around a minimum with the noise of each batch; their mean sits
nearer its middle and usually recognises better than any one of them (ESPnet and WeNet ship
their models averaged over the last or best epochs). On 2 CPU cores that is WER for free: no
training step, a few seconds of arithmetic.

The averaged checkpoint is the newest input's with its `state_dict` replaced by the mean
(floating-point tensors; counters such as BatchNorm's `num_batches_tracked` from the newest),
the optimizer and scheduler states dropped (it is not a point to resume training from), and
`training.averaged` in its avsync section naming what was averaged. It loads wherever a
checkpoint does: `avsync train validate`, `avsync export`, `avsync eval`.

`--against BEST.ckpt -- --config YAML --data.cache CACHE ...` (validate's arguments after
`--`): validates both with the run's own validation (`avsync train validate`) and writes OUT
with a .json suffix (both monitors and the winner), so a recipe exports whichever is better,
not whichever it hoped for.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from avsync.errors import AvsyncError, ConfigError, ModelLoadError
from avsync.models.checkpoint import CHECKPOINT_KEY, read_raw, section_of

DROPPED = ("optimizer_states", "lr_schedulers")  # a resume point's, not the weights'


def average_checkpoints(paths: Sequence[Path], out: Path) -> Path:
    """Write the mean of `paths`' weights (in the order given; the last is "the newest") to
    `out`; they must hold the same model config and tokenizer."""
    if not paths:
        raise ConfigError("nothing to average: give at least one checkpoint")
    total: dict[str, torch.Tensor] = {}
    first_section: dict[str, Any] | None = None
    steps: list[int] = []
    newest: dict[str, Any] = {}
    for path in paths:
        raw = read_raw(path)
        section = section_of(raw, path)
        if first_section is None:
            first_section = section
        elif (section["model_config"], section.get("tokenizer_sha256")) != (
                first_section["model_config"], first_section.get("tokenizer_sha256")):
            raise ModelLoadError(f"{path}: another model config or tokenizer than {paths[0]}; "
                                 "only checkpoints of one run can be averaged")
        weights = raw["state_dict"]
        if total and set(weights) != set(total):
            raise ModelLoadError(f"{path}: its weights are not {paths[0]}'s (different names)")
        for name, tensor in weights.items():
            if tensor.is_floating_point():
                add = tensor.to(torch.float64)
                total[name] = add if name not in total else total[name] + add
            else:
                total[name] = tensor  # counters: the newest's
        steps.append(int(raw.get("global_step", -1)))
        newest = raw
    averaged = {name: (t / len(paths)).to(newest["state_dict"][name].dtype)
                if t.is_floating_point() else t for name, t in total.items()}
    result = {k: v for k, v in newest.items() if k not in DROPPED}
    result["state_dict"] = averaged
    section = dict(newest[CHECKPOINT_KEY])
    section["training"] = {**section["training"], "averaged": {
        "checkpoints": [p.name for p in paths], "global_steps": steps}}
    result[CHECKPOINT_KEY] = section
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    torch.save(result, partial)
    os.replace(partial, out)
    return out


@dataclass(frozen=True)
class Choice:
    """Which of two checkpoints validates better, by the run's monitor (lower is better)."""

    monitor: str
    scores: dict[str, float]  # checkpoint path -> monitor
    chosen: str


def validate_monitor(checkpoint: Path, validate_args: Sequence[str]) -> float:
    """The run's monitor (`val/stream/wer_av`) of `checkpoint`, by `avsync train validate`."""
    from avsync.train.cli import AVSyncCLI, quiet_lightning
    from avsync.train.module import MONITOR

    quiet_lightning()
    cli = AVSyncCLI(["validate", "--ckpt_path", str(checkpoint), "--trainer.logger", "false",
                     "--trainer.enable_progress_bar", "false", *validate_args])
    value = cli.trainer.callback_metrics.get(MONITOR)
    if value is None:
        raise AvsyncError(f"validating {checkpoint} logged no {MONITOR}")
    return float(value)


def choose(averaged: Path, against: Path, validate_args: Sequence[str]) -> Choice:
    from avsync.train.module import MONITOR

    scores = {str(p): validate_monitor(p, validate_args) for p in (averaged, against)}
    chosen = min(scores, key=lambda p: (scores[p], p != str(against)))  # ties: the original
    return Choice(MONITOR, scores, chosen)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="avsync train average", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  avsync train average runs/x/checkpoints/epoch-02[3-7].ckpt "
               "--out runs/x/checkpoints/averaged.ckpt\n"
               "  avsync train average runs/x/checkpoints/epoch-*.ckpt --last 5 "
               "--out runs/x/checkpoints/averaged.ckpt \\\n"
               "      --against runs/x/checkpoints/best.ckpt -- --config "
               "train/configs/small.yaml --data.cache CACHE --data.tokenizer TOK.model\n"
               "Arguments after `--` go to `avsync train validate` (data, threads).")
    parser.add_argument("checkpoints", type=Path, nargs="+",
                        help="checkpoints of one run, oldest first (sorted by name)")
    parser.add_argument("--out", type=Path, required=True, help="the averaged checkpoint")
    parser.add_argument("--last", type=int, default=None,
                        help="average only the last N of them (by name)")
    parser.add_argument("--against", type=Path, default=None,
                        help="validate the average and this checkpoint; write OUT with a .json suffix "
                             "with both scores and the better one")
    own, _, validate_args = _split(list(argv))
    args = parser.parse_args(own)
    paths = sorted(args.checkpoints, key=lambda p: p.name)
    if args.last is not None:
        if args.last < 1:
            parser.error("--last must be >= 1")
        paths = paths[-args.last:]
    average_checkpoints(paths, args.out)
    report: dict[str, Any] = {"out": str(args.out), "averaged": [str(p) for p in paths]}
    if args.against is not None:
        choice = choose(args.out, args.against, validate_args)
        report.update(monitor=choice.monitor, scores=choice.scores, chosen=choice.chosen)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


def _split(argv: list[str]) -> tuple[list[str], str, list[str]]:
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], "--", argv[at + 1:]
    return argv, "", []


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
