"""`avsync export --requantize DIR` and `--compact DIR`: an exported model reworked without its
checkpoint: new int8 graphs from its fp32 graphs, or its weights stored as float16.

Why: int8 graphs of the older `u8s8` scheme are exact only on CPUs with VNNI, and a model
directory may have been exported long before (its checkpoint gone). Re-quantising needs only
the fp32 graphs: the int8 graphs are rebuilt in another scheme, compared with the fp32 graphs
(max |diff| of log-probs for audio+video, audio and video), their WER change is measured on a
prepared cache's test split, and the CPU that measured it goes into the card. As with export,
everything happens in a staging copy and only a directory that passes replaces the original.
`--compact` does the same for fp16-stored weights (export/compact.py) of a directory exported
before they were the default: log-prob differences to the full-precision graphs and, with
data, the WER change of each modality.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from avsync.export.clips import LabelledClip, cache_clips
from avsync.export.compact import compact_file
from avsync.export.evaluation import MODES, wer_increase, wer_table
from avsync.export.quantize import quantize_graphs

from avsync.errors import ConfigError
from avsync.runtime.cpu import cpu_info
from avsync.runtime.loader import load_model
from avsync.runtime.model import Model
from avsync.runtime.model_card import GRAPHS, ModelCard, read_card
from avsync.runtime.offline import run_clips
from avsync.runtime.precision import DEFAULT_INT8_SCHEME, Int8Scheme

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequantizeOptions:
    model_dir: Path
    scheme: Int8Scheme = DEFAULT_INT8_SCHEME
    data: Path | None = None  # prepared cache: the test split measures the WER change
    max_clips: int = 64
    max_wer_increase: float = 1.0  # WER points, for each of audio, video and AV
    out: Path | None = None  # None: replace model_dir


def requantize(options: RequantizeOptions) -> ModelCard:
    """Rebuild the int8 graphs of `options.model_dir` in `options.scheme`; -> the new card."""
    return _rework(options.model_dir, options.out,
                   lambda staging, card: _quantize_and_measure(staging, card, options))


@dataclass(frozen=True)
class CompactOptions:
    model_dir: Path
    data: Path | None = None  # prepared cache: the test split measures the WER change
    max_clips: int = 64
    max_wer_increase: float = 0.5  # WER points, for each of audio, video and AV
    out: Path | None = None  # None: replace model_dir


def compact(options: CompactOptions) -> ModelCard:
    """Store the weights of `options.model_dir`'s graphs as float16; -> the new card."""
    card = read_card(options.model_dir)
    if all(entry.get("weights") == "fp16" for entry in card.graphs.values()):
        raise ConfigError(f"{options.model_dir}: its weights are stored as float16 already")
    return _rework(options.model_dir, options.out,
                   lambda staging, card: _compact_and_measure(staging, card, options))


def _rework(source: Path, out: Path | None, work) -> ModelCard:
    """`work(staging, card)` on a staging copy of `source`, which then replaces `out` (or
    `source`); on any failure nothing is replaced."""
    card = read_card(source)
    target = out or source
    if out and out.exists():
        raise ConfigError(f"{out} already exists; choose another --out")
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        card = work(staging, card)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card


def _compact_and_measure(staging: Path, card: ModelCard, options: CompactOptions) -> ModelCard:
    from avsync.export.exporter import write_card_everywhere  # torch: only for the export layer

    precisions = ["fp32", "int8"] if card.has_int8 else ["fp32"]
    before = {p: load_model(staging, precision=p) for p in precisions}  # sessions in memory
    saved = sum(compact_file(staging / spec.file(p == "int8")) for spec in GRAPHS
                for p in precisions)
    card = card.replace(graphs={name: {**entry, "weights": "fp16"}
                                for name, entry in card.graphs.items()})
    write_card_everywhere(staging, card)
    after = {p: load_model(staging, precision=p) for p in precisions}
    test = (cache_clips(options.data, "test", card.roi.stored, options.max_clips,
                        card.roi.convention) if options.data else [])
    clips = test or noise_clips(card.roi.stored, card.chunk_steps)
    measured: dict = {"bytes_saved": saved, "cpu": cpu_info().to_json(),
                      "reference": "the same graphs with float32 weights"}
    for p in precisions:
        measured[p] = {"max_abs_diff_log_probs_per_modality":
                       log_prob_diffs(before[p], after[p], clips)}
        if test:
            table = wer_table(after[p], test)
            measured[p].update(test=table, wer_increase=wer_increase(
                wer_table(before[p], test), table, options.max_wer_increase,
                f"fp16-stored {p}", "keep the float32 weights"))
    card = card.replace(metrics={**card.metrics, "fp16_weights": measured})
    write_card_everywhere(staging, card)
    return card


def _quantize_and_measure(staging: Path, card: ModelCard, options: RequantizeOptions
                          ) -> ModelCard:
    from avsync.export.exporter import write_card_everywhere  # torch: only for the export layer

    quantize_graphs(staging, options.scheme)
    if all(entry.get("weights") == "fp16" for entry in card.graphs.values()):
        for spec in GRAPHS:  # as the exporter stores them
            compact_file(staging / spec.file(True))
    graphs = {name: {**entry, "int8_file": name + ".int8.onnx",
                     "int8_scheme": options.scheme.value} for name, entry in card.graphs.items()}
    card = card.replace(graphs=graphs)
    write_card_everywhere(staging, card)
    fp32, int8 = load_model(staging, precision="fp32"), load_model(staging, precision="int8")
    test = (cache_clips(options.data, "test", card.roi.stored, options.max_clips,
                        card.roi.convention) if options.data else [])
    clips = test or noise_clips(card.roi.stored, card.chunk_steps)
    metrics = dict(card.metrics)
    metrics["int8"] = {"scheme": options.scheme.value, "cpu": cpu_info().to_json(),
                       "reference": "the fp32 graphs (requantized)",
                       "max_abs_diff_log_probs_per_modality": log_prob_diffs(fp32, int8, clips)}
    if test:
        metrics["int8"].update(wer_change(fp32, int8, test, options.max_wer_increase))
    card = card.replace(metrics=metrics)
    write_card_everywhere(staging, card)
    load_model(staging, precision="int8")  # the published files load as a user's would
    return card


def log_prob_diffs(reference: Model, other: Model, clips: Sequence[LabelledClip]
                   ) -> dict[str, float]:
    """max |diff| of CTC log-probs per modality, the same clips streamed through both."""
    out = {}
    for mode, (audio, video) in MODES.items():
        inputs = [c.runtime_input(audio, video) for c in clips]
        pairs = zip(run_clips(reference, inputs), run_clips(other, inputs), strict=True)
        out[mode] = round(max(float(np.abs(a.log_probs - b.log_probs).max())
                              for a, b in pairs), 5)
    return out


def wer_change(fp32: Model, int8: Model, test: Sequence[LabelledClip], max_increase: float
               ) -> dict:
    """WER of both per modality and the increase; QuantizationError past `max_increase`."""
    before, after = wer_table(fp32, test), wer_table(int8, test)
    increase = wer_increase(before, after, max_increase)
    return {"test": after, "fp32_test": before, "wer_increase": increase,
            "wer_increase_av": increase["av"]}


def noise_clips(roi: int, chunk: int, count: int = 3, seed: int = 7) -> list[LabelledClip]:
    """Seeded noise clips of odd lengths (never whole chunks) when no data is given."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        steps = chunk * (5 + 2 * k) + max(1, chunk // 2)
        audio = (0.1 * rng.standard_normal(steps * 640)).astype(np.float32)
        rois = rng.integers(0, 256, (steps, roi, roi), dtype=np.uint8)
        out.append(LabelledClip(f"noise-{k}", audio, rois, "", np.zeros(steps, bool)))
    return out
