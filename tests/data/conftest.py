"""Tiny LRS2 / LRS3 fixture trees (index tests need no real video: the index never decodes)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from avsync.data.index import index_dataset
from avsync.data.prepare import PrepareConfig, prepare_cache
from avsync.media.encode import write_mp4
from avsync.text import Tokenizer
from avsync.timebase import SAMPLE_RATE, SAMPLES_PER_STEP

LRS2_MAIN_TXT = "Text:  {text}\nConf:  3\n"
WORD_TABLE = "\nWORD START END ASDSCORE\n{rows}"
# An LRS3 file as published: meta lines, a " \t"-separated FRAME table, then the word table.
LRS3_TXT = ("Text:  {text}\nConf:  4\nRef:   00j9bKdiOjk\n\nFRAME \tX \tY \tW \tH \n"
            "000025 \t0.422 \t0.167 \t0.203 \t0.334 \n000026 \t0.423 \t0.168 \t0.203 \t0.334 \n")


def word_rows(words: list[tuple[str, float, float]]) -> str:
    return "".join(f"{w} {s:.2f} {e:.2f} 5.0\n" for w, s, e in words)


def timed(text: str, start: float = 0.1, step: float = 0.5) -> list[tuple[str, float, float]]:
    """Words of `text`, each `step` long with a 0.05 s gap, from `start` seconds."""
    return [(w, round(start + i * step, 2), round(start + (i + 1) * step - 0.05, 2))
            for i, w in enumerate(text.split())]


def put(path: Path, content: str | bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


LONG_TEXT = "ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE"


@pytest.fixture
def lrs2_tree(tmp_path: Path) -> Path:
    """LRS2 as published: mvlrs_v1/main|pretrain, lists beside mvlrs_v1, planted problems."""
    root = tmp_path / "lrs2"
    data = root / "mvlrs_v1"
    clips = {"vidA/00001": "Hello there, world!", "vidA/00002": "it's fine",
             "vidB/00001": "THE TEST CLIP"}
    for clip, text in clips.items():
        put(data / "main" / f"{clip}.mp4")
        put(data / "main" / f"{clip}.txt", LRS2_MAIN_TXT.format(text=text))
    put(data / "main" / "vidB/00002.mp4")  # its .txt is missing
    put(data / "main" / "vidB/00003.mp4")
    put(data / "main" / "vidB/00003.txt", "Conf:  3\n")  # no Text: line -> unparseable
    put(data / "pretrain" / "vidC/00001.mp4")
    put(data / "pretrain" / "vidC/00001.txt",
        LRS2_MAIN_TXT.format(text=LONG_TEXT) + WORD_TABLE.format(rows=word_rows(timed(LONG_TEXT))))
    put(root / "train.txt", "vidA/00001\nvidA/00002\n")
    put(root / "val.txt", "vidX/00009\n")  # listed but absent
    put(root / "test.txt", "vidB/00001 NF\nvidB/00002 MV\nvidB/00003 NF\n")
    put(root / "pretrain.txt", "vidC/00001\n")
    return root


@pytest.fixture
def lrs3_tree(tmp_path: Path) -> Path:
    root = tmp_path / "lrs3"
    text = "SO WE'RE GOING TO TALK"
    put(root / "pretrain/spk1/00001.mp4")
    put(root / "pretrain/spk1/00001.txt", LRS3_TXT.format(text=LONG_TEXT)
        + WORD_TABLE.format(rows=word_rows(timed(LONG_TEXT))))
    put(root / "trainval/spk2/00001.mp4")
    put(root / "trainval/spk2/00001.txt", LRS3_TXT.format(text=text)
        + WORD_TABLE.format(rows=word_rows(timed(text))))
    put(root / "test/spk3/00001.mp4")
    put(root / "test/spk3/00001.txt", "Text:  \nConf:  4\n")  # empty transcript
    put(root / "test/spk3/00002.txt", LRS3_TXT.format(text="NO VIDEO HERE"))  # no mp4
    put(root / "test/spk4/00001.mp4")
    put(root / "test/spk4/00001.txt", LRS3_TXT.format(text="only frames"))
    return root


# ---------------------------------------------------------------- tiny real mp4 corpora
def _frames(steps: int, seed: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = (x * 3 + y * 2) % 256
    moving = [(base + 9 * t + rng.integers(0, 40, (size, size))) % 256 for t in range(steps)]
    return np.stack(moving).astype(np.uint8)


def _tone(steps: int, seed: int) -> np.ndarray:
    t = np.arange(steps * SAMPLES_PER_STEP) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * (220 + 40 * seed) * t)).astype(np.float32)


def write_clip(root: Path, clip: str, text: str | None, steps: int = 12, seed: int = 0,
               fps: int = 25, audio_steps: int | None = None, audio: bool = True,
               words: list[tuple[str, float, float]] | None = None) -> Path:
    """A real mp4 (+ its .txt unless text is None) at <root>/main/<clip>.mp4."""
    media = root / "main" / f"{clip}.mp4"
    sound = _tone(audio_steps if audio_steps is not None else steps, seed) if audio else None
    write_mp4(media, _frames(steps, seed), sound, fps=fps)
    if text is not None:
        timed_words = words if words is not None else timed(text, start=0.0, step=0.16)
        body = LRS2_MAIN_TXT.format(text=text) + WORD_TABLE.format(rows=word_rows(timed_words))
        put(media.with_suffix(".txt"), body if text else "Text:  \nConf:  3\n")
    return media


@pytest.fixture(scope="session")
def bad_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic-layout corpus: three good clips and one of each kind of bad input."""
    root = tmp_path_factory.mktemp("bad_corpus")
    write_clip(root, "spk1/00001", "HELLO WORLD", steps=12, seed=1)
    write_clip(root, "spk1/00002", "GOOD MORNING TO YOU", steps=20, seed=2)
    write_clip(root, "spk2/00001", "BLUE SKY", steps=9, seed=3)
    good = write_clip(root, "spk2/00002", "TRUNCATED CLIP", steps=30, seed=4)
    good.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    write_clip(root, "spk2/00003", None, seed=5)  # missing txt
    write_clip(root, "spk3/00001", "NO SOUND", seed=6, audio=False)  # zero-length audio
    write_clip(root, "spk3/00002", "THIRTY FPS", seed=7, fps=30)
    write_clip(root, "spk3/00003", "", seed=8)  # empty transcript
    write_clip(root, "spk3/00004", "SHORT AUDIO", steps=25, audio_steps=5, seed=9)
    audio_only = root / "main" / "spk3/00005.mp4"  # a WAV under an .mp4 name: no video stream
    with wave.open(str(audio_only), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes((_tone(10, 3) * 32767).astype("<i2").tobytes())
    put(audio_only.with_suffix(".txt"), LRS2_MAIN_TXT.format(text="ONLY AUDIO"))
    put(root / "train.txt", "spk1/00001\nspk1/00002\nspk2/00002\nspk2/00003\nspk3/00001\n")
    put(root / "val.txt", "spk3/00002\nspk3/00003\nspk3/00004\nspk3/00005\n")
    put(root / "test.txt", "spk2/00001\n")
    return root


PREPARED_ROI = 24


@pytest.fixture(scope="session")
def prepared(bad_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple]:
    """`bad_corpus` prepared at ROI 24 with a tokenizer: (cache path, (result, tokenizer))."""
    out = tmp_path_factory.mktemp("cache") / "c"
    tokenizer = Tokenizer.train(["HELLO WORLD", "GOOD MORNING TO YOU", "BLUE SKY"] * 4, 24)
    result = prepare_cache(index_dataset(bad_corpus), out, PrepareConfig(roi_size=PREPARED_ROI),
                           tokenizer=tokenizer, progress=False)
    return out, (result, tokenizer)
