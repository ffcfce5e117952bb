"""Ship a word language model in a model directory (`avsync export --add-lm DIR --lm FILE`).

The ARPA file (from `avsync data lm`, built from training text only) is copied beside the
graphs and named in model.json's `lm` (file, SHA-256, order, fusion weight and word bonus,
what it was trained on), mirrored into every graph's metadata like the rest of the card.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from avsync.errors import ConfigError
from avsync.runtime.lm import NgramLM
from avsync.runtime.loader import load_model
from avsync.runtime.model_card import ModelCard, read_card

LM_FILE = "lm.arpa.gz"


def attach_lm(model_dir: Path, lm_path: Path, weight: float = 0.5, word_bonus: float = 1.0,
              trained_on: str = "") -> ModelCard:
    """Copy `lm_path` into `model_dir` and name it in the card; -> the new card."""
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
        "order": lm.order, "weight": weight, "word_bonus": word_bonus,
        "trained_on": trained_on or lm_path.name, "format": "ARPA (gzip), natural use: "
        "weight x ln P(word | history) + word_bonus per word, at word boundaries"})
    write_card_everywhere(model_dir, card)
    load_model(model_dir)  # loads as a user's would
    return card
