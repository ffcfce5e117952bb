"""The plain-onnxruntime example of docs/embedding.md runs verbatim, with neither torch nor
any avsync module importable, and prints what avsync.runtime decodes greedily."""

from __future__ import annotations

import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from runtime_helpers import random_chunk

from avsync.runtime import ClipInput, Model, greedy, run_clips
from avsync.runtime.words import tokens_to_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "embedding.md"
MARKER = "<!-- example: plain-onnxruntime"

# Runs the example with `torch` and `avsync` unimportable (a meta-path hook refuses them).
RUNNER = """
import runpy, sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "avsync"):
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Refuse())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def example_code() -> str:
    text = DOC.read_text(encoding="utf-8")
    after = text[text.index(MARKER):]
    match = re.search(r"```python\n(.*?)```", after, re.S)
    assert match is not None, "the marked example has no python block"
    return match.group(1)


def write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes(np.round(audio * 32767).astype("<i2").tobytes())


def runtime_greedy(model: Model, clip: ClipInput) -> str:
    card = model.card
    tokens = [t for t, _ in greedy(run_clips(model, [clip])[0].log_probs)]
    return tokens_to_text(tokens, card.vocab, {card.blank_id, card.bos_id, card.eos_id})


@pytest.mark.parametrize("with_video", [False, True])
def test_plain_onnxruntime_example_matches_the_runtime(tmp_path: Path, model_dir: Path,
                                                       model: Model, with_video: bool) -> None:
    audio, rois = random_chunk(model, 29, seed=21)
    audio = audio[:-300]  # a partial last step: zero-padded to a whole one, then the tail
    wav = tmp_path / "speech.wav"
    write_wav(wav, audio)
    pcm = np.frombuffer(np.round(audio * 32767).astype("<i2").tobytes(), "<i2") / 32768
    (tmp_path / "example.py").write_text(example_code(), encoding="utf-8")
    (tmp_path / "runner.py").write_text(RUNNER, encoding="utf-8")
    args = [sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "example.py"),
            str(model_dir), str(wav)]
    if with_video:
        np.save(tmp_path / "rois.npy", rois)
        args.append(str(tmp_path / "rois.npy"))
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    tail = 12  # the documented tail padding: 480 ms of silence, the last ROI held still
    padded = np.pad(pcm, (0, (29 + tail) * 640 - len(pcm))).astype(np.float32)
    held = np.concatenate([rois, np.repeat(rois[-1:], tail, axis=0)])
    expected = runtime_greedy(model, ClipInput(padded, held if with_video else None))
    assert done.stdout.strip() == expected
    assert expected  # an untrained model still emits labels: the comparison is not vacuous
