"""`avsync eval` on a (barely trained) debug checkpoint: the table, JSON and PNG with every row.
The numbers are bad for such a model; the structure and the bookkeeping are what is tested."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from avsync.train.eval_report import MODALITY_NAMES
from avsync.train.evaluate import SNRS
from avsync.train.evaluate import main as eval_main
from train_harness import Corpus

from avsync.errors import ConfigError


@pytest.fixture(scope="module")
def evaluated(short_run: Path, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("eval")
    assert eval_main([str(short_run / "checkpoints" / "last.ckpt"), "--cache", str(corpus.cache),
                      "--out", str(out), "--sync-offsets=-4,0,3", "--threads", "1"]) == 0
    return out, (out / "eval.md").read_text()


def test_table_has_every_modality_metric_snr_and_task(evaluated: tuple[Path, str]) -> None:
    _, table = evaluated
    header = next(line for line in table.splitlines() if line.startswith("| input"))
    assert header.split("|")[3:-1] == [" clean ", " 10 dB ", " 5 dB ", " 0 dB ", " -5 dB "]
    for name in MODALITY_NAMES.values():
        for metric in ("WER", "CER"):
            row = next(line for line in table.splitlines()
                       if line.startswith(f"| {name} | {metric} %"))
            cells = [c.strip() for c in row.split("|")[3:-1]]
            assert len(cells) == 5 and all(float(c) >= 0 for c in cells), row
    assert "| AV sync offset |" in table and "| active speaker | mAP % |" in table


def test_json_holds_every_number(evaluated: tuple[Path, str], corpus: Corpus) -> None:
    out, _ = evaluated
    result = json.loads((out / "eval.json").read_text())
    assert result["snrs"] == list(SNRS)
    assert result["model"]["backend"] == "checkpoint" and result["model"]["model"] == "debug"
    for modality in ("audio", "video", "av"):
        for snr in SNRS:
            row = result["asr"][modality][snr]
            assert row["clips"] == 3 and row["wer"] >= 0 and row["cer"] >= 0
    video = result["asr"]["video"]
    assert all(video[snr] == video["clean"] for snr in SNRS)  # no audio, no noise
    sync = result["sync"]
    assert sync["windows"] + sync["did_not_fit"] == 3 * 3 and sync["windows"] > 0
    assert 0.0 <= sync["accuracy"] <= 1.0 and set(sync["accuracy_by_offset"]) <= {"-4", "0", "3"}
    with (corpus.root / "scenes" / "labels.csv").open() as handle:
        rows = list(csv.reader(handle))
    asd = result["asd"]
    assert asd["face_frames"] == len(rows) and asd["scenes"] == 1
    assert asd["positives"] == sum(r[6] == "SPEAKING_AUDIBLE" for r in rows) > 0
    assert 0.0 <= asd["map"] <= 1.0 and not math.isnan(asd["map"])


def test_noise_kinds_wrong_lips_vocabulary_and_engines(evaluated: tuple[Path, str]) -> None:
    """Every other noise kind at each SNR, the wrong-lips condition, in/out-of-vocabulary
    words and per-engine rows are measured and tabled (issues 10 and 18)."""
    out, table = evaluated
    result = json.loads((out / "eval.json").read_text())
    noisy = [s for s in SNRS if s != "clean"]
    assert set(result["noise"]) == {"white", "pink", "brown", "keyboard"}
    for kind, rows in result["noise"].items():
        for modality in ("audio", "av"):
            assert list(rows[modality]) == noisy and all(
                rows[modality][s]["clips"] == 3 for s in noisy), kind
        assert f"| {kind} | audio-only |" in table
    assert list(result["mismatched"]["av"]) == list(SNRS)
    assert "| AV, wrong lips |" in table and "| wrong lips - audio-only, points |" in table
    vocabulary = result["vocabulary"]
    assert vocabulary["train_words"] > 0 and 0 <= vocabulary["test_oov_rate"] <= 1
    words = result["asr"]["av"]["clean"]["words"]
    clean = vocabulary["rates"]["av"]["clean"]
    assert clean["in_vocabulary"]["words"] + clean["oov"]["words"] == words
    assert set(result["engines"]) == {"espeak"}  # the tiny corpus: espeak voices
    assert result["engines"]["espeak"]["audio"]["clean"] == result["asr"]["audio"]["clean"]
    assert "Fusion: at worst the AV WER is" in table and "| espeak | audio-visual | 3 |" in table
    assert result["scene_asr"]["skipped"].startswith("a checkpoint")


def test_plot_is_a_png(evaluated: tuple[Path, str]) -> None:
    out, _ = evaluated
    data = (out / "wer_snr.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_bad_snr_and_offset_are_config_errors(short_run: Path, corpus: Corpus,
                                              tmp_path: Path) -> None:
    ckpt = str(short_run / "checkpoints" / "last.ckpt")
    with pytest.raises(ConfigError, match="'loud'"):
        eval_main([ckpt, "--cache", str(corpus.cache), "--snrs", "clean,loud"])
    with pytest.raises(ConfigError, match="within"):
        eval_main([ckpt, "--cache", str(corpus.cache), "--sync-offsets", "20"])


def test_exported_model_dir_is_evaluated_through_the_runtime(
        evaluated: tuple[Path, str], short_run: Path, corpus: Corpus, tmp_path: Path) -> None:
    """The same seam serves `avsync export`'s model directory (onnxruntime, no torch in the
    loop) and gives the checkpoint's numbers."""
    from avsync.export.cli import main as export_main

    model_dir = tmp_path / "model"
    assert export_main([str(short_run / "checkpoints" / "last.ckpt"), "--out",
                        str(model_dir)]) == 0
    out = tmp_path / "eval"
    assert eval_main([str(model_dir), "--cache", str(corpus.cache), "--out", str(out),
                      "--sync-offsets=-4,0,3", "--threads", "1"]) == 0
    onnx = json.loads((out / "eval.json").read_text())
    torch_result = json.loads((evaluated[0] / "eval.json").read_text())
    assert onnx["model"]["backend"] == "onnx-runtime"
    for modality in ("audio", "video", "av"):
        for snr in SNRS:
            for metric in ("wer", "cer"):
                assert onnx["asr"][modality][snr][metric] == pytest.approx(
                    torch_result["asr"][modality][snr][metric], abs=0.02), (modality, snr)
    assert onnx["asd"]["map"] == pytest.approx(torch_result["asd"]["map"], abs=0.02)
    assert onnx["sync"]["windows"] == torch_result["sync"]["windows"]
    # the scenes transcribed as files, their faces found: WER and who said what
    scene = onnx["scene_asr"]
    assert scene["scenes"] == 1 and scene["av"]["words"] == scene["audio"]["words"] > 0
    assert scene["attribution"]["words"] >= 0 and "| multi-face scenes |" in (
        out / "eval.md").read_text()

    # --finals: the transcripts are what a live stream gets (the recogniser's finals, clips in
    # lockstep), equal to streaming each clip on its own
    from avsync.train.eval_data import load_clips
    from avsync.train.eval_metrics import error_rates

    from avsync.data.cache import PreparedCache
    from avsync.runtime import RecognizerConfig, load_model
    from avsync.runtime.offline import ClipInput, transcribe_clip, transcript

    finals_out = tmp_path / "finals"
    assert eval_main([str(model_dir), "--cache", str(corpus.cache), "--out", str(finals_out),
                      "--finals", "--snrs", "clean", "--no-sync", "--no-asd"]) == 0
    finals = json.loads((finals_out / "eval.json").read_text())
    assert finals["model"]["transcripts"].startswith("finals")
    model = load_model(model_dir)
    clips = load_clips(PreparedCache(corpus.cache), "test")
    alone = [transcript(transcribe_clip(model, ClipInput(c.audio, c.rois), RecognizerConfig()))
             for c in clips]
    assert finals["asr"]["av"]["clean"]["wer"] == pytest.approx(
        error_rates([c.text for c in clips], alone)["wer"])
    with pytest.raises(ConfigError, match="--finals needs an exported model directory"):
        eval_main([str(short_run / "checkpoints" / "last.ckpt"), "--cache", str(corpus.cache),
                   "--finals"])


def test_an_eval_run_again_reuses_its_journaled_transcripts(
        evaluated: tuple[Path, str], short_run: Path, corpus: Corpus, tmp_path: Path) -> None:
    """Each condition's transcripts are journaled in OUT/.journal: a rerun (a sitting that
    ended inside a long eval) decodes nothing again and writes the same numbers; a changed
    model file is another key."""
    import os
    import shutil

    from avsync.train.eval_backend import open_backend
    from avsync.train.eval_data import load_clips
    from avsync.train.eval_journal import JOURNAL, JournaledBackend

    from avsync.data.cache import PreparedCache
    from avsync.runtime.offline import ClipInput

    out, _ = evaluated
    journal = out / JOURNAL
    assert len(list(journal.glob("*.json"))) >= 3 * len(SNRS)  # A and AV per SNR, V, wrong lips
    checkpoint = short_run / "checkpoints" / "last.ckpt"
    inputs = [ClipInput(c.audio, c.rois) for c in load_clips(PreparedCache(corpus.cache), "test")]
    again = JournaledBackend(open_backend(checkpoint, threads=1), checkpoint, journal)
    first = again.transcribe(inputs)
    assert (again.reused, again.decoded) == (1, 0)  # the eval's clean AV row
    assert again.transcribe(inputs[:2]) == first[:2] and again.decoded == 1  # other inputs
    shutil.copytree(journal, tmp_path / JOURNAL)  # the interrupted eval's journal
    assert eval_main([str(checkpoint), "--cache", str(corpus.cache), "--out", str(tmp_path),
                      "--threads", "1", "--no-sync", "--no-asd"]) == 0
    assert json.loads((tmp_path / "eval.json").read_text())["asr"] == \
        json.loads((out / "eval.json").read_text())["asr"]
    stat = checkpoint.stat()
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    changed = JournaledBackend(open_backend(checkpoint, threads=1), checkpoint, journal)
    assert changed.transcribe(inputs) == first and changed.decoded == 1
