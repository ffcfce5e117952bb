"""Append-only shard files plus a journal, so a killed prepare resumes where it stopped.

A clip's bytes are written and flushed to the shards before its journal line is; on resume
the shards are cut back to the end of the last journaled clip, so bytes of a clip that was
half-written when the process died are overwritten, never read.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from avsync.data.cache import SHARD_DIR, SHARD_KINDS, shard_path
from avsync.timebase import SAMPLES_PER_STEP

JOURNAL_FILE = "progress.jsonl"


@dataclass
class ShardWriter:
    """Writes roi/audio/tokens of one clip after another; rolls to a new shard past a size."""

    cache: Path
    roi_size: int
    shard_bytes: int
    shard: int = 0
    offsets: tuple[int, int, int] = (0, 0, 0)  # frames, samples, tokens in the current shard

    def __post_init__(self) -> None:
        (self.cache / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        self._files: dict[str, IO[bytes]] = {}
        self._open(truncate_to=self.offsets)

    def _open(self, truncate_to: tuple[int, int, int]) -> None:
        frame_bytes = self.roi_size * self.roi_size
        units = {"roi": frame_bytes, "audio": 2, "tokens": 4}
        for (kind, _, _), count in zip(SHARD_KINDS, truncate_to, strict=True):
            path = shard_path(self.cache, kind, self.shard)
            handle = path.open("r+b" if path.exists() else "w+b")
            handle.truncate(count * units[kind])
            handle.seek(0, 2)
            self._files[kind] = handle

    def _roll(self) -> None:
        self.close()
        self.shard += 1
        self.offsets = (0, 0, 0)
        self._open(truncate_to=self.offsets)

    def append(self, roi: np.ndarray, audio: np.ndarray, tokens: np.ndarray) -> dict[str, int]:
        """Write one clip; returns where it lies: shard, roi (frame), audio (sample), tokens."""
        steps, roi_bytes = roi.shape[0], self.roi_size * self.roi_size
        assert roi.shape[1:] == (self.roi_size, self.roi_size) and roi.dtype == np.uint8
        assert audio.shape == (steps * SAMPLES_PER_STEP,) and audio.dtype == np.int16
        if self.offsets[0] and (self.offsets[0] + steps) * roi_bytes > self.shard_bytes:
            self._roll()
        record = {"shard": self.shard, "roi": self.offsets[0], "audio": self.offsets[1],
                  "tokens": self.offsets[2], "n_tokens": int(tokens.size), "steps": int(steps)}
        for kind, array in (("roi", roi), ("audio", audio), ("tokens", tokens.astype(np.int32))):
            self._files[kind].write(np.ascontiguousarray(array).tobytes())
            self._files[kind].flush()
        self.offsets = (self.offsets[0] + steps, self.offsets[1] + audio.size,
                        self.offsets[2] + tokens.size)
        return record

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files = {}


@dataclass(frozen=True)
class JournalLine:
    key: str
    record: dict[str, Any] | None  # where the clip was written
    problem: dict[str, str] | None  # or why it was skipped


class Journal:
    """`progress.jsonl`: a header with the cache's fingerprint, then one line per finished clip."""

    def __init__(self, cache: Path, fingerprint: str) -> None:
        self.path = cache / JOURNAL_FILE
        self.fingerprint = fingerprint
        self.done: dict[str, JournalLine] = {}
        if self._matches():
            self.done = {line.key: line for line in self._lines()}
        else:
            reset_cache(cache)
        # Rewritten whole, so a line cut short by a kill never sits before new lines.
        self.path.write_text(json.dumps({"fingerprint": fingerprint}) + "\n", encoding="utf-8")
        self._handle = self.path.open("a", encoding="utf-8")
        for line in list(self.done.values()):
            self._write(line)

    def _matches(self) -> bool:
        try:
            with self.path.open(encoding="utf-8") as handle:
                return json.loads(handle.readline()).get("fingerprint") == self.fingerprint
        except (FileNotFoundError, json.JSONDecodeError, AttributeError):
            return False

    def _lines(self) -> Iterator[JournalLine]:
        with self.path.open(encoding="utf-8") as handle:
            next(handle)
            for raw in handle:
                try:
                    data = json.loads(raw)
                except json.JSONDecodeError:
                    return  # a line cut short when the process died: it and what follows are void
                yield JournalLine(data["key"], data.get("record"), data.get("problem"))

    def resume_point(self) -> tuple[int, tuple[int, int, int]]:
        """(shard, offsets) just past the last journaled clip, where writing continues."""
        records = [line.record for line in self.done.values() if line.record is not None]
        if not records:
            return 0, (0, 0, 0)
        last = max(records, key=lambda r: (r["shard"], r["roi"]))
        return last["shard"], (last["roi"] + last["steps"],
                               last["audio"] + last["steps"] * SAMPLES_PER_STEP,
                               last["tokens"] + last["n_tokens"])

    def _write(self, line: JournalLine) -> None:
        self._handle.write(json.dumps({"key": line.key, "record": line.record,
                                       "problem": line.problem}) + "\n")

    def add(self, line: JournalLine) -> None:
        self._write(line)
        self._handle.flush()
        self.done[line.key] = line

    def close(self) -> None:
        self._handle.close()


def reset_cache(cache: Path) -> None:
    """Remove what a prepare writes (shards, journal, manifest, report), nothing else."""
    from avsync.data.cache import MANIFEST_FILE, REPORT_FILE

    shutil.rmtree(cache / SHARD_DIR, ignore_errors=True)
    for name in (JOURNAL_FILE, MANIFEST_FILE, REPORT_FILE):
        (cache / name).unlink(missing_ok=True)
