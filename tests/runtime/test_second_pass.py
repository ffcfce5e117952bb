"""The second pass: at an endpoint the recogniser re-reads the segment's media as one chunk."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from runtime_helpers import random_chunk

from avsync.runtime import Model, RecognizerConfig, StreamingRecognizer
from avsync.runtime.ctc import decode_rescored
from avsync.runtime.segment_media import SECOND_PASS_TRACK, SegmentMedia

CONFIG = RecognizerConfig(tail_padding_steps=3)


def whole_segment_tokens(model: Model, audio: np.ndarray, rois: np.ndarray,
                         config: RecognizerConfig) -> tuple[int, ...]:
    """What a final must hold: the segment (media + tail padding, last frame held) run as one
    chunk from a fresh state, beam-searched and rescored."""
    pad = config.tail_padding_steps
    audio = np.concatenate([audio, np.zeros(pad * model.card.samples_per_step, np.float32)])
    rois = np.concatenate([rois, np.repeat(rois[-1:], pad, axis=0)])
    from avsync.runtime.model import ChunkRequest

    result = model.advance([ChunkRequest(model.new_state(), audio, {7: rois}, 7)])[0]
    return decode_rescored(result.ctc_logprobs,
                           lambda hyps: model.score(result.memory, hyps),
                           config.beam, config.ctc_weight).tokens

def test_a_final_is_the_whole_segment_read_as_one_chunk(model: Model) -> None:
    audio, rois = random_chunk(model, 13, seed=41)
    recognizer = StreamingRecognizer(model, CONFIG)
    for s in range(0, 13, 3):  # fed in pieces; the first pass runs 2-step chunks
        recognizer.feed(audio=audio[s * 640:(s + 3) * 640], frames=rois[s:s + 3])
    recognizer.finish()
    (final,) = recognizer.finals
    assert final.tokens == whole_segment_tokens(model, audio, rois, CONFIG)

    first_only = StreamingRecognizer(model, dataclasses.replace(CONFIG, second_pass=False))
    first_only.feed(audio=audio, frames=rois)
    first_only.finish()
    assert first_only.finals[0] != final  # read in 2-step chunks: other log-probs (confidences)


def test_segment_media_keeps_steps_fills_lost_faces_and_drops_the_past() -> None:
    media = SegmentMedia(samples_per_step=4)
    face = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    media.add(0, 2, np.ones(8, np.float32), {}, None)  # no face yet
    media.add(2, 2, None, {5: face}, 5)  # no audio in this chunk
    media.add(4, 1, np.full(4, 2, np.float32), {}, None)  # the face was lost
    assert (media.start, media.end) == (0, 5)
    request = media.request(0, 5, state=None)  # type: ignore[arg-type]
    assert request is not None and request.primary_face == SECOND_PASS_TRACK
    np.testing.assert_array_equal(request.audio, [1] * 8 + [0] * 8 + [2] * 4)
    rois = request.faces[SECOND_PASS_TRACK]
    np.testing.assert_array_equal(rois, [face[0], face[0], face[0], face[1], face[1]])
    media.drop_before(3)
    assert (media.start, media.end) == (3, 5)
    assert media.request(2, 5, state=None) is None  # steps no longer kept
    tail = media.request(3, 5, state=None)  # type: ignore[arg-type]
    assert tail is not None and tail.steps == 2
    np.testing.assert_array_equal(tail.audio, [0] * 4 + [2] * 4)

    silent = SegmentMedia(samples_per_step=4)  # a video-only stream: re-read without audio
    silent.add(0, 2, None, {5: face}, 5)
    assert silent.request(0, 2, state=None).audio is None  # type: ignore[union-attr]


def test_the_second_pass_reads_the_lips_the_asd_finds_in_hindsight() -> None:
    """Face 1 speaks for 12 steps, then face 2 for 12, while the stream kept reading face 1
    (its causal switch lags): the re-read chunk has face 1's lips, then face 2's, switching
    where the ASD logits around the step say the turn changed."""
    media = SegmentMedia(samples_per_step=4)
    one, two = np.full((24, 3, 3), 1, np.uint8), np.full((24, 3, 3), 2, np.uint8)
    for start in range(0, 24, 4):
        media.add(start, 4, np.zeros(16, np.float32), {1: one[start:start + 4],
                                                        2: two[start:start + 4]}, 1)
        steps = np.arange(start, start + 4)
        media.score(start, {1: np.where(steps < 12, 3.0, -3.0),
                            2: np.where(steps < 12, -3.0, 3.0)})
    request = media.request(0, 24, state=None)  # type: ignore[arg-type]
    assert request is not None
    read = request.faces[SECOND_PASS_TRACK][:, 0, 0].tolist()
    assert read == [1] * 12 + [2] * 12
    unscored = SegmentMedia(samples_per_step=4)  # no ASD (no audio): the stream's own choice
    unscored.add(0, 4, None, {1: one[:4], 2: two[:4]}, 2)
    assert unscored.request(0, 4, state=None).faces[SECOND_PASS_TRACK][:, 0, 0].tolist() == \
        [2] * 4  # type: ignore[union-attr]


def test_lips_that_do_not_match_the_voice_are_left_out_of_the_reread() -> None:
    """The second pass re-reads a segment from the audio alone when its lips' mean
    P(speaking) is below `lips_from`: another speaker's lips, a listener's."""
    def media(logit: float) -> SegmentMedia:
        kept = SegmentMedia(samples_per_step=4)
        kept.add(0, 8, np.ones(32, np.float32), {3: np.ones((8, 3, 3), np.uint8)}, 3)
        kept.score(0, {3: np.full(8, logit)})
        return kept

    assert media(-4.0).lip_match(0, 8) == pytest.approx(1 / (1 + np.exp(4.0)), rel=1e-5)
    wrong = media(-4.0).request(0, 8, state=None, lips_from=0.05)  # type: ignore[arg-type]
    assert wrong is not None and wrong.faces == {} and wrong.primary_face is None
    assert wrong.audio is not None and len(wrong.audio) == 32
    right = media(0.0).request(0, 8, state=None, lips_from=0.05)  # type: ignore[arg-type]
    assert right is not None and SECOND_PASS_TRACK in right.faces
    ungated = media(-4.0).request(0, 8, state=None)  # type: ignore[arg-type]
    assert ungated is not None and SECOND_PASS_TRACK in ungated.faces
    unscored = SegmentMedia(samples_per_step=4)  # no ASD scores: nothing to judge the lips by
    unscored.add(0, 8, np.ones(32, np.float32), {3: np.ones((8, 3, 3), np.uint8)}, 3)
    assert unscored.lip_match(0, 8) is None
    assert SECOND_PASS_TRACK in unscored.request(  # type: ignore[union-attr]
        0, 8, state=None, lips_from=0.05).faces  # type: ignore[arg-type]
