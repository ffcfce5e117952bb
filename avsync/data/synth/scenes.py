"""Multi-face scenes for active-speaker detection (ASD), labelled like AVA-ActiveSpeaker.

A scene is 2-3 rendered faces side by side (each a 160×160 face box of the ROI convention, so
the frame is 320×160 or 480×160), one audio track, and turns: the faces take turns to speak
with silences between (sometimes a long pause), never overlapping. Faces that are not speaking
still blink, move their heads and make small non-speech mouth movements, so motion alone does
not say who is talking; only lips in sync with the voice do.

Scenes are evaluation material (ASD, who said what, the demo's sample): their faces and voices
come from a namespace of their own, and with the `english` text source their sentences from its
test split, which no training text, tokenizer or LM holds.

Written under `<out>/scenes/`:
    <video_id>.mp4    the scene
    <video_id>.json   faces (entity id, box, voice, face) and turns (entity, start, end, text,
                      word timings), so a demo can check who said what
    labels.csv        AVA-ActiveSpeaker rows, no header, one per face per frame:
                      video_id,frame_timestamp,x1,y1,x2,y2,label,entity_id
                      (boxes normalised to [0, 1]; label SPEAKING_AUDIBLE or NOT_SPEAKING;
                      frame k has timestamp k/25 s and covers [k/25, (k+1)/25) s)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avsync.data.synth.clips import level_and_noise, place, speak, word_timings
from avsync.data.synth.face import CANVAS, render_clip
from avsync.data.synth.speakers import RATE_WPM, SCENE, Speaker, make_speaker, rng_for
from avsync.data.synth.visemes import idle_track, segments_track
from avsync.data.synth.workers import parallel_map
from avsync.media.roi import Box
from avsync.timebase import FPS, SAMPLE_RATE, SAMPLES_PER_STEP

SCENE_DIR = "scenes"
LABELS_FILE = "labels.csv"
SPEAKING, NOT_SPEAKING = "SPEAKING_AUDIBLE", "NOT_SPEAKING"
MIN_SPEAKING_OVERLAP: float = 0.02  # s of a frame's 40 ms that must be speech to label it
IDLE_AMOUNT: float = 1.0  # non-speech mouth motion of every face
MAX_FACES_PER_SCENE: int = 3
SENTENCE_SPLIT = "test"  # the text source's split a scene's sentences come from


@dataclass(frozen=True)
class Turn:
    entity: int  # which face speaks
    start: float  # s, first word's start in the scene
    end: float  # s, last word's end
    text: str
    words: tuple  # WordTiming in scene seconds
    phonemes: tuple[tuple[float, float, str], ...]  # (start s, end s, phoneme) in scene seconds


@dataclass(frozen=True)
class Scene:
    video_id: str
    faces: tuple[Speaker, ...]
    turns: tuple[Turn, ...]
    frames: np.ndarray  # (T, 160, 160·faces, 3) uint8 RGB
    audio: np.ndarray  # (T·640,) float32 @ 16 kHz

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    def boxes(self) -> list[tuple[float, float, float, float]]:
        """Each face's box (x1, y1, x2, y2) normalised to the frame, in the face-box convention."""
        width = CANVAS * len(self.faces)
        return [Box(f * CANVAS, 0.0, CANVAS, CANVAS).normalized(width, CANVAS)
                for f in range(len(self.faces))]


def _plan_turns(rng: np.random.Generator, faces: list[Speaker], text: str,
                lead: int) -> tuple[list[Turn], list[tuple[int, np.ndarray]], int, float]:
    """Who says what when: turns, audio pieces (start sample, samples), end sample, noise."""
    turns, pieces, cursor, end, noise = [], [], lead, lead, 0.0
    speaker = int(rng.integers(len(faces)))
    for _ in range(int(rng.integers(3, 7))):
        speech = speak(rng, faces[speaker].voice, text, SENTENCE_SPLIT)
        audio, noise_std = level_and_noise(speech.audio, rng)
        noise = noise or noise_std
        offset = cursor / SAMPLE_RATE
        words = word_timings(speech, offset)
        turns.append(Turn(speaker, offset + speech.words[0].start, offset + speech.words[-1].end,
                          " ".join(w.word for w in speech.words), words,
                          tuple((offset + p.start, offset + p.end, p.phoneme)
                                for p in speech.phonemes)))
        pieces.append((cursor, audio))
        end = cursor + len(audio)
        pause = rng.uniform(1.2, 2.5) if rng.random() < 0.25 else rng.uniform(0.25, 1.0)
        cursor = end + int(pause * SAMPLE_RATE)
        if rng.random() < 0.8:  # usually someone else answers; sometimes the same face goes on
            speaker = int((speaker + rng.integers(1, len(faces))) % len(faces))
    return turns, pieces, end, noise


def make_scene(seed: int, index: int, text: str, appearance: str = "standard",
               engines: tuple[str, ...] = ("espeak",), rate_wpm: tuple[int, int] = RATE_WPM
               ) -> Scene:
    """Scene `index` of a corpus with `seed` (deterministic whatever else is generated); its
    faces' voices, looks and rates as the corpus's speakers (`make_speaker`)."""
    rng = rng_for(seed, SCENE, index)
    n_faces = int(rng.integers(2, MAX_FACES_PER_SCENE + 1))
    faces = [make_speaker(seed, index * MAX_FACES_PER_SCENE + f, namespace=SCENE,
                          prefix=f"scene{index:05d}-", appearance=appearance,
                          engines=engines, rate_wpm=rate_wpm)
             for f in range(n_faces)]
    lead = int(rng.uniform(0.3, 0.8) * SAMPLE_RATE)
    turns, pieces, end, noise = _plan_turns(rng, faces, text, lead)
    n_frames = -(-(end + int(rng.uniform(0.3, 0.8) * SAMPLE_RATE)) // SAMPLES_PER_STEP)
    audio = place(pieces, n_frames * SAMPLES_PER_STEP, noise, rng)
    tiles = []
    for f, face in enumerate(faces):
        segments = [p for t in turns if t.entity == f for p in t.phonemes]
        mouth = segments_track(segments, n_frames, face.face.style)
        mouth = np.clip(mouth + idle_track(rng, n_frames, IDLE_AMOUNT), 0.0, 1.0)
        tiles.append(render_clip(face.face, mouth, rng))
    return Scene(video_id=f"scene{index:05d}", faces=tuple(faces), turns=tuple(turns),
                 frames=np.concatenate(tiles, axis=2), audio=audio)


def speaking_labels(turns: tuple[Turn, ...], n_faces: int, n_frames: int) -> np.ndarray:
    """(n_faces, n_frames) bool: the face speaks for at least MIN_SPEAKING_OVERLAP of the frame."""
    start = np.arange(n_frames) / FPS
    out = np.zeros((n_faces, n_frames), bool)
    for turn in turns:
        overlap = np.minimum(start + 1 / FPS, turn.end) - np.maximum(start, turn.start)
        out[turn.entity] |= overlap >= MIN_SPEAKING_OVERLAP
    return out


def label_rows(scene: Scene) -> list[str]:
    """AVA-ActiveSpeaker CSV lines of a scene, frame-major, one per face per frame."""
    labels = speaking_labels(scene.turns, len(scene.faces), scene.n_frames)
    boxes = scene.boxes()
    rows = []
    for k in range(scene.n_frames):
        for f, (x1, y1, x2, y2) in enumerate(boxes):
            rows.append(f"{scene.video_id},{k / FPS:.2f},{x1:.4f},{y1:.4f},{x2:.4f},{y2:.4f},"
                        f"{SPEAKING if labels[f, k] else NOT_SPEAKING},{scene.video_id}:{f}")
    return rows


def scene_json(scene: Scene) -> dict:
    return {
        "video_id": scene.video_id, "fps": FPS, "sample_rate": SAMPLE_RATE,
        "width": CANVAS * len(scene.faces), "height": CANVAS, "frames": scene.n_frames,
        "faces": [{"entity_id": f"{scene.video_id}:{f}", "box": list(box), **face.to_json()}
                  for f, (face, box) in enumerate(zip(scene.faces, scene.boxes(), strict=True))],
        "turns": [{"entity_id": f"{scene.video_id}:{t.entity}", "start": round(t.start, 3),
                   "end": round(t.end, 3), "text": t.text,
                   "words": [[w.word, w.start, w.end] for w in t.words]} for t in scene.turns],
    }


def write_scene(scene: Scene, mp4: Path) -> None:
    """The scene's video to `mp4` and its faces and turns (`scene_json`) beside it (.json)."""
    from avsync.media.encode import write_mp4

    write_mp4(mp4, scene.frames, scene.audio)
    mp4.with_suffix(".json").write_text(json.dumps(scene_json(scene), indent=1) + "\n")


SceneJob = tuple[int, int, str, str, str, tuple[str, ...], tuple[int, int]]


def _write_scene(job: SceneJob) -> tuple[str, float, list[str]]:
    """Make and write one scene (runs in a worker). job: (seed, index, text source, out dir,
    appearance, engines, rate_wpm). Returns (video id, seconds, its CSV rows)."""
    seed, index, text, out, appearance, engines, rate_wpm = job
    scene = make_scene(seed, index, text, appearance, engines, rate_wpm)
    write_scene(scene, Path(out) / f"{scene.video_id}.mp4")
    return scene.video_id, len(scene.audio) / SAMPLE_RATE, label_rows(scene)


def generate_scenes(seed: int, count: int, out: Path, text: str = "mixed", workers: int = 1,
                    progress: bool = True, appearance: str = "standard",
                    engines: tuple[str, ...] = ("espeak",), rate_wpm: tuple[int, int] = RATE_WPM
                    ) -> tuple[int, float]:
    """Write `count` scenes and their labels under `out/scenes`. Returns (scenes, seconds)."""
    directory = Path(out) / SCENE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    jobs: list[SceneJob] = [(seed, i, text, str(directory), appearance, engines, rate_wpm)
                            for i in range(count)]
    results = sorted(parallel_map(_write_scene, jobs, workers, progress, "scene"))
    rows = [row for _, _, scene_rows in results for row in scene_rows]
    (directory / LABELS_FILE).write_text("".join(f"{row}\n" for row in rows))
    return len(results), sum(seconds for _, seconds, _ in results)
