"""What the word language model buys and what it costs, in one run.

For the test clips of a prepared cache, a live stream's finals (`transcribe_clips`: chunked
first pass, endpointing, the second pass with the LM fused into its CTC prefix beam search,
decoder rescoring) with the LM at each weight of `--weights` (0 = off), audio-only and
audio-visual, clean and in babble at `--snr` dB. Reported per weight: WER, and the CPU time
of the whole recogniser per second of audio; the LM's cost is the difference to weight 0 in
the same run (medians of `--repeats`). A model without an LM gets `--lm FILE` in a temporary
copy (`avsync export --add-lm`). Writes bench/results/lm.json.

    .venv/bin/python bench/lm.py --model models/avsync-small-open \\
        --data data/synth-open/.avsync/cache --max-clips 200
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from avsync.train.eval_data import babble_for, load_clips, mixtures  # noqa: E402
from record import write_result  # noqa: E402  (bench/record.py)

from avsync.data.cache import PreparedCache  # noqa: E402
from avsync.runtime import RecognizerConfig, load_model  # noqa: E402
from avsync.runtime.offline import ClipInput, transcribe_clips, transcript  # noqa: E402
from avsync.text.metrics import wer  # noqa: E402

RESULTS = REPO / "bench" / "results" / "lm.json"


def with_lm(model_dir: Path, lm: Path | None, scratch: Path) -> Path:
    """The model directory to measure: itself when it has an LM (or none is given), else a
    copy with `lm` attached."""
    from avsync.runtime.model_card import read_card

    if lm is None or read_card(model_dir).lm is not None:
        return model_dir
    from avsync.export.lm import attach_lm

    copy = scratch / model_dir.name
    shutil.copytree(model_dir, copy)
    attach_lm(copy, lm)
    return copy


def measure(model_dir: Path, clips: list, refs: list[str], weight: float, repeats: int
            ) -> dict:
    model = load_model(model_dir, threads=1)
    config = RecognizerConfig(lm_weight=weight)
    seconds = sum(len(c.audio) for c in clips if c.audio is not None) / 16000
    times, texts = [], []
    for _ in range(repeats):
        start = time.process_time()
        finals = transcribe_clips(model, clips, config)
        times.append(time.process_time() - start)
        texts = [transcript(f) for f in finals]
    return {"wer": wer(refs, texts), "cpu_s_per_audio_s": statistics.median(times) / seconds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="exported model directory")
    p.add_argument("--data", type=Path, required=True, help="prepared cache (its test split)")
    p.add_argument("--lm", type=Path, help="ARPA LM to attach when the model has none")
    p.add_argument("--weights", default="0,0.3,0.5,0.8", help="LM weights (0: off)")
    p.add_argument("--snr", type=float, default=0.0, help="babble SNR of the noisy rows")
    p.add_argument("--max-clips", type=int, default=100, help="the first N test clips")
    p.add_argument("--repeats", type=int, default=1, help="runs per timing (median)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    cache_clips = load_clips(PreparedCache(args.data), "test", args.max_clips)
    refs = [c.text for c in cache_clips]
    babble = [babble_for(cache_clips, i, 0, 4) for i in range(len(cache_clips))]
    noisy = mixtures(cache_clips, babble, args.snr, 0)
    conditions = {
        "audio clean": [ClipInput(c.audio, None) for c in cache_clips],
        "av clean": [ClipInput(c.audio, c.rois) for c in cache_clips],
        f"audio {args.snr:g} dB": [ClipInput(a, None) for a in noisy],
        f"av {args.snr:g} dB": [ClipInput(a, c.rois) for a, c in zip(noisy, cache_clips,
                                                                       strict=True)],
    }
    weights = [float(w) for w in args.weights.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = with_lm(args.model, args.lm, Path(scratch))
        rows: dict[str, dict[str, dict]] = {}
        for name, clips in conditions.items():
            rows[name] = {f"{w:g}": measure(model_dir, clips, refs, w, args.repeats)
                          for w in weights}
            base = rows[name].get("0")
            for w, row in rows[name].items():
                if base is not None:
                    row["lm_cpu_s_per_audio_s"] = row["cpu_s_per_audio_s"] - base[
                        "cpu_s_per_audio_s"]
                print(f"{name:>14} weight {w:>4}: WER {100 * row['wer']:5.1f} %, "
                      f"{1000 * row['cpu_s_per_audio_s']:6.1f} ms CPU per s of audio", flush=True)
    write_result(args.out, {"model": str(args.model), "data": str(args.data),
                            "clips": len(cache_clips), "snr_db": args.snr, "rows": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
