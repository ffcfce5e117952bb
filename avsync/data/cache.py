"""Read a prepared cache: memmap views into a few shard files, no per-clip file opens.

Layout (written by `avsync.data.prepare`):
    CACHE/manifest.json          config, shards, one record per clip (written last, atomically)
    CACHE/report.json            every skipped input with its reason
    CACHE/shards/roi-0000.u8     uint8 ROIs, clip after clip, each (T, R, R) C-order
    CACHE/shards/audio-0000.i16  int16 PCM @ 16 kHz, each exactly T * 640 samples
    CACHE/shards/tokens-0000.i32 int32 token ids (empty without a tokenizer)
A folder without `manifest.json` is an unfinished prepare and is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from avsync.errors import DataError
from avsync.timebase import SAMPLES_PER_STEP

CACHE_FORMAT = "avsync-prepared-cache"
CACHE_VERSION = 1
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.json"
SHARD_DIR = "shards"
PCM_SCALE = 32768.0  # int16 <-> float: x_int = round(x * 32768) clipped; x = x_int / 32768
# (kind, dtype, file suffix) of the three shard streams.
SHARD_KINDS = (("roi", np.uint8, "u8"), ("audio", np.int16, "i16"), ("tokens", np.int32, "i32"))


def shard_path(cache: Path, kind: str, shard: int) -> Path:
    suffix = next(s for k, _, s in SHARD_KINDS if k == kind)
    return cache / SHARD_DIR / f"{kind}-{shard:04d}.{suffix}"


@dataclass(frozen=True)
class CachedClip:
    """One clip as training reads it; arrays are read-only views into the shards.

    roi: (T, R, R) uint8 stored mouth crops. audio: (T * 640,) int16 PCM @ 16 kHz
    (divide by `PCM_SCALE` for float). tokens: (U,) int32 ids, empty when the cache was
    prepared without a tokenizer. words: (word, start_step, end_step) with end exclusive.
    speech_mask: (T,) bool, True inside a word (all True when the corpus has no word timings).
    """

    id: str
    split: str
    speaker: str
    text: str
    roi: np.ndarray
    audio: np.ndarray
    tokens: np.ndarray
    words: tuple[tuple[str, int, int], ...]
    speech_mask: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.roi.shape[0])


def speech_mask(steps: int, words: tuple[tuple[str, int, int], ...]) -> np.ndarray:
    """(T,) bool: True for steps inside any word; all True when no word timings are known."""
    if not words:
        return np.ones(steps, dtype=bool)
    mask = np.zeros(steps, dtype=bool)
    for _, start, end in words:
        mask[max(start, 0):min(end, steps)] = True
    return mask


class PreparedCache:
    """`len`, `cache[i] -> CachedClip`, `split(name)`, `lengths`; cheap to pickle into
    DataLoader workers (memmaps are reopened lazily in each process, never copied)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest_file = self.path / MANIFEST_FILE
        if not manifest_file.is_file():
            hint = ("an unfinished prepare (run it again to resume)"
                    if (self.path / SHARD_DIR).is_dir() else "not a prepared cache")
            raise DataError(f"{self.path}: no {MANIFEST_FILE}: {hint}; "
                            "run `avsync data prepare ROOT --out CACHE`")
        data = json.loads(manifest_file.read_text(encoding="utf-8"))
        if data.get("format") != CACHE_FORMAT or data.get("version") != CACHE_VERSION:
            raise DataError(f"{manifest_file}: format {data.get('format')!r} version "
                            f"{data.get('version')!r}, expected {CACHE_FORMAT!r} version "
                            f"{CACHE_VERSION}; prepare the cache again with this avsync")
        self.config: dict[str, Any] = data["config"]
        self._clips: list[dict[str, Any]] = data["clips"]
        self._maps: dict[tuple[str, int], np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_maps"] = {}
        return state

    def __len__(self) -> int:
        return len(self._clips)

    @property
    def roi_size(self) -> int:
        return int(self.config["roi_size"])

    @property
    def roi_convention(self) -> str:
        """How the ROIs were cut (avsync.media.roi); caches written before it: "face-box"."""
        return str(self.config.get("roi_convention", "face-box"))

    @property
    def tokenizer_sha256(self) -> str | None:
        return self.config.get("tokenizer_sha256")

    @cached_property
    def lengths(self) -> np.ndarray:
        """(N,) int64 steps per clip, for length bucketing."""
        return np.array([c["steps"] for c in self._clips], dtype=np.int64)

    @cached_property
    def ids(self) -> list[str]:
        return [c["id"] for c in self._clips]

    def split(self, name: str) -> list[int]:
        """Indices of the clips of one split ("train", "val", "test", "pretrain")."""
        return [i for i, c in enumerate(self._clips) if c["split"] == name]

    @cached_property
    def splits(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for clip in self._clips:
            counts[clip["split"]] = counts.get(clip["split"], 0) + 1
        return counts

    def record(self, index: int) -> dict[str, Any]:
        """The raw manifest record of clip `index` (source file, segment, offsets)."""
        return self._clips[index]

    def _map(self, kind: str, shard: int) -> np.ndarray:
        key = (kind, shard)
        if key not in self._maps:
            dtype = next(d for k, d, _ in SHARD_KINDS if k == kind)
            path = shard_path(self.path, kind, shard)
            if path.stat().st_size == 0:
                self._maps[key] = np.zeros(0, dtype=dtype)
            else:
                self._maps[key] = np.memmap(path, dtype=dtype, mode="r")
        return self._maps[key]

    def __getitem__(self, index: int) -> CachedClip:
        clip = self._clips[index]
        steps, size, shard = clip["steps"], self.roi_size, clip["shard"]
        frame_bytes = size * size
        roi = self._map("roi", shard)[clip["roi"] * frame_bytes:(clip["roi"] + steps) * frame_bytes]
        audio_start = clip["audio"]
        audio = self._map("audio", shard)[audio_start:audio_start + steps * SAMPLES_PER_STEP]
        tokens = self._map("tokens", shard)[clip["tokens"]:clip["tokens"] + clip["n_tokens"]]
        words = tuple((str(w), int(s), int(e)) for w, s, e in clip["words"])
        return CachedClip(id=clip["id"], split=clip["split"], speaker=clip["speaker"],
                          text=clip["text"], roi=roi.reshape(steps, size, size), audio=audio,
                          tokens=tokens, words=words, speech_mask=speech_mask(steps, words))

    def __repr__(self) -> str:
        return f"PreparedCache({str(self.path)!r}, clips={len(self)}, splits={self.splits})"
