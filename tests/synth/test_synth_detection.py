"""The shipped face detector finds the rendered faces, and its mouth box lands on the mouth."""

from __future__ import annotations

import pytest

from avsync.data.synth.detection import SETTINGS, measure_detection


@pytest.fixture(scope="module")
def reports():
    return measure_detection(items=4, n_frames=10)


@pytest.mark.parametrize("setting", SETTINGS)
def test_haar_cascade_finds_rendered_faces(reports, setting: str) -> None:
    report = reports[setting]
    assert report.faces >= 40
    assert report.rate >= 0.95, report.line()
    assert report.extra <= 0.02 * report.faces, report.line()


@pytest.mark.parametrize("setting", SETTINGS)
def test_derived_mouth_box_lands_on_the_mouth(reports, setting: str) -> None:
    report = reports[setting]
    median_px, _, worst_px = report.centre_px
    # the mouth box is 64 px on the 160 px canvas: its centre within a sixth of that (median)
    # and within a quarter of it on every frame keeps the lips inside the crop
    assert median_px < 64 / 6 and worst_px < 64 / 4, report.line()
    assert report.size_error[0] < 0.2, report.line()
