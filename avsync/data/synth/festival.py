"""Festival with its HTS voice trained on ARCTIC slt recordings, words and phones timed.

Why: of the engines Debian ships, festival's HTS voice sounds closest to real speech
(whisper tiny.en misreads 8.7 % of open sentences it says, espeak's corpus voices 38 %:
bench/results/voices.json). Festival itself reports each segment's end time and the word it
belongs to (`SylStructure`), so lips and transcript timings come from the engine, as with
espeak's events. Speaking rate and pitch go to the HTS engine (`-r` speed, `-fm` half-tones);
the segment times follow them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from avsync.data.synth.espeak import Speech, SpokenWord
from avsync.data.synth.flite import read_wav_16k, said_text, timed_speech
from avsync.errors import DataError

FESTIVAL_VOICES: tuple[str, ...] = ("cmu_us_slt_arctic_hts",)
VOICE_DIRS = (Path("/usr/share/festival/voices/us"),)

SCRIPT = """({voice})
(set! hts_engine_params (append hts_engine_params (list (list "-r" {speed}) (list "-fm" {pitch}))))
(set! utt (utt.synth (Utterance Text "{text}")))
(utt.save.wave utt "{wav}" 'riff)
(mapcar (lambda (w) (format t "W %s\\n" (item.feat w "id"))) (utt.relation.items utt 'Word))
(mapcar (lambda (s) (format t "S %s %f %s\\n" (item.name s) (item.feat s "end")
  (item.feat s "R:SylStructure.parent.parent.id"))) (utt.relation.items utt 'Segment))
"""


@dataclass(frozen=True)
class FestivalVoice:
    """name: a festival HTS voice; speed: HTS speech rate (1 = its own, about 190 words a
    minute; 0.58-1.26 spans roughly 110-240); halftones: pitch shift."""

    name: str = FESTIVAL_VOICES[0]
    speed: float = 1.0
    halftones: float = 0.0
    engine: str = field(default="festival", init=False)

    @property
    def espeak_name(self) -> str:  # the name error messages use for any voice
        return f"festival:{self.name}"


def _festival() -> str:
    path = shutil.which("festival")
    if path is None:
        raise DataError("festival is not installed; install the Debian packages festival "
                        "festvox-us-slt-hts (`make setup` does)")
    return path


def _run(voice: FestivalVoice, text: str, wav: Path) -> tuple[list[str], list[tuple]]:
    """(word ids, [(phone, end s, word id)]) of `text`; audio to `wav`."""
    script = wav.with_suffix(".scm")
    script.write_text(SCRIPT.format(voice=f"voice_{voice.name}", speed=voice.speed,
                                    pitch=voice.halftones, text=text.replace('"', ""),
                                    wav=wav))
    done = subprocess.run([_festival(), "-b", str(script)], capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 0 or not wav.is_file():
        raise DataError(f"festival voice {voice.name} failed ({done.stderr.strip()[:200]})")
    word_ids, segments = [], []
    for line in done.stdout.splitlines():
        parts = line.split()
        if parts[:1] == ["W"]:
            word_ids.append(parts[1])
        elif parts[:1] == ["S"] and len(parts) == 4:
            segments.append((parts[1], float(parts[2]), parts[3]))
    return word_ids, segments


def synthesize_festival(words: Sequence[SpokenWord], voice: FestivalVoice) -> Speech:
    """Speak `words` with a festival HTS voice: 16 kHz audio plus word and phone timing
    (phones named `arpa:<phone>`, pauses `_`). DataError when festival's words are not
    the transcript's."""
    text = said_text(words)
    with tempfile.TemporaryDirectory() as scratch:
        wav = Path(scratch) / "speech.wav"
        word_ids, segments = _run(voice, text, wav)
        audio = read_wav_16k(wav)
    if len(word_ids) != len(words):
        raise DataError(f"festival read {len(word_ids)} words where the transcript has "
                        f"{len(words)}")
    index = {word_id: k for k, word_id in enumerate(word_ids)}
    timed = [(name, end, index.get(word_id)) for name, end, word_id in segments]
    return timed_speech(words, audio, timed, f"festival voice {voice.name}")
