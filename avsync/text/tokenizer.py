"""A sentencepiece tokenizer with the ids every part of avsync agrees on.

Ids (docs/architecture.md): pad/CTC blank = 0, unk = 1, bos = 2, eos = 3, then the pieces.
Training is deterministic (one thread, no sampling of the input), so the same transcripts give
the same model bytes, and the model's SHA-256 identifies it in caches and model cards.
Text is encoded as given: pass normalised transcripts (`normalize_transcript`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from avsync.errors import ConfigError, DataError, require

log = logging.getLogger(__name__)

PAD_ID = 0
BLANK_ID = PAD_ID
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
MODEL_TYPES = ("unigram", "bpe", "char", "word")

_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
_TOO_LOW = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")


def _spm():  # imported lazily so `avsync --help` stays light
    require("sentencepiece", "runtime")
    import sentencepiece

    return sentencepiece


class Tokenizer:
    """Text <-> token ids. Build with `Tokenizer.train(...)` or `Tokenizer.load(path)`."""

    def __init__(self, model_proto: bytes, source: str = "<bytes>") -> None:
        self._proto = bytes(model_proto)
        self.source = source
        try:
            self._sp = _spm().SentencePieceProcessor(model_proto=self._proto)
        except RuntimeError as error:
            raise DataError(f"{source}: not a sentencepiece model ({error})") from None
        fixed = {"pad": self._sp.pad_id(), "unk": self._sp.unk_id(), "bos": self._sp.bos_id(),
                 "eos": self._sp.eos_id()}
        if fixed != {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID}:
            raise DataError(f"{source}: special ids are {fixed}, but avsync needs pad=0 unk=1 "
                            "bos=2 eos=3; train it with `avsync data tokenizer`")

    # construction ---------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, model_type: str = "unigram",
              out_prefix: str | Path | None = None) -> Tokenizer:
        """Train on `texts` (one transcript each) and write `<out_prefix>.model` and `.vocab`.

        A closed vocabulary (a GRID-style grammar) cannot fill a large `vocab_size`; then the
        size is capped at what sentencepiece can make, with a warning, instead of failing.
        """
        if model_type not in MODEL_TYPES:
            raise ConfigError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
        corpus = [t for t in texts if t.strip()]
        if not corpus:
            raise ConfigError("no non-empty transcripts to train a tokenizer on")
        try:
            proto = _train_bytes(corpus, vocab_size, model_type)
        except RuntimeError as error:
            high = _TOO_HIGH.search(str(error))
            if high is None:
                raise _vocab_error(error, vocab_size) from None
            capped = int(high.group(2))
            log.warning("vocab_size %d is more than these transcripts can fill; capped at %d",
                        vocab_size, capped)
            proto = _train_bytes(corpus, capped, model_type)
        tokenizer = cls(proto, source="<trained>")
        if out_prefix is not None:
            tokenizer.save(out_prefix)
        return tokenizer

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Load `<prefix>.model` (the `.model` suffix may be left out)."""
        path = Path(path)
        if not path.exists() and path.with_name(path.name + ".model").exists():
            path = path.with_name(path.name + ".model")
        try:
            return cls(path.read_bytes(), source=str(path))
        except FileNotFoundError:
            raise DataError(f"{path}: tokenizer model not found; train one with "
                            "`avsync data tokenizer ROOT --vocab-size N --out PREFIX`") from None

    def save(self, out_prefix: str | Path) -> Path:
        """Write `<out_prefix>.model` and a human-readable `<out_prefix>.vocab`; return the model path."""
        prefix = Path(out_prefix)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        model_path = prefix.with_name(prefix.name + ".model")
        model_path.write_bytes(self._proto)
        lines = [f"{p}\t{self._sp.get_score(i):g}" for i, p in enumerate(self.pieces)]
        prefix.with_name(prefix.name + ".vocab").write_text("\n".join(lines) + "\n", "utf-8")
        self.source = str(model_path)
        return model_path

    # use -------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without bos/eos; characters never seen in training map to unk."""
        return list(self._sp.encode(text))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`; pad/blank, bos and eos are dropped."""
        return str(self._sp.decode([int(i) for i in ids]))

    @property
    def pieces(self) -> list[str]:
        return [self._sp.id_to_piece(i) for i in range(self.vocab_size)]

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    @property
    def model_bytes(self) -> bytes:
        return self._proto

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self._proto).hexdigest()

    blank_id = BLANK_ID
    pad_id = PAD_ID
    unk_id = UNK_ID
    bos_id = BOS_ID
    eos_id = EOS_ID

    def __repr__(self) -> str:
        return f"Tokenizer({self.source!r}, vocab_size={self.vocab_size})"


def _train_bytes(corpus: list[str], vocab_size: int, model_type: str) -> bytes:
    model = io.BytesIO()
    _spm().SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model, vocab_size=vocab_size,
        model_type=model_type, pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
        pad_piece="<blank>", character_coverage=1.0, num_threads=1, input_sentence_size=0,
        shuffle_input_sentence=False, minloglevel=2,
    )
    return model.getvalue()


def _vocab_error(error: RuntimeError, vocab_size: int) -> ConfigError:
    low = _TOO_LOW.search(str(error))
    if low is not None:
        return ConfigError(f"vocab_size {vocab_size} is too small: the transcripts use "
                           f"{int(low.group(2)) - 4} distinct characters plus 4 special ids; "
                           f"ask for at least {low.group(2)}")
    return ConfigError(f"sentencepiece could not train with vocab_size {vocab_size}: {error}")
