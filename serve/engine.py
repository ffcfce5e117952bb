"""The one seam between the server and a recogniser: the `Engine` protocol.

Why a seam: the server's machinery (sessions, batching, limits, media) knows nothing of ONNX,
states or decoding. What it needs from a model is the runtime's stream API
(`avsync.runtime.streams`: `advance` many streams by a chunk in one call, `finish` many in
one call, results as the runtime's own types, which the protocol serialises as they are);
`serve/runtime_engine.py` is that API plus what the server must know of the model
(`EngineInfo`), and `load_engine` builds it from an exported model directory.

Every call runs on an inference thread, never on the event loop; a stream is only ever in one
call at a time, so engines keep per-stream state without locks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from avsync.serve.protocol import Task

from avsync.runtime.chunking import StreamChunk
from avsync.runtime.streams import Stream, StreamConfig, StreamUpdate

if TYPE_CHECKING:
    from avsync.serve.runtime_engine import RuntimeEngine


@dataclass(frozen=True)
class EngineInfo:
    """What a model can do; summarised in `ready` and used to refuse impossible starts."""

    name: str
    version: str
    chunk_steps: int  # steps per chunk (a stream's last chunk may be shorter)
    roi_stored: int  # side of the uint8 mouth ROIs the engine takes
    tasks: tuple[Task, ...]
    modalities: tuple[str, ...] = ("audio", "video")
    roi_convention: str = "face-box"  # how its mouth crops are cut (avsync.media.roi)


class Engine(Protocol):
    """A batched streaming recogniser (`avsync.runtime.streams.Recognizer` and its info).
    Implementations must be safe to call from several threads at once for *different*
    streams (onnxruntime sessions are)."""

    info: EngineInfo

    def open_stream(self, tasks: frozenset[Task], audio: bool, video: bool) -> Stream:
        """A new stream, reporting what `tasks` ask for."""
        ...

    def advance(self, chunks: Sequence[tuple[Stream, StreamChunk]]
                ) -> list[StreamUpdate | Exception]:
        """One chunk of each stream in one batched call; updates in order. An item is an
        exception when only that stream failed (its own decoding): the other streams'
        updates stand, and only its session ends."""
        ...

    def finish(self, streams: Sequence[Stream]) -> list[StreamUpdate | Exception]:
        """The end of each stream: tail padding, so its last words become finals."""
        ...


def load_engine(model_dir: str | Path, threads: int = 1, precision: str = "fp32",
                config: StreamConfig | None = None) -> RuntimeEngine:
    """The production engine: an exported model directory run by `avsync.runtime`.

    threads: onnxruntime intra-op threads per graph; precision: fp32, int8 (the
    `*.int8.onnx` graphs) or auto (int8 where exact and faster on this CPU);
    config: recogniser, sync, ASD and report settings (defaults: the runtime's).
    ModelLoadError names the file and why when the directory cannot be served.
    """
    from avsync.serve.runtime_engine import RuntimeEngine

    return RuntimeEngine.load(Path(model_dir), threads=threads, precision=precision,
                              config=config)
