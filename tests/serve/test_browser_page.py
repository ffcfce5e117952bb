"""The browser page in headless Chromium with a fake camera and microphone playing a synthetic
clip: getUserMedia → f32 PCM at the AudioContext's rate + gray8 frames → the server and the real
runtime → the live transcript on the page."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from avsync.serve.browser_media import camera_frames, write_wav, write_y4m
from avsync.serve.engine import Engine
from avsync.serve.protocol import Task
from avsync.serve.runtime_engine import RuntimeEngine
from serve_harness import (
    TEST_ENGINE_CONFIG,
    SynthClip,
    default_model_dir,
    needs_default_model,
    run,
    running_server,
)

from avsync.media.roi import crop_faces, whole_frame_face
from avsync.runtime import StreamChunk, StreamUpdate, load_model
from avsync.text.metrics import wer

CHROMIUM = "/usr/bin/chromium"
CAMERA_W, CAMERA_H = 320, 240  # the page's capture size (serve/static/index.html)
pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="Debian's chromium is not installed (make setup installs it)")]


class RecordingEngine:
    """The real engine, keeping every chunk each stream was given (to replay it offline)."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.info = engine, engine.info
        self.chunks: dict[int, list[StreamChunk]] = {}

    def open_stream(self, tasks, audio: bool, video: bool):
        stream = self.engine.open_stream(tasks, audio, video)
        self.chunks[id(stream)] = []
        return stream

    def advance(self, batch: Sequence[tuple[Any, StreamChunk]]
                ) -> list[StreamUpdate | Exception]:
        for stream, chunk in batch:
            self.chunks[id(stream)].append(chunk)
        return self.engine.advance(batch)

    def finish(self, streams: Sequence[Any]) -> list[StreamUpdate | Exception]:
        return self.engine.finish(streams)


def replayed_finals(engine: Engine, chunks: list[StreamChunk]) -> list[str]:
    """The runtime alone over the chunks a session got: its finals' texts."""
    stream = engine.open_stream(frozenset({Task.TRANSCRIPT}), True, True)
    updates = [*(engine.advance([(stream, chunk)])[0] for chunk in chunks),
               *engine.finish([stream])]
    return [f.text for u in updates if isinstance(u, StreamUpdate) for f in u.finals]


async def page_session(engine: Engine, clip: SynthClip, tmp_path: Path, finals: int,
                       timeout_ms: int) -> tuple[dict, str, list[str]]:
    """Open the page with the clip as camera and microphone; once `finals` finals are shown,
    stop; -> (the page's window.avsync state, the shown transcript, console lines)."""
    from playwright.async_api import async_playwright

    y4m = write_y4m(tmp_path / "clip.y4m", camera_frames(clip.frames, CAMERA_W, CAMERA_H))
    wav = write_wav(tmp_path / "clip.wav", clip.audio)
    async with running_server(engine) as server, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-video-capture={y4m}",
                  f"--use-file-for-fake-audio-capture={wav}",
                  "--autoplay-policy=no-user-gesture-required"])
        page = await browser.new_page()
        logs: list[str] = []
        page.on("console", lambda m: logs.append(m.text))
        await page.goto(f"http://127.0.0.1:{server.port}/?autostart=1&faces=whole-frame")
        await page.wait_for_function(f"window.avsync.finals.length >= {finals}",
                                     timeout=timeout_ms)
        await page.screenshot(path=str(tmp_path / "page.png"))
        await page.evaluate("window.avsyncStop()")
        await page.wait_for_function("window.avsync.done", timeout=10_000)
        state = await page.evaluate("window.avsync")
        shown = await page.inner_text("#finals")
        await browser.close()
    return state, shown, logs


def check_page(state: dict, shown: str, logs: list[str], model_name: str) -> None:
    assert state["ready"]["model"]["name"] == model_name, logs
    assert state["ready"]["tasks"] == ["transcript", "speakers", "sync"], logs
    assert not [e for e in state["errors"] if e["fatal"]], state["errors"]
    assert shown == " ".join(state["finals"]) and state["finals"]
    assert any(m["type"] == "speakers" for m in state["messages"])


def test_the_page_shows_the_runtimes_transcript_of_camera_and_microphone(
        model, clip, tmp_path) -> None:
    recording = RecordingEngine(RuntimeEngine(model, TEST_ENGINE_CONFIG))
    state, shown, logs = run(page_session(recording, clip, tmp_path, finals=2,
                                          timeout_ms=20_000), timeout=90)
    check_page(state, shown, logs, model.card.model_name)
    (chunks,) = recording.chunks.values()
    # both modalities: the microphone from the first chunk; the camera may start late on a busy
    # machine (chunks go on audio-only past the skew limit), but once seen its face stays
    assert all(c.audio is not None for c in chunks)
    with_face = [0 in c.faces for c in chunks]
    assert True in with_face[:len(chunks) // 2] and all(with_face[with_face.index(True):])
    # the camera's whole-frame face is the clip's face: its mouths are the clip's mouths
    clip_rois = crop_faces(clip.frames, whole_frame_face(*clip.frames.shape[1:]),
                           model.card.roi.stored, model.card.roi.convention).astype(np.float32)
    for roi in [c.faces[0][-1].astype(np.float32) for c in chunks[with_face.index(True)::5]]:
        assert np.abs(clip_rois - roi).mean(axis=(1, 2)).min() < 12.0
    # what the page shows is what the runtime makes of what the browser sent
    assert state["finals"] == replayed_finals(recording.engine, chunks)


@needs_default_model
def test_the_page_shows_the_words_of_the_clip_with_the_default_model(default_clips,
                                                                     tmp_path) -> None:
    model = load_model(default_model_dir())  # type: ignore[arg-type]
    clip = default_clips[0]
    state, shown, logs = run(page_session(RuntimeEngine(model), clip, tmp_path, finals=2,
                                          timeout_ms=30_000), timeout=120)
    check_page(state, shown, logs, model.card.model_name)
    # the fake devices loop the clip and the page joins at any point: the best-heard
    # repetition must be the clip's sentence
    best = min(wer(clip.text.upper(), final.upper()) for final in state["finals"])
    assert best <= 1 / 3, (clip.text, shown)
