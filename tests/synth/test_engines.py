"""flite and festival voices in the corpus (built from recordings): every word and phone
timed by the engine, speaking rate as asked, lips in sync."""

from __future__ import annotations

import numpy as np
import pytest

from avsync.data.synth.clips import make_clip
from avsync.data.synth.espeak import SpokenWord, Voice
from avsync.data.synth.festival import FestivalVoice, synthesize_festival
from avsync.data.synth.flite import FLITE_VOICES, FliteVoice, synthesize_flite
from avsync.data.synth.measure import audio_energy, best_lag, mouth_opening
from avsync.data.synth.speakers import UTTERANCE, make_speaker, rng_for
from avsync.data.synth.visemes import known_phoneme
from avsync.errors import ConfigError
from avsync.timebase import SAMPLE_RATE

SENTENCE = [SpokenWord(w, w.lower()) for w in
            ["THE", "TEACHER", "NODDED", "WHEN", "THE", "STUDENT", "GAVE", "THE", "RIGHT", "ANSWER"]]


@pytest.mark.parametrize("voice", [*(FliteVoice(n) for n in FLITE_VOICES), FestivalVoice()],
                         ids=lambda v: v.espeak_name)
def test_every_word_and_phone_is_timed(voice: FliteVoice | FestivalVoice) -> None:
    synthesize = synthesize_flite if isinstance(voice, FliteVoice) else synthesize_festival
    speech = synthesize(SENTENCE, voice)
    assert [w.word for w in speech.words] == [w.word for w in SENTENCE]
    assert all(known_phoneme(p.phoneme) for p in speech.phonemes)
    ends = [w.end for w in speech.words]
    assert all(a.end <= b.start + 1e-6 for a, b in zip(speech.words, speech.words[1:], strict=False))
    assert ends == sorted(ends) and ends[-1] <= len(speech.audio) / SAMPLE_RATE + 0.01
    assert 0.02 < float(np.abs(speech.audio).max()) <= 1.0


def test_speaking_rate_is_as_asked() -> None:
    fast = synthesize_flite(SENTENCE, FliteVoice("rms", 0.8)).duration
    slow = synthesize_flite(SENTENCE, FliteVoice("rms", 1.6)).duration
    assert 1.7 < slow / fast < 2.3
    fast = synthesize_festival(SENTENCE, FestivalVoice(speed=1.2)).duration
    slow = synthesize_festival(SENTENCE, FestivalVoice(speed=0.6)).duration
    assert 1.6 < slow / fast < 2.4


def test_speakers_take_turns_with_the_engines_and_espeak_ones_are_unchanged() -> None:
    mixed = [make_speaker(3, i, engines=("espeak", "flite", "festival"), rate_wpm=(110, 240))
             for i in range(12)]
    assert [type(s.voice) for s in mixed] == [Voice, FliteVoice, FestivalVoice] * 4
    assert {s.voice.name for s in mixed if isinstance(s.voice, FliteVoice)} == set(FLITE_VOICES)
    assert all(0.79 <= s.voice.stretch <= 1.73 for s in mixed if isinstance(s.voice, FliteVoice))
    assert make_speaker(3, 2) == make_speaker(3, 2, engines=("espeak",))
    with pytest.raises(ConfigError, match="espeak, flite, festival"):
        make_speaker(3, 0, engines=("pico",))


@pytest.mark.parametrize("turn", [1, 2], ids=["flite", "festival"])
def test_lips_and_voice_are_in_sync(turn: int) -> None:
    opening, energy = [], []
    for utt in range(6):
        speaker = make_speaker(5, 3 * utt + turn, engines=("espeak", "flite", "festival"))
        clip = make_clip(speaker, rng_for(5, UTTERANCE, 1, utt), "english")
        opening.append(mouth_opening(clip.frames))
        energy.append(audio_energy(clip.audio, len(clip.frames)))
    lag, correlations = best_lag(opening, energy, max_lag=8)
    assert abs(lag) <= 1, correlations
    assert correlations[lag] > 0.3 and correlations[lag] > correlations[5] + 0.1


def test_scenes_speak_with_the_corpus_engines_and_looks() -> None:
    """A corpus of flite and festival voices with varied faces gets scenes of the same: the
    two-face demo sample and the multi-face eval speak like the corpus, not espeak alone."""
    from avsync.data.synth.scenes import make_scene

    scene = make_scene(0, 1, "grid", "varied", ("espeak", "flite", "festival"), (110, 240))
    engines = {getattr(face.voice, "engine", type(face.voice).__name__) for face in scene.faces}
    assert len(scene.faces) == 3 and len(engines) == 3
    assert any(face.face.base_yaw != 0 for face in scene.faces)
