"""Speech with exact word and phoneme timing: libespeak-ng through ctypes.

Why the library and not the `espeak-ng` command: the library reports WORD and PHONEME events
with the sample position at which each one starts, which is what lets the rendered mouth move in
sync with the voice to the millisecond and the `.txt` word times be exact rather than estimated.

libespeak-ng keeps global state and is not thread-safe: one process synthesises one utterance at
a time, and the corpus generator parallelises with processes. The engine is initialised lazily,
once per process, in synchronous mode (the callback receives every sample before `espeak_Synth`
returns), and each utterance is synthesised in a child forked from that pristine state, because
the library carries state from one message to the next (see `_Engine.run`).

Timing model (checked against the waveform): a PHONEME event marks where the phoneme's sound
starts; a WORD event marks where the word starts, which for a word that opens with a stop is the
start of the silent closure before the burst. So each word's first phoneme is extended back to
its WORD event when that event falls in the gap before it; a WORD event placed earlier (espeak
links a final consonant to a following vowel-initial word) is ignored.
"""

from __future__ import annotations

import bisect
import ctypes
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from avsync.errors import DataError, DependencyError
from avsync.timebase import SAMPLE_RATE

LIBRARY_PATH = "/usr/lib/x86_64-linux-gnu/libespeak-ng.so.1"
NATIVE_RATE = 22_050  # Hz, what espeak-ng's formant synthesiser produces

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PHONEMES = 0x100  # allow [[...]] phoneme input inside the text
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE, _PARAM_WORDGAP = 1, 3, 4, 7
_EE_OK = 0


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
                ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


class _VoiceSpec(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker's voice: an espeak-ng language voice, a variant and prosody."""

    language: str  # language of the espeak-ng voice, e.g. "en-gb-scotland"
    voice_file: str  # its file under espeak-ng-data/voices, e.g. "gmw/en-GB-scotland"
    variant: str  # espeak-ng variant file, e.g. "m3" or "f2"
    rate: int  # words per minute (espeak default 175)
    pitch: int  # 0-100 (espeak default 50)
    pitch_range: int  # 0-100 (espeak default 50)

    @property
    def espeak_name(self) -> str:
        return f"{self.voice_file}+{self.variant}"


@dataclass(frozen=True)
class SpokenWord:
    """A transcript word and what espeak is given to say for it (often the same word)."""

    word: str  # as written in the transcript, e.g. "A"
    say: str  # as sent to espeak, e.g. "[['eI]]" so the letter is not read as the article


@dataclass(frozen=True)
class PhonemeSegment:
    phoneme: str  # espeak mnemonic without stress marks, e.g. "aI"; pauses start with "_"
    start: float  # seconds from the start of the utterance
    end: float  # seconds
    word: int | None  # index into the utterance's words, None for pauses


@dataclass(frozen=True)
class WordSpan:
    word: str
    start: float  # seconds: start of the word's first phoneme (stop closures included)
    end: float  # seconds: end of its last phoneme


@dataclass(frozen=True)
class Speech:
    """One synthesised utterance.

    audio: (S,) float32 in [-1, 1] @ 16 kHz; words and phonemes in seconds from sample 0.
    """

    audio: np.ndarray
    words: tuple[WordSpan, ...]
    phonemes: tuple[PhonemeSegment, ...]

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass
class _Collector:
    chunks: list[np.ndarray]
    events: list[tuple[int, int, float, str]]  # (type, text_position, seconds, phoneme)


class _Engine:
    """The process-wide libespeak-ng instance (one per process: the library is global).

    It is initialised here but only ever synthesises in forked children (see `run`)."""

    def __init__(self) -> None:
        try:
            self.lib = ctypes.CDLL(LIBRARY_PATH)
        except OSError as error:
            raise DependencyError(
                f"cannot load {LIBRARY_PATH} ({error}); install the Debian package libespeak-ng1 "
                "(make setup does)") from None
        self.lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_VoiceSpec))
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None,
                                          _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT)
        if rate != NATIVE_RATE:
            raise DependencyError(f"libespeak-ng initialised at {rate} Hz, expected {NATIVE_RATE}")
        self.collector = _Collector([], [])
        self._callback = _Callback(self._on_synth)  # keep a reference: ctypes does not
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav, count: int, events) -> int:
        if wav and count > 0:
            self.collector.chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type in (_EVENT_WORD, _EVENT_PHONEME):
                self.collector.events.append((event.type, event.text_position,
                                              _event_seconds(event), _phoneme_name(event)))
            index += 1
        return 0

    def _set_voice(self, voice: Voice) -> None:
        if self.lib.espeak_SetVoiceByName(voice.espeak_name.encode()) != _EE_OK:
            raise DataError(f"espeak-ng has no voice {voice.espeak_name!r}; list them with "
                            "'espeak-ng --voices=en' and 'espeak-ng --voices=variant'")
        for parameter, value in ((_PARAM_RATE, voice.rate), (_PARAM_PITCH, voice.pitch),
                                 (_PARAM_RANGE, voice.pitch_range), (_PARAM_WORDGAP, 0)):
            self.lib.espeak_SetParameter(parameter, int(value), 0)

    def _synthesize_here(self, voice: Voice, text: str) -> tuple[np.ndarray, list]:
        self._set_voice(voice)
        self.collector = _Collector([], [])
        data = text.encode("utf-8")
        status = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0,
                                       _CHARS_UTF8 | _PHONEMES, None, None)
        self.lib.espeak_Synchronize()
        if status != _EE_OK:
            raise DataError(f"espeak_Synth failed with status {status} on {text!r}")
        chunks = self.collector.chunks
        return (np.concatenate(chunks) if chunks else np.zeros(0, np.int16),
                self.collector.events)

    def run(self, voice: Voice, text: str) -> tuple[np.ndarray, list]:
        """(int16 samples @ 22050 Hz, events) of `text`, synthesised in a forked child.

        Why a child: libespeak-ng carries state from one message to the next (the pitch
        flutter index, the glottal phase, libc's rand() for breathy voices), so the same text
        twice gives slightly different audio and phoneme times. A child forked from this
        process, which never synthesises itself, always starts from the pristine state, so an
        utterance is identical whatever was generated before it in this worker.
        """
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: synthesise, send the result, leave without any cleanup
            try:
                os.close(read_end)
                _libc_srand(0)
                try:
                    reply: object = self._synthesize_here(voice, text)
                except BaseException as error:  # noqa: BLE001 - reported to the parent
                    reply = error if isinstance(error, DataError) else DataError(repr(error))
                with os.fdopen(write_end, "wb") as pipe:
                    pickle.dump(reply, pipe, protocol=pickle.HIGHEST_PROTOCOL)
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            payload = pipe.read()
        os.waitpid(pid, 0)
        if not payload:
            raise DataError(f"the espeak-ng child process died while saying {text!r}")
        answer = pickle.loads(payload)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _libc_srand(seed: int) -> None:
    ctypes.CDLL(None).srand(seed)


def _event_seconds(event: _Event) -> float:
    """Exact time from the sample index; the millisecond field only as a cross-check."""
    exact = event.sample / NATIVE_RATE
    return exact if abs(exact * 1000 - event.audio_position) <= 1.0 else event.audio_position / 1000


def _phoneme_name(event: _Event) -> str:
    if event.type != _EVENT_PHONEME:
        return ""
    return bytes(event.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")


@cache
def _engine() -> _Engine:
    return _Engine()


@cache
def english_voices() -> tuple[tuple[str, str], ...]:
    """(language, voice file) of every English formant voice this espeak-ng build has, e.g.
    ("en-gb-scotland", "gmw/en-GB-scotland"), sorted by language. mbrola voices are left out:
    they need the separate mbrola program and its databases.
    """
    voices = _engine().lib.espeak_ListVoices(None)
    found: dict[str, str] = {}
    index = 0
    while voices[index]:
        spec = voices[index].contents
        identifier = (spec.identifier or b"").decode()
        language = _first_language(spec.languages)
        if language.startswith("en") and "/" in identifier and not identifier.startswith("mb/"):
            found.setdefault(language, identifier)
        index += 1
    return tuple(sorted(found.items()))


def _first_language(languages: bytes | None) -> str:
    """espeak_VOICE.languages is (priority byte, NUL-terminated name) pairs; the first name."""
    if not languages:
        return ""
    return languages[1:].split(b"\0", 1)[0].decode("ascii", "replace")


def synthesize(words: Sequence[SpokenWord], voice: Voice) -> Speech:
    """Speak `words` with `voice`: 16 kHz audio plus exact word and phoneme timing.

    espeak reads some word pairs as one dictionary entry ("of a", "for a", "in the") and then
    reports one WORD event for both, so no event says where the second word starts. Such words
    are said again with a zero-width space in front, which keeps them separate (in their
    citation form). Raises DataError when the events still do not map one-to-one onto `words`
    (the caller then picks another sentence): a transcript never disagrees with what was said.
    """
    if not words:
        raise DataError("cannot synthesise an empty utterance; give at least one word")
    from avsync.media.resample import resample_audio

    engine = _engine()
    says = [w.say for w in words]
    for attempt in range(_ATTEMPTS):
        try:
            native, phonemes = _speak(engine, voice, says)
            break
        except _MergedWords as merged:
            if attempt == _ATTEMPTS - 1:
                raise
            says = [_SEPARATE + s if k in merged.indices else s for k, s in enumerate(says)]
    spans = _word_spans(words, phonemes, " ".join(says))
    audio = resample_audio(native.astype(np.float32) / 32768.0, NATIVE_RATE, SAMPLE_RATE)
    return Speech(audio=np.asarray(audio, dtype=np.float32), words=spans, phonemes=phonemes)


_ATTEMPTS = 3  # separating a pair can expose the next one ("was a" after "there was")
_SEPARATE = "\u200b"  # zero-width space: stops espeak joining a word to the one before


class _MergedWords(DataError):
    def __init__(self, message: str, indices: set[int]) -> None:
        super().__init__(message)
        self.indices = indices


def _speak(engine: _Engine, voice: Voice,
           says: list[str]) -> tuple[np.ndarray, tuple[PhonemeSegment, ...]]:
    """Native-rate int16 samples and phoneme segments of one espeak message."""
    text, spans = _compose(says)
    native, events = engine.run(voice, text)
    return native, _segments(events, spans, len(native) / NATIVE_RATE, text)


def _compose(says: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The text espeak reads and each word's 1-based character span [start, end) in it."""
    spans, position = [], 1
    for say in says:
        spans.append((position, position + len(say)))
        position += len(say) + 1
    return " ".join(says), spans


def _word_at(spans: list[tuple[int, int]], position: int) -> int | None:
    """Which word an event's text position falls in; None for clause and pause events."""
    index = bisect.bisect_right(spans, (position, float("inf"))) - 1
    if index >= 0 and spans[index][0] <= position < spans[index][1]:
        return index
    return None


def _segments(events: list[tuple[int, int, float, str]], spans: list[tuple[int, int]],
              duration: float, text: str) -> tuple[PhonemeSegment, ...]:
    """Phoneme events → contiguous segments, stop closures given to the word they open.

    espeak reads some word pairs as one dictionary entry ("of a", "for a") and then reports a
    single WORD event for both; such an utterance raises DataError instead of guessing where
    one word ends.
    """
    word_onsets: dict[int, float] = {}
    raw: list[tuple[float, str, int | None]] = []
    for kind, position, seconds, name in events:
        index = _word_at(spans, position)
        if kind == _EVENT_WORD and index is not None:
            word_onsets.setdefault(index, seconds)
        elif kind == _EVENT_PHONEME and name:
            raw.append((seconds, name, None if name.startswith("_") else index))
    if len(word_onsets) != len(spans):
        missing = {k for k in range(len(spans)) if k not in word_onsets}
        raise _MergedWords(f"espeak merged {[text[spans[k][0] - 1:spans[k][1] - 1] for k in sorted(missing)]} "
                           f"into a neighbouring word in {text!r}; choose another sentence", missing)
    times = [t for t, _, _ in raw] + [duration]
    seen: set[int] = set()
    for i, (_, _, word) in enumerate(raw):
        if word is not None and word not in seen:
            seen.add(word)
            previous = times[i - 1] if i else 0.0
            if previous < word_onsets[word] < times[i] or (i == 0 and word_onsets[word] < times[i]):
                times[i] = word_onsets[word]  # the silent closure before a stop belongs here
    return tuple(PhonemeSegment(name, times[i], times[i + 1], word)
                 for i, (_, name, word) in enumerate(raw) if times[i + 1] > times[i])


def _word_spans(words: Sequence[SpokenWord], phonemes: tuple[PhonemeSegment, ...],
                text: str) -> tuple[WordSpan, ...]:
    spans = []
    for index, word in enumerate(words):
        own = [p for p in phonemes if p.word == index]
        if not own:
            raise DataError(f"espeak produced no phonemes for {word.say!r} in {text!r}")
        spans.append(WordSpan(word.word, own[0].start, own[-1].end))
    return tuple(spans)
