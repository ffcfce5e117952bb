"""The one seam between the server and a recogniser: the `Engine` protocol and its data.

Why a seam: the server's machinery (sessions, batching, limits, media) knows nothing of ONNX,
states or decoding; everything it needs from a model is here, and `serve/runtime_engine.py`
is the one module that speaks to `avsync.runtime` (docs/architecture.md, "Runtime contract").
`load_engine` builds that engine from an exported model directory.

Time base: a stream starts at step 0; step i covers stream time [40 i, 40 (i+1)) ms.
Every call runs on an inference thread, never on the event loop; a stream is only ever in one
call at a time, so engines keep per-stream state without locks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from avsync.serve.protocol import Task, Word

if TYPE_CHECKING:
    from avsync.serve.runtime_engine import RuntimeEngineConfig


@dataclass(frozen=True)
class EngineInfo:
    """What a model can do; summarised in `ready` and used to refuse impossible starts."""

    name: str
    version: str
    chunk_steps: int  # steps per advance() call (a stream's last chunk may be shorter)
    roi_stored: int  # side of the uint8 mouth ROIs the engine takes
    tasks: tuple[Task, ...]
    modalities: tuple[str, ...] = ("audio", "video")
    roi_convention: str = "face-box"  # how its mouth crops are cut (avsync.media.roi)


@dataclass(frozen=True)
class ChunkInput:
    """One chunk of one stream: `steps` steps starting at `start_step`.

    audio: (steps * 640,) float32 in [-1, 1] @ 16 kHz, or None in a video-only stream.
    faces: {track id: (steps, R, R) uint8 mouth ROIs}, R = EngineInfo.roi_stored; {} if no video.
    primary_face: the track whose lips drive recognition and sync (None: audio only).
    """

    start_step: int
    steps: int
    audio: np.ndarray | None
    faces: dict[int, np.ndarray] = field(default_factory=dict)
    primary_face: int | None = None


@dataclass(frozen=True)
class Segment:
    """A finished segment: immutable once returned. Times in ms of stream time."""

    text: str
    start_ms: int
    end_ms: int
    words: tuple[Word, ...] = ()
    face: int | None = None  # the face track that said most of it (None: none visible)


@dataclass(frozen=True)
class SyncEstimate:
    offset_ms: int  # positive = the audio lags the video
    confidence: float
    track: int


@dataclass(frozen=True)
class ChunkOutput:
    """What one chunk changed. `partial` is the whole open hypothesis ("" = nothing open)."""

    partial: str = ""
    finals: tuple[Segment, ...] = ()
    speaking: dict[int, float] = field(default_factory=dict)  # track → P(speaking), last step
    sync: SyncEstimate | None = None  # a fresh estimate made for this chunk, or None


class Engine(Protocol):
    """A batched streaming recogniser. Implementations must be safe to call from several
    threads at once for *different* streams (onnxruntime sessions are)."""

    info: EngineInfo

    def open_stream(self, tasks: frozenset[Task], audio: bool, video: bool) -> Any:
        """A new stream's state (opaque to the server)."""
        ...

    def advance(self, batch: Sequence[tuple[Any, ChunkInput]]
                ) -> list[ChunkOutput | Exception]:
        """Run one chunk for each (stream, chunk) pair in one batched call; outputs in order.

        An item is an exception when only that stream failed after the shared model call
        (its own decoding): the other streams' outputs stand, and only its session ends.
        """
        ...

    def finish(self, stream: Any) -> ChunkOutput:
        """End of stream: flush lookahead and tail padding so the last words become finals."""
        ...


def load_engine(model_dir: str | Path, threads: int = 1, precision: str = "fp32",
                config: RuntimeEngineConfig | None = None) -> Engine:
    """The production engine: an exported model directory run by `avsync.runtime`.

    threads: onnxruntime intra-op threads per graph; precision: fp32, int8 (the
    `*.int8.onnx` graphs) or auto (int8 where exact and faster on this CPU);
    config: recogniser, sync and ASD settings (defaults: the runtime's). ModelLoadError names
    the file and why when the directory cannot be served.
    """
    from avsync.serve.runtime_engine import RuntimeEngine

    return RuntimeEngine.load(Path(model_dir), threads=threads, precision=precision,
                              config=config)
