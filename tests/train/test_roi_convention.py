"""A model's mouth-crop convention travels from the prepared cache through training to the
model card, and every mismatch is refused with a message that names both sides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from avsync.train.datamodule import AVDataModule

from avsync.data.cache import PreparedCache
from avsync.errors import ConfigError, ModelLoadError
from avsync.models.config import VisualFrontendConfig
from avsync.runtime.model_card import ModelCard, read_card
from avsync.text.tokenizer import Tokenizer

BUNDLED = Path(__file__).resolve().parents[2] / "models" / "avsync-tiny-grid"


def test_a_card_without_a_convention_is_the_face_box_one() -> None:
    data = json.loads((BUNDLED / "model.json").read_text())
    assert "convention" not in data["roi"]
    assert read_card(BUNDLED).roi.convention == "face-box"


def test_a_card_with_a_convention_this_avsync_cannot_cut_is_refused() -> None:
    data = json.loads((BUNDLED / "model.json").read_text())
    data["roi"]["convention"] = "dlib-68"
    with pytest.raises(ModelLoadError, match="'dlib-68'.*'face-box', 'mean-face'"):
        ModelCard.from_json(data, "some/model.json")
    data["roi"]["convention"] = "mean-face"
    assert ModelCard.from_json(data, "some/model.json").roi.convention == "mean-face"


def test_the_model_config_names_a_known_convention() -> None:
    assert VisualFrontendConfig().roi_convention == "face-box"
    assert VisualFrontendConfig(roi_convention="mean-face").roi_convention == "mean-face"
    with pytest.raises(ConfigError, match="roi_convention 'x'"):
        VisualFrontendConfig(roi_convention="x")


def test_training_refuses_a_cache_cut_by_another_convention(corpus) -> None:
    cache = PreparedCache(corpus.cache)
    assert cache.roi_convention == "face-box"
    data = AVDataModule(str(corpus.cache), str(corpus.tokenizer), workers=0)
    with pytest.raises(ConfigError, match="'face-box'.*'mean-face'.*--roi-convention mean-face"):
        data.attach(Tokenizer.load(corpus.tokenizer), roi_size=16, roi_stored=cache.roi_size,
                    roi_convention="mean-face")
    data.attach(Tokenizer.load(corpus.tokenizer), roi_size=16, roi_stored=cache.roi_size)
    assert data.facts()["roi_convention"] == "face-box"
