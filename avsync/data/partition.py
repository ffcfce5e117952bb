"""Preparing one corpus on many machines: parts K of N, and their merge into one cache.

Why: preparing LRS3 + VoxCeleb2-sized data (thousands of hours; a face detector and landmarks
on every frame) is hundreds of CPU-hours. A cluster runs it with the tools it already has
(a SLURM job array, a Kubernetes Indexed Job): job K runs `avsync data prepare ROOT --shard K/N`,
which prepares its part into `CACHE/part-K-of-N/` (a complete cache of its own, resumable like
any prepare), and `avsync data merge CACHE` joins the parts into `CACHE/manifest.json` whose
shard files are relative symlinks into the parts: nothing is copied.

Assignment: entries go, in manifest order, to the part with the least estimated seconds so
far (ties to the lowest index). It is deterministic, balanced by duration, and an entry's part
depends only on the entries before it, so a manifest that grows by appending keeps every
earlier entry where it was (a re-run of each part then prepares only the new entries).
Duration estimate, without decoding: the segment's length, else the last word's end (LRS3,
LRS2 pretrain, the synthetic corpus), else the file's size at `BYTES_PER_SECOND`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avsync.data.cache import MANIFEST_FILE, REPORT_FILE, SHARD_DIR, SHARD_KINDS, shard_path
from avsync.data.index import Manifest, ManifestEntry
from avsync.data.report import Problem, report_dict, summarize, write_json_atomic
from avsync.errors import ConfigError, DataError

BYTES_PER_SECOND = 40_000  # an LRS-style 224x224 H.264 + AAC clip, for entries without times
_PART_DIR = re.compile(r"^part-(\d+)-of-(\d+)$")


@dataclass(frozen=True)
class Part:
    """Part `index` (0-based, as SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX count) of
    `count`."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ConfigError(f"--shard {self.index}/{self.count}: K must be in 0..N-1 "
                              f"(0-based, like SLURM_ARRAY_TASK_ID)")

    @classmethod
    def parse(cls, text: str) -> Part:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise ConfigError(f"--shard {text!r}: write K/N, e.g. --shard 0/16")
        return cls(int(match[1]), int(match[2]))

    @property
    def dirname(self) -> str:
        return f"part-{self.index}-of-{self.count}"


def estimated_seconds(manifest: Manifest, entry: ManifestEntry) -> float:
    if entry.start is not None and entry.end is not None:
        return max(entry.end - entry.start, 0.0)
    if entry.words:
        return max(w.end for w in entry.words)
    try:
        return manifest.media_path(entry).stat().st_size / BYTES_PER_SECOND
    except OSError:
        return 0.0


def assign(manifest: Manifest, count: int) -> list[int]:
    """The part of every entry, in manifest order (see the module docstring)."""
    loads = [0.0] * count
    parts = []
    for entry in manifest.entries:
        part = min(range(count), key=lambda k: (loads[k], k))
        loads[part] += estimated_seconds(manifest, entry)
        parts.append(part)
    return parts


def source_fingerprint(manifest: Manifest) -> str:
    """Identifies the manifest every part must have been prepared from."""
    digest = hashlib.sha256()
    for entry in manifest.entries:
        digest.update(json.dumps(entry.to_json(), sort_keys=True).encode() + b"\n")
    return digest.hexdigest()


def part_manifest(manifest: Manifest, part: Part) -> tuple[Manifest, list[int]]:
    """(the entries of `part` as a manifest, their indices in the whole manifest). The whole
    manifest's own problems (found while indexing) are reported once, by part 0."""
    indices = [i for i, k in enumerate(assign(manifest, part.count)) if k == part.index]
    entries = tuple(manifest.entries[i] for i in indices)
    problems = manifest.problems if part.index == 0 else ()
    return dataclasses.replace(manifest, entries=entries, problems=problems), indices


def part_config(whole: Manifest, part: Part, own: Manifest) -> dict[str, Any]:
    """What a part's manifest.json records about its place in the whole (`own`: its
    `part_manifest`)."""
    return {"index": part.index, "count": part.count, "assigned": len(own.entries),
            "index_problems": len(own.problems), "entries": len(whole.entries),
            "source": source_fingerprint(whole)}


# ------------------------------------------------------------------------------ merge
@dataclass(frozen=True)
class MergeResult:
    path: Path
    parts: int
    clips: int
    kept: dict[str, int]
    problems: tuple[Problem, ...]
    summary: str


def merge_parts(cache: str | Path, count: int | None = None) -> MergeResult:
    """Join `cache/part-K-of-N/` (K = 0..N-1) into `cache/manifest.json` + `report.json`,
    linking the parts' shard files; DataError naming every missing, unfinished or mismatched
    part, duplicated or missing clip."""
    cache = Path(cache)
    count = count or _detect_count(cache)
    parts = [_read_part(cache, Part(k, count)) for k in range(count)]
    config = _common_config(parts)
    clips = _check_coverage(parts)
    links = _link_shards(cache, parts)
    merged = [{**clip, "shard": links[(k, clip["shard"])]} for k, clip in clips]
    problems = [Problem.from_json(p) for part in parts for p in part["report"]["problems"]]
    kept: dict[str, int] = {}
    for _, clip in clips:
        kept[clip["split"]] = kept.get(clip["split"], 0) + 1
    summary = summarize(f"merged {count} parts into {cache}", kept, problems)
    write_json_atomic(cache / REPORT_FILE, report_dict(
        kept, problems, source_root=config.get("source_root", ""), decoded=0,
        reused=len(merged)))
    write_json_atomic(cache / MANIFEST_FILE, {
        "format": parts[0]["manifest"]["format"], "version": parts[0]["manifest"]["version"],
        "config": {**config, "merged_parts": count}, "clips": merged}, indent=None)
    return MergeResult(cache, count, len(merged), kept, tuple(problems), summary)


def _detect_count(cache: Path) -> int:
    counts = {int(m[2]) for p in cache.glob("part-*-of-*") if (m := _PART_DIR.match(p.name))}
    if not counts:
        raise DataError(f"{cache}: no part-K-of-N folders; prepare them with `avsync data "
                        "prepare ROOT --out CACHE --shard K/N` first")
    if len(counts) > 1:
        raise DataError(f"{cache}: parts of several splits ({sorted(counts)} parts); remove "
                        "the stale ones or pass --shards N")
    return counts.pop()


def _read_part(cache: Path, part: Part) -> dict[str, Any]:
    folder = cache / part.dirname
    if not folder.is_dir():
        raise DataError(f"{folder}: part {part.index}/{part.count} is missing; run `avsync "
                        f"data prepare ROOT --out {cache} --shard {part.index}/{part.count}`")
    if not (folder / MANIFEST_FILE).is_file():
        raise DataError(f"{folder}: part {part.index}/{part.count} is unfinished (no "
                        f"{MANIFEST_FILE}); run its prepare again, it resumes")
    manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    report = json.loads((folder / REPORT_FILE).read_text(encoding="utf-8"))
    recorded = manifest["config"].get("part")
    if recorded is None or (recorded["index"], recorded["count"]) != (part.index, part.count):
        raise DataError(f"{folder}: its manifest says part {recorded}, not "
                        f"{part.index}/{part.count}; it was moved or renamed")
    return {"part": part, "folder": folder, "manifest": manifest, "report": report}


def _common_config(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The configuration every part shares; DataError naming the parts that differ."""
    def shared(p: dict[str, Any]) -> dict[str, Any]:
        config = {k: v for k, v in p["manifest"]["config"].items() if k != "part"}
        return {**config, "source": p["manifest"]["config"]["part"]["source"]}

    first = shared(parts[0])
    for p in parts[1:]:
        other = shared(p)
        wrong = sorted(k for k in first.keys() | other.keys() if first.get(k) != other.get(k))
        if wrong:
            details = ", ".join(f"{k}: {other.get(k)!r} vs {first.get(k)!r}" for k in wrong)
            raise DataError(f"{p['folder']}: part {p['part'].index} does not match part 0 "
                            f"({details}); prepare it again with the same options and manifest")
    return {k: v for k, v in first.items() if k != "source"}


def _check_coverage(parts: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Every clip once, in whole-manifest order; every assigned entry kept or reported."""
    seen: dict[str, int] = {}
    clips: list[tuple[int, dict[str, Any]]] = []
    for k, p in enumerate(parts):
        info = p["manifest"]["config"]["part"]
        own = p["manifest"]["clips"]
        skipped = len(p["report"]["problems"]) - info["index_problems"]
        if len(own) + skipped < info["assigned"]:
            raise DataError(f"{p['folder']}: part {k} holds {len(own)} clips and {skipped} "
                            f"skipped of the {info['assigned']} assigned; run it again")
        for clip in own:
            if clip["id"] in seen:
                raise DataError(f"clip {clip['id']!r} is in part {seen[clip['id']]} and part "
                                f"{k}; the parts come from different manifests")
            seen[clip["id"]] = k
            clips.append((k, clip))
    clips.sort(key=lambda item: item[1]["entry"])
    return clips


def _link_shards(cache: Path, parts: list[dict[str, Any]]) -> dict[tuple[int, int], int]:
    """Relative symlinks cache/shards/<kind>-<g> -> part's shards; -> {(part, shard): g}."""
    folder = cache / SHARD_DIR
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        if not old.is_symlink():
            raise DataError(f"{old}: {cache} already holds a single-machine prepare; merge "
                            "into a folder that holds only the part-K-of-N folders")
        old.unlink()
    mapping: dict[tuple[int, int], int] = {}
    for k, p in enumerate(parts):
        for shard in sorted({c["shard"] for c in p["manifest"]["clips"]}):
            mapping[(k, shard)] = len(mapping)
            for kind, _, _ in SHARD_KINDS:
                target = shard_path(p["folder"], kind, shard)
                os.symlink(os.path.relpath(target, folder), shard_path(cache, kind,
                                                                        mapping[(k, shard)]))
    return mapping
