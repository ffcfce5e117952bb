"""ModelConfig and ObjectiveConfig: YAML presets load, round-trip through dicts, bad values are
clear errors, and mappings of the layout before the objective left the model still load."""

from __future__ import annotations

import dataclasses

import pytest

from avsync.errors import ConfigError
from avsync.models.config import PRESETS, ModelConfig, load_config, split_legacy_objective
from avsync.models.objective import ObjectiveConfig, load_objective


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_and_round_trip(name: str) -> None:
    config = load_config(name)
    assert config.name == name
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_full_chunk_reads_as_null_or_full_and_is_written_as_null() -> None:
    objective = load_objective("tiny")
    assert None in objective.chunk_sizes
    assert None in objective.to_dict()["chunk_sizes"]
    data = objective.to_dict()
    data["chunk_sizes"] = [4, "full"]
    assert ObjectiveConfig.from_dict(data).chunk_sizes == (4, None)


def test_the_objective_is_trainings_not_the_models() -> None:
    """Loss weights live in the YAML's top-level `objective:`; the model config keeps only
    what builds parameters (the training-only CTC heads among them)."""
    assert "objective" not in ModelConfig().to_dict()
    tiny, objective = load_config("tiny"), load_objective("tiny")
    assert tiny.heads.audio_ctc and tiny.heads.visual_ctc and objective.audio_ctc_weight == 0.5
    objective.check_model(tiny)
    for name in PRESETS:
        load_objective(name).check_model(load_config(name))


def test_a_model_mapping_of_the_old_layout_still_loads() -> None:
    """Checkpoints and YAML files written before the objective moved hold it as
    `model.objective`: the model loads, a modality CTC weight above 0 becomes its head."""
    data = load_config("debug").to_dict()
    del data["heads"]["audio_ctc"], data["heads"]["visual_ctc"]
    data["objective"] = {**load_objective("debug").to_dict(), "audio_ctc_weight": 0.5}
    model, objective = split_legacy_objective(data)
    assert objective is not None and objective["audio_ctc_weight"] == 0.5
    assert "objective" not in model and model["heads"]["audio_ctc"] is True
    config = ModelConfig.from_dict(data)
    assert config.heads.audio_ctc and not config.heads.visual_ctc
    assert config == dataclasses.replace(load_config("debug"), heads=dataclasses.replace(
        load_config("debug").heads, audio_ctc=True))
    assert split_legacy_objective(config.to_dict()) == (config.to_dict(), None)


def test_a_training_yaml_of_the_old_layout(tmp_path) -> None:
    old = tmp_path / "old.yaml"
    old.write_text("model:\n  name: old\n  objective: {ctc_weight: 0.2, chunk_sizes: [4, null]}\n",
                   encoding="utf-8")
    assert load_config(old) == ModelConfig(name="old")
    assert load_objective(old) == ObjectiveConfig(ctc_weight=0.2, chunk_sizes=(4, None))


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
    data = load_objective("debug").to_dict()
    data["p_av"] = 0.9
    with pytest.raises(ConfigError, match="sum to 1"):
        ObjectiveConfig.from_dict(data)
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
