"""Text utilities shared by training, evaluation and the runtime: no torch here.

`normalize_transcript` (LRS style), `Tokenizer` (sentencepiece with fixed special ids),
`wer` / `cer` and the alignments behind them.
"""

from avsync.text.metrics import cer, corpus_errors, utterance_errors, wer
from avsync.text.normalize import normalize_transcript
from avsync.text.tokenizer import Tokenizer

__all__ = ["Tokenizer", "cer", "corpus_errors", "normalize_transcript", "utterance_errors", "wer"]
