"""`avsync demo`: the whole system on the bundled model, end to end, with no network.

Starts the server on a free loopback port, streams the committed two-face sample through the
websocket exactly as a live client would (audio in 40 ms messages, JPEG frames at 25 fps, in
real time unless --fast, faces found by the server's detector), prints the transcript, who is
speaking and the AV offset as they arrive, then checks the result against the sample's
reference (WER, the right face for every turn) and draws `demo-timeline.png`.

Why a scene and not a single face: it is the case an operator meets (a call, a panel) and it
exercises every task at once — detection and tracking, active-speaker scoring that moves the
lip reading to the face that talks, streaming recognition and the sync search.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from avsync.serve.protocol import (
    STREAM_PATH,
    Done,
    Error,
    FaceMode,
    Final,
    Partial,
    Ready,
    Speakers,
    Sync,
    Task,
    VideoEncoding,
)

from avsync.errors import AvsyncError, ConfigError
from avsync.text.metrics import wer
from avsync.timebase import SAMPLE_RATE

if TYPE_CHECKING:
    from avsync.serve.client import Received

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "models" / "avsync-tiny-grid"
DEFAULT_SAMPLE = REPO / "models" / "samples" / "two-faces.mp4"
WER_TARGET: float = 0.10


@dataclass(frozen=True)
class ReferenceTurn:
    face: int  # index of the face (left to right) that speaks
    start: float  # s
    end: float  # s
    text: str
    words: tuple[tuple[str, float, float], ...] = ()  # (word, start s, end s)


@dataclass(frozen=True)
class Reference:
    """What the sample says and who says it, from the scene's JSON beside the mp4."""

    faces: list[tuple[float, float, float, float]]  # (x1, y1, x2, y2) normalised, per face
    turns: list[ReferenceTurn]
    width: int  # frame pixels, to tell which face a track's box is

    @property
    def text(self) -> str:
        return " ".join(turn.text for turn in self.turns)

    @classmethod
    def load(cls, path: Path) -> Reference:
        try:
            scene = json.loads(path.read_text())
            ids = [face["entity_id"] for face in scene["faces"]]
            turns = [ReferenceTurn(ids.index(t["entity_id"]), float(t["start"]), float(t["end"]),
                                   t["text"], tuple((w, float(a), float(b))
                                                    for w, a, b in t.get("words", ())))
                     for t in scene["turns"]]
            return cls([tuple(face["box"]) for face in scene["faces"]], turns,
                       int(scene["width"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: not a readable scene reference ({exc}); rebuild the "
                              f"sample with `avsync demo --make-sample {path.with_suffix('.mp4')}`"
                              ) from exc


@dataclass
class Transcript:
    """Everything the server said, kept for the checks and the picture."""

    finals: list[Final] = field(default_factory=list)
    speakers: list[Speakers] = field(default_factory=list)
    syncs: list[Sync] = field(default_factory=list)
    errors: list[Error] = field(default_factory=list)
    ready: Ready | None = None
    done: Done | None = None

    @property
    def text(self) -> str:
        return " ".join(f.text for f in self.finals if f.text)


class LiveConsole:
    """Prints results as they arrive: the partial on one rewritten line, finals, speaker changes
    and sync estimates on lines of their own."""

    def __init__(self, transcript: Transcript, faces: int, width: int, out=None) -> None:
        self.t, self.faces, self.width = transcript, faces, width
        self.out = out or sys.stdout
        self.live = self.out.isatty()  # a rewritten partial line only makes sense on a terminal
        self.columns = shutil.get_terminal_size().columns
        self._partial = 0
        self._speaking: int | None = None
        self.boxes: dict[int, tuple[float, float, float, float]] = {}  # track -> last box

    def _line(self, text: str) -> None:
        if self._partial:
            self.out.write("\r" + " " * self._partial + "\r")
        self._partial = 0
        print(text, file=self.out, flush=True)

    def face_of(self, box: tuple[float, float, float, float]) -> int:
        """Which sample face (left to right) a track's box covers."""
        centre = (box[0] + box[2] / 2) / self.width
        return min(int(centre * self.faces), self.faces - 1)

    def __call__(self, message: Received) -> None:
        t = self.t
        if isinstance(message, Ready):
            t.ready = message
            self._line(f"session {message.session}: model {message.model.name}, "
                       f"tasks {', '.join(task.value for task in message.tasks)}")
        elif isinstance(message, Partial):
            if not self.live:
                return
            line = f"  … {message.text[-(self.columns - 6):]}"
            self.out.write("\r" + line.ljust(self._partial))
            self._partial = len(line)
            self.out.flush()
        elif isinstance(message, Final):
            t.finals.append(message)
            if message.face is not None and message.box is not None:
                self.boxes[message.face] = message.box
            if message.text:
                who = "" if message.box is None else f" face {self.face_of(message.box) + 1}:"
                self._line(f"[{message.start_ms / 1000:6.2f}-{message.end_ms / 1000:6.2f} s]"
                           f"{who} {message.text}")
        elif isinstance(message, Speakers):
            t.speakers.append(message)
            self.boxes.update({track.id: track.box for track in message.tracks})
            if message.tracks:
                best = max(message.tracks, key=lambda track: track.speaking)
                speaking = self.face_of(best.box) if best.speaking >= 0.5 else None
                if speaking != self._speaking:
                    self._speaking = speaking
                    who = (f"face {speaking + 1} of {self.faces} (p={best.speaking:.2f})"
                           if speaking is not None else "nobody")
                    self._line(f"[{message.time_ms / 1000:6.2f} s] speaking: {who}")
        elif isinstance(message, Sync):
            t.syncs.append(message)
            self._line(f"[{message.time_ms / 1000:6.2f} s] sync: audio "
                       f"{'lags' if message.offset_ms >= 0 else 'leads'} video by "
                       f"{abs(message.offset_ms)} ms (confidence {message.confidence:.2f})")
        elif isinstance(message, Error):
            t.errors.append(message)
            self._line(f"error {message.code.value}: {message.message}")
        elif isinstance(message, Done):
            t.done = message


def speaker_per_turn(reference: Reference, transcript: Transcript, console: LiveConsole
                     ) -> list[int | None]:
    """The face the server found most likely speaking over each reference turn (None: no
    speakers message fell inside it)."""
    found: list[int | None] = []
    for turn in reference.turns:
        score = np.zeros(len(reference.faces))
        count = np.zeros(len(reference.faces))
        for message in transcript.speakers:
            if turn.start * 1000 <= message.time_ms <= turn.end * 1000:
                for track in message.tracks:
                    face = console.face_of(track.box)
                    score[face] += track.speaking
                    count[face] += 1
        found.append(int(np.argmax(score / np.maximum(count, 1))) if count.any() else None)
    return found


async def run_demo(model_dir: Path, sample: Path, fast: bool, faces: FaceMode,
                   out=None) -> tuple[Transcript, Reference, LiveConsole, np.ndarray]:
    from avsync.serve.client import StreamOptions, stream_media
    from avsync.serve.config import ServerConfig
    from avsync.serve.runtime_engine import RuntimeEngine
    from avsync.serve.server import AvsyncServer

    from avsync.media.decode import decode_media
    from avsync.runtime import load_model

    reference = Reference.load(sample.with_suffix(".json"))
    clip = decode_media(sample, gray=True)
    model = load_model(model_dir)
    transcript = Transcript()
    console = LiveConsole(transcript, len(reference.faces), reference.width, out)
    options = StreamOptions(fast=fast, tasks=tuple(Task), faces=faces,
                            video_encoding=VideoEncoding.JPEG)
    async with AvsyncServer(RuntimeEngine(model), ServerConfig(port=0)) as server:
        url = f"ws://127.0.0.1:{server.port}{STREAM_PATH}"
        print(f"server on {url} (model {model_dir}); streaming {sample.name} "
              f"({clip.duration:.1f} s, {len(reference.faces)} faces"
              f"{', as fast as the server takes it' if fast else ', in real time'})",
              file=console.out, flush=True)
        await stream_media(url, clip.audio, clip.frames, options, console)
    return transcript, reference, console, clip.audio


OPEN_SAMPLE = {"text": "english", "appearance": "varied", "engines": ("flite", "festival"),
               "rate_wpm": (120, 200)}  # the open-vocabulary model's sample: what it is for


def make_sample(path: Path, seed: int, faces: int = 2, open_vocabulary: bool = False) -> None:
    """Render a scene of `faces` faces taking turns, each twice or more (voices and faces of
    the scene namespace, which no training split uses), to `path` (.mp4) and its reference
    (.json): GRID commands in espeak voices, or with `open_vocabulary` English sentences in
    flite and festival voices (built from recordings of people) with varied faces."""
    from avsync.data.synth.scenes import make_scene, write_scene

    style: dict = OPEN_SAMPLE if open_vocabulary else {"text": "grid"}
    for index in range(64):
        scene = make_scene(seed, index, **style)
        turns = [sum(turn.entity == f for turn in scene.turns) for f in range(len(scene.faces))]
        if len(scene.faces) == faces and min(turns) >= 2:  # each face speaks twice or more
            break
    else:
        raise ConfigError(f"no {faces}-face scene with every face speaking in 64 tries of seed "
                          f"{seed}; try another --seed")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_scene(scene, path)
    print(f"wrote {path} ({len(scene.audio) / SAMPLE_RATE:.1f} s, scene {index} of seed {seed}, "
          f"{len(scene.turns)} turns) and {path.with_suffix('.json').name}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="avsync demo",
        description="Start the server on a free loopback port, stream the bundled two-face "
                    "sample through the websocket like a live client, print the transcript, "
                    "who is speaking and the AV offset as they arrive, check them against the "
                    "sample's reference and write a timeline picture. No network needed.",
        epilog="examples:\n"
               "  avsync demo                       # models/avsync-tiny-grid, real time\n"
               "  avsync demo --fast --out /tmp/t.png\n"
               "  avsync demo --model models/my-model --sample my-scene.mp4\n"
               "  avsync demo --make-sample models/samples/two-faces.mp4 --seed 11\n"
               "A sample is an mp4 with a scene JSON beside it (as `avsync synth --scenes` "
               "writes): faces with boxes and turns with text.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help="exported model directory (default: %(default)s)")
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE,
                        help="scene to stream; its .json reference lies beside it "
                             "(default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("demo-timeline.png"),
                        help="timeline picture to write (default: %(default)s)")
    parser.add_argument("--fast", action="store_true",
                        help="send as fast as the server takes media instead of in real time")
    parser.add_argument("--faces", choices=[FaceMode.DETECT.value, FaceMode.WHOLE_FRAME.value],
                        default=FaceMode.DETECT.value,
                        help="how the server finds faces (default: detect, face detection and "
                             "landmark tracking)")
    parser.add_argument("--strict", action="store_true",
                        help=f"exit 1 unless WER <= {100 * WER_TARGET:.0f}%% and every turn's "
                             "speaker is right (the demo's acceptance check)")
    parser.add_argument("--make-sample", type=Path, metavar="MP4",
                        help="instead of the demo: render a new two-face sample to MP4 (+ .json)")
    parser.add_argument("--seed", type=int, default=11, help="seed of --make-sample")
    parser.add_argument("--open-vocabulary", action="store_true",
                        help="with --make-sample: English sentences in flite and festival voices "
                             "with varied faces (default: GRID commands in espeak voices)")
    args = parser.parse_args(argv)
    if args.make_sample:
        make_sample(args.make_sample, args.seed, open_vocabulary=args.open_vocabulary)
        return 0
    for needed, what in ((args.model / "model.json", "model"), (args.sample, "sample")):
        if not needed.is_file():
            print(f"avsync demo: {what} {needed} is missing. The bundled ones come with the "
                  f"repository (models/); pass --model/--sample, or rebuild them with "
                  f"train/recipes/synth-tiny.sh and `avsync demo --make-sample`.", file=sys.stderr)
            return 2
    # `avsync` configured the root logger at INFO; the server's per-session lines would bury
    # the live results
    logging.getLogger().setLevel(logging.WARNING)
    try:
        transcript, reference, console, audio = asyncio.run(
            run_demo(args.model, args.sample, args.fast, FaceMode(args.faces)))
    except AvsyncError as exc:
        print(f"avsync demo: {exc}", file=sys.stderr)
        return 2
    return report(transcript, reference, console, audio, args.out, args.strict)


def attributed_right(reference: Reference, transcript: Transcript, console: LiveConsole
                     ) -> tuple[int, int]:
    """(words whose face is the reference speaker's, recognised words inside a turn): who
    said what, word by word (a word the server gave no face counts as wrong)."""
    right = total = 0
    for final in transcript.finals:
        for word in final.words:
            middle = (word.start_ms + word.end_ms) / 2000
            turn = next((t for t in reference.turns if t.start <= middle <= t.end), None)
            if turn is None:
                continue
            total += 1
            box = console.boxes.get(word.face) if word.face is not None else None
            right += box is not None and console.face_of(box) == turn.face
    return right, total


def report(transcript: Transcript, reference: Reference, console: LiveConsole,
           audio: np.ndarray, out: Path, strict: bool) -> int:
    error_rate = wer(reference.text, transcript.text)
    found = speaker_per_turn(reference, transcript, console)
    right = sum(f == turn.face for f, turn in zip(found, reference.turns, strict=True))
    print("\nturn  face  found  reference text")
    for turn, face in zip(reference.turns, found, strict=True):
        mark = "ok" if face == turn.face else "WRONG"
        print(f"{turn.start:5.1f}s  {turn.face + 1:>3}  {'-' if face is None else face + 1:>4} "
              f"{mark:>5}  {turn.text}")
    print(f"\nreference:  {reference.text}\nrecognised: {transcript.text}")
    said, words = attributed_right(reference, transcript, console)
    print(f"WER {error_rate:.1%} (target <= {WER_TARGET:.0%}); speaker right for {right}/"
          f"{len(reference.turns)} turns; words attributed to the right face {said}/{words}; "
          f"{len(transcript.syncs)} sync estimates"
          + (f", last offset {transcript.syncs[-1].offset_ms:+d} ms" if transcript.syncs else ""))
    from avsync.serve.demo_plot import plot_timeline

    plot_timeline(out, audio, reference, transcript, console.face_of)
    print(f"timeline: {out}")
    ok = transcript.done is not None and not any(e.fatal for e in transcript.errors)
    if strict:
        ok = ok and error_rate <= WER_TARGET and right == len(reference.turns)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
