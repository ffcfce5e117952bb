"""`AVDataModule`: a prepared cache (`avsync data prepare`) as Lightning's train/val/test data.

Batches come from `avsync.data`: `AVSpeechDataset` (random crop/flip and babble noise at a
random SNR in training, centre crop otherwise), `collate`, and `LengthBucketSampler` batches of
similar length whose padded size stays under a budget of steps. Under DDP every rank draws its
own share of the same epoch's batches (rank and world size come from the trainer, so set
`trainer.use_distributed_sampler: false`; the CLI does).

The training loader is resumable: Lightning stores its position (epoch, batches handed out) in
each checkpoint and, on resume, the loader skips the batches of the interrupted epoch that were
already trained on (their indices only; nothing is decoded), so no clip is seen twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler

from avsync.data.cache import PreparedCache
from avsync.data.dataset import AVSpeechDataset, LengthBucketSampler, NoiseConfig, collate
from avsync.errors import ConfigError
from avsync.text.tokenizer import Tokenizer


class SkippingBatches(Sampler[list[int]]):
    """A batch sampler that drops the first `skip` batches of its next pass (then none).

    Its length stays the whole epoch's: Lightning counts the skipped batches as done."""

    def __init__(self, batches: LengthBucketSampler) -> None:
        self.batches, self.skip = batches, 0

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        for i, batch in enumerate(self.batches):
            if i >= skip:
                yield batch

    def __len__(self) -> int:
        return len(self.batches)


class ResumableLoader(DataLoader):
    """The training DataLoader: sets the epoch of dataset and sampler when an epoch starts and
    implements `state_dict`/`load_state_dict`, which Lightning saves in checkpoints.

    epoch_of: returns the epoch about to run (the trainer's `current_epoch`).
    """

    def __init__(self, dataset: AVSpeechDataset, batches: LengthBucketSampler,
                 epoch_of: Callable[[], int], **kwargs: Any) -> None:
        super().__init__(dataset, batch_sampler=SkippingBatches(batches), **kwargs)
        self._epoch_of = epoch_of
        self._position = (0, 0)  # (epoch, batches handed out in it)
        self._resume: tuple[int, int] | None = None

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        epoch = int(self._epoch_of())
        sampler = self.batch_sampler
        assert isinstance(sampler, SkippingBatches) and isinstance(self.dataset, AVSpeechDataset)
        self.dataset.set_epoch(epoch)
        sampler.batches.set_epoch(epoch)
        done = self._resume[1] if self._resume and self._resume[0] == epoch else 0
        self._resume = None
        sampler.skip = done
        self._position = (epoch, done)
        for batch in super().__iter__():
            self._position = (epoch, self._position[1] + 1)
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._position[0], "batches": self._position[1]}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = (int(state["epoch"]), int(state["batches"]))


class AVDataModule(L.LightningDataModule):
    """cache: prepared cache folder; tokenizer: sentencepiece .model (needed for `fit`; for
    validate/test of a checkpoint the checkpoint's own is used).
    batch_steps: padded steps per batch (batch size x longest clip), the memory budget;
    eval_batch_steps: the same for val/test (default: batch_steps).
    max_clip_steps: longer clips are cut to a random run of whole words this long (memory).
    noise: babble from other training clips at a random SNR (null: clean training).
    workers: DataLoader processes (0: load in the training process).
    """

    def __init__(self, cache: str, tokenizer: str | None = None, batch_steps: int = 4000,
                 eval_batch_steps: int | None = None, max_clip_steps: int | None = 400,
                 noise: NoiseConfig | None = None, workers: int = 2, seed: int = 0,
                 train_split: str = "train", val_split: str = "val",
                 test_split: str = "test") -> None:
        super().__init__()
        if batch_steps <= 0 or (eval_batch_steps is not None and eval_batch_steps <= 0):
            raise ConfigError(f"data.batch_steps and eval_batch_steps must be positive, got "
                              f"{batch_steps}, {eval_batch_steps}")
        self.cache_path, self.tokenizer_path = Path(cache), tokenizer
        self.batch_steps, self.eval_batch_steps = batch_steps, eval_batch_steps or batch_steps
        self.max_clip_steps, self.noise = max_clip_steps, noise
        self.workers, self.seed = workers, seed
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.tokenizer: Tokenizer | None = None
        self.roi_size: int | None = None
        self.cache: PreparedCache | None = None

    def attach(self, tokenizer: Tokenizer, roi_size: int, roi_stored: int,
               roi_convention: str = "face-box") -> None:
        """Give the data what the model decides: its tokenizer and ROI crop; the cache must
        hold ROIs of the model's stored size (`avsync data prepare --roi-size roi_stored`)
        cut by its convention (`--roi-convention`)."""
        self.tokenizer, self.roi_size = tokenizer, roi_size
        cache = PreparedCache(self.cache_path)
        if cache.roi_size != roi_stored:
            raise ConfigError(f"{self.cache_path} stores {cache.roi_size} px ROIs but the model "
                              f"expects {roi_stored} px (visual_frontend.roi_stored); prepare "
                              f"the cache with `avsync data prepare ROOT --roi-size {roi_stored}`")
        if cache.roi_convention != roi_convention:
            raise ConfigError(f"{self.cache_path} holds mouth crops cut by {cache.roi_convention!r} "
                              f"but the model is for {roi_convention!r} crops "
                              "(visual_frontend.roi_convention); prepare the cache with "
                              f"`avsync data prepare ROOT --roi-convention {roi_convention}`")
        self.cache = cache

    def facts(self) -> dict[str, Any]:
        """What the checkpoint should remember about the data (JSON-safe)."""
        cache = self._cache()
        return {"cache": str(self.cache_path.resolve()), "source_root": cache.config.get("source_root"),
                "layout": cache.config.get("layout"), "splits": dict(cache.splits),
                "roi_stored": cache.roi_size, "roi_convention": cache.roi_convention, "noise": None if self.noise is None else
                {"snr_db": list(self.noise.snr_db), "probability": self.noise.probability,
                 "talkers": self.noise.talkers, "start_epoch": self.noise.start_epoch}}

    def _cache(self) -> PreparedCache:
        if self.cache is None or self.tokenizer is None or self.roi_size is None:
            raise ConfigError("AVDataModule.attach(tokenizer, roi_size, roi_stored) must be "
                              "called before the data is used")
        return self.cache

    def dataset(self, stage: str) -> AVSpeechDataset:
        cache, split = self._cache(), self.splits[stage]
        if not cache.split(split):
            raise ConfigError(f"{self.cache_path} has no clips in split {split!r} (it has "
                              f"{dict(cache.splits)}); set data.{stage}_split")
        train = stage == "train"
        return AVSpeechDataset(cache, split, roi_size=self.roi_size or 0,
                               tokenizer=self.tokenizer, train=train,
                               noise=self.noise if train else None, seed=self.seed,
                               max_steps=self.max_clip_steps)

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _loader_options(self) -> dict[str, Any]:
        return {"collate_fn": collate, "num_workers": self.workers,
                "pin_memory": torch.cuda.is_available()}

    def train_dataloader(self) -> ResumableLoader:
        dataset = self.dataset("train")
        rank, world = self._rank()
        batches = LengthBucketSampler(dataset.lengths, self.batch_steps, shuffle=True,
                                      seed=self.seed, rank=rank, world_size=world)
        trainer = self.trainer
        return ResumableLoader(dataset, batches,
                               lambda: trainer.current_epoch if trainer is not None else 0,
                               **self._loader_options())

    def _eval_loader(self, stage: str) -> DataLoader:
        dataset = self.dataset(stage)
        rank, world = self._rank()
        batches = LengthBucketSampler(dataset.lengths, self.eval_batch_steps, shuffle=False,
                                      rank=rank, world_size=world)
        return DataLoader(dataset, batch_sampler=batches, **self._loader_options())

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
