"""AVSpeechDataset, collate and LengthBucketSampler: shapes, padding, crops, DDP shards."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avsync.data.cache import PreparedCache
from avsync.data.dataset import (
    AVSpeechDataset,
    LengthBucketSampler,
    NoiseConfig,
    choose_window,
    collate,
)
from avsync.errors import ConfigError

CROP = 20


@pytest.fixture(scope="module")
def cache(prepared) -> PreparedCache:
    return PreparedCache(prepared[0])


@pytest.fixture(scope="module")
def tokenizer(prepared):
    return prepared[1][1]


def test_collate_gives_the_documented_batch(cache: PreparedCache, tokenizer) -> None:
    data = AVSpeechDataset(cache, "train", roi_size=CROP)
    batch = collate([data[0], data[1]])
    steps = [cache[i].steps for i in cache.split("train")]  # 12 and 20
    assert batch["video"].shape == (2, 20, CROP, CROP) and batch["video"].dtype == torch.uint8
    assert batch["video_lengths"].tolist() == steps
    assert batch["audio"].shape == (2, 20 * 640) and batch["audio"].dtype == torch.float32
    assert batch["audio_lengths"].tolist() == [s * 640 for s in steps]
    assert batch["speech_mask"].shape == (2, 20) and batch["speech_mask"].dtype == torch.bool
    assert batch["ids"] == [cache.ids[i] for i in cache.split("train")]
    short = steps.index(12)
    assert not batch["video"][short, 12:].any() and not batch["audio"][short, 12 * 640:].any()
    assert not batch["speech_mask"][short, 12:].any()
    u = batch["token_lengths"].tolist()
    assert batch["tokens"].shape == (2, max(u)) and batch["tokens"].dtype == torch.int64
    for b in range(2):
        assert tokenizer.decode(batch["tokens"][b, :u[b]].tolist()) == cache[
            cache.split("train")[b]].text
        assert not batch["tokens"][b, u[b]:].any()  # padded with pad_id 0
    assert (batch["token_spans"] == -1).all()  # sub-word tokens and no tokenizer: unknown
    data = AVSpeechDataset(cache, "train", roi_size=CROP, tokenizer=tokenizer)
    batch = collate([data[0], data[1]])
    for b in range(2):  # with the tokenizer: the tokens of each timed word spell that word
        clip = cache[cache.split("train")[b]]
        spans = [tuple(span) for span in batch["token_spans"][b, :u[b]].tolist()]
        assert sorted(set(spans)) == [(s, e) for _, s, e in clip.words]
        assert [tokenizer.decode([t for t, sp in zip(batch["tokens"][b].tolist(), spans,
                                                     strict=False) if sp == (s, e)])
                for _, s, e in clip.words] == [w for w, _, _ in clip.words]
        assert (batch["token_spans"][b, u[b]:] == -1).all()


def test_eval_centre_crop_and_audio_scale(cache: PreparedCache) -> None:
    data = AVSpeechDataset(cache, "test", roi_size=CROP)
    sample, clip = data[0], cache[cache.split("test")[0]]
    np.testing.assert_array_equal(sample["video"].numpy(), clip.roi[:, 2:22, 2:22])
    np.testing.assert_array_equal(sample["audio"].numpy(), clip.audio / np.float32(32768))
    assert torch.equal(data[0]["video"], sample["video"])  # no randomness in evaluation


def test_training_crops_are_random_windows_deterministic_per_epoch(cache: PreparedCache) -> None:
    data = AVSpeechDataset(cache, "train", roi_size=CROP, train=True, seed=3)
    stored = cache[cache.split("train")[0]].roi
    seen = set()
    for epoch in range(8):
        data.set_epoch(epoch)
        video = data[0]["video"].numpy()
        assert torch.equal(data[0]["video"], torch.from_numpy(video))
        matches = [(y, x, flip) for y in range(5) for x in range(5) for flip in (False, True)
                   if np.array_equal(video, (stored[:, y:y + CROP, x:x + CROP][:, :, ::-1]
                                             if flip else stored[:, y:y + CROP, x:x + CROP]))]
        assert matches, "a training crop must be a (flipped) window of the stored ROI"
        seen.add(matches[0])
    assert len(seen) > 3 and {flip for _, _, flip in seen} == {False, True}


def test_max_steps_cuts_at_word_boundaries(cache: PreparedCache, tokenizer) -> None:
    index = cache.split("train")[[cache[i].steps for i in cache.split("train")].index(20)]
    clip = cache[index]  # words at steps [0,3) [4,7) [8,11) [12,15): GOOD MORNING TO YOU
    data = AVSpeechDataset(cache, "train", roi_size=CROP, tokenizer=tokenizer, train=True,
                           max_steps=8)
    texts = set()
    for epoch in range(12):
        data.set_epoch(epoch)
        sample = data[cache.split("train").index(index)]
        steps = sample["video"].shape[0]
        assert steps <= 8 and sample["audio"].shape[0] == steps * 640
        texts.add(tokenizer.decode(sample["tokens"].tolist()))
        spans = sample["token_spans"].numpy()  # the window's words, re-based to its start
        assert spans[0, 0] == 0 and (np.diff(spans[:, 0]) >= 0).all() and spans.max() <= steps
    assert texts <= {"GOOD MORNING", "MORNING TO", "TO YOU", "YOU"} and len(texts) > 1
    window = choose_window(clip.steps, clip.words, 8, np.random.default_rng(0))
    assert window.last - window.first <= 8 and window.words[0][1] == 0
    with pytest.raises(ConfigError, match="needs a tokenizer"):
        AVSpeechDataset(cache, "train", roi_size=CROP, max_steps=8)
    with pytest.raises(ConfigError, match="roi_size 30"):
        AVSpeechDataset(cache, "train", roi_size=30)


def test_dataloader_with_bucket_sampler_and_pickling(cache: PreparedCache) -> None:
    data = AVSpeechDataset(cache, "train", roi_size=CROP, train=True)
    assert len(pickle.dumps(data)) < 100_000  # memmaps are reopened in workers, not copied
    sampler = LengthBucketSampler(data.lengths, max_steps_per_batch=40, seed=1)
    batches = list(DataLoader(data, batch_sampler=sampler, collate_fn=collate))
    assert sorted(i for b in batches for i in b["ids"]) == sorted(
        cache.ids[i] for i in cache.split("train"))
    assert all(b["video"].shape[0] * b["video"].shape[1] <= 40 for b in batches)


def test_sampler_buckets_by_padded_frames_and_is_deterministic() -> None:
    lengths = np.random.default_rng(0).integers(5, 200, size=300)
    sampler = LengthBucketSampler(lengths, max_steps_per_batch=600, seed=7)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(300))
    assert all(len(b) * lengths[b].max() <= 600 for b in batches)
    assert list(LengthBucketSampler(lengths, 600, seed=7)) == batches
    sampler.set_epoch(1)
    assert list(sampler) != batches and len(sampler) == len(list(sampler))
    sizes = set()  # the jitter changes the natural count; every epoch has epoch 0's
    for epoch in range(12):
        sampler.set_epoch(epoch)
        sizes.add(len(sampler._mine(epoch)))
        assert len(list(sampler)) == len(sampler) == len(batches)
    assert len(sizes) > 1
    ordered = list(LengthBucketSampler(lengths, 600, shuffle=False))
    assert [lengths[b].max() for b in ordered] == sorted(lengths[b].max() for b in ordered)
    assert list(LengthBucketSampler([700, 3], 600, shuffle=False)) == [[1], [0]]  # too long: alone


@pytest.mark.parametrize("drop_last", [True, False])
def test_ddp_ranks_get_equal_numbers_of_batches(drop_last: bool) -> None:
    lengths = np.random.default_rng(1).integers(5, 200, size=257)
    shards = [list(LengthBucketSampler(lengths, 500, seed=2, rank=r, world_size=3,
                                       drop_last=drop_last)) for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    owned = [{i for batch in shard for i in batch} for shard in shards]
    everything = list(LengthBucketSampler(lengths, 500, seed=2))
    if drop_last:
        assert not (owned[0] & owned[1] or owned[0] & owned[2] or owned[1] & owned[2])
        assert sum(len(s) for s in shards) == len(everything) // 3 * 3
    else:
        assert set.union(*owned) == set(range(257))
        assert sum(len(s) for s in shards) == -(-len(everything) // 3) * 3


@pytest.mark.parametrize("kinds", [("babble",), ("white", "pink", "brown", "keyboard")])
def test_noise_is_mixed_at_the_requested_snr(cache: PreparedCache, kinds: tuple[str, ...]
                                            ) -> None:
    from avsync.media.noise import active_power

    noise = NoiseConfig(snr_db=(5.0, 5.0), probability=1.0, talkers=2, kinds=kinds)
    clean = AVSpeechDataset(cache, "train", roi_size=CROP)
    noisy = AVSpeechDataset(cache, "train", roi_size=CROP, train=True, noise=noise, seed=4)
    for item in range(len(clean)):
        speech, mixed = clean[item]["audio"].numpy(), noisy[item]["audio"].numpy()
        assert mixed.shape == speech.shape and np.abs(mixed).max() <= 0.99
        part = speech * (np.dot(mixed, speech) / np.dot(speech, speech))  # scaled if it clipped
        residual = mixed - part
        snr = 10 * np.log10(active_power(part) / np.mean(residual ** 2))
        assert 3.0 < snr < 7.0  # the babble is other clips' tones, not a copy of this one
        assert torch.equal(noisy[item]["audio"], torch.from_numpy(mixed))  # deterministic
    off = AVSpeechDataset(cache, "train", roi_size=CROP, train=False, noise=noise)
    assert torch.equal(off[0]["audio"], clean[0]["audio"])  # never in evaluation


def test_babble_noise_waits_for_its_start_epoch(cache: PreparedCache) -> None:
    noise = NoiseConfig(snr_db=(5.0, 5.0), probability=1.0, talkers=2, start_epoch=2)
    clean = AVSpeechDataset(cache, "train", roi_size=CROP)
    noisy = AVSpeechDataset(cache, "train", roi_size=CROP, train=True, noise=noise, seed=4)
    for epoch, mixed in ((0, False), (1, False), (2, True), (5, True)):
        noisy.set_epoch(epoch)
        same = np.allclose(noisy[0]["audio"].numpy(), clean[0]["audio"].numpy())
        assert same != mixed, epoch
    with pytest.raises(ConfigError):
        NoiseConfig(start_epoch=-1)
    with pytest.raises(ConfigError, match="babble, white, pink, brown, keyboard"):
        NoiseConfig(kinds=("rain",))
