"""Export tests: a seeded untrained debug checkpoint and, for the data path, a tiny synthetic
corpus (real espeak voices and rendered faces) prepared at the debug model's ROI size."""

from __future__ import annotations

from pathlib import Path

import pytest
from avsync.export.debug import debug_checkpoint


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return debug_checkpoint(tmp_path_factory.mktemp("ckpt") / "debug.ckpt")


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory, checkpoint: Path) -> Path:
    """The CLI's export of the checkpoint, fp32 and int8, without data."""
    from avsync.export.cli import main

    out = tmp_path_factory.mktemp("models") / "debug"
    assert main([str(checkpoint), "--out", str(out), "--int8"]) == 0
    return out


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 clips of 3 speakers (train/val/test 2 each) -> a prepared cache with 20 px ROIs."""
    from avsync.data.cli import main as data_main
    from avsync.data.synth.cli import main as synth_main

    root = tmp_path_factory.mktemp("corpus") / "synth"
    assert synth_main(["--out", str(root), "--speakers", "3", "--utts-per-speaker", "2",
                       "--val-speakers", "1", "--test-speakers", "1", "--text", "grid",
                       "--workers", "1", "--quiet"]) == 0
    assert data_main(["index", str(root)]) == 0
    assert data_main(["prepare", str(root), "--roi-size", "20", "--workers", "1",
                      "--no-progress"]) == 0
    return root / ".avsync" / "cache"
