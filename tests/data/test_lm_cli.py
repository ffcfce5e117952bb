"""`avsync data lm`: an ARPA model of the chosen splits' transcripts only."""

from __future__ import annotations

from pathlib import Path

from avsync.data.cli import main
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
