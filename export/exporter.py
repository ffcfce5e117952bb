"""`export_model`: checkpoint -> a verified model directory, or nothing at all.

Everything is built in a hidden staging folder beside `--out`: graphs, tokenizer, ASD
calibration (validation clips), model.json mirrored into every graph; then the directory is
loaded by `avsync.runtime` exactly as a user would, and checked against PyTorch (parity,
export/parity.py). With data, the test-split WER of the streaming runtime is measured for audio,
video and both; with --int8, the quantised graphs are checked too (WER within
`max_int8_wer_increase` points of fp32 when data is given). Only a model that passes is moved
to `--out`; on any failure the staging folder is removed and `--out` is left untouched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from avsync.export.calibration import calibrate_asd
from avsync.export.checkpoint import LoadedCheckpoint, load_checkpoint
from avsync.export.clips import LabelledClip, cache_clips, toy_clips
from avsync.export.compact import compact_file
from avsync.export.evaluation import wer_increase, wer_table
from avsync.export.onnx_export import OPSET, build_card, export_graphs, stamp_metadata
from avsync.export.parity import TOLERANCE, check_parity, require_parity
from avsync.export.quantize import quantize_graphs

from avsync import __version__
from avsync.errors import ConfigError
from avsync.runtime.cpu import cpu_info
from avsync.runtime.loader import load_model
from avsync.runtime.model_card import GRAPHS, AsdCalibration, ModelCard, write_card
from avsync.runtime.precision import DEFAULT_INT8_SCHEME, Int8Scheme

log = logging.getLogger(__name__)

# max |diff| of log-probs, fp16-stored weights vs PyTorch: their rounding (< 2^-11 relative)
# moves log-probs by ~1e-3 (fusion graph of the tiny model: 0.0018 on random input)
FP16_TOLERANCE: float = 0.05



@dataclass(frozen=True)
class ExportOptions:
    checkpoint: Path
    out: Path
    int8: bool = False
    int8_scheme: Int8Scheme = DEFAULT_INT8_SCHEME  # avsync.runtime.precision
    chunk_steps: int | None = None  # the card's streaming chunk (default: the config's)
    tokenizer: Path | None = None  # overrides the checkpoint's
    data: Path | None = None  # prepared cache: val -> ASD calibration, test -> parity, WER
    max_clips: int = 64  # per split
    force: bool = False  # replace an existing --out
    max_int8_wer_increase: float = 1.0  # WER points, for each of audio, video and AV
    parity_tolerance: float = TOLERANCE  # max |diff| of log-probs, ONNX vs PyTorch
    fp16_weights: bool = True  # store large weights as float16 (export/compact.py)
    max_fp16_wer_increase: float = 0.5  # WER points the fp16-stored weights may cost

    def __post_init__(self) -> None:
        if self.chunk_steps is not None and self.chunk_steps < 1:
            raise ConfigError(f"--chunk-steps must be >= 1, got {self.chunk_steps}")
        if self.max_clips < 1:
            raise ConfigError(f"--max-clips must be >= 1, got {self.max_clips}")


def write_card_everywhere(model_dir: Path, card: ModelCard) -> None:
    """model.json plus the same card in the metadata_props of every graph file present."""
    write_card(model_dir, card)
    for spec in GRAPHS:
        for int8 in (False, True):
            path = model_dir / spec.file(int8)
            if path.exists():
                stamp_metadata(path, card, spec.name)


@contextlib.contextmanager
def _staging(out: Path, force: bool):
    if out.exists() and not force:
        raise ConfigError(f"{out} already exists; pass --force to replace it or choose "
                          "another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export_model(options: ExportOptions) -> ModelCard:
    """Export, verify and publish; -> the card written to `options.out/model.json`."""
    loaded = load_checkpoint(options.checkpoint, options.tokenizer)
    chunk = options.chunk_steps or loaded.model.config.streaming.chunk_size
    with _staging(options.out, options.force) as staging:
        card = _build(loaded, options, chunk, staging)
        if options.out.exists():
            shutil.rmtree(options.out)
        os.replace(staging, options.out)
    log.info("wrote %s", options.out)
    return card


def _build(loaded: LoadedCheckpoint, options: ExportOptions, chunk: int, staging: Path
           ) -> ModelCard:
    model, roi = loaded.model, loaded.model.config.visual_frontend.roi_stored
    convention = model.config.visual_frontend.roi_convention
    export_graphs(model, staging)
    loaded.tokenizer.save(staging / "tokenizer")
    test = (cache_clips(options.data, "test", roi, options.max_clips, convention)
            if options.data else [])
    # every test clip (up to --max-clips) and 3 seeded toy clips of odd lengths: never the
    # traced batch size or length
    parity_clips = [*toy_clips(model.config), *test]
    calibration = AsdCalibration()
    if options.data:
        val = cache_clips(options.data, "val", roi, options.max_clips, convention)
        calibration = calibrate_asd(model, val, chunk, f"{options.data}:val")
    card = build_card(model, loaded.tokenizer, int8=False, chunk_steps=chunk,
                      calibration=calibration, training=_training(loaded, options),
                      metrics={}, export_facts=_export_facts(loaded, chunk))
    write_card_everywhere(staging, card)

    fp32 = load_model(staging)
    parity = check_parity(model, fp32, parity_clips, chunk, options.parity_tolerance)
    require_parity(parity, str(options.checkpoint))
    metrics: dict = {"parity": parity.to_json()}
    if options.data:
        metrics["test"] = wer_table(fp32, test)
    if options.fp16_weights:
        card = _store_fp16(model, card, staging, parity_clips, test, chunk, metrics, options)
    if options.int8:
        card = _add_int8(model, card, staging, parity_clips, test, chunk, metrics, options)
    card = card.replace(metrics=metrics)
    write_card_everywhere(staging, card)
    load_model(staging)  # the published files load as a user's would
    if options.int8:
        load_model(staging, precision="int8")
    return card


def _store_fp16(model, card: ModelCard, staging: Path, parity_clips: list[LabelledClip],
                test: list[LabelledClip], chunk: int, metrics: dict, options: ExportOptions
                ) -> ModelCard:
    """The fp32 graphs with their weights stored as float16 (export/compact.py), checked:
    parity with PyTorch within FP16_TOLERANCE, and with data a WER within
    `max_fp16_wer_increase` of the full-precision weights'. The tables then describe the
    shipped files: metrics["test"] is theirs, the full-precision one moves to
    metrics["fp16_weights"]."""
    saved = sum(compact_file(staging / spec.file()) for spec in GRAPHS)
    card = card.replace(graphs={name: {**entry, "weights": "fp16"}
                                for name, entry in card.graphs.items()})
    write_card_everywhere(staging, card)
    fp32 = load_model(staging)
    report = check_parity(model, fp32, parity_clips, chunk, FP16_TOLERANCE)
    require_parity(report, f"{options.checkpoint} (fp16-stored weights)")
    metrics["fp16_weights"] = {"bytes_saved": saved,
                               "max_abs_diff_log_probs": report.max_abs_diff_log_probs,
                               "greedy_identical_to_pytorch": report.greedy_identical}
    if options.data:
        table = wer_table(fp32, test)
        metrics["fp16_weights"].update(
            test_full_precision=metrics["test"],
            wer_increase=wer_increase(metrics["test"], table, options.max_fp16_wer_increase,
                                      "fp16-stored", "export with --fp32-weights"))
        metrics["test"] = table
    return card


def _add_int8(model, card: ModelCard, staging: Path, parity_clips: list[LabelledClip],
              test: list[LabelledClip], chunk: int, metrics: dict, options: ExportOptions
              ) -> ModelCard:
    quantize_graphs(staging, options.int8_scheme)
    if options.fp16_weights:  # the floats the quantiser left (convolutions, embeddings)
        for spec in GRAPHS:
            compact_file(staging / spec.file(True))
    graphs = {name: {**entry, "int8_file": name + ".int8.onnx",
                     "int8_scheme": options.int8_scheme.value}
              for name, entry in card.graphs.items()}
    card = card.replace(graphs=graphs)
    write_card_everywhere(staging, card)
    int8 = load_model(staging, precision="int8")
    report = check_parity(model, int8, parity_clips, chunk)
    # the CPU is part of the figure: the same file is exact on some CPUs only for some schemes
    metrics["int8"] = {"scheme": options.int8_scheme.value, "cpu": cpu_info().to_json(),
                       "max_abs_diff_log_probs": report.max_abs_diff_log_probs,
                       "greedy_identical_to_pytorch": report.greedy_identical,
                       "beam_identical_to_pytorch": report.beam_identical}
    if options.data:
        table = wer_table(int8, test)
        increases = wer_increase(metrics["test"], table, options.max_int8_wer_increase)
        metrics["int8"].update(test=table, wer_increase=increases,
                               wer_increase_av=increases["av"])
    return card


def _training(loaded: LoadedCheckpoint, options: ExportOptions) -> dict:
    facts = dict(loaded.training)
    facts.setdefault("checkpoint", loaded.path.name)
    if options.data is not None:
        facts.setdefault("evaluated_on", str(options.data))
    return facts


def _export_facts(loaded: LoadedCheckpoint, chunk: int) -> dict:
    return {"avsync": __version__, "torch": torch.__version__, "opset": OPSET,
            "exporter": "torch.onnx.export (TorchScript)", "checkpoint": loaded.path.name,
            "parity_chunk_steps": chunk, "trained_chunk_sizes": _trained_chunk_sizes(loaded)}


def _trained_chunk_sizes(loaded: LoadedCheckpoint) -> list[int | str] | None:
    """The chunk sizes the objective sampled in training (None: the checkpoint does not say)."""
    sizes = (loaded.training.get("objective") or {}).get("chunk_sizes")
    return None if sizes is None else ["full" if c in (None, "full") else c for c in sizes]
