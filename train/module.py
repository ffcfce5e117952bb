"""`AVSyncLightning`: the LightningModule around a bare `AVSyncModel`.

Lightning does the loop, devices, precision, DDP and checkpoints; this module only says what a
step is. The bare model is `self.model` (export takes it as it is) and every checkpoint carries
an `avsync` section (`avsync.models.checkpoint`) with the model config and the tokenizer, so
`load_checkpoint(path)` rebuilds the model without any YAML.

The objective (`ObjectiveConfig`: loss weights, augmentation, chunk sizes) is training's, not
the model's: the YAML's top-level `objective:` section, stored in every checkpoint's training
facts. Training step: a chunk size drawn from `objective.chunk_sizes`, modality dropout and
masks, all from a generator seeded by (seed, global step, batch index, rank), and the global
RNG (dropout) reseeded the same way, so a run resumed from a checkpoint takes exactly the steps
the uninterrupted run would.

Validation and test run twice per batch: in the streaming mode the model is served with
(`streaming.chunk_size`) and over the whole utterance, logging for each every loss, sync
accuracy, the modality gap and greedy-CTC WER/CER for audio-only, video-only and audio-visual
input (`val/stream/wer_av`, `val/full/wer_audio`, ...). Each mode encodes each modality once and
fuses that encoding three ways (`AVSyncModel.forward_encoded`); the audio-visual pass also
gives the losses. WER is corpus-level (errors summed over the epoch and over DDP ranks, then
divided). `late_start_sync_clip_acc` checks sync with the video stream starting later than the
audio: aligned clips alone cannot tell embeddings of the lips and voice from embeddings of
"time since the stream began".
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
from avsync.models.checkpoint import (
    CHECKPOINT_KEY,
    checkpoint_section,
    section_of,
    stored_objective,
)
from avsync.models.config import ModelConfig
from avsync.models.decoder import teacher_forcing
from avsync.models.decoding import greedy_ctc
from avsync.models.encoders import EncoderOutput, step_mask
from avsync.models.losses import sync_accuracy
from avsync.models.model import MODALITIES, AVSyncModel, ForwardOutput, Modality, presence
from avsync.models.objective import Batch, ContrastiveGenerativeObjective, ObjectiveConfig
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
    data_facts: what the run trained on (written into checkpoints for model cards);
    objective: loss weights and augmentation (default `ObjectiveConfig()`)."""

    def __init__(self, config: ModelConfig, tokenizer: Tokenizer,
                 optim: OptimConfig | None = None, seed: int = 0,
                 data_facts: dict[str, Any] | None = None,
                 objective: ObjectiveConfig | None = None) -> None:
        super().__init__()
        if config.vocab_size != tokenizer.vocab_size:
            log.info("model vocab_size %d -> %d (the tokenizer's)", config.vocab_size,
                     tokenizer.vocab_size)
            config = replace(config, vocab_size=tokenizer.vocab_size)
        self.objective_config = objective or ObjectiveConfig()
        self.objective_config.check_model(config)
        self.config, self.tokenizer = config, tokenizer
        self.optim = optim or OptimConfig()
        self.seed, self.data_facts = int(seed), dict(data_facts or {})
        self.model = AVSyncModel(config)
        self.objective = ContrastiveGenerativeObjective(self.objective_config)
        self.objective.init_model(self.model)
        self.tally = ErrorTally()
        self.save_hyperparameters({"model": config.to_dict(),
                                   "objective": self.objective_config.to_dict(),
                                   "optim": asdict(self.optim), "seed": self.seed,
                                   "tokenizer_sha256": tokenizer.sha256})

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
    def forward_modalities(self, batch: Batch, chunk_size: int | None
                           ) -> dict[Modality, ForwardOutput]:
        """The forward pass of a batch for each input mix ("av", "audio", "video"): the two
        modality encoders run once, the fusion encoder once per mix; the "av" pass also runs
        the decoder (teacher forcing), for the losses."""
        m = self.model
        encoded = m.encode(batch["audio"], batch["audio_lengths"], batch["video"],
                           batch["video_lengths"], chunk_size=chunk_size)
        inputs, _, input_lengths = teacher_forcing(batch["tokens"], batch["token_lengths"])
        lengths = batch["video_lengths"]
        out: dict[Modality, ForwardOutput] = {}
        for modality in MODALITIES:
            a, v = presence(modality, lengths.shape[0], lengths.device)
            av = modality == "av"
            out[modality] = m.forward_encoded(
                encoded, chunk_size=chunk_size, audio_present=a, video_present=v,
                decoder_tokens=inputs if av else None,
                decoder_lengths=input_lengths if av else None)
        return out

    def transcripts(self, output: ForwardOutput) -> list[str]:
        """Greedy-CTC text of each clip of a forward pass."""
        return [self.tokenizer.decode(ids)
                for ids in greedy_ctc(output.fusion.log_probs, output.fusion.lengths)]

    @torch.no_grad()
    def late_start_sync(self, batch: Batch, chunk_size: int | None,
                        audio: EncoderOutput | None = None) -> dict[str, torch.Tensor]:
        """Sync accuracy when the video stream starts LATE_START steps after the audio stream
        while the content stays aligned. Embeddings that mark "steps since the stream began"
        instead of what lips and voice do score 1.0 on aligned clips but 0.0 here.
        audio: the batch's audio encoding when already made (validation reuses it)."""
        m, k = self.model, LATE_START
        lengths = (batch["video_lengths"] - k).clamp(min=0)
        visual = m.encode(video=batch["video"][:, k:], video_lengths=lengths,
                          chunk_size=chunk_size).visual
        if audio is None:
            audio = m.encode(batch["audio"], batch["audio_lengths"], chunk_size=chunk_size).audio
        assert visual is not None and audio is not None
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
            outputs = self.forward_modalities(batch, chunk)
            _, metrics = self.objective.loss(self.model, batch, outputs["av"])
            metrics.update(self.late_start_sync(batch, chunk, outputs["av"].audio))
            self.log_dict({f"{stage}/{mode}/{k}": v for k, v in metrics.items()},
                          batch_size=size, sync_dist=True)
            for modality, output in outputs.items():
                self.tally.add((mode, modality), refs, self.transcripts(output))

    def _log_rates(self, stage: str) -> None:
        def reduce(tensor: torch.Tensor) -> torch.Tensor:
            return self.trainer.strategy.reduce(tensor.to(self.device), reduce_op="sum")

        for name, rate in self.tally.rates(reduce).items():  # already summed over ranks
            self.log(f"{stage}/{name}", rate, prog_bar=name == "stream/wer_av")

    # ---------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        training = {"data": self.data_facts, "optim": asdict(self.optim), "seed": self.seed,
                    "global_step": int(self.global_step), "epoch": int(self.current_epoch),
                    "objective": self.objective_config.to_dict()}
        checkpoint[CHECKPOINT_KEY] = checkpoint_section(self.config, self.tokenizer, training)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming or validating a checkpoint: refuse another tokenizer (its ids would mean
        other words), warn about model settings that differ from the YAML, say which
        objective settings do. A checkpoint written before the objective moved out of the
        model config reads the same (`ModelConfig.from_dict` migrates it)."""
        section = section_of(checkpoint, "checkpoint")
        trained_with = hashlib.sha256(section["tokenizer"]).hexdigest()
        if trained_with != self.tokenizer.sha256:
            raise ConfigError(f"the checkpoint was trained with another tokenizer (sha256 "
                              f"{trained_with[:12]}, this run's is "
                              f"{self.tokenizer.sha256[:12]}); pass the tokenizer it was "
                              "trained with as --data.tokenizer, or start a new run")
        stored = ModelConfig.from_dict(section["model_config"]).to_dict()
        current = self.config.to_dict()
        changed = sorted(k for k in current if stored.get(k) != current[k])
        if changed:
            log.warning("the checkpoint was trained with other %s settings than this run's "
                        "config; the checkpoint's weights are loaded into this run's model",
                        ", ".join(changed))
        trained = stored_objective(section) or {}
        now = self.objective_config.to_dict()
        changed = sorted(k for k in now if trained and trained.get(k) != now[k])
        if changed:
            log.info("this run's objective differs from the checkpoint's in %s",
                     ", ".join(f"{k} ({trained.get(k)!r} -> {now[k]!r})" for k in changed))
