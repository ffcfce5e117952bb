"""WER/CER against hand-computed cases."""

from __future__ import annotations

import pytest

from avsync.errors import ConfigError
from avsync.text import cer, corpus_errors, utterance_errors, wer
from avsync.text.metrics import Op


def test_substitution_and_deletion() -> None:
    result = utterance_errors("THE CAT SAT ON THE MAT", "THE CAT SIT ON MAT")
    counts = result.counts
    assert (counts.substitutions, counts.deletions, counts.insertions) == (1, 1, 0)
    assert counts.ref_length == 6
    assert wer("THE CAT SAT ON THE MAT", "THE CAT SIT ON MAT") == pytest.approx(2 / 6)
    ops = "".join(p.op.value for p in result.alignment)
    assert ops.count("C") == 4 and ops.count("S") == 1 and ops.count("D") == 1


def test_insertion_alignment_names_the_inserted_word() -> None:
    result = utterance_errors("A B", "A X B")
    assert [(p.op, p.ref, p.hyp) for p in result.alignment] == [
        (Op.CORRECT, "A", "A"), (Op.INSERTION, None, "X"), (Op.CORRECT, "B", "B")]
    assert result.counts.rate == 0.5


def test_corpus_rate_is_total_errors_over_total_reference_words() -> None:
    refs = ["A B C D", "E F"]
    hyps = ["A B C D", "X"]
    # second utterance: one substitution and one deletion; 2 errors over 6 reference words,
    # not the mean of per-utterance rates (0 + 1) / 2.
    assert wer(refs, hyps) == pytest.approx(2 / 6)
    details = corpus_errors(refs, hyps)
    assert [d.counts.errors for d in details.utterances] == [0, 2]


def test_empty_hypothesis_is_all_deletions_and_empty_reference_counts_insertions() -> None:
    assert wer("ONE TWO THREE", "") == 1.0
    assert wer("", "") == 0.0
    assert corpus_errors([""], ["UH UM"]).counts.insertions == 2


def test_cer_counts_characters_including_single_spaces() -> None:
    assert cer("ABC", "AXC") == pytest.approx(1 / 3)
    assert cer("AB CD", "AB") == pytest.approx(3 / 5)
    assert cer("AB  CD", "AB CD") == 0.0


def test_mismatched_lengths_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="2 references but 1 hypotheses"):
        wer(["A", "B"], ["A"])
