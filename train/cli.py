"""`avsync train fit|validate|test`: Lightning's own CLI (LightningCLI) over avsync's parts.

A YAML file holds every section; every key can be overridden on the command line:
    model:       the ModelConfig (exactly what `avsync model info` reads)
    objective:   ObjectiveConfig (loss weights, augmentation, training chunk sizes)
    optim:       OptimConfig (AdamW, warm-up, cosine)
    data:        AVDataModule (prepared cache, tokenizer, batch budget, noise, workers)
    checkpoint:  CheckpointConfig (how often `last.ckpt` is written, what `best.ckpt` minimises)
    trainer:     Lightning's Trainer (max_epochs, devices, num_nodes, strategy, precision, ...)
    seed_everything, threads (torch threads per process)

What the CLI decides for you (each overridable):
- run dir `trainer.default_root_dir`, default `runs/<model.name>`; checkpoints in
  `<run dir>/checkpoints/` (`best.ckpt`, `last.ckpt`), TensorBoard logs in
  `<run dir>/tensorboard/`, CSV logs in `<run dir>/csv/`;
- `fit` resumes from `<run dir>/checkpoints/last.ckpt` when it exists (`--ckpt_path last` is
  the default; `--ckpt_path null` starts over);
- precision `bf16-mixed` on a GPU, `32-true` on the CPU, unless `trainer.precision` is set;
- `validate`/`test` with `--ckpt_path FILE` rebuild the model, objective and tokenizer the
  checkpoint describes, so no model YAML is needed.
A YAML file of the layout before the objective left the model (`model.objective`) is refused
with the fix; checkpoints of that layout still resume and validate.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from avsync.train.callbacks import LastCheckpoint, RankAgreement
from avsync.train.datamodule import AVDataModule
from avsync.train.module import MONITOR, AVSyncLightning
from avsync.train.optim import OptimConfig
from jsonargparse import DefaultHelpFormatter
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from avsync.errors import ConfigError
from avsync.models.checkpoint import read_raw, section_of, stored_objective
from avsync.models.config import LEGACY_OBJECTIVE_KEY, ModelConfig
from avsync.models.objective import ObjectiveConfig
from avsync.text.tokenizer import Tokenizer

log = logging.getLogger(__name__)

DESCRIPTION = """\
Train, validate or test an avsync model with Lightning. Configure with a YAML file
(train/configs/debug.yaml | tiny.yaml | base.yaml) and override any key on the command line.
Runs resume automatically from <run dir>/checkpoints/last.ckpt.
`avsync train average --help`: the mean of a run's last epochs' weights (with
--checkpoint.keep_last_epochs N a run keeps them as epoch-NNN.ckpt)."""

EPILOG = """\
examples:
  avsync train fit --config train/configs/tiny.yaml \\
      --data.cache data/synth/.avsync/cache --data.tokenizer data/synth/.avsync/tok.model
  avsync train fit --config train/configs/tiny.yaml --trainer.max_epochs 3 --optim.lr 2e-3
  avsync train fit --config train/configs/base.yaml --trainer.devices 8 \\
      --trainer.num_nodes 2 --trainer.strategy ddp          # bf16-mixed on GPUs
  avsync train fit --config train/configs/debug.yaml --trainer.accelerator cpu \\
      --trainer.devices 2 --trainer.strategy ddp          # 2-process CPU DDP (gloo)
  avsync train validate --ckpt_path runs/tiny/checkpoints/best.ckpt --data.cache CACHE
  avsync train test --ckpt_path runs/tiny/checkpoints/best.ckpt --data.cache CACHE
  avsync train fit --config train/configs/tiny.yaml --print_config   # the resolved config
  avsync train average runs/tiny/checkpoints/epoch-*.ckpt --last 5 \\
      --out runs/tiny/checkpoints/averaged.ckpt     # see `avsync train average --help`
"""


class _Formatter(argparse.RawDescriptionHelpFormatter, DefaultHelpFormatter):
    """jsonargparse's help, with the examples of the epilog laid out as written."""


@dataclass(frozen=True)
class CheckpointConfig:
    """last.ckpt is written at the end of fit, every `every_n_train_steps` optimizer steps
    (null: never in between) and at the end of every epoch when `at_epoch_end`; best.ckpt
    keeps the lowest (mode min) or highest `monitor` seen in validation. keep_last_epochs:
    the last N epochs of `trainer.max_epochs` also end in `epoch-NNN.ckpt`, for
    `avsync train average`."""

    every_n_train_steps: int | None = 500
    at_epoch_end: bool = True
    keep_last_epochs: int = 0
    monitor: str = MONITOR
    mode: str = "min"


class AVSyncCLI(LightningCLI):
    """LightningCLI whose `model:` section is a `ModelConfig`, not the LightningModule's
    arguments: the same YAML then feeds `avsync model info`, and checkpoints store it."""

    def __init__(self, args: list[str], run: bool = True) -> None:
        super().__init__(
            model_class=AVSyncLightning, datamodule_class=AVDataModule,
            args=args, run=run, auto_configure_optimizers=False,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"prog": "avsync train", "description": DESCRIPTION,
                           "epilog": EPILOG, "formatter_class": _Formatter},
            trainer_defaults={"use_distributed_sampler": False, "gradient_clip_val": 1.0,
                              "log_every_n_steps": 10})

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {name: skip for name, skip in LightningCLI.subcommands().items()
                if name in ("fit", "validate", "test")}

    def add_core_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(self.trainer_class, "trainer")
        parser.set_defaults({f"trainer.{k}": v for k, v in self.trainer_defaults.items()})
        parser.add_class_arguments(ModelConfig, "model", fail_untyped=True)
        parser.add_class_arguments(ObjectiveConfig, "objective", fail_untyped=True)
        parser.add_class_arguments(OptimConfig, "optim")
        parser.add_class_arguments(CheckpointConfig, "checkpoint")
        parser.add_lightning_class_args(AVDataModule, "data")

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--threads", type=int | None, default=None,
                            help="torch intra-op threads per process (null: torch's default, "
                                 "all cores; 1 on a shared machine avoids thread stalls)")

    def _parse_ckpt_path(self) -> None:
        """LightningCLI would merge a checkpoint's hyper_parameters into the `model:` section;
        avsync checkpoints carry their ModelConfig in their own section instead, which
        `_model_and_tokenizer` reads (validate/test) or checks (resuming fit)."""

    def instantiate_classes(self) -> None:
        self.config_init = self.parser.instantiate(self.config)
        threads = self._get(self.config_init, "threads")
        if threads:
            torch.set_num_threads(threads)
        section = self._get(self.config_init, "trainer")
        config, objective, tokenizer = self._model_and_tokenizer()
        self.datamodule = self._get(self.config_init, "data")
        self.datamodule.attach(tokenizer, config.visual_frontend.roi_size,
                               config.visual_frontend.roi_stored,
                               config.visual_frontend.roi_convention)
        root = Path(section.get("default_root_dir") or Path("runs") / config.name)
        section["default_root_dir"] = str(root)
        section["precision"] = section.get("precision") or default_precision(section)
        if section.get("logger") in (None, True):
            section["logger"] = [TensorBoardLogger(root, name="tensorboard",
                                                   default_hp_metric=False),
                                 CSVLogger(root, name="csv")]
        seed = self._get(self.config_init, "seed_everything")
        self.model = AVSyncLightning(config, tokenizer, self._get(self.config_init, "optim"),
                                     seed=0 if isinstance(seed, bool) else int(seed),
                                     data_facts=self.datamodule.facts(), objective=objective)
        self.trainer = self.instantiate_trainer(callbacks=self._callbacks(root, section))

    def before_fit(self) -> None:
        """Say whether this run resumes, and start quietly when `last` does not exist yet."""
        section = self.config_init[self.subcommand]
        last = Path(self.trainer.default_root_dir) / "checkpoints" / "last.ckpt"
        if section.get("ckpt_path") == "last":
            if last.is_file():
                log.info("resuming from %s", last)
            else:
                log.info("no %s: starting a new run", last)
                section["ckpt_path"] = None

    def _callbacks(self, root: Path, trainer: dict[str, Any]) -> list[Any]:
        given = trainer.get("callbacks") or []
        options: CheckpointConfig = self._get(self.config_init, "checkpoint")
        directory = root / "checkpoints"
        best = ModelCheckpoint(dirpath=directory, filename="best", monitor=options.monitor,
                               mode=options.mode, save_top_k=1, auto_insert_metric_name=False)
        last = LastCheckpoint(directory, options.every_n_train_steps, options.at_epoch_end,
                              options.keep_last_epochs)
        extra: list[Any] = []
        if self.subcommand == "fit":
            extra += [best, last, RankAgreement()]
            if trainer.get("logger"):
                extra.append(LearningRateMonitor(logging_interval="step"))
        return [*(given if isinstance(given, list) else [given]), *extra]

    def _model_and_tokenizer(self) -> tuple[ModelConfig, ObjectiveConfig, Tokenizer]:
        """From the YAML for `fit`; from the checkpoint for validate/test of one (its
        objective: the one it trained with, else the YAML's)."""
        data = self._get(self.config_init, "data")
        objective = self._get(self.config_init, "objective")
        ckpt = self._get(self.config_init, "ckpt_path", None) if self.subcommand != "fit" else None
        if ckpt and Path(ckpt).is_file():
            section = section_of(read_raw(ckpt), ckpt)
            tokenizer = (Tokenizer.load(data.tokenizer_path) if data.tokenizer_path
                         else Tokenizer(section["tokenizer"], source=f"{ckpt}:tokenizer"))
            trained = stored_objective(section)
            if trained is not None:
                objective = ObjectiveConfig.from_dict(trained)
            return ModelConfig.from_dict(section["model_config"]), objective, tokenizer
        if not data.tokenizer_path:
            raise ConfigError("data.tokenizer is not set: give the sentencepiece model the "
                              "cache was prepared with (--data.tokenizer PATH.model)")
        return (self._get(self.config_init, "model"), objective,
                Tokenizer.load(data.tokenizer_path))

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        trainer_config = dict(self._get(self.config_init, "trainer", default={}))
        trainer_config.update(kwargs)
        return self._instantiate_trainer(trainer_config, [])


def default_precision(trainer: dict[str, Any]) -> str:
    """bf16 mixed precision on GPUs that support it, full fp32 elsewhere (CPU training)."""
    accelerator = str(trainer.get("accelerator") or "auto")
    on_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if on_gpu and torch.cuda.is_bf16_supported() else "32-true"


def with_resume_default(argv: list[str]) -> list[str]:
    """`fit` resumes from the run's last.ckpt unless --ckpt_path is given."""
    given = any(a == "--ckpt_path" or a.startswith("--ckpt_path=") for a in argv)
    return [*argv, "--ckpt_path", "last"] if argv and argv[0] == "fit" and not given else argv


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def quiet_lightning() -> None:
    """One log format: when the entry point configured logging, Lightning's own console
    handler would print every message twice; its advertising tip and two warnings about its
    own internals say nothing about the run."""
    lightning_logger = logging.getLogger("lightning")
    if logging.getLogger().handlers:
        lightning_logger.handlers.clear()
    for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_DropTips())
    warnings.filterwarnings("ignore", message=r".*LightningCLI's args parameter is intended")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # expected here: validate/test build fresh callbacks; a resumed run reuses its folder
    warnings.filterwarnings("ignore", message=r"Be aware that when using `ckpt_path`")
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    # LightningCLI itself still calls jsonargparse APIs that jsonargparse deprecates
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="lightning.pytorch.cli")


def refuse_old_layout(argv: list[str]) -> None:
    """ConfigError for a `--config` YAML that still holds the objective under `model:`."""
    import yaml

    paths = [b for a, b in zip(argv, argv[1:], strict=False) if a == "--config"]
    paths += [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    for path in paths:
        try:
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue  # LightningCLI says what is wrong with it
        model = document.get("model") if isinstance(document, dict) else None
        if isinstance(model, dict) and LEGACY_OBJECTIVE_KEY in model:
            raise ConfigError(f"{path}: the objective is training's now, not the model's: move "
                              "its `objective:` block out of `model:` to the top level (as in "
                              "train/configs/tiny.yaml), and for audio_ctc_weight or "
                              "visual_ctc_weight above 0 add `audio_ctc: true` / "
                              "`visual_ctc: true` to model.heads")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["average"]:  # not a Lightning subcommand: no trainer, no data
        from avsync.train.average import main as average_main

        return average_main(args[1:])
    refuse_old_layout(args)
    quiet_lightning()
    try:
        AVSyncCLI(with_resume_default(args))
    finally:
        _close_process_group()
    return 0


def _close_process_group() -> None:
    """Tear DDP's process group down before the interpreter exits. Left to static destructors,
    gloo's threads were now and then destroyed still joinable, and a rank that had finished
    fit died with SIGABRT ("terminate called without an active exception", 1 of 6 CPU DDP
    test runs on 2026-11-24)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
