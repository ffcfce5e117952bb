"""Cut long clips (LRS pretrain, minutes of a talk) into bounded segments at word boundaries.

A segment runs exactly from its first word's start to its last word's end, so its transcript
is exactly the words it holds; word timings make the cut exact, no alignment is guessed.
Only clips with word timings whose words end after `max_seconds` are cut; a single word
longer than `max_seconds` becomes a segment of its own.
"""

from __future__ import annotations

from avsync.data.index import Manifest, ManifestEntry, Word, with_entries
from avsync.errors import ConfigError

SEGMENT_SEPARATOR = "#"  # segment k of clip "spk/utt" is "spk/utt#003"
_TIME_DECIMALS = 6  # times are subtracted; round away float noise (LRS files hold 2 decimals)


def group_words(words: tuple[Word, ...], max_seconds: float) -> list[tuple[Word, ...]]:
    """Greedy runs of consecutive words, each spanning at most `max_seconds` (first start to
    last end), except a lone word that is longer by itself."""
    groups: list[tuple[Word, ...]] = []
    current: list[Word] = []
    for word in words:
        if current and word.end - current[0].start > max_seconds:
            groups.append(tuple(current))
            current = []
        current.append(word)
    if current:
        groups.append(tuple(current))
    return groups


def segment_entry(entry: ManifestEntry, max_seconds: float) -> list[ManifestEntry]:
    """The entry itself when it is short enough (or has no word timings), else its segments.

    Segment words are relative to the segment start; `start`/`end` locate the segment in the
    source clip (seconds).
    """
    if max_seconds <= 0:
        raise ConfigError(f"max_seconds must be positive, got {max_seconds}")
    if not entry.words or entry.words[-1].end <= max_seconds:
        return [entry]
    base = entry.start or 0.0
    segments = []
    for k, group in enumerate(group_words(entry.words, max_seconds)):
        start, end = group[0].start, group[-1].end
        words = tuple(Word(w.word, round(w.start - start, _TIME_DECIMALS),
                           round(w.end - start, _TIME_DECIMALS)) for w in group)
        segments.append(ManifestEntry(
            id=f"{entry.id}{SEGMENT_SEPARATOR}{k:03d}", split=entry.split, media=entry.media,
            text=" ".join(w.word for w in group), speaker=entry.speaker, layout=entry.layout,
            words=words, start=round(base + start, _TIME_DECIMALS),
            end=round(base + end, _TIME_DECIMALS), tag=entry.tag))
    return segments


def segment_manifest(manifest: Manifest, max_seconds: float) -> Manifest:
    """Every entry of `manifest` through `segment_entry`, order kept."""
    entries = [s for e in manifest.entries for s in segment_entry(e, max_seconds)]
    return with_entries(manifest, entries, max_seconds=max_seconds)
