"""ModelConfig: YAML presets load, round-trip through dicts, and bad values are clear errors."""

from __future__ import annotations

import dataclasses

import pytest

from avsync.errors import ConfigError
from avsync.models.config import PRESETS, ModelConfig, load_config


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_and_round_trip(name: str) -> None:
    config = load_config(name)
    assert config.name == name
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_full_chunk_reads_as_null_or_full_and_is_written_as_null() -> None:
    config = load_config("tiny")
    assert None in config.objective.chunk_sizes
    assert None in config.to_dict()["objective"]["chunk_sizes"]
    data = config.to_dict()
    data["objective"]["chunk_sizes"] = [4, "full"]
    assert ModelConfig.from_dict(data).objective.chunk_sizes == (4, None)


def test_unknown_key_names_the_key_and_the_valid_ones() -> None:
    data = load_config("debug").to_dict()
    data["audio_encoder"]["d_modle"] = 64
    with pytest.raises(ConfigError, match=r"d_modle.*valid keys.*d_model"):
        ModelConfig.from_dict(data)


def test_wrong_type_and_bad_values_are_config_errors() -> None:
    data = load_config("debug").to_dict()
    data["vocab_size"] = "many"
    with pytest.raises(ConfigError, match="vocab_size must be int"):
        ModelConfig.from_dict(data)
    data = load_config("debug").to_dict()
    data["objective"]["p_av"] = 0.9
    with pytest.raises(ConfigError, match="sum to 1"):
        ModelConfig.from_dict(data)
    with pytest.raises(ConfigError, match="n_heads"):
        dataclasses.replace(load_config("debug").audio_encoder, d_model=30, n_heads=4)


def test_a_yaml_path_and_a_missing_preset(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("model:\n  name: mine\n  vocab_size: 40\n", encoding="utf-8")
    assert load_config(path) == ModelConfig(name="mine", vocab_size=40)
    with pytest.raises(ConfigError, match="not a preset"):
        load_config("no-such-size")
    (tmp_path / "empty.yaml").write_text("trainer: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no 'model:' section"):
        load_config(tmp_path / "empty.yaml")
