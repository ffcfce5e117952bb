"""Follow a face between detections by matching a small template of it (OpenCV).

Why: a Haar detection costs 10-60 ms a frame; matching a ~40 px template in a window around
the last position costs well under 1 ms, follows real motion (a velocity guess overshoots
when a head turns back) and gives the same position for the same image, so a still face
yields a still crop. The tracker re-detects every few frames to correct drift and scale.
"""

from __future__ import annotations

import numpy as np

from avsync.media.opencv import cv2_module

TEMPLATE_FRACTION: float = 0.5  # template side, as a fraction of the face box side
TEMPLATE_PIXELS: int = 40  # the template is matched at a scale that makes it this wide
SEARCH_MARGIN: float = 0.25  # search this far around the last position (of the face side)
MIN_SCORE: float = 0.5  # normalised correlation below this: lost (occluded, turned away)


def _window(gray: np.ndarray, cx: float, cy: float, half: float) -> tuple[np.ndarray, int, int]:
    """The pixels of a square around (cx, cy), clipped to the frame, and its top-left."""
    height, width = gray.shape
    x0, y0 = max(0, round(cx - half)), max(0, round(cy - half))
    x1, y1 = min(width, round(cx + half)), min(height, round(cy + half))
    return gray[y0:y1, x0:x1], x0, y0


class TemplateFollower:
    """Where a face's central patch moved to in a new frame (centre in pixels, or None)."""

    def __init__(self) -> None:
        self._template: np.ndarray | None = None
        self._scale = 1.0
        self._centre = (0.0, 0.0)
        self._offset = (0.0, 0.0)  # template centre minus the face centre at capture
        self._side = 0.0

    def capture(self, gray: np.ndarray, cx: float, cy: float, side: float) -> None:
        """Remember the central patch of the face box centred at (cx, cy) with `side`."""
        cv2 = cv2_module()
        half = TEMPLATE_FRACTION * side / 2
        patch, x0, y0 = _window(gray, cx, cy, half)
        if min(patch.shape) < 8:
            self._template = None
            return
        self._scale = min(1.0, TEMPLATE_PIXELS / (2 * half))
        self._template = cv2.resize(patch, None, fx=self._scale, fy=self._scale,
                                    interpolation=cv2.INTER_AREA)
        tx, ty = x0 + patch.shape[1] / 2, y0 + patch.shape[0] / 2
        self._centre, self._offset, self._side = (tx, ty), (tx - cx, ty - cy), side

    def follow(self, gray: np.ndarray) -> tuple[float, float] | None:
        """The face centre in `gray`, or None when the patch is not found near its last place."""
        if self._template is None:
            return None
        cv2 = cv2_module()
        tx, ty = self._centre
        half = (TEMPLATE_FRACTION / 2 + SEARCH_MARGIN) * self._side
        window, x0, y0 = _window(gray, tx, ty, half)
        search = cv2.resize(window, None, fx=self._scale, fy=self._scale,
                            interpolation=cv2.INTER_AREA)
        th, tw = self._template.shape
        if search.shape[0] < th or search.shape[1] < tw:
            return None
        scores = cv2.matchTemplate(search, self._template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(scores)
        if best < MIN_SCORE:
            return None
        tx = x0 + (bx + tw / 2) / self._scale
        ty = y0 + (by + th / 2) / self._scale
        self._centre = (tx, ty)
        return tx - self._offset[0], ty - self._offset[1]
