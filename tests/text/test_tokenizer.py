"""The sentencepiece tokenizer: fixed special ids, round trips, determinism, small vocabularies."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from avsync.errors import ConfigError, DataError
from avsync.text import Tokenizer

GRID = ["BIN BLUE AT F TWO NOW", "PLACE RED BY G NINE SOON", "SET GREEN IN A ONE PLEASE",
        "LAY WHITE WITH Z EIGHT AGAIN", "BIN RED AT B FIVE NOW", "SET BLUE BY Q SIX SOON"]
OPEN = ["THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG", "I DON'T THINK THAT'S RIGHT",
        "WE'LL MEET AGAIN SOME SUNNY DAY", "PACK MY BOX WITH FIVE DOZEN LIQUOR JUGS"] + GRID


def test_round_trip_and_special_ids(tmp_path: Path) -> None:
    tok = Tokenizer.train(OPEN * 5, vocab_size=60, out_prefix=tmp_path / "tok")
    assert (tok.blank_id, tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 0, 1, 2, 3)
    assert tok.vocab_size == 60 == len(tok.pieces)
    for text in OPEN:
        ids = tok.encode(text)
        assert min(ids) > 3
        assert tok.decode(ids) == text
    assert tok.decode([0, 2, *tok.encode("I DON'T"), 3, 0]) == "I DON'T"
    loaded = Tokenizer.load(tmp_path / "tok")  # the .model suffix may be left out
    assert loaded.sha256 == tok.sha256
    assert loaded.encode(OPEN[0]) == tok.encode(OPEN[0])
    assert (tmp_path / "tok.vocab").read_text().splitlines()[0].startswith("<blank>")


def test_training_is_deterministic() -> None:
    first = Tokenizer.train(OPEN * 3, vocab_size=50)
    second = Tokenizer.train(OPEN * 3, vocab_size=50)
    assert first.sha256 == second.sha256


def test_small_closed_vocabulary_caps_the_size_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        tok = Tokenizer.train(GRID * 10, vocab_size=5000)
    assert 20 < tok.vocab_size < 5000
    assert "capped at" in caplog.text
    assert all(tok.decode(tok.encode(t)) == t for t in GRID)


def test_too_small_a_vocabulary_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ask for at least"):
        Tokenizer.train(OPEN, vocab_size=8)


def test_loading_a_missing_or_foreign_model_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="avsync data tokenizer"):
        Tokenizer.load(tmp_path / "nope.model")
    (tmp_path / "junk.model").write_bytes(b"not a model")
    with pytest.raises(DataError, match="not a sentencepiece model"):
        Tokenizer.load(tmp_path / "junk.model")


def test_text_package_never_imports_torch() -> None:
    code = ("import sys; sys.modules['torch'] = None; "
            "from avsync.text import Tokenizer, wer, normalize_transcript; "
            "t = Tokenizer.train(['A B C', 'ABBA CAB'] * 5, vocab_size=12); "
            "print(wer('A B', 'A C'), t.decode(t.encode('CAB')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0.5", "CAB"]
