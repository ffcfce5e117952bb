"""Issue 18 item 2: a file and a live stream of it give the same words. The bundled two-face
sample (two people taking turns) transcribed offline (`avsync transcribe --faces detect`) and
streamed through a real server on loopback (`avsync stream --faces detect`): both read the
lips through the runtime's one stream API (the causal face choice for the first pass, the
per-step hindsight choice for the second), so the finals' words and who said them agree."""

from __future__ import annotations

from avsync.serve.client import StreamOptions, stream_file
from avsync.serve.demo import DEFAULT_SAMPLE
from avsync.serve.protocol import FaceMode, Final, Task
from avsync.serve.runtime_engine import RuntimeEngine
from serve_harness import default_model_dir, needs_default_model, run, running_server

from avsync.runtime import load_model
from avsync.runtime.transcribe import transcribe_file

SAMPLE = DEFAULT_SAMPLE  # the default model's two-face sample (what `make demo` streams)


@needs_default_model
def test_a_two_face_file_and_its_live_stream_give_the_same_words_and_faces() -> None:
    model_dir = default_model_dir()
    assert model_dir is not None
    model = load_model(model_dir)
    offline = transcribe_file(model, SAMPLE, audio=True, video=True, faces="detect")

    async def main():
        async with running_server(RuntimeEngine(model)) as server:
            url = f"ws://127.0.0.1:{server.port}/v1/stream"
            return await stream_file(SAMPLE, url, StreamOptions(
                fast=True, faces=FaceMode.DETECT, tasks=tuple(Task)))

    finals = [m for m in run(main(), timeout=120) if isinstance(m, Final)]
    live = [[(w.text, w.face) for w in f.words] for f in finals]
    filed = [[(w["text"], w["face"]) for w in s["words"]] for s in offline["segments"]]
    assert live == filed
    assert [f.face for f in finals] == [s["face"] for s in offline["segments"]]
    assert {f.face for f in finals} == {0, 1}  # both people spoke, each read from own lips
