"""An evaluation that resumes: each condition's transcripts kept on disk as they are made.

Why: the open model's whole `avsync eval --finals` (every noise kind at every SNR, wrong lips,
480 test clips) takes more than an hour on 2 cores, and a sitting may end inside it. Each
`transcribe` call of a backend is one condition (one set of inputs); `JournaledBackend` keys
it by the model's files and the inputs' bytes and stores its transcripts under
`OUT/.journal/`, so a rerun with the same model, data and settings reads what was done and
decodes only the rest. A changed model file, input or decoding setting is another key.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from avsync.train.eval_backend import EvalBackend

from avsync.runtime.offline import ClipInput, ClipOutputs

JOURNAL = ".journal"  # the folder, inside eval's --out, of the journaled transcripts


class JournaledBackend:
    """`backend` (the evaluation seam) whose `transcribe` results are journaled in `folder`;
    `model`: the checkpoint or model directory it runs (its files' sizes and times key the
    journal with the backend's `describe()`). `reused` / `decoded` count calls."""

    def __init__(self, backend: EvalBackend, model: Path, folder: Path) -> None:
        self.backend, self.folder = backend, folder
        self.roi_stored, self.roi_convention = backend.roi_stored, backend.roi_convention
        files = sorted(p for p in ([model] if model.is_file() else model.rglob("*"))
                       if p.is_file())
        stats = [(str(p.relative_to(model.parent)), p.stat().st_size, p.stat().st_mtime_ns)
                 for p in files]
        self._model_key = json.dumps([backend.describe(), stats], sort_keys=True, default=str)
        self.reused = self.decoded = 0

    def describe(self) -> dict[str, Any]:
        return self.backend.describe()

    def run(self, clips: Sequence[ClipInput]) -> list[ClipOutputs]:
        return self.backend.run(clips)

    def transcribe(self, clips: Sequence[ClipInput]) -> list[str]:
        path = self.folder / f"{self._key(clips)}.json"
        if path.is_file():
            try:
                texts = json.loads(path.read_text())
            except (OSError, ValueError):
                texts = None  # a torn write: decode again
            if isinstance(texts, list) and len(texts) == len(clips):
                self.reused += 1
                return [str(t) for t in texts]
        texts = self.backend.transcribe(clips)
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(texts))
        os.replace(partial, path)  # whole or not at all
        self.decoded += 1
        return texts

    def _key(self, clips: Sequence[ClipInput]) -> str:
        digest = hashlib.blake2b(self._model_key.encode(), digest_size=16)
        for clip in clips:
            for array in (clip.audio, clip.rois):
                if array is None:
                    digest.update(b"-")
                else:
                    digest.update(f"{array.dtype}{array.shape}".encode())
                    digest.update(np.ascontiguousarray(array).data)
        return digest.hexdigest()
