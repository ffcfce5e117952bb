"""`avsync data lm`: an ARPA model of the chosen splits' transcripts only."""

from __future__ import annotations

from pathlib import Path

import pytest

from avsync.data.cli import main
from avsync.errors import ConfigError
from avsync.runtime.lm import NgramLM


def test_lm_counts_only_the_chosen_splits(bad_corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "lm.arpa.gz"
    assert main(["lm", str(bad_corpus), "--out", str(out), "--order", "2",
                 "--splits", "train"]) == 0
    assert "2-gram model" in capsys.readouterr().out
    lm = NgramLM.load(out)
    # "BLUE SKY" is the test split's only transcript: unknown to a train-only model
    assert lm.logprob(("<s>",), "BLUE") == lm.logprob(("<s>",), "<unk>")
    assert lm.logprob(("<s>",), "HELLO") > lm.logprob(("<s>",), "<unk>")


def test_more_training_text_comes_from_a_file(bad_corpus: Path, tmp_path: Path,
                                              capsys) -> None:
    """`--add-text FILE`: sentences beyond the transcripts, normalised the LRS way."""
    text = tmp_path / "more.txt"
    text.write_text("Purple rain, 2 times!\n\n   \nhello purple world\n")
    out = tmp_path / "lm.arpa.gz"
    assert main(["lm", str(bad_corpus), "--out", str(out), "--order", "2", "--splits", "train",
                 "--add-text", str(text)]) == 0
    assert f"and 2 sentences of {text}" in capsys.readouterr().out
    lm = NgramLM.load(out)
    assert lm.logprob(("PURPLE",), "RAIN") > lm.logprob(("PURPLE",), "<unk>")
    assert lm.logprob(("RAIN",), "TWO") > lm.logprob(("RAIN",), "HELLO")
    with pytest.raises(ConfigError, match="no such file"):
        main(["lm", str(bad_corpus), "--out", str(out), "--add-text",
              str(tmp_path / "missing.txt")])
