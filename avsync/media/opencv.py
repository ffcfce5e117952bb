"""OpenCV, imported on first use: the core install (numpy + PyAV) has no cv2.

`pip install avsync` decodes media without OpenCV; cropping, face detection and JPEG-free
paths that need cv2 ask for the `runtime` extra (opencv-python-headless) when it is missing.
The first import is serialised: cv2's package bootstrap re-imports itself, and two threads
importing it at once can see a half-initialised module.
"""

from __future__ import annotations

import threading
from types import ModuleType

from avsync.errors import DependencyError

_lock = threading.Lock()
_cv2: ModuleType | None = None


def cv2_module() -> ModuleType:
    """The cv2 module, or a DependencyError naming the extra that installs it. Thread-safe."""
    global _cv2
    if _cv2 is None:
        with _lock:
            if _cv2 is None:
                try:
                    import cv2
                except ImportError as error:
                    raise DependencyError(
                        "this needs the Python package 'cv2' (OpenCV); install it with: "
                        "pip install 'avsync[runtime]'") from error
                _cv2 = cv2
    return _cv2
