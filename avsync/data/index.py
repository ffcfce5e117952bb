"""Index an LRS2, LRS3 or synthetic corpus into a manifest of clips (no decoding).

Layouts (DESIGN.md section 4), detected from the folders present; `layout=` overrides:
- `lrs2`:  `<root>/mvlrs_v1/main|pretrain/<video>/<utt>.mp4` (ROOT may also be `mvlrs_v1`
  itself); split lists `train.txt`, `val.txt`, `test.txt` (test: a second NF/MV column, kept as
  `tag`) and `pretrain.txt`, beside or above `mvlrs_v1`. Ids `<video>/<utt>` for `main`,
  `pretrain/<video>/<utt>` for pretrain (split "pretrain").
- `lrs3`:  `<root>/pretrain|trainval|test/<video>/<utt>.mp4`, split by folder ("pretrain",
  "train" for trainval, "test"; LRS3 has no official validation split). Ids `<folder>/<video>/<utt>`.
- `synth`: our generator's output, LRS2 without the `mvlrs_v1` level: `<root>/main/<spk>/<utt>.mp4`
  and `<root>/train.txt|val.txt|test.txt`. Ids `<spk>/<utt>`.
Every transcript and word is normalised (`normalize_transcript`). A bad input is left out of
the manifest and recorded as a `Problem`, never raised.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from avsync.data.annotations import read_annotation
from avsync.data.report import Problem, Reason, report_dict, write_json_atomic
from avsync.errors import ConfigError, DataError
from avsync.text.normalize import normalize_transcript

MEDIA_SUFFIX = ".mp4"
MANIFEST_DIR = ".avsync"
MANIFEST_NAME = "manifest.jsonl"
SPLIT_ORDER = ("train", "val", "test", "pretrain")
LRS2_LISTS = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}
LRS3_FOLDERS = {"pretrain": "pretrain", "trainval": "train", "test": "test"}


class Layout(StrEnum):
    LRS2 = "lrs2"
    LRS3 = "lrs3"
    SYNTH = "synth"


@dataclass(frozen=True)
class Word:
    """A spoken word; start/end in seconds from the start of its manifest entry."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class ManifestEntry:
    """One clip (or one segment of a long clip) of a corpus.

    media: path of the video relative to the manifest's root, '/'-separated.
    start, end: the segment's window within the source clip in seconds; None for a whole clip.
    words: word timings relative to `start` (or the clip start); empty when the corpus has none
        (LRS2 `main`).
    """

    id: str
    split: str
    media: str
    text: str
    speaker: str
    layout: str
    words: tuple[Word, ...] = ()
    start: float | None = None
    end: float | None = None
    tag: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = {"id": self.id, "split": self.split, "media": self.media, "text": self.text,
                "words": [[w.word, w.start, w.end] for w in self.words],
                "speaker": self.speaker, "layout": self.layout, "start": self.start,
                "end": self.end}
        if self.tag is not None:
            data["tag"] = self.tag
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ManifestEntry:
        return cls(id=data["id"], split=data["split"], media=data["media"], text=data["text"],
                   speaker=data.get("speaker", ""), layout=data.get("layout", ""),
                   words=tuple(Word(str(w), float(s), float(e)) for w, s, e in data["words"]),
                   start=data.get("start"), end=data.get("end"), tag=data.get("tag"))


@dataclass(frozen=True)
class Manifest:
    """The clips of one corpus plus what was wrong with the rest; `root` is absolute."""

    root: Path
    layout: str
    entries: tuple[ManifestEntry, ...]
    problems: tuple[Problem, ...] = ()
    max_seconds: float | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def split(self, name: str) -> list[ManifestEntry]:
        return [e for e in self.entries if e.split == name]

    def split_counts(self) -> dict[str, int]:
        counts = Counter(e.split for e in self.entries)
        return {s: counts[s] for s in sorted(counts, key=_split_rank)}

    def media_path(self, entry: ManifestEntry) -> Path:
        return self.root / entry.media

    def save(self, path: str | Path | None = None) -> Path:
        """Write JSON Lines (one clip a line) and the report beside it; atomic; return the path."""
        path = Path(path) if path is not None else default_manifest_path(self.root)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for entry in self.entries:
                handle.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")
        os.replace(tmp, path)
        write_json_atomic(report_path(path), report_dict(
            self.split_counts(), self.problems, root=str(self.root), layout=self.layout,
            max_seconds=self.max_seconds))
        return path

    @classmethod
    def load(cls, path: str | Path, root: str | Path | None = None) -> Manifest:
        """Read a manifest written by `save`; the root comes from where it lies, else its report."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no manifest there; write one with `avsync data index ROOT`")
        report = _read_report(path)
        if root is None:
            root = (path.parent.parent if path.parent.name == MANIFEST_DIR
                    else report.get("root", path.parent))
        entries = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    entries.append(_entry_from_line(line, path, number))
        problems = tuple(Problem.from_json(p) for p in report.get("problems", []))
        layout = report.get("layout") or (entries[0].layout if entries else "")
        return cls(Path(root).resolve(), layout, tuple(entries), problems,
                   report.get("max_seconds"))


def default_manifest_path(root: str | Path) -> Path:
    return Path(root) / MANIFEST_DIR / MANIFEST_NAME


def report_path(manifest_path: Path) -> Path:
    """`manifest.jsonl` -> `manifest.report.json` (problems, counts, root, layout)."""
    return manifest_path.with_name(manifest_path.name.split(".")[0] + ".report.json")


def _read_report(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(report_path(path).read_text(encoding="utf-8")))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _entry_from_line(line: str, path: Path, number: int) -> ManifestEntry:
    try:
        return ManifestEntry.from_json(json.loads(line))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise DataError(f"{path}:{number}: not a manifest line ({error}); "
                        "re-run `avsync data index`") from None


def _split_rank(split: str) -> tuple[int, str]:
    return (SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), split)


# ---------------------------------------------------------------------------- layouts
@dataclass(frozen=True)
class _Candidate:
    """A clip the layout says should exist, before its annotation is read."""

    id: str
    split: str
    media: Path
    speaker: str
    tag: str | None = None
    listed_in: str | None = None  # the split list naming it, if any


@dataclass
class _Scan:
    root: Path
    candidates: list[_Candidate] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def detect_layout(root: str | Path) -> Layout:
    """Which corpus layout `root` holds; DataError naming what was looked for otherwise."""
    root = Path(root)
    if (root / "mvlrs_v1").is_dir() or (root.name == "mvlrs_v1" and (root / "main").is_dir()):
        return Layout.LRS2
    if (root / "main").is_dir():
        return Layout.LRS2 if (root / "pretrain").is_dir() else Layout.SYNTH
    if any((root / folder).is_dir() for folder in LRS3_FOLDERS):
        return Layout.LRS3
    raise DataError(f"{root}: no corpus found; expected mvlrs_v1/ (LRS2), main/ (synthetic, "
                    f"LRS2 layout) or {'/, '.join(LRS3_FOLDERS)}/ (LRS3); pass --layout to force one")


def _lrs2_dirs(root: Path) -> tuple[Path, list[Path]]:
    """(the folder holding main/ and pretrain/, the folders that may hold split lists)."""
    if (root / "mvlrs_v1").is_dir():
        return root / "mvlrs_v1", [root, root / "mvlrs_v1"]
    return root, [root, root.parent]


def _read_list(path: Path) -> list[tuple[str, str | None]]:
    """`<video>/<utt> [TAG]` lines of a split list -> (id, tag)."""
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split()
        if fields:
            clip = fields[0].removesuffix(MEDIA_SUFFIX).strip("/")
            rows.append((clip, fields[1] if len(fields) > 1 else None))
    return rows


def _find_list(dirs: list[Path], name: str) -> Path | None:
    return next((d / name for d in dirs if (d / name).is_file()), None)


def _walk_media(folder: Path) -> Iterator[Path]:
    """`<folder>/<video>/<utt>.mp4` in sorted order."""
    if folder.is_dir():
        yield from sorted(folder.glob(f"*/*{MEDIA_SUFFIX}"))


def _orphan_annotations(scan: _Scan, folder: Path) -> None:
    """`.txt` files whose video is missing (only for layouts indexed by walking folders)."""
    for txt in sorted(folder.glob("*/*.txt")) if folder.is_dir() else ():
        if not txt.with_suffix(MEDIA_SUFFIX).exists():
            scan.problems.append(Problem(scan.rel(txt), Reason.MISSING_MEDIA,
                                         f"no {MEDIA_SUFFIX} beside this annotation"))


def _scan_listed(scan: _Scan, data: Path, folder: str, lists: list[Path], split_names: dict[str, str],
                 prefix: str = "") -> bool:
    """Candidates from split lists; False when none of the lists exists."""
    found = False
    for split, list_name in split_names.items():
        list_path = _find_list(lists, list_name)
        if list_path is None:
            continue
        found = True
        for clip, tag in _read_list(list_path):
            media = data / folder / f"{clip}{MEDIA_SUFFIX}"
            speaker = clip.split("/")[0]
            scan.candidates.append(_Candidate(prefix + clip, split, media, speaker, tag,
                                              scan.rel(list_path)))
    return found


def _scan_walked(scan: _Scan, folder: Path, split: str, prefix: str = "") -> None:
    for media in _walk_media(folder):
        clip = f"{media.parent.name}/{media.stem}"
        scan.candidates.append(_Candidate(prefix + clip, split, media, media.parent.name))
    _orphan_annotations(scan, folder)


def _scan_lrs2(scan: _Scan, root: Path, synthetic: bool) -> None:
    data, lists = (root, [root]) if synthetic else _lrs2_dirs(root)
    if not _scan_listed(scan, data, "main", lists, LRS2_LISTS):
        scan.problems.append(Problem(scan.rel(root), Reason.NOTE,
                                     "no train/val/test lists found; every main/ clip is 'train'"))
        _scan_walked(scan, data / "main", "train")
    if synthetic:
        return
    if not _scan_listed(scan, data, "pretrain", lists, {"pretrain": "pretrain.txt"}, "pretrain/"):
        _scan_walked(scan, data / "pretrain", "pretrain", "pretrain/")


def _scan_lrs3(scan: _Scan, root: Path) -> None:
    for folder, split in LRS3_FOLDERS.items():
        _scan_walked(scan, root / folder, split, f"{folder}/")


# ---------------------------------------------------------------------------- entries
def _entry(scan: _Scan, candidate: _Candidate, layout: Layout) -> ManifestEntry | None:
    media_rel = scan.rel(candidate.media)
    if not candidate.media.is_file():
        where = f"listed in {candidate.listed_in}" if candidate.listed_in else "expected"
        scan.problems.append(Problem(media_rel, Reason.MISSING_MEDIA, f"{where} but absent"))
        return None
    txt = candidate.media.with_suffix(".txt")
    if not txt.is_file():
        scan.problems.append(Problem(media_rel, Reason.MISSING_TXT, f"no {txt.name} beside it"))
        return None
    try:
        annotation = read_annotation(txt)
    except DataError as error:
        scan.problems.append(Problem(scan.rel(txt), Reason.UNPARSEABLE_TXT, str(error)))
        return None
    text = normalize_transcript(annotation.text)
    if not text:
        scan.problems.append(Problem(scan.rel(txt), Reason.EMPTY_TRANSCRIPT,
                                     f"Text: {annotation.text!r}"))
        return None
    words = tuple(Word(w, t.start, t.end) for t in annotation.words
                  if (w := normalize_transcript(t.word)))
    return ManifestEntry(id=candidate.id, split=candidate.split, media=media_rel, text=text,
                         speaker=candidate.speaker, layout=str(layout), words=words,
                         tag=candidate.tag)


def index_dataset(root: str | Path, layout: str | Layout | None = None,
                  max_seconds: float | None = None) -> Manifest:
    """Index the corpus under `root` into a `Manifest` (nothing is decoded or written).

    `layout`: "lrs2" | "lrs3" | "synth" to override detection. `max_seconds`: cut clips whose
    words run past it into segments of at most that long at word boundaries (`segment.py`).
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; pass the corpus root (the folder holding "
                        "mvlrs_v1/, main/ or pretrain|trainval|test/)")
    try:
        chosen = Layout(layout) if layout is not None else detect_layout(root)
    except ValueError:
        raise ConfigError(f"layout must be one of {[str(x) for x in Layout]}, got {layout!r}") from None
    scan = _Scan(root)
    if chosen is Layout.LRS3:
        _scan_lrs3(scan, root)
    else:
        _scan_lrs2(scan, root, synthetic=chosen is Layout.SYNTH)
    entries = [e for c in scan.candidates if (e := _entry(scan, c, chosen)) is not None]
    entries.sort(key=lambda e: (_split_rank(e.split), e.id))
    manifest = Manifest(root, str(chosen), tuple(_unique(entries, scan)), tuple(scan.problems))
    if max_seconds is not None:
        from avsync.data.segment import segment_manifest

        manifest = segment_manifest(manifest, max_seconds)
    return manifest


def _unique(entries: list[ManifestEntry], scan: _Scan) -> list[ManifestEntry]:
    """Drop a clip listed twice (in two split lists, say), keeping its first split."""
    seen: dict[str, str] = {}
    kept = []
    for entry in entries:
        if entry.id in seen:
            scan.problems.append(Problem(entry.media, Reason.NOTE,
                                         f"listed in {seen[entry.id]} and {entry.split}; kept in "
                                         f"{seen[entry.id]}"))
            continue
        seen[entry.id] = entry.split
        kept.append(entry)
    return kept


def with_entries(manifest: Manifest, entries: list[ManifestEntry],
                 problems: list[Problem] | None = None, **changes: Any) -> Manifest:
    """A copy of `manifest` with other entries (and problems, and fields)."""
    return replace(manifest, entries=tuple(entries),
                   problems=manifest.problems if problems is None else tuple(problems), **changes)
