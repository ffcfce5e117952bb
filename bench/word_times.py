"""How well `avsync transcribe`'s word times line up with the audio.

For the clips of a synthetic corpus (their `.txt` holds espeak-ng's word timings, the truth
the corpus was rendered from), each clip is transcribed as `avsync transcribe` does it
(`transcribe_file`), recognised words are paired with the reference words in order
(difflib over the word strings: only words recognised right are timed), and the start and end
errors (recognised - reference, ms) are summarised: mean, mean absolute, median, max absolute.
Then the same clips joined into one long file (the reference times shifted by each clip's
place in it): the errors of its first and last fifth of clips next to those of the same clips
transcribed alone, so a drift along a long file would show (speakers differ, so the fifths
differ from each other).
Writes bench/results/word_times.json.

    .venv/bin/python bench/word_times.py --corpus data/synth-tiny --clips 120
"""

from __future__ import annotations

import argparse
import difflib
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from record import write_result  # noqa: E402  (bench/record.py)

from avsync.media.decode import decode_media  # noqa: E402
from avsync.media.encode import write_mp4  # noqa: E402
from avsync.runtime import load_model  # noqa: E402
from avsync.runtime.model import Model  # noqa: E402
from avsync.runtime.transcribe import transcribe_file  # noqa: E402

RefWord = tuple[str, float, float]  # text, start s, end s


def reference_words(txt: Path) -> list[RefWord]:
    lines = txt.read_text("utf-8").splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("WORD START END"))
    words = []
    for line in lines[header + 1:]:
        parts = line.split()
        if len(parts) >= 3:
            words.append((parts[0].upper(), float(parts[1]), float(parts[2])))
    return words


def paired_errors(result: dict, reference: list[RefWord]) -> list[tuple[float, float, float]]:
    """[(reference start s, start error ms, end error ms)] of the words recognised right."""
    words = [w for s in result["segments"] for w in s["words"]]
    hyp = [w["text"].upper() for w in words]
    ref = [r[0] for r in reference]
    out = []
    for block in difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            r, w = reference[block.a + k], words[block.b + k]
            out.append((r[1], w["start_ms"] - 1000 * r[1], w["end_ms"] - 1000 * r[2]))
    return out


def summary(errors: list[tuple[float, float, float]], words: int) -> dict:
    starts = [e[1] for e in errors]
    ends = [e[2] for e in errors]
    return {"words_timed": len(errors), "reference_words": words,
            "start_error_ms": _stats(starts), "end_error_ms": _stats(ends)}


def _stats(values: list[float]) -> dict:
    if not values:
        return {}
    return {"mean": round(statistics.fmean(values), 1),
            "mean_abs": round(statistics.fmean(abs(v) for v in values), 1),
            "median": round(statistics.median(values), 1),
            "max_abs": round(max(abs(v) for v in values), 1)}


def clips(corpus: Path, count: int) -> list[Path]:
    ids = [line.split()[0] for line in (corpus / "test.txt").read_text().splitlines()
           if line.strip()]
    return [corpus / "main" / f"{clip}.mp4" for clip in ids[:count]]


def per_clip(model: Model, paths: list[Path], audio: bool, video: bool) -> list[list]:
    """Each clip's paired errors (see paired_errors), transcribed alone."""
    out = []
    for path in paths:
        result = transcribe_file(model, path, audio=audio, video=video, faces="whole")
        out.append(paired_errors(result, reference_words(path.with_suffix(".txt"))))
    return out


def _words(paths: list[Path]) -> int:
    return sum(len(reference_words(p.with_suffix(".txt"))) for p in paths)


def long_file(model: Model, paths: list[Path], alone: list[list], folder: Path) -> dict:
    """The clips joined into one file; errors of its first and last fifth of clips, and of
    the same clips transcribed alone (`alone`: per_clip's audio-visual errors)."""
    frames, audio, reference = [], [], []
    at = 0.0
    for path in paths:
        clip = decode_media(path)
        steps = min(len(clip.frames), len(clip.audio) // 640)
        frames.append(clip.frames[:steps])
        audio.append(clip.audio[:steps * 640])
        reference += [(w, s + at, e + at) for w, s, e in reference_words(path.with_suffix(".txt"))]
        at += steps / 25
    joined = folder / "joined.mp4"
    write_mp4(joined, np.concatenate(frames), np.concatenate(audio))
    result = transcribe_file(model, joined, audio=True, video=True, faces="whole")
    errors = paired_errors(result, reference)
    fifth = max(1, len(paths) // 5)
    first_end = sum(len(reference_words(p.with_suffix(".txt"))) for p in paths[:fifth])
    last_start = len(reference) - _words(paths[-fifth:])
    first_cut, last_cut = reference[first_end - 1][1], reference[last_start][1]
    return {"seconds": round(at, 2), "all": summary(errors, len(reference)),
            "first_fifth": summary([e for e in errors if e[0] <= first_cut], first_end),
            "first_fifth_alone": summary([e for c in alone[:fifth] for e in c], first_end),
            "last_fifth": summary([e for e in errors if e[0] >= last_cut],
                                  len(reference) - last_start),
            "last_fifth_alone": summary([e for c in alone[-fifth:] for e in c],
                                        len(reference) - last_start)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "avsync-tiny-grid")
    parser.add_argument("--corpus", type=Path, default=REPO / "data" / "synth-tiny")
    parser.add_argument("--clips", type=int, default=120)
    parser.add_argument("--no-long", action="store_true", help="skip the joined long file")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "word_times.json")
    args = parser.parse_args(argv)
    model = load_model(args.model, threads=1)
    paths = clips(args.corpus, args.clips)
    words = _words(paths)
    av = per_clip(model, paths, True, True)
    result = {"model": str(args.model.relative_to(REPO) if args.model.is_relative_to(REPO)
                           else args.model),
              "corpus": str(args.corpus), "clips": len(paths), "step_ms": model.card.step_ms,
              "audio_visual": summary([e for c in av for e in c], words),
              "audio_only": summary([e for c in per_clip(model, paths, True, False)
                                     for e in c], words),
              "video_only": summary([e for c in per_clip(model, paths, False, True)
                                     for e in c], words)}
    if not args.no_long:
        with tempfile.TemporaryDirectory() as folder:
            result["long_file"] = long_file(model, paths, av, Path(folder))
    print(json.dumps(write_result(args.out, result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
