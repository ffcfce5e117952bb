"""Where to set the lip gate (`RecognizerConfig.lips_from`): what it saves and what it costs.

The second pass re-reads a segment from the audio alone when its lips' mean P(speaking) is
below `lips_from`. Set too low, lips that are not the voice's (a dub, a listener) still cost
words; too high, right lips that the ASD misjudges in heavy noise are dropped where they are
needed most. For the test clips of a prepared cache, a live stream's finals
(`transcribe_clips`) at each SNR of `--snrs` (babble): audio-only, video-only, and
audio-visual with the right lips and with another speaker's lips (the eval's wrong-lips
condition) at each gate of `--gates` ("none": off). Reported per gate: the worst, over SNRs,
of wrong-lips AV minus audio-only (issue 18's floor: at most 1 point) and of right-lips AV
minus the better of audio-only and video-only (fusion never costs: at most 1 point).
Writes bench/results/lip_gate.json.

    .venv/bin/python bench/lip_gate.py --model models/avsync-small-open \\
        --data data/synth-open/.avsync/cache --max-clips 120
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from avsync.train.eval_data import babble_for, load_clips, mismatched_lips, mixtures  # noqa: E402
from record import write_result  # noqa: E402  (bench/record.py)

from avsync.data.cache import PreparedCache  # noqa: E402
from avsync.runtime import Model, RecognizerConfig, load_model  # noqa: E402
from avsync.runtime.offline import ClipInput, transcribe_clips, transcript  # noqa: E402
from avsync.text.metrics import wer  # noqa: E402

RESULTS = REPO / "bench" / "results" / "lip_gate.json"


def points(model: Model, clips: list[ClipInput], refs: list[str], gate: float | None) -> float:
    """WER in percentage points of the finals with the gate at `gate`."""
    finals = transcribe_clips(model, clips, RecognizerConfig(lips_from=gate))
    return round(100 * wer(refs, [transcript(f) for f in finals]), 2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="exported model directory")
    p.add_argument("--data", type=Path, required=True, help="prepared cache (its test split)")
    p.add_argument("--gates", default="none,0.02,0.05,0.1,0.2",
                   help="lips_from values to compare ('none': the gate off)")
    p.add_argument("--snrs", default="clean,5,0,-5", help="'clean' and babble SNRs in dB")
    p.add_argument("--max-clips", type=int, default=60, help="the first N test clips")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    model = load_model(args.model, threads=1)
    clips = load_clips(PreparedCache(args.data), "test", args.max_clips)
    refs = [c.text for c in clips]
    babble = [babble_for(clips, i, 0, 4) for i in range(len(clips))]
    wrong = mismatched_lips(clips)
    gates = [None if g.strip() == "none" else float(g) for g in args.gates.split(",")]
    video = points(model, [ClipInput(None, c.rois) for c in clips], refs, None)
    rows: dict[str, dict] = {}
    for snr in (s.strip() for s in args.snrs.split(",")):
        audio = [c.audio for c in clips] if snr == "clean" else mixtures(clips, babble,
                                                                          float(snr), 0)
        row: dict = {"audio": points(model, [ClipInput(a, None) for a in audio], refs, None),
                     "video": video, "av": {}, "wrong_lips_av": {}}
        for gate in gates:
            key = "none" if gate is None else f"{gate:g}"
            row["av"][key] = points(model, [ClipInput(a, c.rois) for a, c in
                                            zip(audio, clips, strict=True)], refs, gate)
            row["wrong_lips_av"][key] = points(model, [ClipInput(a, r) for a, r in
                                                       zip(audio, wrong, strict=True)], refs,
                                               gate)
        rows[snr] = row
        print(f"{snr:>5}: audio {row['audio']:5.1f}  video {video:5.1f}  AV "
              + " ".join(f"{k}:{v:.1f}" for k, v in row["av"].items()) + "  wrong lips AV "
              + " ".join(f"{k}:{v:.1f}" for k, v in row["wrong_lips_av"].items()), flush=True)
    worst = {}
    for key in rows[next(iter(rows))]["av"]:
        worst[key] = {
            "wrong_lips_minus_audio": max(r["wrong_lips_av"][key] - r["audio"]
                                          for r in rows.values()),
            "right_lips_minus_best_single": max(r["av"][key] - min(r["audio"], r["video"])
                                                for r in rows.values())}
        print(f"gate {key:>5}: worst wrong lips - audio {worst[key]['wrong_lips_minus_audio']:+.1f}"
              f", worst right lips - best single {worst[key]['right_lips_minus_best_single']:+.1f}"
              " points (floors: +1, +1)")
    write_result(args.out, {"model": str(args.model), "data": str(args.data),
                            "clips": len(clips), "rows": rows, "worst_points": worst})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
