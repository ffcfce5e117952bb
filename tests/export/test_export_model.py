"""`avsync export`: a verified model directory or nothing; loading refuses broken ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from avsync.export.checkpoint import load_checkpoint
from avsync.export.exporter import FP16_TOLERANCE, ExportOptions, export_model
from avsync.export.parity import ParityError
from avsync.export.quantize import QuantizationError, integer_weight_range

from avsync.errors import ConfigError, ModelLoadError
from avsync.runtime import ClipInput, load_model, run_clips
from avsync.runtime.cpu import cpu_info
from avsync.runtime.model_card import GRAPHS, MODEL_JSON, card_from_metadata, read_card


def test_export_writes_a_loadable_parity_checked_model(exported: Path) -> None:
    card = read_card(exported)
    parity = card.metrics["parity"]
    assert parity["passed"] and parity["max_abs_diff_log_probs"] <= 1e-3
    assert set(parity["per_modality"]) == {"av", "audio", "video"}
    assert parity["batch"] == 3 != 2  # not the traced batch size
    assert parity["steps"] % card.chunk_steps  # lengths not whole chunks
    # 7-bit weights (u8s7): no int8 product pair can saturate AVX2's 16-bit sums, so the
    # same bound holds on CPUs with and without VNNI (8-bit weights gave 0.65 without it)
    # weights stored as float16 (half the file), cast back to float32 when loaded
    fp16 = card.metrics["fp16_weights"]
    assert all(entry["weights"] == "fp16" for entry in card.graphs.values())
    assert fp16["bytes_saved"] > 0 and fp16["max_abs_diff_log_probs"] <= FP16_TOLERANCE
    assert card.int8_schemes == {"u8s7"} and card.metrics["int8"]["scheme"] == "u8s7"
    assert card.metrics["int8"]["max_abs_diff_log_probs"] < 0.2
    assert card.metrics["int8"]["cpu"]["kind"] == cpu_info().kind
    for spec in GRAPHS:
        low, high = integer_weight_range(exported / spec.file(True))
        assert low >= -64 and high <= 64, (spec.name, low, high)
    for spec in GRAPHS:
        for int8 in (False, True):
            proto = onnx.load(str(exported / spec.file(int8)))
            onnx.checker.check_model(proto)
            assert {op.domain for op in proto.opset_import} <= {"", "ai.onnx"}  # no custom ops
            props = {p.key: p.value for p in proto.metadata_props}
            assert card_from_metadata(props, spec.file(int8)) == card
    fp32, int8 = load_model(exported), load_model(exported, precision="int8")
    assert int8.int8 and not fp32.int8 and card.has_int8
    rng = np.random.default_rng(0)
    clip = ClipInput(0.1 * rng.standard_normal(13 * 640).astype(np.float32),
                     rng.integers(0, 256, (13, 20, 20), dtype=np.uint8))
    a, b = run_clips(fp32, [clip])[0], run_clips(int8, [clip])[0]
    assert a.log_probs.shape == b.log_probs.shape == (13, card.vocab_size)
    assert np.abs(a.log_probs - b.log_probs).max() < 0.2


def test_card_records_what_the_checkpoint_says(exported: Path, checkpoint: Path) -> None:
    card = read_card(exported)
    loaded = load_checkpoint(checkpoint)
    assert card.vocab == tuple(loaded.tokenizer.pieces)
    assert card.states["audio"].size == loaded.model.audio_encoder.state_size
    assert card.roi.stored == 20 and card.roi.size == 16 and card.chunk_steps == 2
    assert card.training["data"] == "none (untrained debug model)"
    assert card.asd_calibration.fitted_on is None  # no validation data given


def broken_copy(exported: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(exported, target)
    return target


@pytest.mark.parametrize(("path", "key"), [(("chunk_steps",), "chunk_steps"),
                                           (("roi", "std"), "std"),
                                           (("states", "visual"), "visual"),
                                           (("asd_calibration",), "asd_calibration")])
def test_a_missing_card_key_fails_at_load(exported: Path, tmp_path: Path, path: tuple,
                                          key: str) -> None:
    model_dir = broken_copy(exported, tmp_path)
    data = json.loads((model_dir / MODEL_JSON).read_text())
    holder = data
    for part in path[:-1]:
        holder = holder[part]
    del holder[path[-1]]
    (model_dir / MODEL_JSON).write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match=rf"model\.json.*{key}"):
        load_model(model_dir)


def test_missing_corrupt_or_foreign_files_fail_at_load(exported: Path, tmp_path: Path) -> None:
    model_dir = broken_copy(exported, tmp_path)
    (model_dir / "fusion_step.onnx").unlink()
    with pytest.raises(ModelLoadError, match=r"fusion_step\.onnx: ONNX file not found"):
        load_model(model_dir)
    data = (exported / "visual_step.onnx").read_bytes()
    (model_dir / "fusion_step.onnx").write_bytes(data[:len(data) // 2])
    with pytest.raises(ModelLoadError, match=r"fusion_step\.onnx: onnxruntime cannot load"):
        load_model(model_dir)
    shutil.copy(exported / "visual_step.onnx", model_dir / "fusion_step.onnx")
    with pytest.raises(ModelLoadError, match=r"fusion_step\.onnx: graph inputs"):
        load_model(model_dir)
    shutil.copy(exported / "fusion_step.onnx", model_dir / "fusion_step.onnx")
    (model_dir / "tokenizer.model").write_bytes(b"not a tokenizer")
    with pytest.raises(ModelLoadError, match=r"tokenizer\.model: SHA-256"):
        load_model(model_dir)
    with pytest.raises(ModelLoadError, match="model.json: not found"):
        load_model(tmp_path)


def test_metadata_that_disagrees_with_model_json_fails(exported: Path, tmp_path: Path) -> None:
    model_dir = broken_copy(exported, tmp_path)
    data = json.loads((model_dir / MODEL_JSON).read_text())
    data["left_context"] += 1
    (model_dir / MODEL_JSON).write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match=r"disagree with model\.json on \['left_context'\]"):
        load_model(model_dir)


def test_failed_parity_writes_nothing(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "refused"
    with pytest.raises(ParityError, match="was not written"):
        export_model(ExportOptions(checkpoint=checkpoint, out=out, parity_tolerance=0.0))
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no staging left behind


def test_existing_output_needs_force(exported: Path, checkpoint: Path) -> None:
    with pytest.raises(ConfigError, match="--force"):
        export_model(ExportOptions(checkpoint=checkpoint, out=exported))


def test_export_with_data_calibrates_and_measures(cache: Path, checkpoint: Path,
                                                  tmp_path: Path) -> None:
    card = export_model(ExportOptions(checkpoint=checkpoint, out=tmp_path / "m", data=cache))
    assert card.asd_calibration.fitted_on == f"{cache}:val" and card.asd_calibration.samples > 0
    assert card.metrics["parity"]["clips"] == 3 + 2  # toy clips + the test split
    for modality in ("av", "audio", "video"):
        assert card.metrics["test"][modality]["clips"] == 2
        assert card.metrics["test"][modality]["wer"] >= 0
    assert read_card(tmp_path / "m") == card
    fp16 = card.metrics["fp16_weights"]
    assert set(fp16["wer_increase"]) == {"av", "audio", "video"}
    assert fp16["test_full_precision"]["av"]["clips"] == 2
    # an int8 WER gate that nothing passes refuses the whole model
    with pytest.raises(QuantizationError, match="nothing was written"):
        export_model(ExportOptions(checkpoint=checkpoint, out=tmp_path / "q", data=cache,
                                   int8=True, max_int8_wer_increase=-1.0))
    assert not (tmp_path / "q").exists()


def test_runtime_backend_full_utterance_equals_pytorch(exported: Path, checkpoint: Path) -> None:
    """chunk=None streams each clip as one chunk: the model's full-utterance mode."""
    from avsync.export.clips import toy_clips
    from avsync.export.parity import torch_outputs

    from avsync.runtime.evaluation import RuntimeBackend

    model = load_checkpoint(checkpoint).model
    clips = toy_clips(model.config)
    ours = RuntimeBackend(exported, chunk=None).run([c.runtime_input() for c in clips])
    theirs = torch_outputs(model, clips, None, audio=True, video=True)
    for a, b in zip(ours, theirs, strict=True):
        assert np.abs(a.log_probs - b.log_probs).max() < 1e-3
    streaming = RuntimeBackend(exported)
    assert streaming.describe()["chunk_steps"] == 2
    texts = streaming.transcribe([c.runtime_input(video=False) for c in clips])
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)


def test_chunk_steps_override_is_checked_at_that_chunk(checkpoint: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from avsync.export.cli import main

    assert main([str(checkpoint), "--out", str(tmp_path / "c3"), "--chunk-steps", "3"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["chunk_steps"] == 3 and summary["int8"] is False
    assert summary["metrics"]["parity"]["chunk_steps"] == 3
    assert read_card(tmp_path / "c3").chunk_steps == 3
    with pytest.raises(ConfigError, match="--chunk-steps"):
        main([str(checkpoint), "--out", str(tmp_path / "c0"), "--chunk-steps", "0"])
