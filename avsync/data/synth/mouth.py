"""The mouth drawn from the six articulatory parameters (see `visemes.PARAMETERS`).

Why a separate module: this is the part of the face that carries the speech signal, and the
one whose geometry the lip-sync test measures (the dark inner mouth's area follows the jaw).
The upper lip stays near the fixed mouth centre while the jaw carries the lower lip down, as
in real speech; rounding narrows and thickens the lips, spreading widens them, closure presses
them together, and teeth and tongue show inside the opening when the parameters say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avsync.data.synth.visemes import CLOSURE, JAW, ROUND, TEETH, TONGUE, WIDTH

N_POINTS: int = 25  # samples along each lip curve
MAX_OPENING: float = 0.55  # of the rest mouth width, at jaw = 1
JAW_DROP: float = 6.0  # pixels the chin moves down at jaw = 1


@dataclass(frozen=True)
class MouthShape:
    """Lip curves in canonical pixels, each (N_POINTS, 2) from the left corner to the right."""

    upper_outer: np.ndarray
    upper_inner: np.ndarray
    lower_inner: np.ndarray
    lower_outer: np.ndarray
    opening: float  # inner height at the centre, pixels
    width: float  # corner to corner, pixels


def mouth_shape(center: tuple[float, float], rest_width: float, upper_lip: float,
                lower_lip: float, params: np.ndarray) -> MouthShape:
    """Lip contours for one frame. params: (6,) float in [0, 1], PARAMETERS order."""
    jaw, width, rnd, closure = (float(params[i]) for i in (JAW, WIDTH, ROUND, CLOSURE))
    cx, cy = center
    mouth_w = rest_width * (1.0 + 0.32 * (width - 0.5) - 0.30 * rnd)
    opening = (MAX_OPENING * rest_width * jaw + 3.5 * rnd) * (1.0 - closure) ** 1.5
    u = np.linspace(-1.0, 1.0, N_POINTS)
    x = cx + 0.5 * mouth_w * u
    bulge = np.sqrt(np.clip(1.0 - u**2, 0.0, None)) ** (0.8 - 0.3 * rnd)
    corner_y = cy + 0.15 * opening + 0.8 * (width - 0.5)
    top = cy - 0.3 * opening
    bottom = cy + 0.7 * opening
    upper_inner = corner_y + (top - corner_y) * bulge
    lower_inner = corner_y + (bottom - corner_y) * bulge
    thick_u = upper_lip * (1.0 + 0.45 * rnd) * (1.0 - 0.15 * (width - 0.5))
    thick_l = lower_lip * (1.0 + 0.35 * rnd) * (1.0 - 0.2 * (width - 0.5)) * (1 - 0.3 * params[TEETH] * closure)
    bow = 0.9 * np.exp(-(u / 0.16) ** 2) - 0.35 * np.exp(-((np.abs(u) - 0.3) / 0.12) ** 2)
    upper_outer = upper_inner - thick_u * bulge**0.55 + bow * thick_u * 0.35
    lower_outer = lower_inner + thick_l * np.sqrt(np.clip(1.0 - u**2, 0.0, None)) ** 0.7
    stack = lambda ys: np.stack([x, ys], axis=1)  # noqa: E731
    return MouthShape(stack(upper_outer), stack(upper_inner), stack(lower_inner),
                      stack(lower_outer), opening, mouth_w)


def _region(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Closed polygon between two left-to-right curves."""
    return np.concatenate([top, bottom[::-1]], axis=0)


def draw_mouth(painter, shape: MouthShape, params: np.ndarray, lip: tuple[int, int, int],
               skin: tuple[int, int, int]) -> None:
    """Paint lips, the dark inner mouth, teeth and tongue with `painter` (face._Painter)."""
    upper_colour = tuple(int(c * 0.82) for c in lip)
    lower_colour = tuple(int(min(255, c * 1.06)) for c in lip)
    mid = 0.5 * (shape.upper_inner + shape.lower_inner)
    painter.fill(_region(shape.upper_outer, mid), upper_colour)
    painter.fill(_region(mid, shape.lower_outer), lower_colour)
    # a soft highlight on the lower lip
    highlight = 0.35 * shape.lower_inner + 0.65 * shape.lower_outer
    painter.line(highlight[8:-8], tuple(int(min(255, c * 1.18)) for c in lip), 0.8)
    if shape.opening > 0.6:
        _inside(painter, shape, params)
    else:
        seam = tuple(int(c * 0.45) for c in lip)
        painter.line(mid, seam, 0.7 + 0.5 * shape.opening)
    if params[TEETH] * params[CLOSURE] > 0.2:  # f/v: upper teeth rest on the lower lip
        band = mid.copy()
        band[:, 1] += 1.4 + 0.8 * params[TEETH]
        n = len(mid)
        lo, hi = n // 4, n - n // 4
        painter.fill(_region(mid[lo:hi], band[lo:hi]), (238, 236, 228))
    corner = tuple(int(c * 0.55) for c in skin)
    painter.line(shape.upper_outer[:2], corner, 0.9)
    painter.line(shape.upper_outer[-2:], corner, 0.9)


def _inside(painter, shape: MouthShape, params: np.ndarray) -> None:
    """The open mouth: dark cavity, then upper teeth, lower teeth and tongue, clipped to it."""
    painter.fill(_region(shape.upper_inner, shape.lower_inner), (38, 14, 18))
    n = len(shape.upper_inner)
    lo, hi = n // 6, n - n // 6
    top, bottom = shape.upper_inner[lo:hi], shape.lower_inner[lo:hi]
    gap = bottom[:, 1] - top[:, 1]
    tongue_y = bottom.copy()
    tongue_y[:, 1] -= gap * (0.30 + 0.45 * params[TONGUE])
    painter.fill(_region(tongue_y, bottom), (176, 78, 86))
    upper_teeth = top.copy()
    upper_teeth[:, 1] += np.minimum(gap, params[TEETH] * (2.2 + 0.22 * shape.opening))
    if params[TEETH] > 0.05:
        painter.fill(_region(top, upper_teeth), (236, 234, 226))
    if shape.opening > 8:
        lower_teeth = bottom.copy()
        lower_teeth[:, 1] -= np.minimum(gap * 0.25, 0.1 * shape.opening * params[TEETH])
        painter.fill(_region(lower_teeth, bottom), (214, 210, 200))
    if params[TONGUE] > 0.5:  # th: the tongue tip shows between the teeth
        cx = float(top[len(top) // 2, 0])
        cy = float(0.5 * (top[len(top) // 2, 1] + bottom[len(bottom) // 2, 1]))
        half = 0.5 * float(gap[len(gap) // 2]) + 0.5
        theta = np.linspace(0, 2 * np.pi, 20)
        tip = np.stack([cx + 0.22 * shape.width * np.cos(theta), cy + half * np.sin(theta)], 1)
        painter.fill(tip, (190, 92, 100))
