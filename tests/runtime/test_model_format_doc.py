"""docs/model-format.md documents every model.json key the card has, and no other."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from avsync.runtime.model_card import GRAPHS, AsdCalibration, ModelCard, RoiSpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "model-format.md"


def documented_keys() -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("## model.json keys"):text.index("## Sync and speaker")]
    keys: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            keys |= set(re.findall(r"`([a-z_0-9]+)`", line.split("|")[1]))
    return keys


def test_every_card_key_is_documented() -> None:
    assert documented_keys() == {f.name for f in dataclasses.fields(ModelCard)}


def test_nested_keys_and_graphs_are_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for kind in (RoiSpec, AsdCalibration):
        for field in dataclasses.fields(kind):
            assert f"`{field.name}`" in text, field.name
    for spec in GRAPHS:
        assert f"`{spec.name}`" in text
        for name in (*spec.inputs, *spec.outputs):
            assert f"`{name}`" in text, name
