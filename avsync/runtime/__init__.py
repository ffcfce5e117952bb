"""avsync.runtime: run an exported model directory with numpy and onnxruntime only (no torch).

    from avsync.runtime import load_model, StreamingRecognizer, SyncEstimator, ActiveSpeakerDetector
    model = load_model("models/tiny", threads=1)          # ModelLoadError names the file and why
    sync, speakers = SyncEstimator(), ActiveSpeakerDetector(model.card.asd_calibration)
    rec = StreamingRecognizer(model, observers=(sync, speakers))
    events = rec.feed(audio=pcm_16k_f32, frames=mouth_rois_u8)   # Partial / Final events
    events += rec.finish()

Many streams at once (a server): the stream API advances and finishes many streams per call,
batching encoders, second passes and rescoring across them (docs/embedding.md):
    recognizer = Recognizer(model, StreamConfig())
    stream = recognizer.open(audio=True, video=True, sync=True)
    updates = recognizer.advance([(stream, StreamChunk(pcm, {track: rois}, {track: box})), ...])
    updates = recognizer.finish([stream, ...])
"""

from avsync.runtime.asd import ActiveSpeakerDetector, AsdConfig, calibrate
from avsync.runtime.chunking import StreamChunk
from avsync.runtime.ctc import PrefixBeamSearch, align, greedy, prefix_beam_search
from avsync.runtime.endpoint import EndpointConfig
from avsync.runtime.loader import load_model
from avsync.runtime.model import ChunkRequest, ChunkResult, Model, StreamState
from avsync.runtime.model_card import ModelCard
from avsync.runtime.offline import ClipInput, ClipOutputs, run_clips, transcribe_clip, transcript
from avsync.runtime.recognizer import RecognizerConfig, StreamingRecognizer
from avsync.runtime.results import Final, Partial, Speakers, SpeakerTrack, Sync
from avsync.runtime.streams import Recognizer, Stream, StreamConfig, StreamUpdate
from avsync.runtime.sync import SyncConfig, SyncEstimator, SyncResult, estimate_offset
from avsync.runtime.words import Word

__all__ = [
    "ActiveSpeakerDetector", "AsdConfig", "ChunkRequest", "ChunkResult", "ClipInput",
    "ClipOutputs", "EndpointConfig", "Final", "Model", "ModelCard", "Partial",
    "PrefixBeamSearch", "Recognizer", "RecognizerConfig", "SpeakerTrack", "Speakers",
    "StreamState", "Stream", "StreamChunk", "StreamConfig", "StreamUpdate",
    "StreamingRecognizer", "Sync", "SyncConfig", "SyncEstimator", "SyncResult", "Word", "align", "calibrate", "estimate_offset", "greedy",
    "load_model", "prefix_beam_search", "run_clips", "transcribe_clip", "transcript",
]
