"""`avsync synth`: generate the synthetic LRS2-style corpus (and optional ASD scenes)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from avsync.data.synth.clips import TEXT_SOURCES

DESCRIPTION = """\
Generate a synthetic audio-visual speech corpus in exactly the LRS2 layout: speech from
espeak-ng (8 English accents x 12 voice variants x rate/pitch, one voice per speaker), a
rendered talking face per speaker whose lips follow the phonemes with co-articulation, head
motion, blinks, lighting and sensor noise. Writes main/<speaker>/<utt>.mp4 (H.264 + AAC,
160x160 @ 25 fps, 16 kHz mono) with .txt annotations (word timings exact from espeak's
events), speaker-disjoint train/val/test lists and corpus.json. With --scenes, also 2-3 face
scenes with AVA-ActiveSpeaker labels under scenes/. The same --seed gives the same corpus
whatever --workers is."""

EPILOG = """\
examples:
  avsync synth --out data/synth --speakers 8 --utts-per-speaker 25
  avsync synth --out data/grid --speakers 20 --utts-per-speaker 100 --text grid --workers 2
  avsync synth --out data/tiny --speakers 2 --utts-per-speaker 3 --val-speakers 0 --test-speakers 0
  avsync synth --out data/asd --speakers 4 --utts-per-speaker 5 --scenes 10
  avsync synth --out data/open --speakers 64 --text english --engines espeak,flite,festival \
      --rate-wpm 110-240

text sources:
  grid   GRID-style commands ("BIN BLUE AT F TWO NOW"), a closed 51-word vocabulary
  open   English sentences from the fortunes-min quotations (3-12 words, LRS-normalised)
  mixed  half and half (default)
  english  open English for LRS-like training: ~64k sentences from Debian's fortunes and
         WordNet's examples, numbers spelled out, 3-25 words; each sentence belongs to one
         split (5 % test, 5 % val by a hash of its text), and speakers of a split say only
         that split's sentences, so test sentences are never in the training text
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avsync synth", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output directory (created)")
    parser.add_argument("--speakers", type=int, default=8, help="number of speakers (default 8)")
    parser.add_argument("--utts-per-speaker", type=int, default=25,
                        help="clips per speaker (default 25)")
    parser.add_argument("--text", choices=TEXT_SOURCES, default="mixed",
                        help="text source (default mixed)")
    parser.add_argument("--val-speakers", type=int, default=None,
                        help="speakers held out for val (default max(1, speakers//8); 0 below 3)")
    parser.add_argument("--test-speakers", type=int, default=None,
                        help="speakers held out for test (default as --val-speakers)")
    parser.add_argument("--scenes", type=int, default=0,
                        help="also write this many multi-face ASD scenes (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="worker processes (default min(4, CPUs))")
    parser.add_argument("--engines", default="espeak",
                        help="synthesis engines the speakers take turns with, comma-separated: "
                             "espeak (formant voices), flite (CMU ARCTIC voices built from "
                             "recordings: slt, rms, awb, kal16), festival (the HTS voice "
                             "trained on ARCTIC slt); default espeak")
    parser.add_argument("--rate-wpm", type=_rate, default=None, metavar="SLOW-FAST",
                        help="speaking rates in words a minute (default 140-195; natural "
                             "speech spans about 110-240)")
    parser.add_argument("--appearance", choices=("standard", "varied"), default="standard",
                        help="standard: frontal, centred faces in soft light (default); varied: "
                             "any lip tint, thickness, width and articulation strength, a "
                             "habitual head pose (yaw +-28, pitch and roll +-12 degrees), place "
                             "and size in the frame, harsh side light, cast shadows and colour "
                             "casts: what held-out real speakers differ by")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _rate(text: str) -> tuple[int, int]:
    try:
        slow, fast = (int(x) for x in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write SLOW-FAST, e.g. 110-240") from None
    return slow, fast


def main(argv: list[str]) -> int:
    from avsync.data.synth.corpus import SynthConfig, generate_corpus

    args = build_parser().parse_args(argv)
    config = SynthConfig(out=args.out, speakers=args.speakers,
                         utts_per_speaker=args.utts_per_speaker, text=args.text,
                         val_speakers=args.val_speakers, test_speakers=args.test_speakers,
                         seed=args.seed, workers=args.workers, scenes=args.scenes,
                         engines=tuple(e.strip() for e in args.engines.split(",") if e.strip()),
                         appearance=args.appearance,
                         **({"rate_wpm": args.rate_wpm} if args.rate_wpm else {}))
    summary = generate_corpus(config, progress=not args.quiet)
    print(f"avsync synth: {summary.line()}")
    return 0
