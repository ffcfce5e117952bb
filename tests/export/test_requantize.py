"""`avsync export --requantize`: new int8 graphs from an exported directory's fp32 graphs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from avsync.export.cli import main
from avsync.export.quantize import QuantizationError, integer_weight_range
from avsync.export.requantize import RequantizeOptions, requantize

from avsync.runtime import load_model
from avsync.runtime.model_card import GRAPHS, read_card
from avsync.runtime.precision import Int8Scheme


def test_requantize_switches_scheme_and_records_the_cpu(exported: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(exported, model)
    fp32_before = (model / "audio_step.onnx").read_bytes()
    assert main(["--requantize", str(model), "--int8-scheme", "u8u8"]) == 0
    card = read_card(model)
    assert card.int8_schemes == {"u8u8"} and card.metrics["int8"]["scheme"] == "u8u8"
    assert card.metrics["int8"]["cpu"]["kind"]
    diffs = card.metrics["int8"]["max_abs_diff_log_probs_per_modality"]
    assert set(diffs) == {"av", "audio", "video"} and max(diffs.values()) < 0.2
    for spec in GRAPHS:
        assert integer_weight_range(model / spec.file(True))[0] >= 0  # uint8 weights
    assert load_model(model, precision="int8").precision.int8
    # the fp32 graphs keep their weights; only their metadata copy of the card changed
    assert (model / "audio_step.onnx").read_bytes() != fp32_before
    assert load_model(model, precision="fp32").card == card
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_requantize_with_data_measures_each_modality_and_refuses_a_loss(
        exported: Path, cache: Path, tmp_path: Path) -> None:
    card = requantize(RequantizeOptions(exported, Int8Scheme.U8S7, cache, out=tmp_path / "m"))
    assert set(card.metrics["int8"]["wer_increase"]) == {"av", "audio", "video"}
    assert card.metrics["int8"]["test"]["audio"]["clips"] == 2
    with pytest.raises(QuantizationError, match="nothing was written"):
        requantize(RequantizeOptions(exported, Int8Scheme.U8S7, cache, max_wer_increase=-1.0,
                                     out=tmp_path / "refused"))
    assert not (tmp_path / "refused").exists()
    assert read_card(exported).int8_schemes == {"u8s7"}  # the source is never touched


def test_compact_stores_an_old_directory_as_fp16_and_measures_it(
        checkpoint: Path, cache: Path, tmp_path: Path) -> None:
    """`--compact`: a directory exported with float32 weights gets fp16-stored ones (fp32 and
    int8 graphs), the change measured on the test split; a second compact is refused."""
    from avsync.errors import ConfigError

    full = tmp_path / "full"
    assert main([str(checkpoint), "--out", str(full), "--int8", "--fp32-weights"]) == 0
    assert "weights" not in read_card(full).graphs["fusion_step"]
    sizes = {p.name: p.stat().st_size for p in full.glob("*.onnx")}
    assert main(["--compact", str(full), "--data", str(cache), "--out",
                 str(tmp_path / "small")]) == 0
    card = read_card(tmp_path / "small")
    assert all(entry["weights"] == "fp16" for entry in card.graphs.values())
    measured = card.metrics["fp16_weights"]
    assert measured["bytes_saved"] > 0 and measured["cpu"]["kind"]
    for precision in ("fp32", "int8"):
        diffs = measured[precision]["max_abs_diff_log_probs_per_modality"]
        assert set(diffs) == {"av", "audio", "video"} and max(diffs.values()) < 0.2
        assert set(measured[precision]["wer_increase"]) == {"av", "audio", "video"}
    assert sum((tmp_path / "small" / n).stat().st_size for n in sizes) < sum(sizes.values())
    assert load_model(tmp_path / "small", precision="int8").precision.int8
    with pytest.raises(ConfigError, match="already"):
        main(["--compact", str(tmp_path / "small")])
