"""The one time base everything agrees on (DESIGN.md section 2).

One step = 40 ms = one video frame at 25 fps = 640 audio samples at 16 kHz = 4 log-mel frames.
Every encoder output is per step. Import these names instead of writing the numbers again.
"""

from __future__ import annotations

FPS: int = 25
SAMPLE_RATE: int = 16_000
SAMPLES_PER_STEP: int = SAMPLE_RATE // FPS  # 640
STEP_MS: int = 1000 // FPS  # 40

MEL_BINS: int = 80
MEL_WINDOW: int = 400  # 25 ms
MEL_HOP: int = 160  # 10 ms
MEL_FRAMES_PER_STEP: int = SAMPLES_PER_STEP // MEL_HOP  # 4

# auto_avsr's mouth-ROI convention; a model card may override the size.
ROI_STORED: int = 96
ROI_CROP: int = 88
ROI_MEAN: float = 0.421
ROI_STD: float = 0.165

SYNC_MAX_SHIFT: int = 15  # steps each way, as SyncNet searches


def steps_to_seconds(steps: int | float) -> float:
    return float(steps) / FPS


def seconds_to_steps(seconds: float) -> int:
    """Nearest step index for a time in seconds."""
    return int(round(seconds * FPS))


def samples_to_steps(samples: int) -> int:
    """Whole steps covered by `samples` audio samples (a partial step is dropped)."""
    return samples // SAMPLES_PER_STEP
