"""avsync.runtime imports, loads a model and transcribes with torch made unimportable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from runtime_helpers import random_chunk

from avsync.media.encode import write_mp4
from avsync.runtime import Model
from avsync.runtime.transcribe import transcribe_file

SCRIPT = """
import importlib, json, pkgutil, sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Refuse())
import avsync.runtime
for module in pkgutil.iter_modules(avsync.runtime.__path__):
    importlib.import_module(f"avsync.runtime.{module.name}")
from avsync.runtime.transcribe import main
model_dir, clip = sys.argv[1], sys.argv[2]
assert main([clip, "--model", model_dir, "--format", "json", "--precision", "fp32"]) == 0
assert main([clip, "--model", model_dir, "--format", "txt", "--int8", "--video-only"]) == 0
assert not [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
"""


def test_runtime_transcribes_with_torch_blocked(tmp_path: Path, model_dir: Path,
                                                model: Model) -> None:
    audio, _ = random_chunk(model, 30, seed=2)
    frames = (np.random.default_rng(3).integers(0, 256, (30, 64, 64))).astype("uint8")
    write_mp4(tmp_path / "clip.mp4", frames, audio)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(model_dir),
                           str(tmp_path / "clip.mp4")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2  # the JSON line, then the txt line of the int8 video-only run
    result = json.loads(lines[0])
    assert result["modality"] == "av" and result["model"] == "debug"
    assert result["duration"] == 1.2
    # the same as in this process, where torch is importable
    assert result == transcribe_file(model, tmp_path / "clip.mp4", audio=True, video=True,
                                     faces="whole") | {"file": str(tmp_path / "clip.mp4")}
