"""How well the shipped face detector finds the rendered faces, against the renderer's truth.

Why: the server's `faces: "detect"` mode and `avsync transcribe` on arbitrary video find faces
with `avsync.media.faces.FaceDetector` (OpenCV's Haar cascade), and the bundled demo streams a
synthetic scene through it. A rendered face is only useful there if the cascade finds it on
(nearly) every frame *and* the mouth box derived from the detection
(`roi.mouth_box(detected face box)`) lands where the renderer put the mouth
(`face.true_mouth_box`, the fixed crop of the ROI convention carried through the head pose).

The check renders faces of the corpus's own identities (`make_speaker`, clip and scene
namespaces) with articulation from random phoneme strings (no espeak needed: the face, not the
voice, is under test), runs the detector on every frame's gray image and scores it:
detection rate over face-frames, derived mouth-box centre error (pixels) and size error
(|side / true side - 1|), and detections that match no face.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from avsync.data.synth.face import CANVAS, Lighting, render_clip_with_truth
from avsync.data.synth.speakers import SCENE, SPEAKER, make_speaker, rng_for
from avsync.data.synth.visemes import PHONEME_VISEMES, idle_track, segments_track
from avsync.errors import ConfigError
from avsync.media.faces import FaceDetector
from avsync.media.roi import Box, mouth_box
from avsync.timebase import FPS

DETECTION: int = 5  # rng stream tag of this check (speakers.py uses 1-4)
MATCH_RADIUS: float = 1.0  # a detection is a face's if its mouth centre is within this many
#                            true mouth sides of the face's (a farther one is no use anyway)
_PHONEMES: tuple[str, ...] = tuple(sorted(PHONEME_VISEMES))


@dataclass(frozen=True)
class Sample:
    """Rendered frames and, per frame, the true mouth box of every face in them.

    frames: (T, 160, 160·F, 3) uint8 RGB; truth: T lists of F boxes (frame pixels).
    """

    frames: np.ndarray
    truth: list[list[Box]]


@dataclass(frozen=True)
class DetectionReport:
    """Detection of rendered faces in one setting.

    faces: face-frames in the truth; found: those a detection matched; extra: detections that
    matched no face. centre_px and size_error are (median, 95th percentile, max) over the found
    faces: the derived mouth box's centre distance from the true one in pixels, and
    |derived side / true side - 1|. bias: medians of the derived box's centre offset
    (x, y pixels; y > 0 is too low) and of its side / the true side (a calibration check).
    """

    setting: str
    faces: int
    found: int
    extra: int
    centre_px: tuple[float, float, float]
    size_error: tuple[float, float, float]
    bias: tuple[float, float, float]

    @property
    def rate(self) -> float:
        return self.found / max(self.faces, 1)

    def to_json(self) -> dict:
        return {"setting": self.setting, "faces": self.faces, "found": self.found,
                "rate": round(self.rate, 4), "extra": self.extra,
                "centre_px": [round(v, 2) for v in self.centre_px],
                "size_error": [round(v, 4) for v in self.size_error],
                "bias": [round(v, 3) for v in self.bias]}

    def line(self) -> str:
        c, s = self.centre_px, self.size_error
        return (f"{self.setting:>14}: {self.found}/{self.faces} = {100 * self.rate:5.1f} %  "
                f"extra {self.extra}  centre px med {c[0]:.1f} p95 {c[1]:.1f} max {c[2]:.1f}  "
                f"size err med {100 * s[0]:.1f} % p95 {100 * s[1]:.1f} % max {100 * s[2]:.1f} %  "
                f"bias x {self.bias[0]:+.1f} y {self.bias[1]:+.1f} px side x{self.bias[2]:.3f}")


def _stats(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (float("nan"), float("nan"), float("nan"))
    v = np.asarray(values)
    return float(np.median(v)), float(np.percentile(v, 95)), float(v.max())


def _distance(a: Box, b: Box) -> float:
    return float(np.hypot(a.center[0] - b.center[0], a.center[1] - b.center[1]))


def score(setting: str, detected: Sequence[Sequence[Box]],
          truth: Sequence[Sequence[Box]]) -> DetectionReport:
    """Match each frame's derived mouth boxes to its true ones (nearest first, one to one).

    detected, truth: one list of mouth boxes per frame, pixels of the same frame.
    """
    faces = found = extra = 0
    centre, size, offsets = [], [], []
    for boxes, true in zip(detected, truth, strict=True):
        pairs = sorted((_distance(d, t), i, j) for i, d in enumerate(boxes)
                       for j, t in enumerate(true))
        used_d, used_t = set(), set()
        for dist, i, j in pairs:
            if i in used_d or j in used_t or dist > MATCH_RADIUS * true[j].w:
                continue
            used_d.add(i)
            used_t.add(j)
            centre.append(dist)
            size.append(abs(boxes[i].w / true[j].w - 1.0))
            offsets.append((boxes[i].center[0] - true[j].center[0],
                            boxes[i].center[1] - true[j].center[1], boxes[i].w / true[j].w))
        faces += len(true)
        found += len(used_t)
        extra += len(boxes) - len(used_d)
    bias = tuple(float(v) for v in np.median(offsets, axis=0)) if offsets else (float("nan"),) * 3
    return DetectionReport(setting, faces, found, extra, _stats(centre), _stats(size),
                           bias)  # type: ignore[arg-type]


def detected_mouths(frames: np.ndarray, detector: FaceDetector) -> list[list[Box]]:
    """The detector's derived mouth boxes per frame. frames: (T, H, W, 3) uint8 RGB."""
    out = []
    for frame in frames:
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        out.append([mouth_box(face) for face in detector.detect(gray)])
    return out


def _babble(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """(n_frames, 6) articulation of a random phoneme string filling the clip."""
    segments, t = [], 0.0
    while t < n_frames / FPS:
        length = float(rng.uniform(0.05, 0.16))
        segments.append((t, t + length, _PHONEMES[int(rng.integers(len(_PHONEMES)))]))
        t += length
    track = segments_track(segments, n_frames) + idle_track(rng, n_frames, 0.35)
    return np.clip(track, 0.0, 1.0)


def render_faces(seed: int, first: int, faces: int, n_frames: int, namespace: int = SPEAKER,
                 lighting: Lighting | None = None) -> Sample:
    """Speakers first … first+faces-1 of `namespace` side by side (a scene when faces > 1)."""
    rng = rng_for(seed, DETECTION, namespace, first)
    tiles: list[np.ndarray] = []
    truth: list[list] = [[] for _ in range(n_frames)]
    for f in range(faces):
        speaker = make_speaker(seed, first + f, namespace=namespace)
        frames, boxes = render_clip_with_truth(speaker.face, _babble(rng, n_frames), rng,
                                               lighting)
        tiles.append(frames)
        for k, box in enumerate(boxes):
            truth[k].append(Box(box.x + f * CANVAS, box.y, box.w, box.h))
    return Sample(np.concatenate(tiles, axis=2), truth)


def harsh_lighting(n_frames: int, frame: int) -> Lighting:
    """The corpus's lighting extremes (dim or bright, steep side light, most noise), varied."""
    k = frame % 4
    return Lighting(gain=np.full(n_frames, (0.85, 1.15, 0.85, 1.15)[k]),
                    angle=np.full(n_frames, k * np.pi / 2 + 0.3),
                    strength=np.full(n_frames, 0.28), noise=3.5)


def samples(setting: str, seed: int, items: int, n_frames: int) -> Iterator[Sample]:
    """The rendered samples of one setting: "clips" (one face, the corpus's identities),
    "scenes" (2-3 faces of the scene namespace side by side), "harsh light" (clips at the
    lighting extremes)."""
    for item in range(items):
        if setting == "clips":
            yield render_faces(seed, item, 1, n_frames)
        elif setting == "scenes":
            yield render_faces(seed, 3 * item, 2 + item % 2, n_frames, namespace=SCENE)
        elif setting == "harsh light":
            yield render_faces(seed, 1000 + item, 1, n_frames,
                               lighting=harsh_lighting(n_frames, item))
        else:
            raise ConfigError(f"unknown detection setting {setting!r}; use one of {SETTINGS}")


SETTINGS: tuple[str, ...] = ("clips", "scenes", "harsh light")


def measure_detection(detector: FaceDetector | None = None, seed: int = 0, items: int = 12,
                      n_frames: int = 10,
                      settings: Sequence[str] = SETTINGS) -> dict[str, DetectionReport]:
    """Detection rate and derived mouth-box error per setting over `items` identities (clips)
    or scenes of `n_frames` frames each."""
    detector = detector or FaceDetector()
    out = {}
    for setting in settings:
        detected: list[list[Box]] = []
        truth: list[list[Box]] = []
        for sample in samples(setting, seed, items, n_frames):
            detected += detected_mouths(sample.frames, detector)
            truth += sample.truth
        out[setting] = score(setting, detected, truth)
    return out


# --- landmarks over the pose grid (avsync.media.landmarks) ------------------------------------

POSE_GRID: dict[str, tuple[float, ...]] = {"yaw": (-40, -20, 0, 20, 40), "pitch": (-20, 0, 20),
                                           "roll": (-20, 0, 20)}
POSE_SETTINGS: tuple[str, ...] = ("plain", "harsh light", "small", "large")


@dataclass(frozen=True)
class PoseSample:
    """One rendered face at a known pose: gray frame (H, W) uint8, the true lips' centre
    (pixels of that frame) and face width (pixels), the pose (yaw, pitch, roll degrees) and
    the setting ("plain"; "harsh light": the corpus's lighting extremes; "small": the face
    in a frame 2.5 times its box, about 0.35 of the frame wide; "large": upscaled 2x)."""

    gray: np.ndarray
    lips: tuple[float, float]
    face_width: float
    pose: tuple[float, float, float]
    setting: str


def _place(frame: np.ndarray, lips: tuple[float, float], width: float, setting: str,
           rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float], float]:
    """Scale a rendered (160, 160) gray face into the setting's frame; truth moved with it."""
    if setting == "large":
        return (cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR),
                (2 * lips[0] + 0.5, 2 * lips[1] + 0.5), 2 * width)
    if setting == "small":
        side = int(2.5 * CANVAS)
        x, y = (int(v) for v in rng.integers(0, side - CANVAS, 2))
        canvas = cv2.copyMakeBorder(frame, y, side - CANVAS - y, x, side - CANVAS - x,
                                    cv2.BORDER_REPLICATE)
        return canvas, (lips[0] + x, lips[1] + y), width
    return frame, lips, width


def pose_grid(seed: int = 0, identities: int = 3,
              settings: Sequence[str] = POSE_SETTINGS) -> Iterator[PoseSample]:
    """Every pose of POSE_GRID in every setting, the identities (corpus speakers) taking
    turns, with a little random shift, scale and articulation per frame."""
    from avsync.data.synth.face import (
        FrameState,
        render_states,
        true_face_width,
        true_lips_centre,
    )

    rng = rng_for(seed, DETECTION, 7)
    faces = [make_speaker(seed, i).face for i in range(identities)]
    poses = [(y, p, r) for y in POSE_GRID["yaw"] for p in POSE_GRID["pitch"]
             for r in POSE_GRID["roll"]]
    for s, setting in enumerate(settings):
        for k, (yaw, pitch, roll) in enumerate(poses):
            face = faces[(k + s) % identities]
            state = FrameState(float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3)), roll,
                               float(rng.uniform(0.92, 1.08)), 0.0, 0.0, 0.0, 0.0, yaw, pitch)
            mouth = _babble(rng, 1)
            light = harsh_lighting(1, k) if setting == "harsh light" else None
            rgb = render_states(face, mouth, [state], rng, light)[0]
            gray, lips, width = _place(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY),
                                       true_lips_centre(face, state, mouth[0]),
                                       true_face_width(face, state), setting, rng)
            yield PoseSample(gray, lips, width, (yaw, pitch, roll), setting)


@dataclass(frozen=True)
class LandmarkReport:
    """Faces found and lips' centre error (fraction of the true face width: median, 95th
    percentile, max) over samples, with the worst pose."""

    setting: str
    faces: int
    found: int
    error: tuple[float, float, float]
    worst: tuple[float, float, float] | None

    @property
    def rate(self) -> float:
        return self.found / max(self.faces, 1)

    def to_json(self) -> dict:
        return {"setting": self.setting, "faces": self.faces, "found": self.found,
                "rate": round(self.rate, 4),
                "lips_error_of_face_width": [round(v, 4) for v in self.error],
                "worst_pose": self.worst}


def measure_landmarks(samples: Sequence[PoseSample], models=None, frames: int = 1
                      ) -> dict[str, LandmarkReport]:
    """Per setting: a face found (detector, then the face mesh from the detection and once more
    from its own landmarks, as tracking does on the next frame) and the lips' centre error.

    frames: how many frames the still face is tracked for (each runs the mesh again from the
    last landmarks, as `LandmarkTracker` does): 1 is a face's first frame, more what video
    settles to (turned faces: p95 4.5 % of the face width on the first frame, 3.9 % after
    three)."""
    from avsync.media.landmarks import (
        LIPS,
        FaceModels,
        region_from_detection,
        region_from_landmarks,
    )

    models = models or FaceModels.shared()
    found: dict[str, list[tuple[float, tuple]]] = {}
    counts: dict[str, int] = {}
    for sample in samples:
        counts[sample.setting] = counts.get(sample.setting, 0) + 1
        errors = found.setdefault(sample.setting, [])
        detections = models.detect(sample.gray)
        if not detections:
            continue
        points, presence = models.landmarks(sample.gray, region_from_detection(detections[0]))
        for _ in range(max(1, frames)):
            points, presence = models.landmarks(sample.gray, region_from_landmarks(points))
        if presence < 0.5:
            continue
        x, y = points[LIPS].mean(axis=0)
        error = float(np.hypot(x - sample.lips[0], y - sample.lips[1])) / sample.face_width
        errors.append((error, sample.pose))
    out = {}
    for setting, errors in found.items():
        values = [e for e, _ in errors]
        worst = max(errors)[1] if errors else None
        out[setting] = LandmarkReport(setting, counts[setting], len(errors), _stats(values),
                                      worst)
    return out


def photo_frames(gray: np.ndarray, face: Box, count: int, seed: int = 0,
                 size: tuple[int, int] = (640, 480)) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Frames made from one real photograph, as a camera might see the person in it: (gray
    frame of `size` (W, H), the (2, 3) affine from photo to frame pixels). face: where the
    face is in the photo (pixels). Each frame scales the photo so that the face is 0.12-0.4
    of the frame width (77-256 px of 640), rolls it by up to +-20 degrees, places the face
    anywhere it fits whole, changes gain (0.6-1.4) and offset, and adds sensor noise (sigma
    2-6 grey levels); the photo's surroundings are a flat grey."""
    rng = np.random.default_rng(seed)
    width, height = size
    for _ in range(count):
        scale = float(rng.uniform(0.12, 0.4)) * width / face.w
        matrix = cv2.getRotationMatrix2D(face.center, float(rng.uniform(-20, 20)), scale)
        half = 0.75 * scale * face.w
        target = (float(rng.uniform(half, width - half)), float(rng.uniform(half, height - half)))
        matrix[:, 2] += np.array(target) - np.array(face.center)
        frame = cv2.warpAffine(gray, matrix, size, flags=cv2.INTER_AREA if scale < 1
                               else cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=int(rng.integers(40, 200)))
        gain, offset = float(rng.uniform(0.6, 1.4)), float(rng.uniform(-20, 20))
        noisy = frame * gain + offset + rng.normal(0, rng.uniform(2, 6), frame.shape)
        yield np.clip(noisy, 0, 255).astype(np.uint8), matrix


@dataclass(frozen=True)
class TurningClip:
    """Faces side by side, each in a (240, 200) cell: turning heads (yaw +-40, pitch +-15,
    roll +-12 degrees), two blinks each, speech-like mouths, optionally one face hidden.

    frames: (T, 240, 200·F) uint8 gray; lips: (F, T, 2) true lips' centres (frame pixels);
    widths: (F, T) true face widths; hidden: (first, last) frames face 0 is covered, or None.
    """

    frames: np.ndarray
    lips: np.ndarray
    widths: np.ndarray
    hidden: tuple[int, int] | None

    CELL = (240, 200)

    def cell_of(self, x: float) -> int:
        return int(x // self.CELL[1])


def turning_faces(speakers: Sequence[int], n_frames: int, seed: int = 0,
                  hide: tuple[int, int] | None = None, turning: bool = True) -> TurningClip:
    """A `TurningClip` of corpus speakers; turning=False: still heads and mouths (only blinks
    and sensor noise change). hide: frames [first, last) in which face 0 is covered grey."""
    from avsync.data.synth.face import (
        FrameState,
        render_states,
        true_face_width,
        true_lips_centre,
    )

    tiles, lips, widths = [], [], []
    pad_y, pad_x = (TurningClip.CELL[0] - CANVAS) // 2, (TurningClip.CELL[1] - CANVAS) // 2
    t = np.arange(n_frames)
    for f, speaker in enumerate(speakers):
        identity = make_speaker(seed, speaker).face
        rng = rng_for(seed, DETECTION, 11, f)
        amount = 1.0 if turning else 0.0
        yaw = amount * 40 * np.sin(2 * np.pi * t / 60 + f)
        pitch = amount * 15 * np.sin(2 * np.pi * t / 45 + 2 * f)
        roll = amount * 12 * np.sin(2 * np.pi * t / 70)
        blink = np.zeros(max(n_frames, 80))
        blink[20:25], blink[70:74] = [0.5, 1, 1, 1, 0.5], [0.6, 1, 1, 0.6]
        states = [FrameState(amount * 3 * np.sin(k / 9), amount * 2 * np.cos(k / 7), roll[k],
                             1.0, blink[k], 0, 0, 0, yaw[k], pitch[k]) for k in t]
        mouth = _babble(rng, n_frames) if turning else np.full((n_frames, 6), 0.2)
        rgb = render_states(identity, mouth, states, rng)
        gray = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in rgb])
        tiles.append(np.pad(gray, ((0, 0), (pad_y, pad_y), (pad_x, pad_x)), mode="edge"))
        offset = np.array([pad_x + f * TurningClip.CELL[1], pad_y])
        lips.append([np.add(true_lips_centre(identity, s, m), offset)
                     for s, m in zip(states, mouth, strict=True)])
        widths.append([true_face_width(identity, s) for s in states])
    frames = np.concatenate(tiles, axis=2)
    if hide is not None:
        frames[hide[0]:hide[1], pad_y:pad_y + CANVAS, pad_x:pad_x + CANVAS] = 128
    return TurningClip(frames, np.array(lips), np.array(widths), hide)


@dataclass(frozen=True)
class TrackScore:
    """Tracking over a TurningClip: id switches (ids beyond the first per face), frames each
    face went unreported, and the lips' error (fraction of face width: median, p95, max)."""

    id_switches: int
    ids: tuple[tuple[int, ...], ...]
    missing: tuple[tuple[int, ...], ...]
    error: tuple[float, float, float]

    def to_json(self) -> dict:
        return {"id_switches": self.id_switches, "ids": [list(i) for i in self.ids],
                "frames_unreported": [len(m) for m in self.missing],
                "lips_error_of_face_width": [round(v, 4) for v in self.error]}


def score_tracks(clip: TurningClip, per_frame: Sequence[Sequence]) -> TrackScore:
    """Score a tracker's faces per frame (objects with .track_id and .lips) on a clip."""
    faces = len(clip.lips)
    ids: list[list[int]] = [[] for _ in range(faces)]
    missing: list[list[int]] = [[] for _ in range(faces)]
    errors = []
    for k, tracked in enumerate(per_frame):
        seen = set()
        for face in tracked:
            cell = clip.cell_of(face.lips[0])
            if not 0 <= cell < faces:
                continue
            seen.add(cell)
            if face.track_id not in ids[cell]:
                ids[cell].append(face.track_id)
            x, y = clip.lips[cell, k]
            errors.append(float(np.hypot(face.lips[0] - x, face.lips[1] - y))
                          / clip.widths[cell, k])
        for cell in range(faces):
            if cell not in seen:
                missing[cell].append(k)
    return TrackScore(sum(len(i) - 1 for i in ids if i), tuple(map(tuple, ids)),
                      tuple(map(tuple, missing)), _stats(errors))
