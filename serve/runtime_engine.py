"""`RuntimeEngine`: the production `serve.engine.Engine`, an exported model run by `avsync.runtime`.

It is the runtime's stream API (`avsync.runtime.streams.Recognizer`: one call advances many
sessions' streams by a chunk, batching every first pass, second pass and rescoring across
them; one call finishes many) with what the server must know of the model (`EngineInfo`),
a check that the model was made with this server's time base and crop, and each session's
tasks turned into what its stream reports. Which face is read, the speakers and sync reports
and their throttles are the stream API's (`StreamConfig`).
"""

from __future__ import annotations

from pathlib import Path

from avsync.serve.engine import EngineInfo
from avsync.serve.protocol import Task

from avsync.errors import ModelLoadError
from avsync.media import roi as media_roi
from avsync.runtime import Model, Recognizer, Stream, StreamConfig, load_model
from avsync.timebase import FPS, SAMPLE_RATE, SAMPLES_PER_STEP


class RuntimeEngine(Recognizer):
    """Satisfies `serve.engine.Engine` over a loaded `avsync.runtime.Model`."""

    def __init__(self, model: Model, config: StreamConfig | None = None) -> None:
        _check_conventions(model)
        super().__init__(model, config)
        card = model.card
        self.info = EngineInfo(name=card.model_name, version=card.model_version,
                               chunk_steps=card.chunk_steps, roi_stored=card.roi.stored,
                               tasks=tuple(Task), roi_convention=card.roi.convention)

    @classmethod
    def load(cls, model_dir: Path, threads: int = 1, precision: str = "fp32",
             config: StreamConfig | None = None) -> RuntimeEngine:
        """threads: onnxruntime intra-op threads per graph (the batcher adds its own);
        precision: fp32, int8 or auto (`avsync.runtime.precision`)."""
        return cls(load_model(model_dir, threads=threads, precision=precision), config)

    def open_stream(self, tasks: frozenset[Task], audio: bool, video: bool) -> Stream:
        """A stream reporting what the session's `tasks` ask for."""
        return self.open(audio=audio, video=video, transcript=Task.TRANSCRIPT in tasks,
                         speakers=Task.SPEAKERS in tasks, sync=Task.SYNC in tasks)


def _check_conventions(model: Model) -> None:
    """The server crops mouths and cuts steps with avsync.media and avsync.timebase; a model
    trained on other conventions would be fed subtly wrong input, so refuse it at load."""
    card, roi = model.card, model.card.roi
    ours = (SAMPLE_RATE, FPS, SAMPLES_PER_STEP, media_roi.MOUTH_CENTER_X,
            media_roi.MOUTH_CENTER_Y, media_roi.MOUTH_SIDE)
    theirs = (card.sample_rate, card.fps, card.samples_per_step, roi.mouth_center_x,
              roi.mouth_center_y, roi.mouth_side)
    if any(abs(a - b) > 1e-6 for a, b in zip(ours, theirs, strict=True)):
        raise ModelLoadError(
            f"{model.model_dir / 'model.json'}: sample rate, fps, samples per step and mouth "
            f"box {theirs} differ from this server's {ours} (avsync.timebase, "
            "avsync.media.roi); re-export the model with this version of avsync")
    if card.chunk_steps < 1:
        raise ModelLoadError(f"{model.model_dir / 'model.json'}: chunk_steps "
                             f"{card.chunk_steps} cannot stream; export with --chunk-steps N")
