"""`avsync data`: index a corpus, prepare a training cache, show statistics, train a tokenizer."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from avsync.data.index import Layout, Manifest, default_manifest_path, index_dataset
from avsync.errors import ConfigError

DESCRIPTION = """\
From a corpus on disk to what training reads. A corpus is LRS2 as published
(mvlrs_v1/main|pretrain + train/val/test/pretrain lists), LRS3 (pretrain|trainval|test)
or our synthetic corpus (`avsync synth`, LRS2 layout without mvlrs_v1).
Bad inputs (truncated mp4, missing .txt, empty transcript, wrong fps, ...) are skipped,
listed in a report and never stop a run."""

EPILOG = """\
typical use:
  avsync synth --out data/synth --speakers 8 --utts-per-speaker 25
  avsync data index data/synth               # -> data/synth/.avsync/manifest.jsonl
  avsync data tokenizer data/synth --vocab-size 256 --out data/synth/.avsync/tok
  avsync data prepare data/synth --roi-size 40 --tokenizer data/synth/.avsync/tok.model
  avsync data stats data/synth/.avsync/cache

real corpora:
  avsync data index /corpora/lrs2 --max-seconds 16     # cut long pretrain clips
  avsync data prepare /corpora/lrs2 --out /fast/lrs2-cache --workers 8
  avsync data index /corpora/lrs3 --layout lrs3

many machines (a SLURM array or Kubernetes Indexed Job runs part K of N; docs/training.md):
  avsync data prepare /corpora/lrs3 --out /shared/lrs3-cache --shard $SLURM_ARRAY_TASK_ID/64
  avsync data merge /shared/lrs3-cache       # checks all 64 parts, links them into one cache

run `avsync data <command> --help` for each command's options."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Wraps one-paragraph descriptions, keeps the hand-laid-out examples of epilogs."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return super()._fill_text(text, width, indent)
        return textwrap.fill(text, min(width, 88), initial_indent=indent,
                             subsequent_indent=indent)


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layout", choices=[str(x) for x in Layout],
                        help="force a layout instead of detecting it from the folders")
    parser.add_argument("--max-seconds", type=_positive_float, metavar="S",
                        help="cut clips whose words run past S seconds into segments at word "
                             "boundaries (LRS pretrain); default: keep clips whole")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avsync data", description=DESCRIPTION,
                                     epilog=EPILOG, formatter_class=_Formatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _index_parser(commands)
    _prepare_parser(commands)
    _merge_parser(commands)
    _stats_parser(commands)
    _tokenizer_parser(commands)
    _lm_parser(commands)
    _audit_parser(commands)
    return parser


def _index_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "index", formatter_class=_Formatter, help="index a corpus into a manifest (JSON Lines)",
        description="Read every clip's annotation (no decoding) into a manifest: id, split, "
                    "media path, normalised text, word timings, speaker. Problems go to "
                    "<manifest>.report.json and a summary on stdout.",
        epilog="examples:\n  avsync data index data/synth\n"
               "  avsync data index /corpora/lrs2 --max-seconds 16\n"
               "  avsync data index /corpora/lrs3 --out lrs3.jsonl --layout lrs3")
    p.add_argument("root", type=Path, help="corpus root (holding mvlrs_v1/, main/ or "
                                           "pretrain|trainval|test/)")
    p.add_argument("--out", type=Path, help="manifest path (default ROOT/.avsync/manifest.jsonl)")
    _add_source_options(p)


def _prepare_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "prepare", formatter_class=_Formatter, help="decode and crop once into a training cache",
        description="Decode every clip once (worker processes), crop the mouth ROI with the "
                    "fixed LRS convention, store int16 16 kHz audio, tokens and word times as "
                    "memmap-able shards plus manifest.json and report.json. Re-running resumes "
                    "an interrupted prepare and returns at once when all is done. ROOT may be "
                    "a corpus (its .avsync/manifest.jsonl is used when present, else it is "
                    "indexed now) or a manifest file.",
        epilog="examples:\n  avsync data prepare data/synth --roi-size 40\n"
               "  avsync data prepare /corpora/lrs2 --out /fast/lrs2-cache --workers 8 \\\n"
               "      --tokenizer lrs2-tok.model")
    p.add_argument("root", type=Path, help="corpus root or manifest .jsonl")
    p.add_argument("--out", type=Path, help="cache folder (default ROOT/.avsync/cache)")
    p.add_argument("--roi-size", type=_positive_int, default=96, metavar="N",
                   help="stored mouth-ROI side in pixels (default 96; the CPU model uses 40)")
    p.add_argument("--roi-convention", choices=("face-box", "mean-face"), default="face-box",
                   help="how mouths are cut: face-box (the fixed crop of the face-centred "
                        "frame, what the bundled model was trained on) or mean-face "
                        "(landmarks mapped onto a mean face, auto_avsr's way; default "
                        "face-box). The cache records it; training checks it against the "
                        "model's visual_frontend.roi_convention")
    p.add_argument("--workers", type=_positive_int, default=min(4, os.cpu_count() or 1),
                   metavar="N", help="decoding processes (default min(4, CPUs))")
    p.add_argument("--tokenizer", type=Path, metavar="MODEL",
                   help="sentencepiece .model whose ids to store (default: none; the Dataset "
                        "then tokenises at load time)")
    p.add_argument("--shard", type=_part, metavar="K/N",
                   help="prepare only part K of N (0-based) into OUT/part-K-of-N: parts are "
                        "balanced by duration and stable when the manifest grows by "
                        "appending; join them with `avsync data merge OUT`")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_source_options(p)


def _part(text: str):
    from avsync.data.partition import Part

    try:
        return Part.parse(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _merge_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "merge", formatter_class=_Formatter,
        help="join the parts of `prepare --shard` into one cache",
        description="Check that every part CACHE/part-K-of-N (K = 0..N-1) is complete and was "
                    "prepared from the same manifest with the same ROI size, tokenizer and "
                    "checks, that no clip is in two parts and none is missing, then write "
                    "CACHE/manifest.json and report.json in manifest order. The arrays are "
                    "not copied: CACHE/shards holds relative symlinks into the parts, so "
                    "`avsync train fit --data.cache CACHE` reads it as a single-machine cache.",
        epilog="example:\n  avsync data merge /shared/lrs3-cache")
    p.add_argument("cache", type=Path, help="the --out of the parts' prepare")
    p.add_argument("--shards", type=_positive_int, metavar="N",
                   help="how many parts to expect (default: from the part-K-of-N folders)")


def _stats_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "stats", formatter_class=_Formatter, help="clips, hours, speakers, vocabulary, durations",
        description="Print clips, hours and speakers per split, the vocabulary size and a "
                    "duration histogram, for a prepared cache (exact) or a corpus/manifest "
                    "(durations from file headers, nothing decoded).",
        epilog="examples:\n  avsync data stats data/synth/.avsync/cache\n"
               "  avsync data stats data/synth\n  avsync data stats lrs3.jsonl")
    p.add_argument("path", type=Path, help="cache folder, corpus root or manifest .jsonl")


def _tokenizer_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "tokenizer", formatter_class=_Formatter, help="train a sentencepiece tokenizer",
        description="Train a sentencepiece model on the transcripts of the chosen splits, with "
                    "avsync's fixed ids (blank/pad 0, unk 1, bos 2, eos 3). A closed "
                    "vocabulary that cannot fill --vocab-size is capped, with a warning.",
        epilog="examples:\n  avsync data tokenizer data/synth --vocab-size 256 --out tok\n"
               "  avsync data tokenizer /corpora/lrs3 --vocab-size 5000 --splits train,pretrain"
               " --out lrs3-unigram5000")
    p.add_argument("root", type=Path, help="corpus root or manifest .jsonl")
    p.add_argument("--vocab-size", type=_positive_int, required=True, metavar="N")
    p.add_argument("--out", type=Path, required=True, metavar="PREFIX",
                   help="writes PREFIX.model and PREFIX.vocab")
    p.add_argument("--model-type", default="unigram", choices=("unigram", "bpe", "char", "word"))
    p.add_argument("--splits", default="train,pretrain",
                   help="comma-separated splits whose transcripts train it (default "
                        "train,pretrain: never the test set)")
    _add_source_options(p)


# ------------------------------------------------------------------------- commands
def load_manifest(path: Path, layout: str | None = None,
                  max_seconds: float | None = None) -> Manifest:
    """A manifest file, a corpus's saved manifest, or a fresh index of the corpus."""
    if path.is_file():
        return Manifest.load(path)
    saved = default_manifest_path(path)
    if saved.is_file() and layout is None and max_seconds is None:
        print(f"using {saved} (re-run `avsync data index` after changing the corpus)",
              file=sys.stderr)
        return Manifest.load(saved)
    return index_dataset(path, layout=layout, max_seconds=max_seconds)


def _index(args: argparse.Namespace) -> int:
    from avsync.data.report import summarize

    manifest = index_dataset(args.root, layout=args.layout, max_seconds=args.max_seconds)
    path = manifest.save(args.out)
    print(summarize(f"indexed {manifest.root} ({manifest.layout})", manifest.split_counts(),
                    manifest.problems))
    print(f"wrote {path}")
    return 0 if len(manifest) else 1


def _prepare(args: argparse.Namespace) -> int:
    from avsync.data.prepare import PrepareConfig, prepare_cache
    from avsync.text.tokenizer import Tokenizer

    manifest = load_manifest(args.root, args.layout, args.max_seconds)
    out = args.out or manifest.root / ".avsync" / "cache"
    tokenizer = Tokenizer.load(args.tokenizer) if args.tokenizer else None
    config = PrepareConfig(roi_size=args.roi_size, workers=args.workers,
                           roi_convention=args.roi_convention)
    result = prepare_cache(manifest, out, config, tokenizer=tokenizer,
                           progress=not args.no_progress, part=args.shard)
    print(result.summary)
    print(f"decoded {result.decoded}, reused {result.reused} in {result.seconds:.1f} s; "
          f"wrote {result.path} (report: {result.path / 'report.json'})")
    return 0 if result.kept else 1


def _merge(args: argparse.Namespace) -> int:
    from avsync.data.partition import merge_parts

    result = merge_parts(args.cache, args.shards)
    print(result.summary)
    return 0


def _stats(args: argparse.Namespace) -> int:
    from avsync.data.cache import MANIFEST_FILE, SHARD_DIR, PreparedCache
    from avsync.data.stats import cache_facts, format_stats, manifest_facts

    path = args.path
    if path.is_dir() and ((path / MANIFEST_FILE).is_file() or (path / SHARD_DIR).is_dir()):
        print(format_stats(f"prepared cache {path}", cache_facts(PreparedCache(path))))
        return 0
    manifest = load_manifest(path)
    facts = manifest_facts(manifest, progress=sys.stderr.isatty())
    print(format_stats(f"corpus {manifest.root} ({manifest.layout})", facts))
    return 0


def _split_texts(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(the transcripts of the splits `--splits` names, those splits); ConfigError if none."""
    manifest = load_manifest(args.root, args.layout, args.max_seconds)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    texts = [e.text for e in manifest.entries if e.split in splits]
    if not texts:
        raise ConfigError(f"no transcripts in splits {splits} of {manifest.root}; the corpus "
                          f"has {manifest.split_counts()}; choose others with --splits")
    return texts, splits


def _tokenizer(args: argparse.Namespace) -> int:
    from avsync.text.tokenizer import Tokenizer

    texts, splits = _split_texts(args)
    tokenizer = Tokenizer.train(texts, args.vocab_size, args.model_type, args.out)
    print(f"trained on {len(texts)} transcripts ({', '.join(splits)}): vocab_size "
          f"{tokenizer.vocab_size}, sha256 {tokenizer.sha256[:12]}; wrote {tokenizer.source}")
    return 0


def _lm_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "lm", formatter_class=_Formatter, help="build a word n-gram language model (ARPA)",
        description="Count the words of the given splits' transcripts (the training text "
                    "only, so held-out sentences never reach it) into an n-gram model with "
                    "interpolated absolute discounting, written as ARPA (gzipped for .gz). "
                    "Ship it with `avsync export --add-lm MODEL --lm FILE`.",
        epilog="example:\n  avsync data lm data/open --order 3 --out data/open/.avsync/lm.arpa.gz")
    p.add_argument("root", type=Path, help="corpus root or manifest .jsonl")
    p.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="ARPA file to write (.arpa or .arpa.gz)")
    p.add_argument("--order", type=_positive_int, default=3, help="n-gram order (3)")
    p.add_argument("--min-count", type=_positive_int, default=1,
                   help="drop highest-order n-grams seen fewer times (1: keep all)")
    p.add_argument("--splits", default="train,pretrain",
                   help="comma-separated splits whose transcripts are counted")
    p.add_argument("--add-text", action="append", default=[], metavar="SOURCE",
                   help="more training text: a file of sentences, one a line (normalised the "
                        "LRS way here: upper case, numbers spelled out), or 'english', the training sentences of the synthetic "
                        "corpus's english source (`avsync synth --text english`; its "
                        "validation and test sentences are never among them); repeatable")
    _add_source_options(p)


def _lm(args: argparse.Namespace) -> int:
    from avsync.text.ngram import build_arpa, write_arpa

    texts, splits = _split_texts(args)
    extra = [t for source in args.add_text for t in _training_text(source)]
    model = build_arpa(texts + extra, args.order, args.min_count)
    write_arpa(model, args.out)
    sizes = ", ".join(f"{len(model[n])} {n}-grams" for n in sorted(model))
    added = f" and {len(extra)} sentences of {', '.join(args.add_text)}" if extra else ""
    print(f"built a {args.order}-gram model of {len(texts)} transcripts ({', '.join(splits)})"
          f"{added}: {sizes}; wrote {args.out}")
    return 0


def _training_text(source: str) -> list[str]:
    """The sentences of `--add-text SOURCE` (see its help), normalised."""
    from avsync.text.normalize import normalize_transcript
    from avsync.text.spoken import spoken_text

    if source == "english":
        from avsync.data.synth.english import english_text

        return english_text().texts("train")
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"--add-text {source}: no such file; give a text file of sentences, "
                          "one a line, or 'english'")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [t for t in (normalize_transcript(spoken_text(line)) for line in lines) if t]


# ------------------------------------------------------------------------- audit
# The corpus side of the audit (avsync.data.audit); measuring is the runtime's.
def _audit_parser(commands: argparse._SubParsersAction) -> None:
    from avsync.data.audit import add_parser

    add_parser(commands, _Formatter)


def _audit(args: argparse.Namespace) -> int:
    from avsync.data.audit import options_from_args, print_report, run_audit

    return print_report(run_audit(options_from_args(args), load_manifest(args.root)))


HANDLERS = {"index": _index, "prepare": _prepare, "merge": _merge, "stats": _stats,
            "tokenizer": _tokenizer, "lm": _lm, "audit": _audit}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return HANDLERS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
