"""A word n-gram language model, built from training text and written as ARPA.

Why ARPA: it is the format every decoder toolkit reads (KenLM, Kaldi, sherpa-onnx, ...) and a
plain text file, so an app on plain onnxruntime in any language can fuse the same model into
its CTC beam search (docs/model-format.md, "The language model"). Estimation: interpolated
absolute discounting (Ney's D = n1 / (n1 + 2 n2) per order, kept in [0.1, 0.9]), stored in
ARPA's backoff form: for a seen n-gram the interpolated probability, and per history the
backoff weight that makes every distribution sum to one. Words are the normalised transcript
words; `<s>` and `</s>` mark sentence ends; the unigrams' discounted mass is spread evenly
over the words and `<unk>`. Only n-grams of
the highest order seen fewer than `min_count` times are pruned.
"""

from __future__ import annotations

import gzip
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from avsync.errors import ConfigError

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


def _counts(sentences: Iterable[str], order: int) -> list[Counter[tuple[str, ...]]]:
    counts: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order)]
    for sentence in sentences:
        words = [BOS, *sentence.split(), EOS]
        for n in range(1, order + 1):
            for i in range(len(words) - n + 1):
                gram = tuple(words[i:i + n])
                if gram != (BOS,):
                    counts[n - 1][gram] += 1
    return counts


def _discount(counts: Counter[tuple[str, ...]]) -> float:
    """Ney's estimate, kept in [0.1, 0.9] (tiny texts have no doubletons: it would be 1 and
    leave nothing to a word seen once)."""
    n1 = sum(1 for c in counts.values() if c == 1)
    n2 = sum(1 for c in counts.values() if c == 2)
    return min(max(n1 / (n1 + 2 * n2) if n1 + n2 else 0.5, 0.1), 0.9)


def build_arpa(sentences: Iterable[str], order: int = 3, min_count: int = 1
               ) -> dict[int, dict[tuple[str, ...], tuple[float, float | None]]]:
    """{n: {gram: (log10 p, log10 backoff or None)}} of the n-gram model of `sentences`."""
    if order < 1:
        raise ConfigError(f"order must be >= 1, got {order}")
    counts = _counts(sentences, order)
    if not counts[0]:
        raise ConfigError("no words to build a language model from")
    if min_count > 1 and order > 1:
        counts[-1] = Counter({g: c for g, c in counts[-1].items() if c >= min_count})
    probs: list[dict[tuple[str, ...], float]] = []
    # unigrams: discounted, the mass left spread evenly over the words and <unk>
    d = _discount(counts[0])
    total = sum(counts[0].values())
    floor = d * len(counts[0]) / total / (len(counts[0]) + 1)
    uni = {g: (c - d) / total + floor for g, c in counts[0].items()}
    uni[(UNK,)] = floor
    probs.append(uni)
    for n in range(2, order + 1):
        grams, d = counts[n - 1], _discount(counts[n - 1])
        by_history: dict[tuple[str, ...], dict[str, int]] = defaultdict(dict)
        for g, c in grams.items():
            by_history[g[:-1]][g[-1]] = c
        level: dict[tuple[str, ...], float] = {}
        for history, followers in by_history.items():
            h_total = sum(followers.values())
            gamma = d * len(followers) / h_total
            for word, c in followers.items():
                lower = _prob(probs, history[1:], word)
                level[history + (word,)] = (c - d) / h_total + gamma * lower
        probs.append(level)
    return _with_backoffs(probs)


def _prob(probs: list[dict[tuple[str, ...], float]], history: tuple[str, ...], word: str
          ) -> float:
    """The interpolated probability from the levels built so far (backing off to shorter
    histories for unseen n-grams, by the interpolation weights folded in below)."""
    for start in range(len(history) + 1):
        gram = history[start:] + (word,)
        level = probs[len(gram) - 1] if len(gram) - 1 < len(probs) else None
        if level is not None and gram in level:
            return level[gram]
    return probs[0].get((word,), probs[0][(UNK,)])


def _with_backoffs(probs: list[dict[tuple[str, ...], float]]
                   ) -> dict[int, dict[tuple[str, ...], tuple[float, float | None]]]:
    order = len(probs)
    seen_after: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for level in probs[1:]:
        for gram in level:
            seen_after[gram[:-1]].append(gram[-1])
    out: dict[int, dict[tuple[str, ...], tuple[float, float | None]]] = {}
    for n, level in enumerate(probs, start=1):
        entries: dict[tuple[str, ...], tuple[float, float | None]] = {}
        for gram, p in level.items():
            backoff = None
            if n < order and gram in seen_after:
                followers = seen_after[gram]
                seen = sum(probs[n][gram + (w,)] for w in followers)
                lower = sum(_prob(probs, gram[1:], w) for w in followers)
                backoff = math.log10(max(1.0 - seen, 1e-12) / max(1.0 - lower, 1e-12))
            entries[gram] = (math.log10(max(p, 1e-12)), backoff)
        if n == 1:
            entries[(BOS,)] = (-99.0, _bos_backoff(probs, seen_after))
        out[n] = entries
    return out


def _bos_backoff(probs: list[dict[tuple[str, ...], float]],
                 seen_after: dict[tuple[str, ...], list[str]]) -> float | None:
    followers = seen_after.get((BOS,))
    if not followers or len(probs) < 2:
        return None
    seen = sum(probs[1][(BOS, w)] for w in followers)
    lower = sum(_prob(probs, (), w) for w in followers)
    return math.log10(max(1.0 - seen, 1e-12) / max(1.0 - lower, 1e-12))


def write_arpa(model: dict[int, dict[tuple[str, ...], tuple[float, float | None]]],
               path: str | Path) -> Path:
    """ARPA text (gzip when the name ends in .gz)."""
    path = Path(path)
    lines = ["", "\\data\\"]
    lines += [f"ngram {n}={len(model[n])}" for n in sorted(model)]
    for n in sorted(model):
        lines += ["", f"\\{n}-grams:"]
        for gram, (logp, backoff) in sorted(model[n].items()):
            entry = f"{logp:.6f}\t{' '.join(gram)}"
            lines.append(entry if backoff is None else f"{entry}\t{backoff:.6f}")
    lines += ["", "\\end\\", ""]
    text = "\n".join(lines)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path
