"""Helpers of the training tests: the corpus record, `avsync train` argument lists, child
processes with one thread and a free DDP port on 127.0.0.1, and the CSV logs of a run."""

from __future__ import annotations

import csv
import math
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from avsync.models.config import config_dir

DEBUG_YAML = config_dir() / "debug.yaml"
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Corpus:
    root: Path
    cache: Path
    tokenizer: Path


def fit_args(corpus: Corpus, run_dir: Path, *extra: str) -> list[str]:
    """`avsync train fit` on the debug config and the tiny corpus, quiet, in `run_dir`."""
    return ["fit", "--config", str(DEBUG_YAML), "--data.cache", str(corpus.cache),
            "--data.tokenizer", str(corpus.tokenizer), "--trainer.default_root_dir",
            str(run_dir), "--trainer.enable_progress_bar", "false", *extra]


def child_env() -> dict[str, str]:
    """Environment of a training child process: one thread, DDP rendezvous on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port), "PYTHONPATH": str(REPO)}


def avsync_command(*args: str) -> list[str]:
    """The installed `avsync` entry point (Lightning's DDP launcher re-runs sys.argv)."""
    return [str(Path(sys.executable).with_name("avsync")), *args]


def start_training(args: list[str], log: Path) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(avsync_command("train", *args), cwd=REPO, env=child_env(),
                            stdout=handle, stderr=subprocess.STDOUT)


def metric_rows(run_dir: Path, version: int | None = None) -> list[dict[str, float]]:
    """The rows of a run's CSV logs (all versions in order, or one), numbers only."""
    paths = sorted((run_dir / "csv").glob("version_*/metrics.csv"),
                   key=lambda p: int(p.parent.name.split("_")[1]))
    rows = []
    for path in paths if version is None else [paths[version]]:
        with path.open() as handle:
            for row in csv.DictReader(handle):
                rows.append({k: float(v) for k, v in row.items() if v not in ("", None)})
    return rows


def finite(value: float) -> bool:
    return math.isfinite(value)
