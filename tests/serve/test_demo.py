"""`avsync demo`: the sample rebuilds from its recipe, the demo runs the whole loop (server on
a loopback port, websocket client, detection, live printing, checks, timeline picture), and on
the bundled model it meets the issue's bar: WER <= 10 % and the right face for every turn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from avsync.serve.demo import DEFAULT_SAMPLE, main
from serve_harness import needs_default_model

from avsync.data.synth.grammar import VOCABULARY

REPO = Path(__file__).resolve().parents[2]


SAMPLES = REPO / "models" / "samples"
# each committed sample and the `avsync demo --make-sample` flags that rebuild it
RECIPES = {"two-faces.mp4": ("--seed", "11"),
           "two-faces-english.mp4": ("--seed", "11", "--open-vocabulary")}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_the_committed_samples_are_what_their_recipes_make(name: str, tmp_path: Path) -> None:
    out = tmp_path / name
    committed = SAMPLES / name
    assert main(["--make-sample", str(out), *RECIPES[name]]) == 0
    assert json.loads(out.with_suffix(".json").read_text()) == \
        json.loads(committed.with_suffix(".json").read_text())
    assert out.read_bytes() == committed.read_bytes()
    assert DEFAULT_SAMPLE.name in RECIPES


def test_the_open_vocabulary_sample_speaks_sentences_in_recorded_voices() -> None:
    """The open model's sample: held-out English sentences said by flite and festival voices
    (built from recordings of people) over varied faces."""
    scene = json.loads((SAMPLES / "two-faces-english.json").read_text())
    assert len(scene["faces"]) == 2
    assert {face["voice"].get("engine", "festival") for face in scene["faces"]} <= {
        "flite", "festival"} and all("language" not in face["voice"] for face in scene["faces"])
    words = {w for turn in scene["turns"] for w in turn["text"].split()}
    assert len(words) > 15 and not words <= set(VOCABULARY)


def test_the_demo_loop_runs_on_the_debug_model(model_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Untrained weights: the words are noise, but every part must run and report."""
    picture = tmp_path / "timeline.png"
    assert main(["--model", str(model_dir), "--fast", "--out", str(picture)]) == 0
    printed = capsys.readouterr().out
    assert "server on ws://127.0.0.1:" in printed and "speaking:" in printed
    assert "sync: audio" in printed and "WER " in printed and "turn  face  found" in printed
    assert picture.stat().st_size > 20_000


def test_a_missing_model_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model", str(tmp_path / "nowhere")]) == 2
    assert "nowhere/model.json is missing" in capsys.readouterr().err


def _make_demo(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    """What `make demo` runs (real time, faces detected by the server)."""
    return subprocess.run([sys.executable, "-m", "avsync.cli", "demo", "--out",
                           str(tmp_path / "demo-timeline.png"), *flags], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@needs_default_model
@pytest.mark.slow
def test_make_demo_runs_and_finds_the_speaker_of_every_turn(tmp_path: Path) -> None:
    done = _make_demo(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "speaker right for 6/6 turns" in done.stdout, done.stdout[-3000:]
    assert "sync: audio" in done.stdout and (tmp_path / "demo-timeline.png").is_file()


@needs_default_model
@pytest.mark.slow
def test_make_demo_meets_its_wer_bar(tmp_path: Path) -> None:
    """The issue's bar: --strict also wants WER <= 10 % on the sample."""
    done = _make_demo(tmp_path, "--strict", "--fast")
    assert done.returncode == 0, done.stdout[-3000:]
