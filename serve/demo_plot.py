"""The demo's timeline picture: what a person would rather look at than read.

Four rows on one time axis: the audio with the reference turns shaded by face, each face's
speaking probability as the server reported it, the recognised words where the server timed
them (reference words above for comparison), and the sync estimates (offset and confidence).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avsync.timebase import SAMPLE_RATE

if TYPE_CHECKING:
    from avsync.serve.demo import Reference, Transcript

COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red")


def plot_timeline(out: Path, audio: np.ndarray, reference: Reference, transcript: Transcript,
                  face_of: Callable[[tuple[float, float, float, float]], int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = len(audio) / SAMPLE_RATE
    fig, axes = plt.subplots(4, 1, figsize=(12, 8), sharex=True,
                             gridspec_kw={"height_ratios": [1.2, 1.2, 1.0, 1.0]})
    wave, speaking, words, sync = axes

    step = max(len(audio) // 4000, 1)
    t = np.arange(0, len(audio), step) / SAMPLE_RATE
    wave.plot(t, audio[::step], lw=0.5, color="0.3")
    for turn in reference.turns:
        wave.axvspan(turn.start, turn.end, color=COLOURS[turn.face % 4], alpha=0.2)
    wave.set_ylabel("audio")
    wave.set_title("avsync demo: shaded = who speaks (reference), by face colour")

    for face in range(len(reference.faces)):
        points = [(m.time_ms / 1000, track.speaking) for m in transcript.speakers
                  for track in m.tracks if face_of(track.box) == face]
        if points:
            x, y = zip(*points, strict=True)
            speaking.plot(x, y, color=COLOURS[face % 4], label=f"face {face + 1}")
    speaking.axhline(0.5, color="0.6", lw=0.6, ls="--")
    speaking.set_ylim(-0.05, 1.05)
    speaking.set_ylabel("P(speaking)")
    speaking.legend(loc="upper right", fontsize=8)

    for turn in reference.turns:
        for said, start, end in turn.words:
            words.barh(0.75, end - start, left=start, height=0.3, color=COLOURS[turn.face % 4],
                       alpha=0.25)
            words.text((start + end) / 2, 0.75, said[:10].lower(), ha="center", va="center",
                       fontsize=6, rotation=90, clip_on=True)
    for final in transcript.finals:
        for word in final.words:
            start, end = word.start_ms / 1000, word.end_ms / 1000
            words.barh(0.3, end - start, left=start, height=0.3, color="tab:purple",
                       alpha=0.15 + 0.6 * word.confidence)
            words.text((start + end) / 2, 0.3, word.text[:10], ha="center", va="center",
                       fontsize=6, rotation=90, clip_on=True)
    words.set_ylim(0, 1)
    words.set_yticks([0.3, 0.75], ["recognised", "reference"])

    if transcript.syncs:
        times = [s.time_ms / 1000 for s in transcript.syncs]
        sync.plot(times, [s.offset_ms for s in transcript.syncs], "o-", color="tab:red", ms=3)
        sync.axhline(0, color="0.6", lw=0.6, ls="--")
        sync.set_ylabel("offset ms\n(+ audio lags)", color="tab:red")
        confidence = sync.twinx()
        confidence.plot(times, [s.confidence for s in transcript.syncs], "s-", color="tab:gray",
                        ms=3)
        confidence.set_ylabel("sync confidence")
    sync.set_xlabel("stream time (s)")
    sync.set_xlim(0, seconds)
    fig.subplots_adjust(left=0.1, right=0.92, top=0.95, bottom=0.07, hspace=0.12)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
