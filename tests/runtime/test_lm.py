"""The word n-gram LM: a proper distribution written as ARPA, read back by the runtime, fused
into the CTC beam search at word boundaries, shipped in and loaded from a model directory."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from avsync.errors import ModelLoadError
from avsync.runtime import ClipInput, load_model, transcribe_clip
from avsync.runtime.ctc import prefix_beam_search
from avsync.runtime.lm import EOS, UNK, LmFusion, NgramLM
from avsync.text.ngram import build_arpa, write_arpa

TEXT = ["I READ A BOOK", "SHE READ THE BOOK", "WE READ A GOOD BOOK", "THE RED CAR",
        "A GOOD BOOK IS A GOOD FRIEND", "I READ IT"] * 3


@pytest.fixture(scope="module")
def arpa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_arpa(build_arpa(TEXT, order=3), tmp_path_factory.mktemp("lm") / "lm.arpa.gz")


def test_every_history_sums_to_one(arpa: Path) -> None:
    lm = NgramLM.load(arpa)
    words = sorted({w for s in TEXT for w in s.split()} | {EOS, UNK})
    for history in [("<s>",), ("<s>", "I"), ("READ", "A"), ("A", "GOOD"), ("CAR",), ("ZZZ",)]:
        total = sum(math.exp(lm.logprob(history, w)) for w in words)
        assert abs(total - 1.0) < 1e-3, (history, total)
    assert lm.logprob(("I",), "READ") > lm.logprob(("I",), "RED")
    assert lm.logprob(("<s>",), "QUUX") == lm.logprob(("<s>",), UNK)


PIECES = ("<blank>", "<unk>", "<s>", "</s>", "\u2581I", "\u2581RED", "\u2581READ", "\u2581A",
          "\u2581BOOK")


def _log_probs(frames: list[dict[int, float]]) -> np.ndarray:
    lp = np.full((len(frames), len(PIECES)), 1e-4)
    for t, probs in enumerate(frames):
        for token, p in probs.items():
            lp[t, token] = p
        lp[t] /= lp[t].sum()
    return np.log(lp)


def test_fusion_prefers_words_the_text_says(arpa: Path) -> None:
    # acoustically "RED" is a little likelier than "READ" after "I", before "A BOOK"
    lp = _log_probs([{4: 0.9}, {0: 0.9}, {5: 0.5, 6: 0.45}, {0: 0.9}, {7: 0.9}, {0: 0.9},
                     {8: 0.9}, {0: 0.9}])
    plain = prefix_beam_search(lp, beam=8)[0].tokens
    fusion = LmFusion(NgramLM.load(arpa), PIECES, weight=1.0, word_bonus=0.0)
    fused = prefix_beam_search(lp, beam=8, fusion=fusion)[0].tokens
    assert fusion.words(plain) == ["I", "RED", "A", "BOOK"]
    assert fusion.words(fused) == ["I", "READ", "A", "BOOK"]


GLUED = ("I", "READ", "A", "GOOD", "BOOK")
GLUE_PIECES = ("<blank>", "<unk>", "<s>", "</s>", *(f"\u2581{w}" for w in GLUED), *GLUED)


def test_the_word_being_spelled_is_scored_so_pieces_are_not_glued(
        arpa: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # acoustically each word's continuing piece ("READ") is likelier than its word-starting
    # one ("\u2581READ"): "IREADAGOODBOOK", one word, is the plain best path
    frames = [{4: 0.9}, {0: 0.9}]
    for k in range(1, len(GLUED)):
        frames += [{4 + k: 0.3, 4 + len(GLUED) + k: 0.65}, {0: 0.9}]
    lp = np.log(np.array([[probs.get(i, 1e-4) for i in range(len(GLUE_PIECES))]
                          for probs in frames]))
    lp -= np.logaddexp.reduce(lp, axis=1, keepdims=True)
    lm = NgramLM.load(arpa)
    fusion = LmFusion(lm, GLUE_PIECES, weight=0.5, word_bonus=1.0)
    assert fusion.words(prefix_beam_search(lp, beam=2)[0].tokens) == ["IREADAGOODBOOK"]
    assert fusion.words(prefix_beam_search(lp, beam=2, fusion=fusion)[0].tokens) == list(GLUED)
    assert lm.lookahead("GOO") == lm.logprob((), "GOOD")
    assert lm.lookahead("READA") == lm.logprob((), UNK)
    # scored only once complete, a word that is never ended pays nothing while the beam runs,
    # and crowds the real words out of a narrow beam before the end scores it
    monkeypatch.setattr(LmFusion, "prefix_score", lambda self, state: state.completed)
    assert fusion.words(prefix_beam_search(lp, beam=2, fusion=fusion)[0].tokens) == [
        "IREADAGOODBOOK"]


def test_states_extended_piece_by_piece_score_as_the_whole_prefix(arpa: Path) -> None:
    """The beam search extends each prefix's LM state by one piece; the score must be what the
    words of the whole prefix give, however the pieces split them."""
    lm = NgramLM.load(arpa)
    pieces = ("<blank>", "<unk>", "<s>", "</s>", "\u2581", "\u2581I", "\u2581RE", "AD", "\u2581A",
              "\u2581BOOK", "S", "\u2581GOOD")
    fusion = LmFusion(lm, pieces, weight=0.7, word_bonus=0.4)
    rng = np.random.default_rng(0)
    for _ in range(200):
        tokens = tuple(int(t) for t in rng.integers(1, len(pieces), int(rng.integers(0, 9))))
        words = fusion.words(tokens)
        history, total = ("<s>",), 0.0
        for word in [*words, EOS]:
            total += lm.logprob(history, word)
            history = (*history, word)
        state = fusion.state_of(tokens)
        assert fusion.final_score(state) == pytest.approx(0.7 * total + 0.4 * len(words))
        text = "".join(pieces[t] for t in tokens if not pieces[t].startswith("<"))
        spelling = words[-1] if words and not text.endswith("\u2581") else ""
        assert state.spelling == spelling
        done = words[:-1] if spelling else words
        expected = sum(0.7 * lm.logprob(("<s>", *done[:k])[-2:], w) + 0.4
                       for k, w in enumerate(done))
        if spelling:
            expected += 0.7 * lm.lookahead(spelling) + 0.4
        assert fusion.prefix_score(state) == pytest.approx(expected)


def test_a_model_directory_ships_and_checks_its_lm(arpa: Path, model_dir: Path,
                                                   tmp_path: Path) -> None:
    from avsync.export.cli import main

    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    assert main(["--add-lm", str(target), "--lm", str(arpa), "--lm-weight", "0.7"]) == 0
    model = load_model(target)
    assert model.lm is not None and model.card.lm["weight"] == 0.7
    assert model.lm_fusion() is not None and model.lm_fusion(weight=0) is None
    card = json.loads((target / "model.json").read_text())
    assert card["lm"]["file"] == "lm.arpa.gz" and card["lm"]["order"] == 3
    assert load_model(model_dir).lm is None  # a model without an LM loads as before
    rng = np.random.default_rng(0)
    clip = ClipInput((0.1 * rng.standard_normal(40 * 640)).astype(np.float32),
                     rng.integers(0, 256, (40, model.card.roi.stored, model.card.roi.stored),
                                  dtype=np.uint8))
    transcribe_clip(model, clip)  # the recogniser's searches run fused
    (target / "lm.arpa.gz").write_bytes(b"not an lm")
    with pytest.raises(ModelLoadError, match="lm.arpa.gz: SHA-256"):
        load_model(target)
