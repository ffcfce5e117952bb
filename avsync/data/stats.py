"""How big a corpus or cache is: clips, hours, speakers, vocabulary, durations (as text)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from avsync.data.cache import PreparedCache
from avsync.data.index import Manifest
from avsync.errors import MediaError
from avsync.timebase import steps_to_seconds

HISTOGRAM_EDGES = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 20.0, 30.0, float("inf"))
BAR_WIDTH = 40


@dataclass(frozen=True)
class ClipFacts:
    split: str
    speaker: str
    seconds: float | None  # None when unknown (not decoded, no header duration)
    text: str


@dataclass(frozen=True)
class SplitStats:
    clips: int
    hours: float
    speakers: int
    untimed: int  # clips whose duration is unknown


def split_stats(facts: Iterable[ClipFacts]) -> dict[str, SplitStats]:
    """Per split plus 'all'."""
    groups: dict[str, list[ClipFacts]] = defaultdict(list)
    for fact in facts:
        groups[fact.split].append(fact)
        groups["all"].append(fact)
    return {name: SplitStats(len(items), sum(f.seconds or 0.0 for f in items) / 3600,
                             len({f.speaker for f in items}),
                             sum(f.seconds is None for f in items))
            for name, items in groups.items()}


def histogram(seconds: Iterable[float]) -> list[tuple[str, int]]:
    """Clip counts per duration bin, labelled like '2-3 s'."""
    values = list(seconds)
    rows = []
    for lo, hi in zip(HISTOGRAM_EDGES[:-1], HISTOGRAM_EDGES[1:], strict=True):
        label = f"{lo:g}-{hi:g} s" if hi != float("inf") else f">= {lo:g} s"
        rows.append((label, sum(lo <= v < hi for v in values)))
    return rows


def format_stats(title: str, facts: list[ClipFacts]) -> str:
    """A text report: a table per split, vocabulary size and a duration histogram."""
    stats = split_stats(facts)
    vocabulary = {w for f in facts for w in f.text.split()}
    lines = [title, f"{'split':<10} {'clips':>8} {'hours':>9} {'mean s':>7} {'speakers':>9}"]
    for name, s in sorted(stats.items(), key=lambda kv: kv[0] == "all"):
        timed = s.clips - s.untimed
        mean = f"{s.hours * 3600 / timed:>7.2f}" if timed else f"{'-':>7}"
        untimed = f"  ({s.untimed} without a known duration)" if s.untimed else ""
        lines.append(f"{name:<10} {s.clips:>8} {s.hours:>9.3f} {mean} {s.speakers:>9}{untimed}")
    lines.append(f"vocabulary: {len(vocabulary)} distinct words, "
                 f"{sum(len(f.text.split()) for f in facts)} running words")
    rows = histogram(f.seconds for f in facts if f.seconds is not None)
    peak = max((count for _, count in rows), default=0) or 1
    lines.append("clip durations:")
    lines += [f"  {label:>9} {count:>7} {'#' * round(BAR_WIDTH * count / peak)}".rstrip()
              for label, count in rows]
    return "\n".join(lines)


def cache_facts(cache: PreparedCache) -> list[ClipFacts]:
    """Exact durations: the steps each clip holds."""
    return [ClipFacts(r["split"], r["speaker"], steps_to_seconds(r["steps"]), r["text"])
            for r in (cache.record(i) for i in range(len(cache)))]


def manifest_facts(manifest: Manifest, progress: bool = False) -> list[ClipFacts]:
    """Durations from segment windows, else from each file's header (no decoding)."""
    from tqdm import tqdm

    from avsync.media.decode import probe_media

    facts = []
    for entry in tqdm(manifest.entries, desc="probe", unit="clip", disable=not progress):
        seconds: float | None
        if entry.start is not None and entry.end is not None:
            seconds = entry.end - entry.start
        else:
            try:
                seconds = probe_media(manifest.media_path(entry)).duration or None
            except MediaError:
                seconds = None
        facts.append(ClipFacts(entry.split, entry.speaker, seconds, entry.text))
    return facts
