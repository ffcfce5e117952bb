"""What went wrong with which input, said once for `index` and `prepare` alike.

Real corpora always hold a few bad files (a truncated download, a missing `.txt`, a clip at
30 fps). They are never a crash: each becomes a `Problem` naming the file and the reason, the
run goes on, and the problems land in a JSON report plus a short human summary.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any


class Reason(StrEnum):
    """Why an input was skipped (or, for `NOTE`, only remarked on)."""

    MISSING_TXT = "missing-txt"
    MISSING_MEDIA = "missing-media"  # a `.txt` (or a split-list line) without its video
    EMPTY_TRANSCRIPT = "empty-transcript"
    UNPARSEABLE_TXT = "unparseable-txt"
    CORRUPT_MEDIA = "corrupt-media"
    NO_VIDEO = "no-video"
    ZERO_LENGTH_AUDIO = "zero-length-audio"
    WRONG_FPS = "wrong-fps"
    LENGTH_MISMATCH = "length-mismatch"
    EMPTY_SEGMENT = "empty-segment"
    NOTE = "note"  # not a skip: something a person should know about the data set


@dataclass(frozen=True)
class Problem:
    """One bad input: `file` relative to the data set root where possible."""

    file: str
    reason: Reason
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {"file": self.file, "reason": str(self.reason), "detail": self.detail}

    @classmethod
    def from_json(cls, data: Mapping[str, str]) -> Problem:
        return cls(data["file"], Reason(data["reason"]), data.get("detail", ""))


def skipped(problems: Iterable[Problem]) -> list[Problem]:
    """The problems that removed an input (every reason but NOTE)."""
    return [p for p in problems if p.reason is not Reason.NOTE]


def reason_counts(problems: Iterable[Problem]) -> dict[str, int]:
    counts = Counter(str(p.reason) for p in problems)
    return dict(sorted(counts.items()))


def summarize(title: str, kept: Mapping[str, int], problems: Sequence[Problem],
              most: int = 20) -> str:
    """A few lines for a person: what was kept per split, what was skipped and why."""
    bad = skipped(problems)
    lines = [f"{title}: kept {sum(kept.values())} clips "
             f"({', '.join(f'{k} {v}' for k, v in kept.items()) or 'none'}), "
             f"skipped {len(bad)}"]
    for reason, count in reason_counts(bad).items():
        lines.append(f"  {reason:<18} {count}")
    for problem in bad[:most]:
        lines.append(f"  - {problem.file}: {problem.reason}"
                     + (f" ({problem.detail})" if problem.detail else ""))
    if len(bad) > most:
        lines.append(f"  ... and {len(bad) - most} more; see the JSON report")
    lines += [f"  note: {p.file}: {p.detail}" for p in problems if p.reason is Reason.NOTE]
    return "\n".join(lines)


def report_dict(kept: Mapping[str, int], problems: Sequence[Problem],
                **extra: Any) -> dict[str, Any]:
    bad = skipped(problems)
    return {"kept": sum(kept.values()), "kept_per_split": dict(kept), "skipped": len(bad),
            "skipped_per_reason": reason_counts(bad),
            "problems": [p.to_json() for p in problems], **extra}


def write_json_atomic(path: str | Path, data: Any, indent: int | None = 1) -> None:
    """Write JSON so a reader never sees half a file: a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.",
                                     suffix=".tmp", delete=False, encoding="utf-8") as handle:
        json.dump(data, handle, indent=indent, ensure_ascii=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


def as_dict(obj: Any) -> dict[str, Any]:
    """A frozen dataclass as plain JSON-able values (Paths as strings)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(obj).items()}
