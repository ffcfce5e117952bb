"""Face detection and landmarks (MediaPipe's models on onnxruntime) on real photographs and on
rendered faces across the pose grid, where the renderer knows where the lips are.

Real photographs: skimage's astronaut (NASA, public domain; mouth centre read off the image by
eye at (224, 146), face about (175, 79) 98 px) and cameraman (face about (180, 122) 85 px),
each made into camera-like frames (scale, roll, placement, gain, noise:
`photo_frames`), and 12 face-free photographs.
"""

from __future__ import annotations

import cv2
import numpy as np
import onnx
import pytest
import skimage.data

from avsync.data.synth.detection import (
    POSE_GRID,
    POSE_SETTINGS,
    measure_landmarks,
    photo_frames,
    pose_grid,
)
from avsync.errors import MediaError
from avsync.media.landmarks import (
    DETECTOR_FILE,
    LIPS,
    MESH_FILE,
    MODELS_DIR,
    FaceModels,
    region_from_detection,
    region_from_landmarks,
    tile_grid,
)
from avsync.media.roi import Box

PHOTOS = {"astronaut": Box(175, 79, 98, 98), "camera": Box(180, 122, 85, 85)}
ASTRONAUT_MOUTH = (224, 146)
FACE_FREE = ["coffee", "chelsea", "rocket", "coins", "moon", "brick", "horse", "clock",
             "grass", "gravel", "page", "text"]


@pytest.fixture(scope="module")
def models() -> FaceModels:
    return FaceModels.shared()


def _gray(name: str) -> np.ndarray:
    image = getattr(skimage.data, name)()
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    return (image if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY)
            ).astype(np.uint8)


def _verified(models: FaceModels, gray: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Every detection (whole frame and all tiles) whose face mesh, refined once from its own
    landmarks, says a face is there: [(landmarks, presence)]."""
    out = []
    for detection in models.detect(gray, tiles=range(len(tile_grid(gray.shape)))):
        points, _ = models.landmarks(gray, region_from_detection(detection))
        points, presence = models.landmarks(gray, region_from_landmarks(points))
        if presence >= 0.5:
            out.append((points, presence))
    return out


def test_the_models_are_the_committed_conversion_with_their_licence() -> None:
    for name, inputs in ((DETECTOR_FILE, [1, 128, 128, 3]), (MESH_FILE, [1, 192, 192, 3])):
        model = onnx.load(str(MODELS_DIR / name))
        props = {p.key: p.value for p in model.metadata_props}
        assert props["license"].startswith("Apache-2.0")
        assert "mediapipe-0.10.21" in props["source"] and len(props["source_sha256"]) == 64
        shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        assert shape == inputs
        assert {n.domain for n in model.graph.node} <= {""}  # no custom operators
    assert "Apache License" in (MODELS_DIR / "LICENSE.mediapipe").read_text()
    assert sum(p.stat().st_size for p in MODELS_DIR.glob("*.onnx")) < 4_000_000


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_real_photographs_the_face_is_found_in_every_frame(models, name) -> None:
    gray, face = _gray(name), PHOTOS[name]
    found, lips_error = 0, []
    for frame, to_frame in photo_frames(gray, face, 100, seed=1):
        centre = to_frame @ [*face.center, 1.0]
        scale = float(np.hypot(*to_frame[:, 0]))
        faces = _verified(models, frame)
        near = [p for p, _ in faces
                if np.hypot(*(p[LIPS].mean(axis=0) - centre)) < 0.6 * scale * face.w]
        found += bool(near)
        if near and name == "astronaut":
            mouth = to_frame @ [*ASTRONAUT_MOUTH, 1.0]
            lips_error.append(np.hypot(*(near[0][LIPS].mean(axis=0) - mouth)) / (scale * face.w))
    assert found >= 99
    if lips_error:
        assert np.median(lips_error) < 0.03 and max(lips_error) < 0.05


def test_astronaut_landmarks_sit_on_her_features(models) -> None:
    gray = _gray("astronaut")
    (detection,) = models.detect(gray)
    assert detection.box.w == pytest.approx(98, abs=10)
    points, presence = models.landmarks(gray, region_from_detection(detection))
    assert presence > 0.99
    assert np.hypot(*(points[LIPS].mean(axis=0) - ASTRONAUT_MOUTH)) < 4
    assert points[61][0] < 210 and points[291][0] > 238  # her mouth corners (203 / 245)


@pytest.mark.parametrize("name", FACE_FREE)
def test_face_free_photographs_have_no_faces(models, name) -> None:
    assert _verified(models, _gray(name)) == []


def test_rendered_faces_across_the_pose_grid(models) -> None:
    """Yaw +-40, pitch +-20, roll +-20 degrees, each pose in plain and harsh light, small in
    the frame and upscaled: found on every frame, lips' centre within a few % of the face
    width (figures: bench/media.py)."""
    reports = measure_landmarks(list(pose_grid(seed=0, identities=3)), models)
    poses = len(POSE_GRID["yaw"]) * len(POSE_GRID["pitch"]) * len(POSE_GRID["roll"])
    assert sorted(reports) == sorted(POSE_SETTINGS)
    for report in reports.values():
        assert report.faces == poses
        assert report.rate >= 0.99, report
        median, p95, _ = report.error
        assert median <= 0.03 and p95 <= 0.065, report


def test_tiles_find_a_small_face_the_whole_frame_misses(models) -> None:
    gray = _gray("astronaut")
    frame = np.full((480, 640), 110, np.uint8)
    small = cv2.resize(gray, (320, 320), interpolation=cv2.INTER_AREA)  # face ~61 px, 10 %
    frame[150:470, 300:620] = small
    assert models.detect(frame) == []
    found = models.detect(frame, tiles=range(len(tile_grid(frame.shape))))
    assert len(found) == 1
    assert found[0].box.center == pytest.approx((300 + 0.625 * 224, 150 + 0.625 * 128), abs=8)


def test_tile_grid_covers_the_frame_with_overlap() -> None:
    tiles = tile_grid((480, 640))
    assert len(tiles) == 6 and all(side == 320 for _, _, side in tiles)
    assert max(x + s for x, _, s in tiles) == 640 and max(y + s for _, y, s in tiles) == 480
    assert tile_grid((144, 176)) == []  # too small to hold a readable face in a tile


def test_bad_frames_are_refused(models) -> None:
    with pytest.raises(MediaError, match="uint8 gray"):
        models.detect(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(MediaError, match="uint8 gray"):
        models.landmarks(np.zeros((10, 10), np.float32), region_from_landmarks(
            np.random.default_rng(0).uniform(0, 10, (468, 2))))
