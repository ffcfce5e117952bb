"""Ship a word language model in a model directory (`avsync export --add-lm DIR --lm FILE`).

The ARPA file (from `avsync data lm`, built from training text only) is copied beside the
graphs and named in model.json's `lm` (file, SHA-256, order, fusion weight and word bonus,
what it was trained on), mirrored into every graph's metadata like the rest of the card.

The weight and word bonus are the model's, not the LM's: the weaker the acoustic model, the
more a strong weight lets the LM delete the words it hears (an open-vocabulary model 7 epochs
in: 70.9 % WER without the LM, 84.3 % at weight 0.5 / bonus 1, 65.9 % at 0.3 / 2). So with
held-out clips (`--data`: its val split) they are tuned, by grid, on the model's own finals.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avsync.export.clips import LabelledClip
from avsync.export.evaluation import MODES

from avsync.errors import ConfigError
from avsync.runtime.lm import NgramLM
from avsync.runtime.loader import load_model
from avsync.runtime.model_card import ModelCard, read_card

LM_FILE = "lm.arpa.gz"
# what an LM attached without tuning (no held-out clips) fuses with
DEFAULT_WEIGHT = 0.5
DEFAULT_WORD_BONUS = 1.0
# the tuning grid: weight 0 is "no LM" (a model whose LM only costs words ships it switched off)
TUNE_WEIGHTS: tuple[float, ...] = (0.0, 0.2, 0.3, 0.5, 0.7)
TUNE_BONUSES: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)
TUNE_MODES: tuple[str, ...] = ("audio", "av")  # of `avsync.export.evaluation.MODES`


@dataclass(frozen=True)
class LmTuning:
    """The weight and bonus with the lowest mean WER over audio-only and audio-visual finals
    of clean held-out clips, and every grid point's WERs (%)."""

    weight: float
    word_bonus: float
    clips: int
    grid: dict[str, dict[str, float]]  # "weight/bonus" -> {mode: WER %}

    def summary(self) -> dict[str, Any]:
        """What the card records of the tuning."""
        return {"split": "val", "clips": self.clips,
                "criterion": "mean of audio-only and audio-visual WER of the finals, clean",
                "wer_percent": self.grid}


def tune_lm(model_dir: Path, clips: Sequence[LabelledClip],
            weights: Sequence[float] = TUNE_WEIGHTS, bonuses: Sequence[float] = TUNE_BONUSES
            ) -> LmTuning:
    """Grid search of the fusion weight and word bonus of the LM `model_dir` ships, on
    `clips` (held out: never the test split)."""
    from avsync.runtime.offline import transcribe_clips, transcript
    from avsync.runtime.recognizer import RecognizerConfig
    from avsync.text.metrics import wer

    model = load_model(model_dir)
    refs = [c.text for c in clips]
    inputs = {mode: [c.runtime_input(*MODES[mode]) for c in clips] for mode in TUNE_MODES}
    grid: dict[str, dict[str, float]] = {}
    best: tuple[float, float, float] | None = None
    for weight in weights:
        for bonus in (bonuses if weight > 0 else (0.0,)):
            config = RecognizerConfig(lm_weight=weight, lm_word_bonus=bonus)
            row = {mode: round(100 * wer(refs, [transcript(f) for f in transcribe_clips(
                model, ins, config)]), 2) for mode, ins in inputs.items()}
            grid[f"{weight:g}/{bonus:g}"] = row
            mean = sum(row.values()) / len(row)
            if best is None or mean < best[0]:
                best = (mean, weight, bonus)
    assert best is not None, "an empty grid"
    return LmTuning(best[1], best[2], len(clips), grid)


def attach_tuned_lm(model_dir: Path, lm_path: Path, clips: Sequence[LabelledClip],
                    trained_on: str = "") -> tuple[ModelCard, LmTuning]:
    """`attach_lm`, then `tune_lm` on `clips`; the card records the tuned values (the LM is
    copied, hashed and checked once: only the card's `lm` entry is rewritten)."""
    from avsync.export.exporter import write_card_everywhere  # torch: only for the export layer

    card = attach_lm(model_dir, lm_path, trained_on=trained_on)
    tuning = tune_lm(model_dir, clips)
    card = card.replace(lm={**(card.lm or {}), "weight": tuning.weight,
                            "word_bonus": tuning.word_bonus, "tuned": tuning.summary()})
    write_card_everywhere(model_dir, card)
    return card, tuning


def attach_lm(model_dir: Path, lm_path: Path, weight: float | None = None,
              word_bonus: float | None = None, trained_on: str = "") -> ModelCard:
    """Copy `lm_path` into `model_dir` and name it in the card (weight and bonus default to
    `DEFAULT_WEIGHT` / `DEFAULT_WORD_BONUS`); -> the new card."""
    from avsync.export.exporter import write_card_everywhere  # torch: only for the export layer

    if not lm_path.name.endswith(".arpa.gz"):
        raise ConfigError(f"{lm_path}: expected a gzipped ARPA file (*.arpa.gz) from "
                          "`avsync data lm`")
    lm = NgramLM.load(lm_path)  # refuse a broken file before touching the model
    card = read_card(model_dir)
    target = model_dir / LM_FILE
    shutil.copyfile(lm_path, target)
    card = card.replace(lm={
        "file": LM_FILE, "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "order": lm.order, "weight": DEFAULT_WEIGHT if weight is None else weight,
        "word_bonus": DEFAULT_WORD_BONUS if word_bonus is None else word_bonus,
        "trained_on": trained_on or lm_path.name, "format": "ARPA (gzip), natural use: "
        "weight x ln P(word | history) + word_bonus per word, at word boundaries; the word "
        "being spelled by its unigram look-ahead"})
    write_card_everywhere(model_dir, card)
    load_model(model_dir)  # loads as a user's would
    return card
