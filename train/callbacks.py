"""Callbacks the training CLI adds to every run.

`LastCheckpoint`: `last.ckpt` every N optimizer steps, at the end of every epoch (optional) and
always at the end of fit. Lightning's own `save_last` skips the end of fit once any last
checkpoint was written, which would lose the final steps of every run.

`RankAgreement`: DDP keeps replicas identical only if every rank applies the same updates;
a rank that silently diverged (different data length, a non-deterministic op, a skipped step)
still trains and saves rank 0's weights. At the end of fitting every rank hashes its
parameters, the hashes are all-gathered and compared; a mismatch is an error, and the hashes
are written to `<run dir>/rank_agreement.json` so a run's log shows the check happened.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from avsync.errors import AvsyncError


def parameter_digest(module: torch.nn.Module) -> int:
    """A 63-bit hash of every parameter's exact bytes, in name order."""
    digest = hashlib.sha256()
    for name, parameter in sorted(module.named_parameters()):
        digest.update(name.encode())
        digest.update(parameter.detach().float().cpu().contiguous().numpy().tobytes())
    return int.from_bytes(digest.digest()[:8], "little") >> 1


class RankAgreement(L.Callback):
    """Checks at the end of `fit` that all DDP ranks hold identical parameters."""

    FILE = "rank_agreement.json"

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        mine = torch.tensor([parameter_digest(pl_module)], dtype=torch.int64,
                            device=pl_module.device)
        gathered = trainer.strategy.all_gather(mine)  # (world, 1) on several ranks, (1,) on one
        digests = [int(d) for d in gathered.reshape(-1).tolist()]
        agree = len(set(digests)) == 1
        if trainer.is_global_zero:
            report = {"world_size": trainer.world_size, "global_step": trainer.global_step,
                      "digests": digests, "agree": agree}
            path = Path(trainer.default_root_dir) / self.FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report, indent=1) + "\n")
        if not agree:
            raise AvsyncError(f"DDP ranks hold different parameters after training (digests "
                              f"{digests}); the run is not trustworthy")


class LastCheckpoint(ModelCheckpoint):
    """Writes `<dirpath>/last.ckpt` only (no top-k files). every_n_train_steps: also every N
    optimizer steps; at_epoch_end: also when an epoch's training (and validation) is done;
    keep_last_epochs: each of the last N epochs of `max_epochs` also ends in
    `<dirpath>/epoch-NNN.ckpt` (NNN from 000), which `avsync train average` averages."""

    def __init__(self, dirpath: Path, every_n_train_steps: int | None,
                 at_epoch_end: bool = True, keep_last_epochs: int = 0) -> None:
        super().__init__(dirpath=dirpath, save_top_k=0, save_last=True,
                         every_n_train_steps=every_n_train_steps)
        self.at_epoch_end = at_epoch_end
        self.keep_last_epochs = keep_last_epochs

    def _keep_epoch(self, trainer: L.Trainer) -> None:
        last = trainer.max_epochs
        epoch = trainer.current_epoch
        if self.keep_last_epochs > 0 and last is not None and last > 0 \
                and epoch >= last - self.keep_last_epochs and self.dirpath is not None:
            trainer.save_checkpoint(Path(self.dirpath) / f"epoch-{epoch:03d}.ckpt")

    def _save_last_now(self, trainer: L.Trainer) -> None:
        if trainer.sanity_checking:
            return
        if self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self.at_epoch_end:
            self._save_last_now(trainer)
        self._keep_epoch(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_last_now(trainer)
