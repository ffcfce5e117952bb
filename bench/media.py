"""Media-layer speed, in one run: decoding, mouth cropping, face detection and tracking.

    .venv/bin/python bench/media.py [--seconds 10] [--repeats 5] [--out bench/results/media.json]

Every figure is a median over repeats in this one process, next to a baseline measured the
same way, and the ratio of the two:
1. decode: `decode_media` (video + audio, onto the 25 fps / 16 kHz grid) of a 160x160 25 fps
   H.264 + AAC clip, frames per second, against a bare PyAV loop that only decodes the video
   frames to gray arrays;
2. live container stream: `ContainerStreamDecoder` on the same clip as webm (VP8 + Opus) in
   4 kB pieces, frames per second, against `decode_media` of that webm file;
3. crop: `crop_mouths` to 96x96 from 160x160 frames, frames per second;
4. face detection: `FaceDetector.detect` on a 160x160 LRS-like frame and a 640x480 frame
   (the astronaut photo), milliseconds per frame, against OpenCV's cascade searching every
   face size from its 20 px minimum (the default min_face limits the search);
5. tracking: `FaceTracker.update` per frame at detect_every=5 against detecting every frame;
6. faces (issue 11): the landmark path (`LandmarkTracker` + the mean-face crop, 96 px) per face
   per frame in tracking mode against today's Haar path (`FaceTracker` + the face-box crop) on
   the same frames, and each part alone (detector on the whole frame, plus one tile, face
   mesh, crop); then quality, no timing: the face found on camera-like frames of two real
   photographs, on the synthetic pose grid (yaw +-40, pitch +-20, roll +-20 degrees, in four
   settings) with the lips' centre error as a fraction of the face width, and id switches
   on a two-face clip with turns, blinks and an occlusion, for both paths.
OpenCV and onnxruntime run on one thread (cv2.setNumThreads(1); the face models are loaded
with one thread) so the numbers are per core.

    .venv/bin/python bench/media.py --sections faces   # only the faces section (merged into
                                                       # the existing results file)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import skimage.data
from record import write_result  # bench/record.py

from avsync.data.synth.detection import (
    measure_landmarks,
    photo_frames,
    pose_grid,
    score_tracks,
    turning_faces,
)
from avsync.media.container_stream import ContainerStreamDecoder
from avsync.media.decode import decode_media
from avsync.media.encode import write_mp4
from avsync.media.face_tracking import LandmarkTracker, face_box_from_landmarks
from avsync.media.faces import FaceDetector, FaceTracker, TrackerConfig
from avsync.media.landmarks import (
    FaceModels,
    region_from_detection,
    region_from_landmarks,
    tile_grid,
)
from avsync.media.roi import (
    MEAN_FACE,
    Box,
    Face,
    crop_face,
    crop_mouth,
    crop_mouths,
    mouth_box,
    whole_frame_face,
)
from avsync.timebase import FPS, ROI_STORED, SAMPLE_RATE

RESULTS = Path(__file__).resolve().parent / "results" / "media.json"


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds)


def talking_clip(seconds: float, size: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """A face-like moving texture with sensor noise, and speech-like audio (seeded)."""
    rng = np.random.default_rng(0)
    frames = round(seconds * FPS)
    face = cv2.resize(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)[20:230, 120:330],
                      (size, size), interpolation=cv2.INTER_AREA).astype(np.float64)
    video = np.stack([np.roll(face, (round(3 * np.sin(t / 7)), round(2 * np.cos(t / 5))),
                              axis=(0, 1)) + rng.normal(0, 3, face.shape) for t in range(frames)])
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    audio = 0.2 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
    return np.clip(video, 0, 255).astype(np.uint8), audio.astype(np.float32)


def bare_pyav_gray(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for frame in container.decode(video=0)
                   if frame.to_ndarray(format="gray") is not None)


def write_webm(path: Path, frames: np.ndarray, audio: np.ndarray) -> None:
    from fractions import Fraction

    with av.open(str(path), "w") as out:
        video = out.add_stream("libvpx", rate=FPS)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        sound = out.add_stream("libopus", rate=48_000, layout="mono")
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="gray")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        upsampled = np.repeat(audio, 3)
        for start in range(0, len(upsampled), 960):
            piece = av.AudioFrame.from_ndarray(upsampled[None, start:start + 960], format="flt",
                                               layout="mono")
            piece.sample_rate, piece.pts = 48_000, start
            piece.time_base = Fraction(1, 48_000)
            out.mux(sound.encode(piece))
        out.mux(sound.encode(None))


def stream_webm(data: bytes) -> int:
    decoder = ContainerStreamDecoder()
    count = 0
    for start in range(0, len(data), 4096):
        decoder.push(data[start:start + 4096])
        count += len(decoder.poll().frames)
    return count + len(decoder.close().frames)


def bench_decode(root: Path, seconds: float, repeats: int) -> dict:
    frames, audio = talking_clip(seconds)
    mp4, webm = root / "clip.mp4", root / "clip.webm"
    write_mp4(mp4, frames, audio)
    write_webm(webm, frames, audio)
    count = len(frames)
    ours = count / median_seconds(lambda: decode_media(mp4), repeats)
    bare = count / median_seconds(lambda: bare_pyav_gray(mp4), repeats)
    stream = count / median_seconds(lambda: stream_webm(webm.read_bytes()), repeats)
    webm_file = count / median_seconds(lambda: decode_media(webm), repeats)
    crop = count / median_seconds(
        lambda: crop_mouths(frames, whole_frame_face(160, 160), ROI_STORED), repeats)
    return {
        "clip": {"seconds": seconds, "frames": count, "size": "160x160", "fps": FPS},
        "decode_media_mp4_frames_per_s": round(ours, 1),
        "bare_pyav_video_only_frames_per_s": round(bare, 1),
        "decode_media_vs_bare_ratio": round(ours / bare, 3),
        "container_stream_webm_frames_per_s": round(stream, 1),
        "decode_media_webm_frames_per_s": round(webm_file, 1),
        "stream_vs_file_ratio": round(stream / webm_file, 3),
        "crop_mouths_96_frames_per_s": round(crop, 1),
    }


def detection_frames() -> dict[str, np.ndarray]:
    photo = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    lrs = cv2.resize(photo[30:190, 145:305], (160, 160), interpolation=cv2.INTER_AREA)
    vga = np.full((480, 640), 120, np.uint8)
    vga[:, 64:576] = cv2.resize(photo, (512, 480), interpolation=cv2.INTER_AREA)
    return {"160x160": lrs, "640x480": vga}


def bench_detection(repeats: int) -> dict:
    detector = FaceDetector()
    config = detector.config
    cascade = cv2.CascadeClassifier(
        str(Path(cv2.data.haarcascades) / config.cascade))
    results = {}
    for name, gray in detection_frames().items():
        def full(gray: np.ndarray = gray) -> object:
            return cascade.detectMultiScale(cv2.equalizeHist(gray), config.scale_factor,
                                            config.min_neighbors, minSize=(20, 20))

        ours = median_seconds(lambda gray=gray: [detector.detect(gray) for _ in range(10)],
                              repeats) / 10
        base = median_seconds(lambda: [full() for _ in range(10)], repeats) / 10
        clip = [np.roll(gray, (k % 5, k % 3), axis=(0, 1)) for k in range(50)]
        every = median_seconds(lambda clip=clip: track(clip, 1), repeats) / len(clip)
        fifth = median_seconds(lambda clip=clip: track(clip, 5), repeats) / len(clip)
        results[name] = {
            "faces_found": len(detector.detect(gray)),
            "detect_ms": round(ours * 1000, 2),
            "opencv_all_sizes_ms": round(base * 1000, 2),
            "detect_vs_all_sizes_ratio": round(ours / base, 3),
            "tracker_detect_every_5_ms_per_frame": round(fifth * 1000, 2),
            "tracker_detect_every_frame_ms_per_frame": round(every * 1000, 2),
            "tracker_every_5_vs_every_frame_ratio": round(fifth / every, 3),
        }
    return results


def track(clip: list[np.ndarray], every: int) -> None:
    tracker = FaceTracker(FaceDetector(), TrackerConfig(detect_every=every))
    for gray in clip:
        tracker.update(gray)


PHOTO_FACES = {"astronaut": Box(175, 79, 98, 98), "camera": Box(180, 122, 85, 85)}


def moving_photo(frames: int, size: tuple[int, int]) -> list[np.ndarray]:
    """The astronaut drifting and bobbing in a frame of `size` (W, H) with sensor noise."""
    rng = np.random.default_rng(2)
    photo = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    width, height = size
    scale = 0.3 * width / PHOTO_FACES["astronaut"].w  # the face 0.3 of the frame width
    out = []
    for t in range(frames):
        matrix = cv2.getRotationMatrix2D((224, 128), 8 * np.sin(t / 11), scale)
        matrix[:, 2] += (width / 2 - 224 + 20 * np.sin(t / 13), height / 2 - 128 + 8 * np.cos(t / 7))
        frame = cv2.warpAffine(photo, matrix, size, borderValue=110).astype(np.float64)
        out.append(np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8))
    return out


def landmark_path(clip: list[np.ndarray]) -> int:
    tracker, crops = LandmarkTracker(max_faces=1), 0
    for gray in clip:
        for face in tracker.update(gray):
            crop_face(gray, face.face, ROI_STORED, MEAN_FACE)
            crops += 1
    return crops


def haar_path(clip: list[np.ndarray]) -> int:
    tracker, crops = FaceTracker(FaceDetector()), 0
    for gray in clip:
        for face in tracker.update(gray):
            crop_mouth(gray, face.box, ROI_STORED)
            crops += 1
    return crops


def bench_face_speed(repeats: int) -> dict:
    models = FaceModels.shared()
    results = {}
    for name, size in (("640x480", (640, 480)), ("160x160", (160, 160))):
        clip = moving_photo(100, size)
        faces_new, faces_haar = landmark_path(clip), haar_path(clip)
        new = median_seconds(lambda clip=clip: landmark_path(clip), repeats)
        old = median_seconds(lambda clip=clip: haar_path(clip), repeats)
        parts = face_parts(models, clip[0])
        results[name] = {
            "frames": len(clip), "faces_tracked_landmarks": faces_new,
            "faces_tracked_haar": faces_haar,
            "landmarks_ms_per_face_per_frame": round(1000 * new / max(faces_new, 1), 2),
            "haar_ms_per_face_per_frame": round(1000 * old / max(faces_haar, 1), 2),
            "landmarks_vs_haar_ratio": round((new / max(faces_new, 1))
                                             / (old / max(faces_haar, 1)), 3),
            **parts,
        }
    return results


def face_parts(models: FaceModels, gray: np.ndarray) -> dict:
    """Milliseconds of each part of the landmark path on one frame (medians of 50 runs)."""
    points, _ = models.landmarks(gray, region_from_detection(models.detect(gray)[0]))
    face = Face(face_box_from_landmarks(points), points)
    tiles = [0] if tile_grid(gray.shape) else []
    parts = {
        "detect_whole_frame_ms": lambda: models.detect(gray),
        "detect_frame_and_one_tile_ms": lambda: models.detect(gray, tiles=tiles),
        "face_mesh_ms": lambda: models.landmarks(gray, region_from_landmarks(points)),
        "mean_face_crop_96_ms": lambda: crop_face(gray, face, ROI_STORED, MEAN_FACE),
    }
    return {name: round(1000 * median_seconds(run, 50), 3) for name, run in parts.items()}


def photo_rates(models: FaceModels, count: int) -> dict:
    out = {}
    for name, face in PHOTO_FACES.items():
        image = getattr(skimage.data, name)()
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        found = 0
        for frame, matrix in photo_frames(gray, face, count, seed=1):
            centre = matrix @ [*face.center, 1.0]
            for detection in models.detect(frame, tiles=range(len(tile_grid(frame.shape)))):
                points, presence = models.landmarks(frame, region_from_detection(detection))
                points, presence = models.landmarks(frame, region_from_landmarks(points))
                if presence >= 0.5 and np.hypot(*(points.mean(axis=0) - centre)) < face.w:
                    found += 1
                    break
        out[name] = {"frames": count, "found": found, "rate": round(found / count, 4)}
    return out


class _HaarFace:
    """A Haar track as `score_tracks` reads it: the convention's mouth point as the lips."""

    def __init__(self, face) -> None:
        self.track_id, self.lips = face.track_id, mouth_box(face.box).center


def bench_face_quality() -> dict:
    models = FaceModels.shared()
    samples = list(pose_grid(seed=0, identities=3))
    grid = measure_landmarks(samples, models)
    tracked_grid = measure_landmarks(samples, models, frames=3)
    errors = np.array([r.error for r in grid.values()])
    tracked_errors = np.array([r.error for r in tracked_grid.values()])
    clip = turning_faces([10, 11], 100, seed=0, hide=(40, 48))
    tracker = LandmarkTracker(max_faces=2)
    tracked = score_tracks(clip, [tracker.update(g) for g in clip.frames])
    haar = FaceTracker(FaceDetector())
    haar_tracked = score_tracks(clip, [[_HaarFace(f) for f in haar.update(g)]
                                       for g in clip.frames])
    return {
        "photos": photo_rates(models, 100),
        "pose_grid": {name: report.to_json() for name, report in grid.items()},
        "pose_grid_worst_setting_lips_error": [round(float(v), 4) for v in errors.max(axis=0)],
        # the same still faces tracked for three frames (the mesh re-run from its own landmarks)
        "pose_grid_tracked": {name: r.to_json() for name, r in tracked_grid.items()},
        "pose_grid_tracked_worst_setting_lips_error": [round(float(v), 4)
                                                       for v in tracked_errors.max(axis=0)],
        "two_face_clip": {"frames": len(clip.frames), "hidden_frames": list(clip.hidden or ()),
                          "landmarks": tracked.to_json(), "haar": haar_tracked.to_json()},
    }


SECTIONS = ("decode", "detection", "faces")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="example: .venv/bin/python bench/media.py --seconds 10")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (s)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per median")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="what to measure; the other sections of --out are kept")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    cv2.setNumThreads(1)
    report = json.loads(args.out.read_text()) if args.out.is_file() else {}
    report.pop("cpu", None)
    report.pop("machine", None)  # the CPU record of results written before record.py
    report["versions"] = {"av": av.__version__, "opencv": cv2.__version__, "cv2_threads": 1}
    with tempfile.TemporaryDirectory() as root:
        if "decode" in args.sections:
            report["decode"] = bench_decode(Path(root), args.seconds, args.repeats)
        if "detection" in args.sections:
            report["detection"] = bench_detection(args.repeats)
    if "faces" in args.sections:
        report["faces"] = {"speed": bench_face_speed(args.repeats),
                           "quality": bench_face_quality()}
    print(json.dumps(write_result(args.out, report), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
