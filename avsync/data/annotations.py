"""LRS2/LRS3 annotation `.txt` files: one parser and one writer for every layout.

The published forms (DESIGN.md section 4):
- LRS2 `main`:      `Text:  <TEXT>` and `Conf:  <n>`, nothing more.
- LRS2 `pretrain`, LRS3 and our synthetic corpus: then a blank line, a `WORD START END ASDSCORE`
  header and one line per word (times in seconds from the clip start).
- LRS3 may also carry `Ref:  <id>` and a `FRAME X Y W H` table after the words.
The parser is lenient about spacing and extra sections and strict about what it returns, so a
malformed file becomes a `DataError` that names the file and the line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from avsync.errors import DataError


@dataclass(frozen=True)
class WordTiming:
    word: str
    start: float  # seconds from the clip start
    end: float  # seconds from the clip start
    score: float = 1.0  # LRS's ASDSCORE column (speaker-detection confidence)


@dataclass(frozen=True)
class FaceTrackRow:
    frame: int
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Annotation:
    text: str
    conf: float | None = None
    words: tuple[WordTiming, ...] = ()
    ref: str | None = None
    frames: tuple[FaceTrackRow, ...] = field(default=(), repr=False)


def _split_key(line: str) -> tuple[str, str]:
    key, _, value = line.partition(":")
    return key.strip().lower(), value.strip()


def parse_annotation(content: str, source: str = "<string>") -> Annotation:
    """Parse the text of an LRS-style `.txt`; `source` only names the file in errors."""
    text: str | None = None
    conf: float | None = None
    ref: str | None = None
    words: list[WordTiming] = []
    frames: list[FaceTrackRow] = []
    table: str | None = None
    for number, raw in enumerate(content.splitlines(), start=1):
        line = raw.strip()
        if not line:
            table = None if table == "frame" else table
            continue
        header = [f.upper() for f in line.split()]
        if header[:3] == ["WORD", "START", "END"]:
            table = "word"
            continue
        if header[:5] == ["FRAME", "X", "Y", "W", "H"]:  # LRS3 separates these with " \t"
            table = "frame"
            continue
        if table is None or ":" in line.split()[0]:
            key, value = _split_key(line)
            if key == "text":
                text = value
            elif key == "conf":
                conf = _number(value, source, number)
            elif key == "ref":
                ref = value
            table = None
            continue
        fields = line.split()
        if table == "word":
            if len(fields) < 3:
                raise DataError(f"{source}:{number}: word line needs WORD START END, got {raw!r}")
            score = _number(fields[3], source, number) if len(fields) > 3 else 1.0
            words.append(WordTiming(fields[0], _number(fields[1], source, number),
                                    _number(fields[2], source, number), score))
        elif table == "frame":
            if len(fields) < 5:
                raise DataError(f"{source}:{number}: frame line needs FRAME X Y W H, got {raw!r}")
            frames.append(FaceTrackRow(int(_number(fields[0], source, number)),
                                       *(_number(f, source, number) for f in fields[1:5])))
    if text is None:
        raise DataError(f"{source}: no 'Text:' line; an LRS annotation starts with 'Text:  <TEXT>'")
    return Annotation(text=text, conf=conf, words=tuple(words), ref=ref, frames=tuple(frames))


def _number(value: str, source: str, line: int) -> float:
    try:
        return float(value)
    except ValueError:
        raise DataError(f"{source}:{line}: expected a number, got {value!r}") from None


def read_annotation(path: str | Path) -> Annotation:
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise DataError(f"{path}: annotation file is missing") from None
    return parse_annotation(content, source=str(path))


def format_annotation(annotation: Annotation) -> str:
    """The LRS2 pretrain / LRS3 form: text, conf, then the word table when there are words."""
    lines = [f"Text:  {annotation.text}"]
    if annotation.conf is not None:
        lines.append(f"Conf:  {annotation.conf:g}")
    if annotation.ref is not None:
        lines.append(f"Ref:  {annotation.ref}")
    if annotation.words:
        lines += ["", "WORD START END ASDSCORE"]
        lines += [f"{w.word} {w.start:.2f} {w.end:.2f} {w.score:.1f}" for w in annotation.words]
    if annotation.frames:
        lines += ["", "FRAME X Y W H"]
        lines += [f"{f.frame:06d} {f.x:g} {f.y:g} {f.w:g} {f.h:g}" for f in annotation.frames]
    return "\n".join(lines) + "\n"


def write_annotation(path: str | Path, annotation: Annotation) -> None:
    Path(path).write_text(format_annotation(annotation), encoding="utf-8")
