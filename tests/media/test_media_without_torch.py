"""avsync.media never imports torch: every module imports and works with torch blocked."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
sys.modules["torch"] = None  # any 'import torch' now raises ImportError
import numpy as np
from avsync.media import (audio, container_stream, decode, encode, face_tracking, faces,
                          follow, frames, jpeg, landmarks, noise, opencv, resample, roi)
path = sys.argv[1]
encode.write_mp4(path, np.zeros((5, 32, 32), np.uint8), np.zeros(3200, np.float32))
clip = decode.decode_media(path)
assert clip.frames.shape == (5, 32, 32), clip
assert roi.crop_mouths(clip.frames, roi.whole_frame_face(32, 32), 8).shape == (5, 8, 8)
faces.FaceDetector().detect(clip.frames[0])
assert face_tracking.LandmarkTracker().update(clip.frames[0]) == []  # the models load and run
assert roi.crop_face(clip.frames[0], roi.whole_frame_face(32, 32), 8, roi.MEAN_FACE).shape == (8, 8)
assert landmarks.FaceModels.shared().detect(clip.frames[0]) == []
assert not any(name == "torch" or name.startswith("torch.") for name in sys.modules
               if sys.modules[name] is not None)
print("ok")
"""


def test_media_layer_runs_with_torch_blocked(tmp_path) -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "a.mp4")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("ok")
