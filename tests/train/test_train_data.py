"""The training data module: resumable epochs, DDP shares, noise only in training; and the
learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch
from avsync.train.datamodule import AVDataModule
from avsync.train.optim import OptimConfig, build_optimizer, warmup_cosine
from train_harness import Corpus

from avsync.data.dataset import NoiseConfig
from avsync.text.tokenizer import Tokenizer


def _data(corpus: Corpus, **options) -> AVDataModule:
    data = AVDataModule(str(corpus.cache), str(corpus.tokenizer), workers=0, **options)
    data.attach(Tokenizer.load(corpus.tokenizer), roi_size=16, roi_stored=20)
    return data


def _ids(loader) -> list[list[str]]:
    return [batch["ids"] for batch in loader]


def test_loader_resumes_inside_an_epoch_and_changes_order_between_epochs(corpus: Corpus
                                                                         ) -> None:
    data = _data(corpus, batch_steps=150)
    epoch = {"now": 0}
    loader = data.train_dataloader()
    loader._epoch_of = lambda: epoch["now"]
    first = _ids(loader)
    assert len(first) == len(loader) >= 2 and sorted(sum(first, [])) == sorted(
        data.dataset("train").cache.ids[i] for i in data.cache.split("train"))
    interrupted = iter(loader)
    next(interrupted)
    state = loader.state_dict()
    assert state == {"epoch": 0, "batches": 1}

    fresh = data.train_dataloader()  # a new process after the kill
    fresh._epoch_of = lambda: epoch["now"]
    fresh.load_state_dict(state)
    assert _ids(fresh) == first[1:]  # the rest of the epoch, nothing repeated
    assert _ids(fresh) == first  # and the epoch after a restart is whole again
    epoch["now"] = 1
    second = _ids(fresh)
    assert second != first and sorted(sum(second, [])) == sorted(sum(first, []))


def test_ranks_share_each_epoch(corpus: Corpus) -> None:
    data = _data(corpus, batch_steps=150)
    shares = []
    for rank in (0, 1):
        data.trainer = None
        data._rank = lambda rank=rank: (rank, 2)  # what the trainer says under DDP
        shares.append(_ids(data.train_dataloader()))
    assert len(shares[0]) == len(shares[1])  # DDP needs the same number of steps per rank
    assert set(sum(shares[0], [])) | set(sum(shares[1], [])) == set(
        data.cache.ids[i] for i in data.cache.split("train"))


def test_noise_reaches_training_batches_only(corpus: Corpus) -> None:
    noisy = _data(corpus, noise=NoiseConfig(snr_db=(0.0, 0.0), probability=1.0, talkers=2))
    clean = _data(corpus)
    for stage in ("train", "val"):
        a, b = noisy.dataset(stage)[0], clean.dataset(stage)[0]
        differs = not torch.equal(a["audio"], b["audio"])
        assert differs == (stage == "train"), stage


def test_warmup_then_cosine_schedule() -> None:
    factors = [warmup_cosine(s, 4, 20, 0.1) for s in range(24)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4] == 1.0 and factors[20] == pytest.approx(0.1) and factors[23] == 0.1
    assert all(a >= b for a, b in zip(factors[4:], factors[5:], strict=False))
    assert factors[12] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))


def test_optimizer_skips_decay_for_norms_biases_and_temperature() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    model.register_parameter("sync_log_scale", torch.nn.Parameter(torch.zeros(())))
    built = build_optimizer(model, OptimConfig(weight_decay=0.1, warmup_steps=2), 10)
    decayed, plain = built["optimizer"].param_groups
    assert [p.shape for p in decayed["params"]] == [torch.Size([4, 4])]
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert len(plain["params"]) == 4 and built["lr_scheduler"]["interval"] == "step"
