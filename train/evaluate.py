"""`avsync eval MODEL --cache CACHE`: the numbers a model is judged by.

- ASR: WER and CER for audio-only, video-only and audio-visual input, clean and with babble
  of other test clips at 10, 5, 0 and -5 dB SNR (seeded), decoded with CTC prefix beam search
  and attention-decoder rescoring; the same at each SNR in every other noise kind (white,
  pink, brown, recorded typing), and audio-visually with the wrong lips (another speaker's
  clip: an off-screen voice, a listener, a dub). From the same transcripts: WER of in- and
  out-of-vocabulary words (the train split's words) and per synthesis engine.
- Multi-face scenes (model directories): each scene transcribed as a file with its faces
  found (`avsync transcribe --faces detect`, the server's per-step face choice): AV, audio-
  and video-only WER, and the share of words attributed to the face that said them.
- Sync: offset accuracy (within +-1 frame) on 2 s windows of test clips whose audio is shifted
  by known offsets; SyncNet's estimate over +-15 steps. Positive offset = audio lags video.
- ASD: mAP over all face-frames of the multi-face scenes (`<corpus>/scenes`), as the official
  AVA-ActiveSpeaker script computes it.
Writes eval.md (the table, also printed), eval.json and wer_snr.png.
"""

from __future__ import annotations

import argparse
import logging
import shutil
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
    clip_engines,
    load_clips,
    load_scenes,
    mismatched_lips,
    mixtures,
    noise_mixtures,
    scene_turns,
    speaker_of,
    sync_windows,
    training_vocabulary,
)
from avsync.train.eval_journal import JOURNAL, JournaledBackend
from avsync.train.eval_metrics import (
    attribution_accuracy,
    average_precision,
    error_rates,
    sync_accuracy,
    vocabulary_error_rates,
)
from avsync.train.eval_report import markdown, write_outputs

from avsync.data.cache import PreparedCache
from avsync.errors import ConfigError
from avsync.media.noise import NOISE_KINDS
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
    noises: tuple[str, ...] = NOISE_KINDS
    mismatched: bool = True
    scene_asr: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.noises) - set(NOISE_KINDS)
        if unknown or "babble" not in self.noises:
            raise ConfigError(f"noises {','.join(self.noises)}: choose from "
                              f"{','.join(NOISE_KINDS)}, babble always included")
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


Hypotheses = dict[tuple[str, str], list[str]]  # (modality, condition) -> one per clip


def babble_of(clips: Sequence[EvalClip], config: EvalConfig) -> list[np.ndarray | None]:
    """Each clip's babble (other clips' voices; built once, the costly part of a mixture)."""
    return [babble_for(clips, i, config.seed, config.talkers) for i in range(len(clips))]


def heard(clips: Sequence[EvalClip], babble: Sequence[np.ndarray | None], snr: str,
          config: EvalConfig) -> list[np.ndarray]:
    """Each clip's audio in the condition `snr` names: "clean" or babble at that many dB."""
    return ([c.audio for c in clips] if snr == "clean"
            else mixtures(clips, babble, float(snr), config.seed))


def evaluate_asr(backend: EvalBackend, clips: Sequence[EvalClip], config: EvalConfig,
                 babble: Sequence[np.ndarray | None]
                 ) -> tuple[dict[str, dict[str, Any]], Hypotheses]:
    """({modality: {snr: rates}}, the transcripts). Video-only input hears no audio: it is
    decoded once."""
    refs = [c.text for c in clips]
    video_hyps = backend.transcribe([ClipInput(None, c.rois) for c in clips])
    video = error_rates(refs, video_hyps)
    asr: dict[str, dict[str, Any]] = {"audio": {}, "video": {}, "av": {}}
    hyps: Hypotheses = {}
    for snr in config.snrs:
        audio = heard(clips, babble, snr, config)
        hyps["audio", snr] = backend.transcribe([ClipInput(a, None) for a in audio])
        hyps["av", snr] = backend.transcribe(
            [ClipInput(a, c.rois) for a, c in zip(audio, clips, strict=True)])
        hyps["video", snr] = video_hyps
        asr["audio"][snr] = error_rates(refs, hyps["audio", snr])
        asr["av"][snr] = error_rates(refs, hyps["av", snr])
        asr["video"][snr] = video
        log.info("%s: WER audio %.3f, video %.3f, av %.3f", snr, asr["audio"][snr]["wer"],
                 video["wer"], asr["av"][snr]["wer"])
    return asr, hyps


def evaluate_noises(backend: EvalBackend, clips: Sequence[EvalClip], config: EvalConfig
                    ) -> dict[str, dict[str, dict[str, Any]]]:
    """{kind: {"audio"|"av": {snr: rates}}} for every non-babble noise kind at each SNR."""
    refs = [c.text for c in clips]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for kind in (k for k in config.noises if k != "babble"):
        out[kind] = {"audio": {}, "av": {}}
        for snr in (s for s in config.snrs if s != "clean"):
            audio = noise_mixtures(clips, kind, float(snr), config.seed)
            out[kind]["audio"][snr] = error_rates(refs, backend.transcribe(
                [ClipInput(a, None) for a in audio]))
            out[kind]["av"][snr] = error_rates(refs, backend.transcribe(
                [ClipInput(a, c.rois) for a, c in zip(audio, clips, strict=True)]))
            log.info("%s %s dB: WER audio %.3f, av %.3f", kind, snr,
                     out[kind]["audio"][snr]["wer"], out[kind]["av"][snr]["wer"])
    return out


def evaluate_mismatched(backend: EvalBackend, clips: Sequence[EvalClip], config: EvalConfig,
                        babble: Sequence[np.ndarray | None]) -> dict[str, dict[str, Any]]:
    """{"av": {snr: rates}}: each clip's audio (babble at each SNR) with another speaker's
    lips. Audio-only rows are the main table's: the wrong lips change nothing there."""
    refs = [c.text for c in clips]
    lips = mismatched_lips(clips)
    rows: dict[str, Any] = {}
    for snr in config.snrs:
        audio = heard(clips, babble, snr, config)
        rows[snr] = error_rates(refs, backend.transcribe(
            [ClipInput(a, r) for a, r in zip(audio, lips, strict=True)]))
        log.info("wrong lips %s: WER av %.3f", snr, rows[snr]["wer"])
    return {"av": rows}


def breakdowns(clips: Sequence[EvalClip], hyps: Hypotheses, vocabulary: frozenset[str],
               engines: dict[str, str]) -> dict[str, Any]:
    """The main table's transcripts scored again: in- vs out-of-vocabulary reference words,
    and clips grouped by the engine of their speaker's voice (synthetic corpora)."""
    refs = [c.text for c in clips]
    test_words = [w for r in refs for w in r.split()]
    out: dict[str, Any] = {}
    if vocabulary:
        out["vocabulary"] = {
            "train_words": len(vocabulary),
            "test_oov_rate": (sum(w not in vocabulary for w in test_words)
                              / max(len(test_words), 1))}
        rates: dict[str, dict[str, Any]] = {}
        for (modality, snr), h in hyps.items():
            rates.setdefault(modality, {})[snr] = vocabulary_error_rates(refs, h, vocabulary)
        out["vocabulary"]["rates"] = rates
    groups: dict[str, list[int]] = {}
    for i, clip in enumerate(clips):
        engine = engines.get(speaker_of(clip.id))
        if engine is not None:
            groups.setdefault(engine, []).append(i)
    if groups:
        out["engines"] = {
            engine: {modality: {snr: error_rates([refs[i] for i in chosen],
                                                 [h[i] for i in chosen])
                                for (m, snr), h in hyps.items() if m == modality}
                     for modality in ("audio", "video", "av")}
            for engine, chosen in sorted(groups.items())}
    return out


def evaluate_scene_asr(model_dir: Path, directory: Path, config: EvalConfig,
                       threads: int | None) -> dict[str, Any]:
    """Each multi-face scene transcribed as a file, its faces found and the lips read of the
    face the recogniser chooses step by step: {"av"|"audio"|"video": rates, "attribution"}."""
    from avsync.runtime import load_model
    from avsync.runtime.transcribe import transcribe_file

    model = load_model(model_dir, threads=threads or 1)
    scenes = sorted(directory.glob("*.mp4"))[:config.max_scenes]
    refs: list[str] = []
    hyps: dict[str, list[str]] = {"av": [], "audio": [], "video": []}
    attributed, turns_all = [], []
    for offset, mp4 in enumerate(scenes):
        turns = scene_turns(mp4)
        refs.append(" ".join(t.text for t in turns))
        for modality, (audio, video) in {"av": (True, True), "audio": (True, False),
                                         "video": (False, True)}.items():
            result = transcribe_file(model, mp4, audio=audio, video=video, faces="detect")
            hyps[modality].append(result["text"])
            if modality == "av":  # scenes apart: each scene's tracks are its own
                attributed += [((w["start_ms"] + w["end_ms"]) / 2000 + 1e4 * offset,
                                None if w["face"] is None else w["face"] + 1000 * offset)
                               for segment in result["segments"] for w in segment["words"]]
                turns_all += [(t.start + 1e4 * offset, t.end + 1e4 * offset,
                               t.face + 1000 * offset) for t in turns]
    if not scenes:
        return {"skipped": f"no scene mp4 in {directory}"}
    out: dict[str, Any] = {m: error_rates(refs, h) for m, h in hyps.items()}
    out["attribution"] = attribution_accuracy(attributed, turns_all)
    out["scenes"], out["directory"] = len(scenes), str(directory)
    return out


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


def evaluate(backend: EvalBackend, cache: PreparedCache, config: EvalConfig,
             model_dir: Path | None = None, threads: int | None = None) -> dict[str, Any]:
    """Every measurement of one model -> the result mapping of `eval_report`. model_dir: the
    exported model directory behind an onnx backend (the scenes are transcribed with it)."""
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
    babble = babble_of(clips, config)
    result["asr"], hyps = evaluate_asr(backend, clips, config, babble)
    result["noise"] = evaluate_noises(backend, clips, config)
    result["mismatched"] = (evaluate_mismatched(backend, clips, config, babble)
                            if config.mismatched else {"skipped": "--no-mismatched"})
    result.update(breakdowns(clips, hyps, training_vocabulary(cache), clip_engines(cache)))
    result["sync"] = (evaluate_sync(backend, clips, config) if config.sync
                      else {"skipped": "--no-sync"})
    scenes = scenes_directory(cache, config)
    result["asd"] = (evaluate_asd(backend, scenes, config) if config.asd and scenes
                     else {"skipped": "--no-asd" if not config.asd else "no scenes/ folder"})
    if not config.scene_asr:
        result["scene_asr"] = {"skipped": "--no-scene-asr"}
    elif scenes is None:
        result["scene_asr"] = {"skipped": "no scenes/ folder"}
    elif model_dir is None:
        result["scene_asr"] = {"skipped": "a checkpoint: export it to transcribe scenes"}
    else:
        result["scene_asr"] = evaluate_scene_asr(model_dir, scenes, config, threads)
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
    p.add_argument("--noises", default=",".join(NOISE_KINDS),
                   help="noise kinds measured at each SNR, comma-separated (default "
                        "%(default)s); babble is the main table, the others a table each")
    p.add_argument("--no-mismatched", action="store_true",
                   help="skip the wrong-lips condition (AV with another speaker's lips)")
    p.add_argument("--no-scene-asr", action="store_true",
                   help="skip transcribing the multi-face scenes (model directories)")
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
    p.add_argument("--fresh", action="store_true",
                   help=f"decode every condition again (default: an interrupted or repeated "
                        f"eval reuses the transcripts journaled in OUT/{JOURNAL} for the same "
                        f"model files, inputs and settings)")
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
                        seed=args.seed,
                        noises=tuple(k.strip() for k in args.noises.split(",") if k.strip()),
                        mismatched=not args.no_mismatched, scene_asr=not args.no_scene_asr)
    options: dict[str, Any] = {}
    if args.finals:
        if args.model.is_file():
            raise ConfigError("--finals needs an exported model directory (the runtime's "
                              "recogniser); export the checkpoint first: avsync export CKPT "
                              "--out DIR")
        options["finals"] = True
    backend = open_backend(args.model, threads=args.threads, chunk=_chunk(args.chunk),
                           beam=args.beam, ctc_weight=args.ctc_weight, **options)
    out = args.out or default_out(args.model)
    journal = out / JOURNAL
    if args.fresh and journal.is_dir():
        shutil.rmtree(journal)
    journaled = JournaledBackend(backend, args.model, journal)
    result = evaluate(journaled, PreparedCache(args.cache), config,
                      model_dir=args.model if args.model.is_dir() else None,
                      threads=args.threads)
    if journaled.reused:
        log.info("resumed: %d conditions' transcripts from %s, %d decoded", journaled.reused,
                 journal, journaled.decoded)
    paths = write_outputs(result, out)
    print(markdown(result))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
