"""OpenCV is imported lazily and safely from many threads at once (a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys, threading
assert "cv2" not in sys.modules
from avsync.media.opencv import cv2_module
from avsync.media.roi import Box, crop_mouth
import numpy as np
errors = []
def work():
    try:
        cv2_module()
        crop_mouth(np.zeros((64, 64), np.uint8), Box(0, 0, 64, 64), 16)
    except Exception as error:
        errors.append(repr(error))
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print("errors:", errors)
sys.exit(1 if errors else 0)
"""


def test_first_cv2_import_from_eight_threads_at_once() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
