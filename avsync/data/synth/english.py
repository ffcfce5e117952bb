"""Open English sentences for the `english` text source: tens of thousands, split by sentence.

Why: LRS2/LRS3 are open-vocabulary English; a corpus whose test sentences also occur in
training text measures memory, not recognition. Sources (Debian packages the install step
adds): every English fortune file of `fortunes` (quotations, jokes, literature; ~14k entries)
and the example sentences of WordNet's glosses (`wordnet-base`). Each sentence is spelled out
as spoken (`avsync.text.spoken`: numbers, money, symbols) and normalised the LRS way; kept
with 3-25 words of letters and apostrophes. Its split comes from a hash of its normalised text
(5 % test, 5 % val, the rest train), so a validation or test sentence never appears in the
training text, nor in a tokenizer or language model trained on the train split, whichever
speaker says it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from avsync.data.synth.espeak import SpokenWord
from avsync.errors import ConfigError, DataError
from avsync.text.spoken import spoken_text

FORTUNE_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")
# fortune files that are pictures, code or other languages, not sentences a person says
SKIPPED_FORTUNES = frozenset({"ascii-art", "translate-me", "perl", "linuxcookie", "debian",
                              "knghtbrd", "zippy"})
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
MIN_WORDS, MAX_WORDS = 3, 25
SPLITS = ("train", "val", "test")
TEST_PERCENT, VAL_PERCENT = 5, 5

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"^[A-Z]+(?:'[A-Z]+)*$")
_QUOTED = re.compile(r'"([^"]{8,300})"')
_PAUSE = re.compile(r"[,;:]$")

Sentence = tuple[SpokenWord, ...]


def sentence_split(text: str) -> str:
    """The split of a normalised sentence: fixed by its text, whatever the source or order."""
    bucket = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) % 100
    return "test" if bucket < TEST_PERCENT else "val" if bucket < TEST_PERCENT + VAL_PERCENT \
        else "train"


def spoken_sentence(raw: str) -> Sentence | None:
    """A written sentence as spoken words (pauses kept for the synthesiser), or None when it
    is not plain English of 3-25 words."""
    words: list[SpokenWord] = []
    for token in raw.split():
        spoken = spoken_text(token).split()
        if not spoken:
            continue
        pause = "," if _PAUSE.search(token.rstrip("\"')")) else ""
        for k, word in enumerate(spoken):
            if not _WORD.match(word):
                return None
            words.append(SpokenWord(word, word.lower() + (pause if k == len(spoken) - 1
                                                          else "")))
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return None
    return tuple(words)


def _fortune_texts(directory: Path) -> Iterator[str]:
    names = sorted(p.name for p in directory.iterdir() if p.is_file() and "." not in p.name)
    for name in names:
        if name in SKIPPED_FORTUNES:
            continue
        text = (directory / name).read_text(encoding="utf-8", errors="replace")
        for entry in text.split("\n%\n"):
            lines = [line.strip() for line in entry.splitlines()
                     if line.strip() and not line.strip().startswith("--")]
            yield from _SENTENCE_END.split(" ".join(lines))


def _wordnet_texts(directory: Path) -> Iterator[str]:
    for name in WORDNET_FILES:
        for line in (directory / name).read_text(encoding="utf-8", errors="replace").splitlines():
            gloss = line.partition("|")[2]
            yield from _QUOTED.findall(gloss)


@dataclass(frozen=True)
class EnglishText:
    """Every kept sentence by split, and how many each source gave."""

    sentences: dict[str, tuple[Sentence, ...]]
    per_source: dict[str, int]

    def texts(self, split: str) -> list[str]:
        return [" ".join(w.word for w in s) for s in self.sentences[split]]

    def oov_rate(self, split: str = "test") -> float:
        """Fraction of `split`'s word tokens not in the training sentences' vocabulary."""
        vocabulary = {w for text in self.texts("train") for w in text.split()}
        tokens = [w for text in self.texts(split) for w in text.split()]
        return sum(w not in vocabulary for w in tokens) / max(len(tokens), 1)


@cache
def english_text(fortunes: str = str(FORTUNE_DIR), wordnet: str = str(WORDNET_DIR)
                 ) -> EnglishText:
    """The whole source (a few seconds to build; cached per process)."""
    for folder, package in ((Path(fortunes), "fortunes"), (Path(wordnet), "wordnet-base")):
        if not folder.is_dir():
            raise DataError(f"{folder} is missing; install the Debian package {package} "
                            "(`make setup` does) or use --text grid")
    seen: dict[str, Sentence] = {}
    per_source: Counter[str] = Counter()
    for source, texts in (("fortunes", _fortune_texts(Path(fortunes))),
                          ("wordnet", _wordnet_texts(Path(wordnet)))):
        for raw in texts:
            sentence = spoken_sentence(raw)
            if sentence is None:
                continue
            key = " ".join(w.word for w in sentence)
            if key not in seen:
                seen[key] = sentence
                per_source[source] += 1
    by_split: dict[str, list[Sentence]] = {s: [] for s in SPLITS}
    for key, sentence in seen.items():
        by_split[sentence_split(key)].append(sentence)
    return EnglishText({k: tuple(v) for k, v in by_split.items()}, dict(per_source))


def english_sentences(split: str) -> Sequence[Sentence]:
    """The sentences of one split ("train", "val" or "test")."""
    if split not in SPLITS:
        raise ConfigError(f"split {split!r}: the english text source has {', '.join(SPLITS)}")
    return english_text().sentences[split]
