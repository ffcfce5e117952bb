"""`AVSyncLightning`: the LightningModule around a bare `AVSyncModel`.

Lightning does the loop, devices, precision, DDP and checkpoints; this module only says what a
step is. The bare model is `self.model` (export takes it as it is) and every checkpoint carries
an `avsync` section (`avsync.models.checkpoint`) with the model config and the tokenizer, so
`load_checkpoint(path)` rebuilds the model without any YAML.

Training step: a chunk size drawn from `objective.chunk_sizes`, modality dropout and masks, all
from a generator seeded by (seed, global step, batch index, rank), and the global RNG (dropout)
reseeded the same way, so a run resumed from a checkpoint takes exactly the steps the
uninterrupted run would.

Validation and test run twice per batch: in the streaming mode the model is served with
(`streaming.chunk_size`) and over the whole utterance, logging for each every loss, sync
accuracy, the modality gap and greedy-CTC WER/CER for audio-only, video-only and audio-visual
input (`val/stream/wer_av`, `val/full/wer_audio`, ...). WER is corpus-level (errors summed over
the epoch and over DDP ranks, then divided). `late_start_sync_clip_acc` checks sync with the
video stream starting later than the audio: aligned clips alone cannot tell embeddings of the
lips and voice from embeddings of "time since the stream began".
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import asdict, replace
from typing import Any

import lightning as L
import numpy as np
import torch
from avsync.train.optim import OptimConfig, build_optimizer

from avsync.errors import ConfigError
from avsync.models.checkpoint import CHECKPOINT_KEY, checkpoint_section, section_of
from avsync.models.config import ModelConfig
from avsync.models.decoding import greedy_ctc
from avsync.models.encoders import step_mask
from avsync.models.losses import sync_accuracy
from avsync.models.model import AVSyncModel
from avsync.models.objective import MODALITIES, Batch, ContrastiveGenerativeObjective
from avsync.text.metrics import utterance_errors
from avsync.text.tokenizer import Tokenizer
from avsync.timebase import SYNC_MAX_SHIFT

log = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("stream", "full")
MONITOR = "val/stream/wer_av"  # what the "best" checkpoint minimises
LATE_START = 5  # steps the video starts after the audio in the late-start sync check


def step_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part (seed, step, rank, ...), for torch generators."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0]
               >> np.uint64(1))


class ErrorTally:
    """Word and character errors summed over an epoch, per (mode, modality)."""

    FIELDS = ("word_errors", "words", "char_errors", "chars")

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], np.ndarray] = {}

    def add(self, key: tuple[str, str], refs: list[str], hyps: list[str]) -> None:
        total = self.counts.setdefault(key, np.zeros(4, dtype=np.float64))
        for ref, hyp in zip(refs, hyps, strict=True):
            words = utterance_errors(ref, hyp, "word").counts
            chars = utterance_errors(ref, hyp, "char").counts
            total += (words.errors, words.ref_length, chars.errors, chars.ref_length)

    def rates(self, reduce: Any) -> dict[str, float]:
        """{"<mode>/wer_<modality>": rate, "<mode>/cer_<modality>": rate}; `reduce` sums a
        tensor over DDP ranks (identity on one process)."""
        out: dict[str, float] = {}
        for (mode, modality), counts in sorted(self.counts.items()):
            summed = reduce(torch.from_numpy(counts.copy())).double().cpu().numpy()
            out[f"{mode}/wer_{modality}"] = float(summed[0] / max(summed[1], 1.0))
            out[f"{mode}/cer_{modality}"] = float(summed[2] / max(summed[3], 1.0))
        self.counts.clear()
        return out


class AVSyncLightning(L.LightningModule):
    """config: the model (its vocab_size is set to the tokenizer's); tokenizer: ids <-> text,
    stored in every checkpoint; optim: AdamW + warm-up/cosine; seed: all randomness of a step;
    data_facts: what the run trained on (written into checkpoints for model cards)."""

    def __init__(self, config: ModelConfig, tokenizer: Tokenizer,
                 optim: OptimConfig | None = None, seed: int = 0,
                 data_facts: dict[str, Any] | None = None) -> None:
        super().__init__()
        if config.vocab_size != tokenizer.vocab_size:
            log.info("model vocab_size %d -> %d (the tokenizer's)", config.vocab_size,
                     tokenizer.vocab_size)
            config = replace(config, vocab_size=tokenizer.vocab_size)
        self.config, self.tokenizer = config, tokenizer
        self.optim = optim or OptimConfig()
        self.seed, self.data_facts = int(seed), dict(data_facts or {})
        self.model = AVSyncModel(config)
        self.objective = ContrastiveGenerativeObjective(config.objective)
        self.tally = ErrorTally()
        self.save_hyperparameters({"model": config.to_dict(), "optim": asdict(self.optim),
                                   "seed": self.seed, "tokenizer_sha256": tokenizer.sha256})

    # ----------------------------------------------------------------------------- training
    def _seed(self, batch_idx: int, stream: int) -> int:
        """Seeds of a training batch: (seed, optimizer step, batch in epoch, rank, stream); the
        batch index keeps micro-batches of one accumulated step apart."""
        return step_seed(self.seed, self.global_step, batch_idx, self.global_rank, stream)

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        torch.manual_seed(self._seed(batch_idx, 1))  # dropout and anything else global

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self._seed(batch_idx, 0))
        chunk = self.objective.sample_chunk_size(generator)
        total, metrics = self.objective(self.model, batch, chunk_size=chunk, generator=generator)
        size = len(batch["ids"])
        self.log("train/loss", total.detach(), prog_bar=True, batch_size=size)
        self.log_dict({f"train/{k}": v for k, v in metrics.items() if k != "loss"},
                      batch_size=size)
        self.log("train/chunk_steps", float(chunk or 0), batch_size=size)
        return total

    def configure_optimizers(self) -> Any:
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ConfigError("the cosine schedule needs a finite run: set trainer.max_steps "
                              "or trainer.max_epochs")
        return build_optimizer(self.model, self.optim, int(total))

    # --------------------------------------------------------------------------- evaluation
    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._log_rates("val")

    def on_test_epoch_end(self) -> None:
        self._log_rates("test")

    def chunk_of(self, mode: str) -> int | None:
        return self.config.streaming.chunk_size if mode == "stream" else None

    @torch.no_grad()
    def transcribe(self, batch: Batch, chunk_size: int | None) -> dict[str, list[str]]:
        """Greedy-CTC text of each clip of a batch per input modality ("av", "audio", "video");
        the two modality encoders run once, the fusion encoder once per modality."""
        m = self.model
        audio = m.audio_encoder(batch["audio"], batch["audio_lengths"], chunk_size)
        visual = m.visual_encoder(batch["video"], batch["video_lengths"], chunk_size)
        lengths = torch.minimum(audio.lengths, visual.lengths)
        out: dict[str, list[str]] = {}
        for modality in MODALITIES:
            a, v = self.objective.presence(lengths.shape[0], modality, None, lengths.device)
            fusion = m.fuse(audio.features, visual.features, lengths, chunk_size=chunk_size,
                            audio_present=a, video_present=v)
            out[modality] = [self.tokenizer.decode(ids)
                             for ids in greedy_ctc(fusion.log_probs, fusion.lengths)]
        return out

    @torch.no_grad()
    def late_start_sync(self, batch: Batch, chunk_size: int | None) -> dict[str, torch.Tensor]:
        """Sync accuracy when the video stream starts LATE_START steps after the audio stream
        while the content stays aligned. Embeddings that mark "steps since the stream began"
        instead of what lips and voice do score 1.0 on aligned clips but 0.0 here."""
        m, k = self.model, LATE_START
        lengths = (batch["video_lengths"] - k).clamp(min=0)
        visual = m.visual_encoder(batch["video"][:, k:], lengths, chunk_size)
        audio = m.audio_encoder(batch["audio"], batch["audio_lengths"], chunk_size)
        steps = visual.embeddings.shape[1]
        accuracy = sync_accuracy(audio.embeddings[:, k:k + steps], visual.embeddings,
                                 step_mask(lengths, steps), SYNC_MAX_SHIFT)
        return {f"late_start_{name}": value for name, value in accuracy.items()}

    def _evaluate(self, batch: Batch, stage: str) -> None:
        size = len(batch["ids"])
        refs = [self.tokenizer.decode(tokens[:n].tolist())
                for tokens, n in zip(batch["tokens"], batch["token_lengths"], strict=True)]
        for mode in MODES:
            chunk = self.chunk_of(mode)
            _, metrics = self.objective(self.model, batch, chunk_size=chunk, modality="av")
            metrics.update(self.late_start_sync(batch, chunk))
            self.log_dict({f"{stage}/{mode}/{k}": v for k, v in metrics.items()},
                          batch_size=size, sync_dist=True)
            for modality, hyps in self.transcribe(batch, chunk).items():
                self.tally.add((mode, modality), refs, hyps)

    def _log_rates(self, stage: str) -> None:
        def reduce(tensor: torch.Tensor) -> torch.Tensor:
            return self.trainer.strategy.reduce(tensor.to(self.device), reduce_op="sum")

        for name, rate in self.tally.rates(reduce).items():  # already summed over ranks
            self.log(f"{stage}/{name}", rate, prog_bar=name == "stream/wer_av")

    # ---------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        training = {"data": self.data_facts, "optim": asdict(self.optim), "seed": self.seed,
                    "global_step": int(self.global_step), "epoch": int(self.current_epoch)}
        checkpoint[CHECKPOINT_KEY] = checkpoint_section(self.config, self.tokenizer, training)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming or validating a checkpoint: refuse another tokenizer (its ids would mean
        other words), warn about model settings that differ from the YAML."""
        section = section_of(checkpoint, "checkpoint")
        trained_with = hashlib.sha256(section["tokenizer"]).hexdigest()
        if trained_with != self.tokenizer.sha256:
            raise ConfigError(f"the checkpoint was trained with another tokenizer (sha256 "
                              f"{trained_with[:12]}, this run's is "
                              f"{self.tokenizer.sha256[:12]}); pass the tokenizer it was "
                              "trained with as --data.tokenizer, or start a new run")
        stored, current = section["model_config"], self.config.to_dict()
        changed = sorted(k for k in current if stored.get(k) != current[k])
        if changed:
            log.warning("the checkpoint was trained with other %s settings than this run's "
                        "config; the checkpoint's weights are loaded into this run's model",
                        ", ".join(changed))
