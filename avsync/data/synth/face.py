"""A rendered talking face: per-speaker identity, per-frame head motion, blinks, lighting, noise.

Why a drawn face and not a photo: the mouth must follow the articulation track exactly, and each
synthetic speaker needs a distinct, consistent look (skin, face shape, lips, hair, background) so
that speaker-disjoint splits mean something. Everything is drawn with OpenCV's anti-aliased
polygons at twice the output size and area-downsampled, so edges are smooth and sub-pixel motion
is visible.

Geometry follows the project's ROI convention (`avsync.media.roi`): the face is centred in its
square frame and the mouth sits at (0.50, 0.70) of it, i.e. (80, 112) in a 160×160 frame, so the
fixed mouth crop of training catches it; head motion is kept small enough that it never leaves
that crop. Coordinates below are in a 160×160 canonical frame.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np

from avsync.data.synth.mouth import JAW_DROP, MouthShape, draw_mouth, mouth_shape
from avsync.data.synth.pose import (  # noqa: F401  (CANVAS, MOUTH_X/Y: this module's API too)
    CANVAS,
    MOUTH_X,
    MOUTH_Y,
    project_head,
    unproject_head,
)
from avsync.data.synth.visemes import JAW, ArticulationStyle, smooth_noise
from avsync.media.roi import Box, mouth_box, whole_frame_face
from avsync.timebase import FPS

SUPERSAMPLE: int = 2
_SHIFT: int = 4  # fixed-point bits for cv2's sub-pixel polygon drawing

SKIN_TONES = ((255, 224, 196), (241, 194, 160), (224, 172, 135), (198, 142, 105),
              (171, 116, 82), (141, 90, 60), (110, 68, 45), (84, 52, 36))
HAIR_COLOURS = ((20, 17, 15), (45, 32, 24), (84, 58, 38), (140, 100, 60), (196, 160, 98),
                (150, 70, 40), (160, 160, 158), (70, 50, 40))
IRIS_COLOURS = ((70, 45, 25), (95, 65, 35), (60, 95, 140), (80, 110, 70), (110, 90, 50))
HAIR_STYLES = ("short", "long", "bald", "bun", "fringe")
BACKGROUNDS = ("gradient", "blobs", "stripes", "tiles")

Colour = tuple[int, int, int]


@dataclass(frozen=True)
class FaceIdentity:
    """Everything that makes one synthetic speaker look like themselves (pixels: 160 canvas)."""

    skin: Colour
    lip: Colour
    hair: Colour
    iris: Colour
    shirt: Colour
    background: Colour
    background_accent: Colour
    background_style: str
    background_seed: int
    face_half_width: float
    face_half_height: float
    face_center_y: float
    chin_taper: float  # 0 round jaw … 1 pointed chin
    eye_y: float
    eye_spacing: float  # half the distance between the eye centres
    eye_size: float  # half width of an eye
    brow_thickness: float
    brow_arch: float
    nose_length: float
    nose_width: float
    mouth_width: float  # at rest, lip corner to corner
    upper_lip: float  # thickness at rest
    lower_lip: float
    hair_style: str
    hairline: float  # y of the hairline at the centre
    glasses: bool
    blink_rate: float  # blinks per second
    motion: float  # head-motion amplitude scale, about 1
    style: ArticulationStyle
    # the `varied` appearance (`vary_identity`): this speaker's habitual head pose towards the
    # camera, place and size in the frame, and harsher lighting; the defaults are the frontal,
    # centred, evenly lit face of the `standard` appearance
    base_yaw: float = 0.0  # degrees, as FrameState.yaw
    base_pitch: float = 0.0
    base_roll: float = 0.0
    offset_x: float = 0.0  # pixels
    offset_y: float = 0.0
    size: float = 1.0  # head scale
    harsh_light: bool = False  # side light, cast shadows and colour casts (`random_lighting`)

    @property
    def posed(self) -> bool:
        """Has this face a habitual pose, place or size (the `varied` appearance), about which
        it turns and nods? The standard face keeps its frontal, centred frames."""
        return (self.base_yaw, self.base_pitch, self.base_roll, self.offset_x, self.offset_y,
                self.size) != (0.0, 0.0, 0.0, 0.0, 0.0, 1.0)

    def to_json(self) -> dict:
        """Every field; the `varied` appearance's only where they differ from the standard
        face's, so a standard corpus's JSON is what it was before they existed."""
        standard = FaceIdentity.__dataclass_fields__
        out = {k: getattr(self, k) for k, f in standard.items() if k != "style"
               and (k not in VARIED_FIELDS or getattr(self, k) != f.default)}
        out["style"] = vars(self.style).copy()
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}


def _jitter(rng: np.random.Generator, colour: Colour, amount: float) -> Colour:
    return tuple(int(np.clip(c + rng.normal(0, amount), 0, 255)) for c in colour)  # type: ignore


def _mix(a: Colour, b: Colour, t: float) -> Colour:
    return tuple(int(round((1 - t) * x + t * y)) for x, y in zip(a, b, strict=True))  # type: ignore


def random_identity(rng: np.random.Generator, feminine: bool) -> FaceIdentity:
    """A new face; `feminine` nudges face size, lips, brows and hair towards typical female looks.

    Proportions are a real head's at the scale the fixed mouth sets (eye line to mouth about
    one mouth width, eyes about halfway between the crown, at the frame's top edge, and the
    chin), so a face detector trained on photographs sees the eye-nose-mouth layout it knows.
    """
    skin = _jitter(rng, SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], 6)
    lip = _mix(skin, (150, 40, 55) if feminine and rng.random() < 0.5 else (120, 50, 50),
               float(rng.uniform(0.35, 0.6)))
    styles = ("long", "bun", "fringe", "short") if feminine else ("short", "bald", "fringe", "short")
    grey = rng.uniform(60, 200)
    background = tuple(int(0.55 * grey + 0.45 * c) for c in rng.uniform(30, 230, 3))
    half_width = float(rng.uniform(44, 50) - (2 if feminine else 0))
    half_height, chin = float(rng.uniform(71, 76)), float(rng.uniform(142, 147))
    return FaceIdentity(
        skin=skin, lip=lip, hair=_jitter(rng, HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))], 8),
        iris=IRIS_COLOURS[int(rng.integers(len(IRIS_COLOURS)))],
        shirt=tuple(int(v) for v in rng.integers(20, 220, 3)),  # type: ignore[arg-type]
        background=background,  # type: ignore[arg-type]
        background_accent=_jitter(rng, background, 40),  # type: ignore[arg-type]
        background_style=BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))],
        background_seed=int(rng.integers(2**31)),
        face_half_width=half_width, face_half_height=half_height,
        face_center_y=chin - half_height, chin_taper=float(rng.uniform(0.15, 0.55)),
        eye_y=float(rng.uniform(65, 69)), eye_spacing=float(rng.uniform(19, 23)),
        eye_size=float(rng.uniform(7.5, 9.5)),
        brow_thickness=float(rng.uniform(2.4, 3.2) if feminine else rng.uniform(3.0, 4.4)),
        brow_arch=float(rng.uniform(1.0, 4.0)), nose_length=float(rng.uniform(23, 27)),
        nose_width=float(rng.uniform(8, 11)), mouth_width=float(rng.uniform(39, 47)),
        upper_lip=float(rng.uniform(3.0, 4.5) + (0.6 if feminine else 0)),
        lower_lip=float(rng.uniform(4.0, 6.0) + (0.6 if feminine else 0)),
        hair_style=styles[int(rng.integers(len(styles)))], hairline=float(rng.uniform(22, 31)),
        glasses=bool(rng.random() < 0.2), blink_rate=float(rng.uniform(0.15, 0.45)),
        motion=float(rng.uniform(0.6, 1.3)),
        style=ArticulationStyle(jaw=float(rng.uniform(0.8, 1.2)),
                                width=float(rng.uniform(0.8, 1.2)),
                                round=float(rng.uniform(0.8, 1.2))))


APPEARANCES: tuple[str, ...] = ("standard", "varied")
VARIED_FIELDS = frozenset({"base_yaw", "base_pitch", "base_roll", "offset_x", "offset_y", "size",
                           "harsh_light"})
LIP_TINTS: tuple[Colour, ...] = ((120, 50, 50), (150, 40, 55), (175, 85, 95), (95, 52, 42),
                                 (175, 20, 45), (135, 70, 105))


def vary_identity(rng: np.random.Generator, identity: FaceIdentity) -> FaceIdentity:
    """The `varied` appearance of a face: what held-out real speakers differ by.

    Why: lip readers trained on one lip look, one frontal pose and soft light double their
    error when any of these changes (issue 10). Lips get any tint from pale to lipstick at any
    contrast with the skin, 0.6-1.5x the thickness, a wider range of widths and articulation
    strength down to half (mumblers); the head a habitual yaw/pitch/roll towards the camera,
    a place and size in the frame; the light may be harsh (`random_lighting`). Drawn after
    everything `random_identity` draws, so the standard face of a speaker is unchanged."""
    tint = LIP_TINTS[int(rng.integers(len(LIP_TINTS)))]
    style = ArticulationStyle(jaw=float(rng.uniform(0.5, 1.3)), width=float(rng.uniform(0.6, 1.3)),
                              round=float(rng.uniform(0.6, 1.3)))
    return replace(
        identity, lip=_mix(identity.skin, tint, float(rng.uniform(0.15, 0.75))),
        upper_lip=identity.upper_lip * float(rng.uniform(0.6, 1.5)),
        lower_lip=identity.lower_lip * float(rng.uniform(0.6, 1.5)),
        mouth_width=float(rng.uniform(35, 51)), style=style,
        base_yaw=float(rng.uniform(-28, 28)), base_pitch=float(rng.uniform(-12, 12)),
        base_roll=float(rng.uniform(-12, 12)), offset_x=float(rng.uniform(-10, 10)),
        offset_y=float(rng.uniform(-8, 6)), size=float(rng.uniform(0.85, 1.12)),
        harsh_light=bool(rng.random() < 0.6))


@dataclass(frozen=True)
class FrameState:
    """What changes from frame to frame besides the mouth."""

    dx: float  # head translation, pixels
    dy: float
    angle: float  # head roll, degrees
    scale: float
    blink: float  # 0 open … 1 closed
    gaze_x: float  # iris offset, pixels
    gaze_y: float
    brow: float  # brow raise, pixels
    yaw: float = 0.0  # head turn about the vertical axis, degrees (> 0: turns to its left,
    #                   the image's right); up to +-40 (`project_head`)
    pitch: float = 0.0  # nod, degrees (> 0: chin down); up to +-20


def frame_states(rng: np.random.Generator, identity: FaceIdentity, n_frames: int) -> list[FrameState]:
    """Smooth head motion (within ±3 px, ±3°, ±3 %), blinks at the identity's rate, gaze drift."""
    m = identity.motion
    dx = 2.5 * m * smooth_noise(rng, n_frames, 0.5)
    dy = 2.0 * m * smooth_noise(rng, n_frames, 0.5)
    angle = 2.5 * m * smooth_noise(rng, n_frames, 0.4)
    scale = 1.0 + 0.025 * m * smooth_noise(rng, n_frames, 0.3)
    gx = 1.5 * smooth_noise(rng, n_frames, 0.6)
    gy = 0.6 * smooth_noise(rng, n_frames, 0.6)
    brow = 1.0 * np.clip(smooth_noise(rng, n_frames, 0.5), 0, None)
    blink = _blinks(rng, n_frames, identity.blink_rate)
    yaw, pitch = np.zeros(n_frames), np.zeros(n_frames)
    if identity.posed:  # a varied face: turns and nods about its pose
        yaw = identity.base_yaw + 4.0 * m * smooth_noise(rng, n_frames, 0.3)
        pitch = identity.base_pitch + 2.5 * m * smooth_noise(rng, n_frames, 0.3)
        dx, dy = dx + identity.offset_x, dy + identity.offset_y
        angle, scale = angle + identity.base_roll, scale * identity.size
    return [FrameState(float(x), float(y), float(a), float(s), float(b), float(h), float(v),
                       float(r), yaw=float(w), pitch=float(p))
            for x, y, a, s, b, h, v, r, w, p in zip(dx, dy, angle, scale, blink, gx, gy, brow,
                                                    yaw, pitch, strict=True)]


def _blinks(rng: np.random.Generator, n_frames: int, rate: float) -> np.ndarray:
    """Eyelid closure per frame: blinks of 4-6 frames at random intervals (about `rate` per s)."""
    out = np.zeros(n_frames)
    t = float(rng.exponential(1.0 / rate)) * FPS
    while t < n_frames:
        length = int(rng.integers(4, 7))
        shape = np.sin(np.linspace(0, np.pi, length + 2)[1:-1]) ** 0.7
        start = int(t)
        out[start:start + length] = shape[:max(0, min(length, n_frames - start))]
        t += length + float(rng.exponential(1.0 / rate)) * FPS + 0.2 * FPS
    return out


def render_background(identity: FaceIdentity, size: int = CANVAS * SUPERSAMPLE) -> np.ndarray:
    """The speaker's static backdrop, (size, size, 3) uint8 RGB, deterministic per identity."""
    rng = np.random.default_rng(identity.background_seed)
    base = np.array(identity.background, np.float32)
    accent = np.array(identity.background_accent, np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if identity.background_style == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = 0.5 + 0.5 * (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) * 1.4
    elif identity.background_style == "blobs":
        t = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), size / 12)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    elif identity.background_style == "stripes":
        period = rng.uniform(0.12, 0.3)
        t = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * (xx + 0.3 * yy) / period))
        t = cv2.GaussianBlur(t.astype(np.float32), (0, 0), 1.5)
    else:
        cells = int(rng.integers(3, 7))
        t = ((np.floor(xx * cells) + np.floor(yy * cells)) % 2).astype(np.float32)
        t = cv2.GaussianBlur(t, (0, 0), 2.0)
    image = base[None, None] * (1 - t[..., None]) + accent[None, None] * t[..., None]
    return np.clip(image, 0, 255).astype(np.uint8)


def head_pivot(identity: FaceIdentity) -> tuple[float, float]:
    """The point the head rolls and scales about (canonical pixels), a little above the chin."""
    return MOUTH_X, identity.face_center_y + identity.face_half_height - 33


def head_pose(identity: FaceIdentity, state: FrameState) -> np.ndarray:
    """(2, 3) float64 affine map from canonical to output pixels for this frame's head pose."""
    pose = cv2.getRotationMatrix2D(head_pivot(identity), state.angle, state.scale)
    pose[:, 2] += np.array([state.dx, state.dy])
    return pose


def true_mouth_box(identity: FaceIdentity, state: FrameState) -> Box:
    """Where the mouth box of the ROI convention really is on this frame (160-pixel canvas).

    The fixed crop `mouth_box(whole_frame_face(160, 160))` carried through the head pose: its
    centre moved by the pose, its side scaled with the head. What a face detector's derived
    mouth box should match (`detection.py`).
    """
    fixed = mouth_box(whole_frame_face(CANVAS, CANVAS))
    centre = project_head(identity, state, np.array([fixed.center]))[0]
    cx, cy = head_pose(identity, state) @ np.array([*centre, 1.0])
    side = fixed.w * state.scale
    return Box(float(cx - side / 2), float(cy - side / 2), side, side)


def true_lips_centre(identity: FaceIdentity, state: FrameState,
                     mouth: np.ndarray) -> tuple[float, float]:
    """Where the drawn lips' centre is on this frame (160-pixel canvas): the mean of their
    outer and inner contours (as a face mesh's lip points are) through the head pose.
    mouth: (6,) articulation parameters of the frame."""
    f = identity
    shape = mouth_shape((MOUTH_X, MOUTH_Y), f.mouth_width, f.upper_lip, f.lower_lip, mouth)
    contours = np.concatenate([shape.upper_outer, shape.upper_inner, shape.lower_inner,
                               shape.lower_outer])
    moved = project_head(f, state, contours) @ head_pose(f, state)[:, :2].T \
        + head_pose(f, state)[:, 2]
    return float(moved[:, 0].mean()), float(moved[:, 1].mean())


def true_face_width(identity: FaceIdentity, state: FrameState) -> float:
    """The face's width on this frame (pixels of the 160 canvas): the outline's, scaled."""
    return 2 * identity.face_half_width * state.scale


SHADE_ONE: int = 128  # the value of a gain map that leaves a pixel as it is


def _blob(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.exp(-(x * x + y * y))


def render_shading(identity: FaceIdentity, size: int = CANVAS * SUPERSAMPLE) -> np.ndarray:
    """The face's relief as a gain map: (size, size) uint8, SHADE_ONE = unchanged.

    Why: a flat-filled cartoon face lacks the light-dark layout a face detector trained on
    photographs looks for (Haar features: eye sockets and brows darker than the cheeks below,
    the nose bridge lighter than the eye corners beside it, the sides of the nose and the
    face's edges darker than its middle). The map darkens the sockets, the sides of the nose
    and the rim of the face (a rounded form turning away from the light), lifts the cheeks,
    forehead and nose bridge, and is 1 outside the head (with its jaw fully open). Canonical
    supersampled pixels; `_Painter.shade` moves it with the head.
    """
    f = identity
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / SUPERSAMPLE
    dx = xx - MOUTH_X
    ax = np.abs(dx)
    v = (yy - f.face_center_y) / f.face_half_height
    taper = 1 - f.chin_taper * np.clip(v, 0, None) ** 3
    rim = (dx / (f.face_half_width * taper)) ** 2 + v**2
    gain = 1.06 - 0.32 * np.clip(rim, 0, 1.0) ** 2
    tip_y = f.eye_y + f.nose_length
    for side in (-1, 1):
        ex = MOUTH_X + side * f.eye_spacing
        gain *= 1 - 0.45 * _blob((xx - ex) / (1.45 * f.eye_size), (yy - f.eye_y + 2.5) / (0.95 * f.eye_size))
    gain *= 1 - 0.22 * _blob((ax - 0.62 * f.nose_width) / 3.0, (yy - f.eye_y - 0.55 * f.nose_length) / (0.45 * f.nose_length))
    gain *= 1 + 0.10 * _blob(dx / 3.0, (yy - f.eye_y - 0.4 * f.nose_length) / (0.55 * f.nose_length))
    gain *= 1 + 0.08 * _blob((ax - 0.55 * f.face_half_width) / 10.0, (yy - f.eye_y - 18) / 9.0)
    gain *= 1 + 0.05 * _blob(dx / 28.0, (yy - f.eye_y + 26) / 12.0)
    gain *= 1 - 0.10 * _blob(dx / 6.0, (yy - tip_y - 4.0) / 3.0)
    mask = np.zeros((size, size), np.uint8)
    outline = np.round(_head_outline(f, 1.0) * SUPERSAMPLE * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [outline], 255, cv2.LINE_AA, _SHIFT)
    inside = cv2.GaussianBlur(mask, (0, 0), 1.5).astype(np.float32) / 255
    gain = 1 + inside * (gain - 1)
    return np.clip(np.round(gain * SHADE_ONE), 0, 255).astype(np.uint8)


class _Painter:
    """Draws canonical-frame polygons onto a supersampled canvas through the head pose."""

    def __init__(self, image: np.ndarray, identity: FaceIdentity, state: FrameState) -> None:
        self.image, self.identity, self.state = image, identity, state
        k = SUPERSAMPLE
        self.matrix = head_pose(identity, state) * k
        self.body = np.array([[k, 0, k * state.dx * 0.5], [0, k, k * state.dy * 0.3]])
        self.turned = state.yaw != 0 or state.pitch != 0

    def _points(self, pts: np.ndarray, body: bool) -> np.ndarray:
        m = self.body if body else self.matrix
        if self.turned and not body:
            pts = project_head(self.identity, self.state, pts)
        out = pts @ m[:, :2].T + m[:, 2]
        return np.round(out * (1 << _SHIFT)).astype(np.int32)

    def fill(self, pts: np.ndarray, colour: Colour, body: bool = False,
             flat: bool = False) -> None:
        """flat: only roll, scale and shift (for the head's silhouette, which a turn keeps)."""
        if flat:
            pts = np.round((pts @ self.matrix[:, :2].T + self.matrix[:, 2])
                           * (1 << _SHIFT)).astype(np.int32)
            cv2.fillPoly(self.image, [pts], colour, cv2.LINE_AA, _SHIFT)
            return
        cv2.fillPoly(self.image, [self._points(pts, body)], colour, cv2.LINE_AA, _SHIFT)

    def shade(self, gain: np.ndarray) -> None:
        """Multiply the canvas by a canonical gain map (`render_shading`) moved with the head."""
        warp = self.matrix.copy()
        warp[:, :2] /= SUPERSAMPLE  # the map is in supersampled canonical pixels already
        size = self.image.shape[1], self.image.shape[0]
        if self.turned:
            moved = self._turned_gain(gain)
        else:
            moved = cv2.warpAffine(gain, warp, size, flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=SHADE_ONE)
        cv2.multiply(self.image, cv2.merge((moved, moved, moved)), dst=self.image,
                     scale=1.0 / SHADE_ONE)

    def _turned_gain(self, gain: np.ndarray) -> np.ndarray:
        """The gain map seen on the turned head: each output pixel looks up the canonical
        point it shows (`unproject_head`); pixels off the face's front are left unshaded."""
        height, width = self.image.shape[:2]
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
        inverse = cv2.invertAffineTransform(self.matrix)  # output -> canonical (turned) pixels
        cx = inverse[0, 0] * xx + inverse[0, 1] * yy + inverse[0, 2]
        cy = inverse[1, 0] * xx + inverse[1, 1] * yy + inverse[1, 2]
        sx, sy, front = unproject_head(self.identity, self.state, cx, cy)
        map_x = np.where(front, sx * SUPERSAMPLE, -10).astype(np.float32)
        map_y = np.where(front, sy * SUPERSAMPLE, -10).astype(np.float32)
        return cv2.remap(gain, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=SHADE_ONE)

    def line(self, pts: np.ndarray, colour: Colour, width: float, closed: bool = False) -> None:
        thickness = max(1, int(round(width * SUPERSAMPLE)))
        cv2.polylines(self.image, [self._points(pts, False)], closed, colour, thickness,
                      cv2.LINE_AA, _SHIFT)


def _ellipse(cx: float, cy: float, ax: float, ay: float, start: float = 0.0,
             stop: float = 2 * np.pi, n: int = 48) -> np.ndarray:
    return np.array([cx, cy]) + np.array([ax, ay]) * _arc(float(start), float(stop), n)


@lru_cache(maxsize=256)
def _arc(start: float, stop: float, n: int) -> np.ndarray:
    """(n, 2) unit-circle points from angle `start` to `stop` (cached: drawn every frame)."""
    theta = np.linspace(start, stop, n)
    out = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    out.flags.writeable = False
    return out


def _shade(colour: Colour, factor: float) -> Colour:
    return tuple(min(255, max(0, int(c * factor))) for c in colour)  # type: ignore[return-value]


def _head_outline(identity: FaceIdentity, jaw: float) -> np.ndarray:
    """Face contour: an ellipse whose lower half tapers to the chin and drops with the jaw."""
    a, b, cy = identity.face_half_width, identity.face_half_height, identity.face_center_y
    theta = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    s = np.sin(theta)
    lower = np.clip(s, 0, None)
    x = MOUTH_X + a * np.cos(theta) * (1 - identity.chin_taper * lower**3)
    y = cy + b * s
    y += JAW_DROP * jaw * np.clip((y - (MOUTH_Y - 6)) / (cy + b - MOUTH_Y + 6), 0, None)
    return np.stack([x, y], axis=1)


def _draw_hair_back(p: _Painter, f: FaceIdentity) -> None:
    if f.hair_style == "long":
        a, cy = f.face_half_width, f.face_center_y
        pts = np.concatenate([_ellipse(MOUTH_X, cy - 8, a * 1.18, f.face_half_height * 1.08,
                                       np.pi, 2 * np.pi),
                              [[MOUTH_X + a * 1.25, 170.0], [MOUTH_X - a * 1.25, 170.0]]])
        p.fill(pts, _shade(f.hair, 0.85))


def _draw_body(p: _Painter, f: FaceIdentity) -> None:
    neck_w = f.face_half_width * 0.48
    top = f.face_center_y + f.face_half_height * 0.55
    p.fill(np.array([[MOUTH_X - neck_w, top], [MOUTH_X + neck_w, top],
                     [MOUTH_X + neck_w + 4, 170], [MOUTH_X - neck_w - 4, 170]]),
           _shade(f.skin, 0.78), body=True)
    chin = f.face_center_y + f.face_half_height  # the jaw's shadow on the neck
    p.fill(np.array([[MOUTH_X - neck_w, top], [MOUTH_X + neck_w, top],
                     [MOUTH_X + neck_w + 1, chin + 9], [MOUTH_X, chin + 12],
                     [MOUTH_X - neck_w - 1, chin + 9]]), _shade(f.skin, 0.55), body=True)
    shoulder = f.face_center_y + f.face_half_height + 2
    p.fill(np.array([[-20, 175], [-20, shoulder + 14], [MOUTH_X - neck_w - 2, shoulder],
                     [MOUTH_X, shoulder + 8], [MOUTH_X + neck_w + 2, shoulder],
                     [180, shoulder + 14], [180, 175]], float), f.shirt, body=True)


def _draw_hair_front(p: _Painter, f: FaceIdentity) -> None:
    if f.hair_style == "bald":
        return
    a, b, cy = f.face_half_width, f.face_half_height, f.face_center_y
    hairline = f.hairline + (10 if f.hair_style == "fringe" else 0)
    outer = _ellipse(MOUTH_X, cy, a * 1.07, b * 1.06, np.pi * 0.93, np.pi * 2.07)
    inner = _ellipse(MOUTH_X, hairline + 0.55 * a, a * 0.98, 0.55 * a, np.pi * 2.0, np.pi * 1.0)
    inner[:, 1] = np.minimum(inner[:, 1], cy - 0.15 * b)
    p.fill(np.concatenate([outer, inner]), f.hair)
    strands = np.random.default_rng(f.background_seed + 1)  # fixed per identity
    for _ in range(9):
        r = strands.uniform(0.93, 1.03)
        start = strands.uniform(1.08, 1.4) * np.pi
        arc = _ellipse(MOUTH_X, cy + 2, a * r, b * r, start, start + strands.uniform(0.25, 0.5) * np.pi, 16)
        p.line(arc, _shade(f.hair, strands.choice([0.75, 1.25])), 0.6)
    if f.hair_style == "bun":
        p.fill(_ellipse(MOUTH_X, cy - b * 1.05, a * 0.38, a * 0.3), _shade(f.hair, 0.9))


def _draw_ears(p: _Painter, f: FaceIdentity) -> None:
    for side in (-1, 1):
        p.fill(_ellipse(MOUTH_X + side * f.face_half_width * 0.97, f.eye_y + 9, 5.5, 11.0),
               _shade(f.skin, 0.88))


def _draw_eyes(p: _Painter, f: FaceIdentity, s: FrameState) -> None:
    """Eyeballs, irises and lids (drawn before the shading, which darkens them in their sockets)."""
    w, h = f.eye_size, f.eye_size * 0.48
    sclera, lash = _mix(f.skin, (232, 228, 224), 0.55), _mix(_shade(f.hair, 0.4), (16, 12, 10), 0.6)
    for side in (-1, 1):
        ex, ey = MOUTH_X + side * f.eye_spacing, f.eye_y
        p.fill(_ellipse(ex, ey, w, h), sclera)
        ix = ex + float(np.clip(s.gaze_x, -(w - h), w - h))
        p.fill(_ellipse(ix, ey + s.gaze_y * 0.5, h * 0.95, h * 0.95, n=24), f.iris)
        p.fill(_ellipse(ix, ey + s.gaze_y * 0.5, h * 0.45, h * 0.45, n=16), (12, 10, 10))
        p.fill(_ellipse(ix + 1.2, ey - 1.2, 0.9, 0.9, n=10), (250, 250, 250))
        upper = _ellipse(ex, ey, w * 1.02, h * 1.05, np.pi, 2 * np.pi, n=20)
        lid = upper.copy()
        lid[:, 1] += s.blink * 2.1 * h * np.sin(np.linspace(0, np.pi, len(lid)))
        lid_top = upper.copy()
        lid_top[:, 1] -= 0.9 * h
        p.fill(np.concatenate([lid_top, lid[::-1]]), f.skin)
        p.line(lid, lash, 1.6)
        p.line(_ellipse(ex, ey, w, h, 0.15 * np.pi, 0.85 * np.pi, n=12), _shade(f.skin, 0.75), 0.6)


def _draw_brows(p: _Painter, f: FaceIdentity, s: FrameState) -> None:
    # darker than the skin whatever the hair: the brow line is a detector's strongest cue
    r, g, b = (min(h, int(0.55 * c)) for h, c in zip(_mix(f.hair, (28, 20, 16), 0.45), f.skin,
                                                       strict=True))
    colour = (r, g, b)
    for side in (-1, 1):
        ex = MOUTH_X + side * f.eye_spacing
        brow = _ellipse(ex, f.eye_y - 4.0 - s.brow, f.eye_size * 1.25, f.brow_arch + 5.5,
                        1.1 * np.pi, 1.9 * np.pi, n=16)
        p.line(brow, colour, f.brow_thickness)


def _draw_nose_bridge(p: _Painter, f: FaceIdentity) -> None:
    """Bridge line and tip (before the shading, which models the nose's sides)."""
    tip_y = f.eye_y + f.nose_length
    p.line(np.array([[MOUTH_X - 3, f.eye_y + 5], [MOUTH_X - 3.5, tip_y - 6],
                     [MOUTH_X - 2, tip_y - 2]]), _shade(f.skin, 0.9), 0.8)
    p.fill(_ellipse(MOUTH_X, tip_y - 1.0, f.nose_width * 0.5, 3.2, n=20), _shade(f.skin, 1.04))


def _draw_nostrils(p: _Painter, f: FaceIdentity) -> None:
    tip_y = f.eye_y + f.nose_length
    p.line(_ellipse(MOUTH_X, tip_y - 1.5, f.nose_width * 0.55, 3.5, 0.15 * np.pi, 0.85 * np.pi, 12),
           _shade(f.skin, 0.7), 0.8)
    for side in (-1, 1):
        p.fill(_ellipse(MOUTH_X + side * f.nose_width * 0.3, tip_y + 0.8, 1.7, 0.9, n=12),
               _shade(f.skin, 0.5))


def _draw_folds(p: _Painter, f: FaceIdentity, mouth: MouthShape) -> None:
    """Nasolabial folds from the nose wings to just outside the lip corners."""
    tip_y = f.eye_y + f.nose_length
    for side, corner in ((-1, mouth.upper_outer[0]), (1, mouth.upper_outer[-1])):
        start = np.array([MOUTH_X + side * (f.nose_width * 0.8), tip_y + 1.0])
        end = start + 0.6 * (corner + np.array([side * 3.5, 0.0]) - start)
        mid = 0.5 * (start + end) + np.array([side * 1.5, 0.0])
        p.line(np.stack([start, mid, end]), _shade(f.skin, 0.92), 0.7)


def _draw_glasses(p: _Painter, f: FaceIdentity) -> None:
    frame = (30, 28, 30)
    for side in (-1, 1):
        ex = MOUTH_X + side * f.eye_spacing
        p.line(_ellipse(ex, f.eye_y + 0.5, f.eye_size * 1.45, f.eye_size * 1.0, n=32), frame,
               1.2, closed=True)
    p.line(np.array([[MOUTH_X - f.eye_spacing + f.eye_size * 1.45, f.eye_y - 1],
                     [MOUTH_X + f.eye_spacing - f.eye_size * 1.45, f.eye_y - 1]]), frame, 1.1)


def render_face(background: np.ndarray, identity: FaceIdentity, state: FrameState,
                mouth: np.ndarray, shading: np.ndarray | None = None) -> np.ndarray:
    """One supersampled frame: (2·160, 2·160, 3) uint8 RGB (no lighting or noise yet).

    background: from `render_background`; mouth: (6,) articulation parameters in [0, 1];
    shading: `render_shading(identity)` (computed here when None; pass it for a whole clip).
    """
    image = background.copy()
    p = _Painter(image, identity, state)
    f = identity
    _draw_hair_back(p, f)
    _draw_body(p, f)
    _draw_ears(p, f)
    if p.turned:  # the side of the head a turn shows, inside the silhouette
        p.fill(_head_outline(f, float(mouth[JAW])), _shade(f.skin, 0.9), flat=True)
    p.fill(_head_outline(f, float(mouth[JAW])), f.skin)
    _draw_eyes(p, f, state)
    _draw_nose_bridge(p, f)
    p.shade(render_shading(f) if shading is None else shading)
    _draw_hair_front(p, f)
    _draw_brows(p, f, state)
    _draw_nostrils(p, f)
    shape = mouth_shape((MOUTH_X, MOUTH_Y), f.mouth_width, f.upper_lip, f.lower_lip, mouth)
    _draw_folds(p, f, shape)
    draw_mouth(p, shape, mouth, f.lip, f.skin)
    if f.glasses:
        _draw_glasses(p, f)
    return image


@dataclass(frozen=True)
class Lighting:
    """Per-frame global gain and a linear gradient (direction, strength), plus sensor noise;
    harsh light adds a colour cast and a soft-edged cast shadow over part of the frame."""

    gain: np.ndarray  # (T,)
    angle: np.ndarray  # (T,) radians
    strength: np.ndarray  # (T,)
    noise: float  # Gaussian sigma in grey levels
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)  # per-channel (R, G, B) gain
    shadow: float = 0.0  # darkening inside the shadow, 0 none … 1 black
    shadow_angle: float = 0.0  # radians: the direction the shadow's edge faces
    shadow_edge: float = 0.0  # where the edge lies along that direction, frame units from centre


def random_lighting(rng: np.random.Generator, n_frames: int, harsh: bool = False) -> Lighting:
    """Soft light from any side; `harsh`: strong side light, often a cast shadow, and the
    colour casts of tungsten, daylight or fluorescent tubes (the `varied` appearance)."""
    if harsh:
        side = float(rng.choice([0.0, np.pi])) + float(rng.normal(0, 0.35))
        cast = tuple(float(c) for c in np.clip(1 + rng.normal(0, 0.08, 3), 0.8, 1.2))
        return Lighting(gain=1.0 + float(rng.uniform(-0.25, 0.15)) + 0.05 * smooth_noise(rng, n_frames, 0.2),
                        angle=side + 0.2 * smooth_noise(rng, n_frames, 0.1),
                        strength=float(rng.uniform(0.25, 0.55)) + 0.03 * smooth_noise(rng, n_frames, 0.2),
                        noise=float(rng.uniform(1.0, 5.0)), cast=cast,  # type: ignore[arg-type]
                        shadow=float(rng.uniform(0.2, 0.55)) if rng.random() < 0.6 else 0.0,
                        shadow_angle=float(rng.uniform(0, 2 * np.pi)),
                        shadow_edge=float(rng.uniform(0.05, 0.35)))
    return Lighting(gain=1.0 + float(rng.uniform(-0.1, 0.1)) + 0.05 * smooth_noise(rng, n_frames, 0.2),
                    angle=float(rng.uniform(0, 2 * np.pi)) + 0.3 * smooth_noise(rng, n_frames, 0.1),
                    strength=float(rng.uniform(0.05, 0.25)) + 0.03 * smooth_noise(rng, n_frames, 0.2),
                    noise=float(rng.uniform(1.0, 3.5)))


_YY, _XX = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32) / CANVAS - 0.5


def downsample(supersampled: np.ndarray) -> np.ndarray:
    """(320, 320, 3) → (160, 160, 3) uint8 by area averaging (the renderer's anti-aliasing)."""
    return cv2.resize(supersampled, (CANVAS, CANVAS), interpolation=cv2.INTER_AREA)


def apply_lighting(frames: np.ndarray, lighting: Lighting, rng: np.random.Generator,
                   first: int = 0) -> np.ndarray:
    """Each frame's gain and gradient, then sensor noise: (T, 160, 160, 3) uint8 in place.

    first: index into the lighting arrays of frames[0] (for clips lit in chunks)."""
    k = slice(first, first + len(frames))
    angle = lighting.angle[k, None, None].astype(np.float32)
    field = lighting.gain[k, None, None].astype(np.float32) * (
        1 + 2 * lighting.strength[k, None, None].astype(np.float32)
        * (np.cos(angle) * _XX + np.sin(angle) * _YY))
    # luma noise (what survives 4:2:0 chroma subsampling), the same on the three channels
    noise = rng.standard_normal(frames.shape[:3], dtype=np.float32) * np.float32(lighting.noise)
    if lighting.shadow:  # a soft edge ~5 % of the frame wide
        across = np.cos(lighting.shadow_angle) * _XX + np.sin(lighting.shadow_angle) * _YY
        inside = 1 / (1 + np.exp((lighting.shadow_edge - across) / 0.025))
        field = field * (1 - lighting.shadow * inside).astype(np.float32)
    lit = frames * field[..., None]
    if lighting.cast != (1.0, 1.0, 1.0):
        lit *= np.asarray(lighting.cast, np.float32)
    lit += noise[..., None]
    np.clip(lit, 0, 255, out=lit)
    frames[...] = lit.astype(np.uint8)
    return frames


_LIGHT_CHUNK = 64  # frames lit at once: bounds the float32 working memory of long scenes


def render_clip(identity: FaceIdentity, mouth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A talking-face clip: mouth (T, 6) articulation → (T, 160, 160, 3) uint8 RGB frames."""
    return render_clip_with_truth(identity, mouth, rng)[0]


def render_clip_with_truth(identity: FaceIdentity, mouth: np.ndarray, rng: np.random.Generator,
                           lighting: Lighting | None = None) -> tuple[np.ndarray, list[Box]]:
    """`render_clip` (same frames for the same rng) plus each frame's `true_mouth_box`.

    lighting: this instead of a random one (drawn from `rng` when None)."""
    n = len(mouth)
    states = frame_states(rng, identity, n)
    frames = render_states(identity, mouth, states, rng, lighting)
    return frames, [true_mouth_box(identity, state) for state in states]


def render_states(identity: FaceIdentity, mouth: np.ndarray, states: list[FrameState],
                  rng: np.random.Generator, lighting: Lighting | None = None) -> np.ndarray:
    """Frames of given head states (any pose: yaw +-40, pitch +-20, roll +-20 degrees):
    mouth (T, 6), states (T) -> (T, 160, 160, 3) uint8 RGB. lighting: drawn from rng if None.
    The truth of each frame: `true_lips_centre`, `true_face_width`, `true_mouth_box`."""
    n = len(mouth)
    background, shading = render_background(identity), render_shading(identity)
    lighting = random_lighting(rng, n, identity.harsh_light) if lighting is None else lighting
    out = np.empty((n, CANVAS, CANVAS, 3), np.uint8)
    for k in range(n):
        out[k] = downsample(render_face(background, identity, states[k], mouth[k], shading))
    for first in range(0, n, _LIGHT_CHUNK):
        apply_lighting(out[first:first + _LIGHT_CHUNK], lighting, rng, first)
    return out
