"""The torch side of the data: Dataset over a prepared cache, collate, length-bucket sampler.

The only torch module in `avsync.data`. Batches follow docs/architecture.md exactly:
video (B, T, r, r) uint8, video_lengths (B,), audio (B, T*640) float32 in [-1, 1],
audio_lengths (B,), tokens (B, U) int64 padded with 0, token_lengths (B,), speech_mask
(B, T) bool, ids list[str].

Randomness is a pure function of (seed, epoch, clip index), never of worker scheduling, so a
run is reproducible with any number of DataLoader workers. Call `set_epoch` on the dataset and
the sampler at the start of each epoch (with `persistent_workers=False`, so workers see it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from avsync.data.cache import PCM_SCALE, CachedClip, PreparedCache
from avsync.errors import ConfigError, MediaError
from avsync.timebase import ROI_CROP, SAMPLES_PER_STEP


@dataclass(frozen=True)
class NoiseConfig:
    """Noise mixed into training clips at a random SNR: babble made of other clips of the
    same split, and the non-speech kinds of `avsync.media.noise` (white, pink, brown,
    keyboard: real key recordings).

    kinds: the noise kinds a noisy clip draws from, uniformly (default babble alone).
    snr_db: (low, high) dB, drawn uniformly per clip. probability: chance a training clip
    gets noise at all. talkers: how many other clips the babble sums.
    start_epoch: epochs of clean training before the babble starts, a curriculum: with noise
    from the first step, the text losses of a fresh model sit at the grammar's prior for
    hundreds of steps (words are learnt from clean speech first, robustness after).
    """

    snr_db: tuple[float, float] = (-5.0, 20.0)
    probability: float = 0.5
    talkers: int = 4
    start_epoch: int = 0
    kinds: tuple[str, ...] = ("babble",)

    def __post_init__(self) -> None:
        from avsync.media.noise import NOISE_KINDS

        object.__setattr__(self, "kinds", tuple(self.kinds))
        unknown = set(self.kinds) - set(NOISE_KINDS)
        if not self.kinds or unknown:
            raise ConfigError(f"NoiseConfig kinds {self.kinds}: choose from "
                              f"{', '.join(NOISE_KINDS)}")
        low, high = self.snr_db
        if (low > high or not 0.0 <= self.probability <= 1.0 or self.talkers < 1
                or self.start_epoch < 0):
            raise ConfigError(f"NoiseConfig needs snr_db (low <= high), probability in [0, 1], "
                              f"talkers >= 1 and start_epoch >= 0, got {self}")


@dataclass(frozen=True)
class Window:
    """Steps [first, last) of a clip, and the words inside them (for the transcript)."""

    first: int
    last: int
    words: tuple[tuple[str, int, int], ...] | None  # None: the whole clip, keep its tokens


def choose_window(steps: int, words: tuple[tuple[str, int, int], ...], max_steps: int | None,
                  rng: np.random.Generator) -> Window:
    """A random run of whole words lasting at most `max_steps` (the whole clip if it fits).

    Clips without word timings are never cut (their transcript could not follow the cut).
    A single word longer than `max_steps` is cut to `max_steps` and kept.
    """
    if max_steps is None or steps <= max_steps or not words:
        return Window(0, steps, None)
    i = int(rng.integers(len(words)))
    j = i
    while j + 1 < len(words) and words[j + 1][2] - words[i][1] <= max_steps:
        j += 1
    first = words[i][1]
    last = min(words[j][2], first + max_steps)
    return Window(first, last, tuple((w, s - first, e - first) for w, s, e in words[i:j + 1]))


class AVSpeechDataset(Dataset):
    """Clips of one split of a `PreparedCache`, as tensors ready for `collate`.

    roi_size: the network's crop r (<= the stored ROI size); random crop + horizontal flip
    when `train`, centre crop otherwise. tokenizer: an `avsync.text.Tokenizer`; needed when
    the cache holds no tokens or other ones (different model), or when `max_steps` cuts
    clips. noise: babble augmentation (training only). max_steps: cut longer clips to a
    random window of whole words (training and evaluation alike, so memory is bounded).
    """

    def __init__(self, cache: PreparedCache, split: str, *, roi_size: int = ROI_CROP,
                 tokenizer: Any | None = None, train: bool = False,
                 noise: NoiseConfig | None = None, seed: int = 0,
                 max_steps: int | None = None) -> None:
        self.cache, self.split, self.roi_size = cache, split, int(roi_size)
        self.tokenizer, self.train, self.noise = tokenizer, train, noise
        self.seed, self.max_steps, self.epoch = seed, max_steps, 0
        self.indices = np.asarray(cache.split(split), dtype=np.int64)
        self._piece_counts: dict[tuple[str, ...], list[int] | None] = {}
        if self.roi_size > cache.roi_size or self.roi_size <= 0:
            raise ConfigError(f"roi_size {roi_size} must be in 1..{cache.roi_size}, the ROI "
                              f"size stored in {cache.path}")
        self._cached_tokens = tokenizer is None or tokenizer.sha256 == cache.tokenizer_sha256
        if tokenizer is None and (cache.tokenizer_sha256 is None or max_steps is not None):
            raise ConfigError(f"{cache.path} needs a tokenizer here: it was prepared without "
                              "one, or max_steps cuts transcripts; pass tokenizer=Tokenizer.load(...)")

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) steps per item after the `max_steps` cap, for `LengthBucketSampler`."""
        steps = self.cache.lengths[self.indices]
        return steps if self.max_steps is None else np.minimum(steps, self.max_steps)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _rng(self, item: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch if self.train else 0, item))

    def __getitem__(self, item: int) -> dict[str, Any]:
        rng = self._rng(item)
        clip = self.cache[int(self.indices[item])]
        window = choose_window(clip.steps, clip.words, self.max_steps, rng)
        video = self._crop(clip.roi[window.first:window.last], rng)
        audio = clip.audio[window.first * SAMPLES_PER_STEP:window.last * SAMPLES_PER_STEP]
        audio = audio.astype(np.float32) / PCM_SCALE
        if (self.train and self.noise is not None and self.epoch >= self.noise.start_epoch
                and rng.random() < self.noise.probability):
            audio = self._add_noise(audio, item, rng)
        tokens = np.asarray(self._tokens(clip, window), dtype=np.int64)
        words = clip.words if window.words is None else window.words
        return {"id": clip.id, "video": torch.from_numpy(video),
                "audio": torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),
                "tokens": torch.from_numpy(tokens),
                "token_spans": torch.from_numpy(self._token_spans(tokens, words)),
                "speech_mask": torch.from_numpy(clip.speech_mask[window.first:window.last].copy())}

    def _crop(self, roi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(T, R, R) -> (T, r, r): random offset and flip when training, centre otherwise."""
        spare = roi.shape[1] - self.roi_size
        if self.train:
            y, x = (int(v) for v in rng.integers(0, spare + 1, size=2))
            flip = bool(rng.random() < 0.5)
        else:
            y = x = spare // 2
            flip = False
        crop = roi[:, y:y + self.roi_size, x:x + self.roi_size]
        return np.ascontiguousarray(crop[:, :, ::-1] if flip else crop)

    def _tokens(self, clip: CachedClip, window: Window) -> list[int] | np.ndarray:
        if window.words is None and self._cached_tokens:
            return clip.tokens.astype(np.int64)
        assert self.tokenizer is not None  # __init__ refuses the other cases
        if window.words is None:
            return self.tokenizer.encode(clip.text)
        return self.tokenizer.encode(" ".join(w for w, _, _ in window.words))

    def _token_spans(self, tokens: np.ndarray, words: tuple[tuple[str, int, int], ...]
                     ) -> np.ndarray:
        """(U, 2) [start, end) steps of the word each token spells, for alignment-restricted
        CTC; all -1 when the tokens cannot be matched to timed words (no timings, or a
        tokenisation that differs word by word)."""
        spans = np.full((len(tokens), 2), -1, dtype=np.int64)
        if not words:
            return spans
        if len(words) == len(tokens):  # one token a word (a word-level vocabulary)
            counts = [1] * len(words)
        elif self.tokenizer is not None:
            found = self._pieces_per_word(tuple(w for w, _, _ in words), tokens)
            if found is None:
                return spans
            counts = found
        else:
            return spans
        spans[:] = np.repeat(np.asarray([(s, e) for _, s, e in words], np.int64), counts, axis=0)
        return spans

    def _pieces_per_word(self, words: tuple[str, ...], tokens: np.ndarray) -> list[int] | None:
        """How many tokens each word spells (None: the words, encoded one by one, are not
        `tokens`); remembered per word sequence, as every epoch asks again."""
        if words not in self._piece_counts:
            assert self.tokenizer is not None
            pieces = [self.tokenizer.encode(w) for w in words]
            same = [t for p in pieces for t in p] == tokens.tolist()
            self._piece_counts[words] = [len(p) for p in pieces] if same else None
        return self._piece_counts[words]

    def _add_noise(self, audio: np.ndarray, item: int, rng: np.random.Generator) -> np.ndarray:
        """Noise of one of the configured kinds at a random SNR (babble: other clips of this
        split); clean audio when the clip or the noise is silent (an SNR is undefined then).
        With babble alone the draws are those of the babble-only releases."""
        from avsync.media.noise import make_babble, mix_at_snr, noise_of_kind

        assert self.noise is not None
        kinds = self.noise.kinds
        kind = kinds[0] if len(kinds) == 1 else kinds[int(rng.integers(len(kinds)))]
        if len(audio) == 0:
            return audio
        try:
            if kind != "babble":
                noise = noise_of_kind(kind, len(audio), rng)
            else:
                others = _others(len(self.indices), item, self.noise.talkers, rng)
                if not others:
                    return audio
                sources = [self.cache[int(self.indices[i])].audio.astype(np.float32) /
                           PCM_SCALE for i in others]
                noise = make_babble(sources, len(audio), rng, talkers=len(sources))
            return mix_at_snr(audio, noise, float(rng.uniform(*self.noise.snr_db)), rng)
        except MediaError:
            return audio


def _others(count: int, item: int, wanted: int, rng: np.random.Generator) -> list[int]:
    """Up to `wanted` distinct indices in [0, count) other than `item`."""
    pool = count - 1
    if pool <= 0:
        return []
    picks = rng.choice(pool, size=min(wanted, pool), replace=False)
    return [int(p) + (p >= item) for p in picks]


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pad a list of `AVSpeechDataset` items into the batch of docs/architecture.md.

    Padding is done in numpy (single-threaded) and wrapped as tensors without a copy: torch's
    intra-op threads cost more than they save on these small copies, most of all in a busy
    DataLoader main process.
    """
    if not samples:
        raise ConfigError("collate got an empty list of samples")
    steps = np.array([s["video"].shape[0] for s in samples], dtype=np.int64)
    token_lengths = np.array([s["tokens"].shape[0] for s in samples], dtype=np.int64)
    batch, longest, roi = len(samples), int(steps.max()), tuple(samples[0]["video"].shape[1:])
    video = np.zeros((batch, longest, *roi), dtype=np.uint8)
    audio = np.zeros((batch, longest * SAMPLES_PER_STEP), dtype=np.float32)
    tokens = np.zeros((batch, int(token_lengths.max())), dtype=np.int64)
    spans = np.full((batch, int(token_lengths.max()), 2), -1, dtype=np.int64)
    speech = np.zeros((batch, longest), dtype=bool)
    for b, sample in enumerate(samples):
        t, u = int(steps[b]), int(token_lengths[b])
        video[b, :t] = sample["video"].numpy()
        audio[b, :t * SAMPLES_PER_STEP] = sample["audio"].numpy()
        tokens[b, :u] = sample["tokens"].numpy()
        if "token_spans" in sample:
            spans[b, :u] = sample["token_spans"].numpy()
        speech[b, :t] = sample["speech_mask"].numpy()
    return {"video": torch.from_numpy(video), "video_lengths": torch.from_numpy(steps),
            "audio": torch.from_numpy(audio),
            "audio_lengths": torch.from_numpy(steps * SAMPLES_PER_STEP),
            "tokens": torch.from_numpy(tokens), "token_lengths": torch.from_numpy(token_lengths),
            "token_spans": torch.from_numpy(spans),
            "speech_mask": torch.from_numpy(speech), "ids": [s["id"] for s in samples]}


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of similar length whose padded size (batch x longest) stays within
    `max_steps_per_batch`; a batch sampler for `DataLoader(batch_sampler=...)`.

    Deterministic for (seed, epoch). With `world_size` > 1 every rank gets the same number
    of batches: `drop_last` drops the remainder (ranks then hold disjoint clips), otherwise
    the first batches are repeated to fill the last round.
    Every epoch has as many batches as epoch 0 (the length jitter changes the count by one or
    two: an epoch with more drops its last batches, one with fewer repeats its first ones).
    Lightning sizes an epoch from `len()` before the loader sets the epoch, and an epoch that
    ended before that size skipped its validation: the bundled run of 2026-11-23 validated
    at 11 of its 15 scheduled epochs.
    """

    def __init__(self, lengths: Sequence[int] | np.ndarray, max_steps_per_batch: int, *,
                 shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if max_steps_per_batch <= 0 or not 0 <= rank < world_size:
            raise ConfigError(f"need max_steps_per_batch > 0 and 0 <= rank < world_size, got "
                              f"{max_steps_per_batch}, rank {rank}, world_size {world_size}")
        self.max_steps = int(max_steps_per_batch)
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self._batches: tuple[int, list[list[int]]] | None = None
        self._size: int | None = None  # batches per epoch, fixed at epoch 0's count

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _all_batches(self, epoch: int) -> list[list[int]]:
        """Every batch of `epoch`, all ranks together."""
        rng = np.random.default_rng((self.seed, epoch))
        if self.shuffle:  # jitter lengths by up to 10% so batches mix between epochs
            keys = self.lengths * rng.uniform(0.9, 1.1, size=len(self.lengths))
        else:
            keys = self.lengths.astype(np.float64)
        order = np.argsort(keys, kind="stable")
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for index in order.tolist():
            length = max(int(self.lengths[index]), 1)
            if current and (len(current) + 1) * max(longest, length) > self.max_steps:
                batches.append(current)
                current, longest = [], 0
            current.append(index)
            longest = max(longest, length)
        if current:
            batches.append(current)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _mine(self, epoch: int) -> list[list[int]]:
        """This rank's batches of `epoch`, before the count is fixed."""
        batches = self._all_batches(epoch)
        if self.world_size > 1:
            if self.drop_last:
                batches = batches[:len(batches) // self.world_size * self.world_size]
            else:
                rounds = math.ceil(len(batches) / self.world_size)
                batches = [batches[i % len(batches)] for i in range(rounds * self.world_size)]
        return batches[self.rank::self.world_size]

    def _rank_batches(self) -> list[list[int]]:
        if self._batches is not None and self._batches[0] == self.epoch:
            return self._batches[1]
        if self._size is None:
            self._size = len(self._mine(0))
        mine = self._mine(self.epoch)
        if mine:
            mine = [mine[i % len(mine)] for i in range(self._size)]
        self._batches = (self.epoch, mine)
        return mine

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._rank_batches()

    def __len__(self) -> int:
        return len(self._rank_batches())
