"""Write mp4 files (H.264 yuv420p + AAC) with PyAV: the format of LRS2/LRS3 and our corpus.

Timestamps are written explicitly (video frame i at i/fps s, audio sample n at n/sample_rate s),
and FFmpeg's mp4 muxer records the AAC encoder delay (1024 priming samples) and the H.264
reorder delay in edit lists, so `decode_media` gives back every sample at the time it was
written (tests/media/test_av_sync.py measures it).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from avsync.errors import MediaError
from avsync.timebase import FPS, SAMPLE_RATE

FRAGMENTED_MOVFLAGS: str = "frag_keyframe+empty_moov+delay_moov+default_base_moof"
AUDIO_BITRATE: int = 96_000  # bits/s; AAC at 16 kHz mono is transparent enough for ASR here


def even_frames(frames: np.ndarray) -> np.ndarray:
    """Pad (T, H, W[, 3]) frames to even H and W by replicating the last row/column.

    H.264 in 4:2:0 needs even sizes, so an odd-sized clip comes back one pixel taller/wider.
    """
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if not (pad_h or pad_w):
        return frames
    pad = [(0, 0), (0, pad_h), (0, pad_w)] + [(0, 0)] * (frames.ndim - 3)
    return np.pad(frames, pad, mode="edge")


def _check_frames(frames: np.ndarray, path: Path) -> np.ndarray:
    if frames.dtype != np.uint8:
        raise MediaError(f"{path}: frames must be uint8, got {frames.dtype}; "
                         "convert with np.clip(x, 0, 255).astype(np.uint8)")
    if frames.ndim not in (3, 4) or (frames.ndim == 4 and frames.shape[3] != 3):
        raise MediaError(f"{path}: frames must be (T, H, W) gray or (T, H, W, 3) RGB, "
                         f"got shape {frames.shape}")
    if frames.shape[0] == 0 or frames.shape[1] == 0 or frames.shape[2] == 0:
        raise MediaError(f"{path}: no frames to write (shape {frames.shape})")
    return np.ascontiguousarray(even_frames(frames))


def _check_audio(audio: np.ndarray, path: Path) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise MediaError(f"{path}: audio must be mono (S,), got shape {audio.shape}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise MediaError(f"{path}: audio must be float in [-1, 1], got {audio.dtype}")
    if not np.all(np.isfinite(audio)):
        raise MediaError(f"{path}: audio contains NaN or inf samples")
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def _add_video(container: av.container.OutputContainer, frames: np.ndarray, fps: int,
               crf: int) -> av.VideoStream:
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = "yuv420p"
    stream.time_base = Fraction(1, fps)
    # x264's macroblock-tree rate control reads memory it never wrote on this build, so the
    # same frames encoded twice differed (up to 35 grey levels after decoding); without it the
    # output is a pure function of the input, which a seeded corpus needs. Files grow ~2x.
    stream.options = {"crf": str(crf), "preset": "veryfast", "x264-params": "no-mbtree=1"}
    return stream


def _write_video(container: av.container.OutputContainer, stream: av.VideoStream,
                 frames: np.ndarray, fps: int) -> None:
    pixel_format = "gray" if frames.ndim == 3 else "rgb24"
    for index, image in enumerate(frames):
        # swscale on several threads rounds differently run to run; one thread makes the
        # written pixels a pure function of the input (a seed gives byte-identical corpora).
        frame = av.VideoFrame.from_ndarray(image, format=pixel_format).reformat(
            format=stream.codec_context.pix_fmt, threads=1)
        frame.pts, frame.time_base = index, Fraction(1, fps)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _add_audio(container: av.container.OutputContainer, sample_rate: int) -> av.AudioStream:
    stream = container.add_stream("aac", rate=sample_rate, layout="mono")
    stream.bit_rate = AUDIO_BITRATE
    return stream


def _write_audio(container: av.container.OutputContainer, stream: av.AudioStream,
                 audio: np.ndarray, sample_rate: int) -> None:
    chunk = stream.codec_context.frame_size or 1024
    for start in range(0, len(audio), chunk):
        piece = audio[start:start + chunk][None, :]
        frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts, frame.time_base = start, Fraction(1, sample_rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def write_mp4(path: str | Path, frames: np.ndarray, audio: np.ndarray | None, *,
              fps: int = FPS, sample_rate: int = SAMPLE_RATE, crf: int = 18,
              fragmented: bool = False) -> None:
    """Write frames and (optionally) audio as an mp4 with H.264 (yuv420p) video and AAC audio.

    frames: (T, H, W) gray or (T, H, W, 3) RGB uint8, frame i shown at i / fps seconds; odd
        H or W are padded by one replicated row/column (4:2:0 needs even sizes).
    audio: (S,) float in [-1, 1] mono at `sample_rate` Hz, sample n at n / sample_rate
        seconds, or None for a silent (video-only) file.
    crf: x264 constant rate factor (lower is better quality; 18 is visually lossless).
    fragmented: write a fragmented mp4 (moov first, then a moof+mdat per keyframe), which a
        reader can decode while it arrives (what ContainerStreamDecoder accepts).
    Raises MediaError naming the file for bad shapes/dtypes or an encoder failure.
    """
    path = Path(path)
    frames = _check_frames(np.asarray(frames), path)
    samples = None if audio is None else _check_audio(audio, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        options = {"movflags": FRAGMENTED_MOVFLAGS} if fragmented else {}
        with av.open(str(path), mode="w", format="mp4", options=options) as container:
            video = _add_video(container, frames, fps, crf)
            sound = None
            if samples is not None and len(samples):
                sound = _add_audio(container, sample_rate)
            # All video, then all audio: the mp4 muxer keeps a per-track index, so the order
            # of writes only affects interleaving on disk, never timing.
            _write_video(container, video, frames, fps)
            if sound is not None and samples is not None:
                _write_audio(container, sound, samples, sample_rate)
    except (av.error.FFmpegError, ValueError) as error:
        raise MediaError(f"{path}: cannot encode mp4: {error}") from error
