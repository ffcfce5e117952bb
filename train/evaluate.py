"""`avsync eval MODEL --cache CACHE`: the numbers a model is judged by.

- ASR: WER and CER for audio-only, video-only and audio-visual input, clean and with babble
  of other test clips at 10, 5, 0 and -5 dB SNR (seeded), decoded with CTC prefix beam search
  and attention-decoder rescoring.
- Sync: offset accuracy (within +-1 frame) on 2 s windows of test clips whose audio is shifted
  by known offsets; SyncNet's estimate over +-15 steps. Positive offset = audio lags video.
- ASD: mAP over all face-frames of the multi-face scenes (`<corpus>/scenes`), as the official
  AVA-ActiveSpeaker script computes it.
Writes eval.md (the table, also printed), eval.json and wer_snr.png.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from avsync.train.eval_backend import EvalBackend, open_backend
from avsync.train.eval_data import (
    EvalClip,
    babble_for,
    load_clips,
    load_scenes,
    mixtures,
    sync_windows,
)
from avsync.train.eval_metrics import average_precision, error_rates, sync_accuracy
from avsync.train.eval_report import markdown, write_outputs

from avsync.data.cache import PreparedCache
from avsync.errors import ConfigError
from avsync.runtime.offline import ClipInput
from avsync.timebase import FPS, SYNC_MAX_SHIFT

log = logging.getLogger(__name__)

SNRS: tuple[str, ...] = ("clean", "10", "5", "0", "-5")
SYNC_OFFSETS: tuple[int, ...] = (-6, -4, -2, 0, 2, 4, 6)  # 2 s windows fit 2.2 s GRID clips


@dataclass(frozen=True)
class EvalConfig:
    """split: cache split to test on; snrs: "clean" or dB values; max_clips: the first N
    clips only; sync_offsets: planted offsets in steps (+ = audio lags video);
    sync_window: steps per window (50 = 2 s); scenes: ASD scene folder (None: the corpus's
    `scenes/` when it exists); talkers: voices in the babble; seed: babble seed."""

    split: str = "test"
    snrs: tuple[str, ...] = SNRS
    max_clips: int | None = None
    sync_offsets: tuple[int, ...] = SYNC_OFFSETS
    sync_window: int = 2 * FPS
    sync: bool = True
    asd: bool = True
    scenes: Path | None = None
    max_scenes: int | None = None
    talkers: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        for snr in self.snrs:
            if snr != "clean":
                try:
                    float(snr)
                except ValueError:
                    raise ConfigError(f"SNR {snr!r} is neither 'clean' nor a number of dB") \
                        from None
        if max(map(abs, self.sync_offsets), default=0) > SYNC_MAX_SHIFT:
            raise ConfigError(f"sync offsets {self.sync_offsets} must lie within "
                              f"+-{SYNC_MAX_SHIFT} steps, the range the estimator searches")


def evaluate_asr(backend: EvalBackend, clips: Sequence[EvalClip], config: EvalConfig
                 ) -> dict[str, dict[str, Any]]:
    """{modality: {snr: rates}}. Video-only input hears no audio: it is decoded once."""
    refs = [c.text for c in clips]
    babble = [babble_for(clips, i, config.seed, config.talkers) for i in range(len(clips))]
    video = error_rates(refs, backend.transcribe([ClipInput(None, c.rois) for c in clips]))
    asr: dict[str, dict[str, Any]] = {"audio": {}, "video": {}, "av": {}}
    for snr in config.snrs:
        audio = ([c.audio for c in clips] if snr == "clean"
                 else mixtures(clips, babble, float(snr), config.seed))
        asr["audio"][snr] = error_rates(refs, backend.transcribe(
            [ClipInput(a, None) for a in audio]))
        asr["av"][snr] = error_rates(refs, backend.transcribe(
            [ClipInput(a, c.rois) for a, c in zip(audio, clips, strict=True)]))
        asr["video"][snr] = video
        log.info("%s: WER audio %.3f, video %.3f, av %.3f", snr, asr["audio"][snr]["wer"],
                 video["wer"], asr["av"][snr]["wer"])
    return asr


def evaluate_sync(backend: EvalBackend, clips: Sequence[EvalClip], config: EvalConfig
                  ) -> dict[str, Any]:
    windows, skipped = sync_windows(clips, config.sync_offsets, config.sync_window)
    if not windows:
        return {"skipped": f"no test clip is {config.sync_window} steps + the offset long"}
    outputs = backend.run([ClipInput(w.audio, w.rois) for w in windows])
    embeddings = []
    for out in outputs:
        assert out.audio_embed is not None and out.visual_embed is not None  # both were given
        embeddings.append((out.audio_embed, out.visual_embed))
    result = sync_accuracy(embeddings, [w.offset for w in windows])
    per_offset = {}
    for offset in config.sync_offsets:
        chosen = [i for i, w in enumerate(windows) if w.offset == offset]
        if chosen:
            per_offset[str(offset)] = sync_accuracy([embeddings[i] for i in chosen],
                                                    [offset] * len(chosen))["accuracy"]
    return {**result, "window_steps": config.sync_window, "offsets": list(config.sync_offsets),
            "did_not_fit": skipped, "accuracy_by_offset": per_offset}


def evaluate_asd(backend: EvalBackend, directory: Path, config: EvalConfig) -> dict[str, Any]:
    scenes = load_scenes(directory, backend.roi_stored, config.max_scenes,
                         backend.roi_convention)
    scores, positive = [], []
    for scene in scenes:
        outputs = backend.run([ClipInput(scene.audio, face.rois) for face in scene.faces])
        for face, out in zip(scene.faces, outputs, strict=True):
            assert out.asd_logits is not None  # both modalities were given
            scores.append(out.asd_logits[np.minimum(face.frames, len(out.asd_logits) - 1)])
            positive.append(face.positive)
    if not scores:
        return {"skipped": f"no labelled scene in {directory}"}
    s, p = np.concatenate(scores), np.concatenate(positive)
    return {"map": average_precision(s, p), "face_frames": int(len(s)),
            "positives": int(p.sum()), "scenes": len(scenes), "directory": str(directory)}


def scenes_directory(cache: PreparedCache, config: EvalConfig) -> Path | None:
    if config.scenes is not None:
        return config.scenes
    root = cache.config.get("source_root")
    candidate = Path(root) / "scenes" if root else None
    return candidate if candidate is not None and candidate.is_dir() else None


def evaluate(backend: EvalBackend, cache: PreparedCache, config: EvalConfig) -> dict[str, Any]:
    """Every measurement of one model -> the result mapping of `eval_report`."""
    if cache.roi_size != backend.roi_stored:
        raise ConfigError(f"{cache.path} stores {cache.roi_size} px ROIs, the model takes "
                          f"{backend.roi_stored} px; prepare a cache with --roi-size "
                          f"{backend.roi_stored}")
    if cache.roi_convention != backend.roi_convention:
        raise ConfigError(f"{cache.path} holds mouth crops cut by {cache.roi_convention!r}, the "
                          f"model was trained on {backend.roi_convention!r} crops; prepare a "
                          f"cache with --roi-convention {backend.roi_convention}")
    started = time.perf_counter()
    clips = load_clips(cache, config.split, config.max_clips)
    result: dict[str, Any] = {"model": backend.describe(), "split": config.split,
                              "cache": str(cache.path), "seed": config.seed,
                              "snrs": list(config.snrs)}
    result["asr"] = evaluate_asr(backend, clips, config)
    result["sync"] = (evaluate_sync(backend, clips, config) if config.sync
                      else {"skipped": "--no-sync"})
    scenes = scenes_directory(cache, config)
    result["asd"] = (evaluate_asd(backend, scenes, config) if config.asd and scenes
                     else {"skipped": "--no-asd" if not config.asd else "no scenes/ folder"})
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


DESCRIPTION = """\
Evaluate a checkpoint (or, through avsync.runtime, an exported model directory) on the test
split of a prepared cache: WER/CER for audio-only, video-only and audio-visual input, clean
and in babble noise; AV sync offset accuracy; active-speaker mAP on multi-face scenes."""

EPILOG = """\
examples:
  avsync eval runs/tiny/checkpoints/best.ckpt --cache data/synth/.avsync/cache
  avsync eval runs/tiny/checkpoints/best.ckpt --cache CACHE --out bench/results/eval-tiny \\
      --snrs=clean,10,5,0,-5 --sync-offsets=-6,-3,0,3,6     # "=": values start with -
  avsync eval runs/debug/checkpoints/last.ckpt --cache CACHE --max-clips 20 --no-asd
  avsync eval runs/tiny/checkpoints/best.ckpt --cache CACHE --chunk full   # whole utterances

outputs: OUT/eval.md (the table), OUT/eval.json, OUT/wer_snr.png; OUT defaults to
<run dir>/eval for a checkpoint in <run dir>/checkpoints/.
sync sign convention: a positive offset means the audio lags the video.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="avsync eval", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="checkpoint (.ckpt) or exported model directory")
    p.add_argument("--cache", type=Path, required=True, help="prepared cache with the split")
    p.add_argument("--out", type=Path, help="output folder (default: <run dir>/eval)")
    p.add_argument("--split", default="test", help="cache split to evaluate (default test)")
    p.add_argument("--snrs", default=",".join(SNRS),
                   help="comma-separated 'clean' and babble SNRs in dB (default %(default)s)")
    p.add_argument("--max-clips", type=int, help="evaluate the first N clips only")
    p.add_argument("--sync-offsets", default=",".join(map(str, SYNC_OFFSETS)),
                   help="planted offsets in steps, + = audio lags video (default %(default)s)")
    p.add_argument("--no-sync", action="store_true", help="skip the sync measurement")
    p.add_argument("--scenes", type=Path, help="ASD scenes folder (default <corpus>/scenes)")
    p.add_argument("--max-scenes", type=int, help="evaluate the first N scenes only")
    p.add_argument("--no-asd", action="store_true", help="skip the ASD measurement")
    p.add_argument("--chunk", default="stream",
                   help="attention chunk: 'stream' (the model's streaming chunk, default), "
                        "'full' (whole utterance) or a number of steps")
    p.add_argument("--finals", action="store_true",
                   help="model directories: transcripts are the streaming recogniser's finals "
                        "(endpointing, then each segment re-read whole: the second pass), what "
                        "a live stream gets; without it each clip is decoded once from its "
                        "--chunk outputs (the first pass alone with the default 'stream')")
    p.add_argument("--beam", type=int, default=8, help="CTC prefix beam width (default 8)")
    p.add_argument("--ctc-weight", type=float, default=0.5,
                   help="CTC share of the rescoring score; 1 = no decoder rescoring")
    p.add_argument("--seed", type=int, default=0, help="babble seed (default 0)")
    p.add_argument("--threads", type=int,
                   help="torch threads for a checkpoint (default: torch's choice), "
                        "onnxruntime threads for a model directory (default 1)")
    return p


def _chunk(text: str) -> int | None | str:
    if text in ("stream", "full"):
        return None if text == "full" else text
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--chunk {text!r}: give 'stream', 'full' or a number of steps") \
            from None


def default_out(model: Path) -> Path:
    if model.is_file() and model.parent.name == "checkpoints":
        return model.parent.parent / "eval"
    return model.parent / f"eval-{model.stem}" if model.is_file() else model / "eval"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        offsets = tuple(int(o) for o in args.sync_offsets.split(",") if o.strip())
    except ValueError:
        raise ConfigError(f"--sync-offsets {args.sync_offsets!r}: give integers") from None
    config = EvalConfig(split=args.split, snrs=tuple(s.strip() for s in args.snrs.split(",")
                                                     if s.strip()),
                        max_clips=args.max_clips, sync_offsets=offsets, sync=not args.no_sync,
                        asd=not args.no_asd, scenes=args.scenes, max_scenes=args.max_scenes,
                        seed=args.seed)
    options: dict[str, Any] = {}
    if args.finals:
        if args.model.is_file():
            raise ConfigError("--finals needs an exported model directory (the runtime's "
                              "recogniser); export the checkpoint first: avsync export CKPT "
                              "--out DIR")
        options["finals"] = True
    backend = open_backend(args.model, threads=args.threads, chunk=_chunk(args.chunk),
                           beam=args.beam, ctc_weight=args.ctc_weight, **options)
    result = evaluate(backend, PreparedCache(args.cache), config)
    paths = write_outputs(result, args.out or default_out(args.model))
    print(markdown(result))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
