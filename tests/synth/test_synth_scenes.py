"""Multi-face ASD scenes: AVA-ActiveSpeaker rows, labels that agree with the turns, real video."""

from __future__ import annotations

import csv
import json

import numpy as np

from avsync.data.synth.face import CANVAS
from avsync.data.synth.measure import audio_energy, mouth_opening
from avsync.data.synth.scenes import NOT_SPEAKING, SPEAKING, Turn, speaking_labels
from avsync.media.decode import decode_media
from avsync.timebase import FPS, SAMPLES_PER_STEP


def load(tiny_corpus) -> tuple[dict, list[list[str]]]:
    directory = tiny_corpus.root / "scenes"
    meta = json.loads((directory / "scene00000.json").read_text())
    rows = list(csv.reader((directory / "labels.csv").open()))
    return meta, rows


def test_one_row_per_face_per_frame_with_sane_boxes(tiny_corpus) -> None:
    meta, rows = load(tiny_corpus)
    n_faces, n_frames = len(meta["faces"]), meta["frames"]
    assert tiny_corpus.summary.scenes == 1 and 2 <= n_faces <= 3
    assert len(rows) == n_faces * n_frames
    seen = set()
    for video_id, stamp, x1, y1, x2, y2, label, entity in rows:
        assert video_id == "scene00000" and label in (SPEAKING, NOT_SPEAKING)
        face = int(entity.split(":")[1])
        box = [float(v) for v in (x1, y1, x2, y2)]
        assert box == [round(b, 4) for b in meta["faces"][face]["box"]]
        assert 0 <= box[0] < box[2] <= 1 and box[1] == 0 and box[3] == 1
        assert abs((box[2] - box[0]) - 1 / n_faces) < 1e-3
        frame = round(float(stamp) * FPS)
        assert abs(frame / FPS - float(stamp)) < 1e-9
        seen.add((frame, entity))
    assert len(seen) == len(rows)


def test_labels_agree_with_the_turns(tiny_corpus) -> None:
    meta, rows = load(tiny_corpus)
    n_faces, n_frames = len(meta["faces"]), meta["frames"]
    turns = tuple(Turn(int(t["entity_id"].split(":")[1]), t["start"], t["end"], t["text"], (), ())
                  for t in meta["turns"])
    expected = speaking_labels(turns, n_faces, n_frames)
    got = np.zeros_like(expected)
    for _, stamp, *_, label, entity in rows:
        got[int(entity.split(":")[1]), round(float(stamp) * FPS)] = label == SPEAKING
    assert np.array_equal(got, expected)
    assert got.sum(axis=0).max() == 1  # turns never overlap
    assert 0.2 < got.any(axis=0).mean() < 0.9  # speech and silence
    assert len({t.entity for t in turns}) >= 2
    for turn in meta["turns"]:
        words = turn["words"]
        assert " ".join(w[0] for w in words) == turn["text"]
        assert abs(words[0][1] - turn["start"]) < 0.01 and abs(words[-1][2] - turn["end"]) < 0.01


def test_the_scene_video_and_who_moves_their_lips(tiny_corpus) -> None:
    meta, _ = load(tiny_corpus)
    media = decode_media(tiny_corpus.root / "scenes" / "scene00000.mp4")
    n_faces = len(meta["faces"])
    assert media.frames.shape == (meta["frames"], CANVAS, CANVAS * n_faces)
    assert len(media.audio) == meta["frames"] * SAMPLES_PER_STEP
    energy = audio_energy(media.audio, len(media.frames))
    opening = [mouth_opening(media.frames[:, :, f * CANVAS:(f + 1) * CANVAS])
               for f in range(n_faces)]
    right = 0
    for turn in meta["turns"]:
        face = int(turn["entity_id"].split(":")[1])
        span = slice(int(turn["start"] * FPS), int(turn["end"] * FPS) + 1)
        corr = [np.corrcoef(o[span], energy[span])[0, 1] if o[span].std() > 0 else 0.0
                for o in opening]
        right += int(np.argmax(corr) == face)
    assert right >= 0.75 * len(meta["turns"])  # the speaker's lips follow the voice


def test_english_scenes_speak_test_sentences_only() -> None:
    """Scenes are evaluation material: with open English their sentences come from the test
    split, which no training text, tokenizer or LM holds."""
    from avsync.data.synth.english import english_sentences
    from avsync.data.synth.scenes import make_scene

    def texts(split: str) -> set[str]:
        return {" ".join(w.word for w in s) for s in english_sentences(split)}

    scene = make_scene(0, 3, "english")
    spoken = {turn.text for turn in scene.turns}
    assert spoken and spoken <= texts("test") and not spoken & texts("train")
