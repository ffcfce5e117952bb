"""The whole path of a mean-face model, as the retrain of the bundled model will take it:
`data prepare --roi-convention mean-face`, `train fit` with visual_frontend.roi_convention
mean-face, `export --data` (the convention lands in model.json), then the runtime cuts its
crops that way; a face-box cache is refused at each step that reads one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from avsync.export.cli import main as export_main
from avsync.train.cli import main as train_main
from train_harness import Corpus, fit_args

from avsync.data.cache import PreparedCache
from avsync.data.cli import main as data_main
from avsync.errors import ConfigError, DataError
from avsync.runtime import load_model
from avsync.runtime.media_input import MediaStream

MEAN = ["--model.visual_frontend.roi_convention", "mean-face"]


@pytest.fixture(scope="module")
def mean_face_corpus(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    cache = tmp_path_factory.mktemp("mean_face") / "cache"
    assert data_main(["prepare", str(corpus.root), "--roi-size", "20", "--workers", "1",
                      "--roi-convention", "mean-face", "--out", str(cache),
                      "--tokenizer", str(corpus.tokenizer), "--no-progress"]) == 0
    return Corpus(corpus.root, cache, corpus.tokenizer)


def test_a_mean_face_model_from_prepare_to_the_runtime(mean_face_corpus: Corpus,
                                                      tmp_path: Path) -> None:
    assert PreparedCache(mean_face_corpus.cache).roi_convention == "mean-face"
    threads = torch.get_num_threads()
    run = tmp_path / "run"
    assert train_main(fit_args(mean_face_corpus, run, "--trainer.max_steps", "2",
                               "--data.batch_steps", "200", *MEAN)) == 0
    torch.set_num_threads(threads)
    checkpoint = next((run / "checkpoints").glob("last*.ckpt"))
    out = tmp_path / "model"
    assert export_main([str(checkpoint), "--out", str(out), "--data",
                        str(mean_face_corpus.cache), "--max-clips", "2"]) == 0
    assert json.loads((out / "model.json").read_text())["roi"]["convention"] == "mean-face"
    model = load_model(out)
    assert model.card.roi.convention == "mean-face"
    clip = next((mean_face_corpus.root / "main").rglob("*.mp4"))
    rois = [p.rois for p in MediaStream(clip, model.card).pieces()]
    assert sum(len(r) for r in rois) > 0


def test_a_face_box_cache_is_refused_for_a_mean_face_model(corpus: Corpus, tmp_path) -> None:
    with pytest.raises(ConfigError, match="--roi-convention mean-face"):
        train_main(fit_args(corpus, tmp_path / "run", "--trainer.max_steps", "1", *MEAN))
    from avsync.export.clips import cache_clips

    with pytest.raises(DataError, match="--roi-convention mean-face"):
        cache_clips(corpus.cache, "test", 20, 1, "mean-face")
