"""OpenCV, imported on first use: the core install (numpy + PyAV) has no cv2.

`pip install avsync` decodes media without OpenCV; cropping, face detection and JPEG decoding
need the `runtime` extra (opencv-python-headless), and say so when it is missing.
"""

from __future__ import annotations

from types import ModuleType

from avsync.errors import require


def cv2_module() -> ModuleType:
    """The cv2 module, or a DependencyError naming the extra that installs it."""
    require("cv2", "runtime")
    import cv2

    return cv2
