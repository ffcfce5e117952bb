"""The bundled model: its card's eval table is the committed `avsync eval` output of that very
directory, it loads (fp32 and int8), and it stays small enough to live in git."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "avsync-tiny-grid"
EVAL = REPO / "bench" / "results" / "eval-synth-tiny-onnx"

pytestmark = pytest.mark.skipif(not (MODEL / "model.json").is_file(),
                                reason=f"{MODEL} is not there yet (train/recipes/synth-tiny.sh)")


def test_card_table_is_the_eval_output() -> None:
    card = (MODEL / "MODEL_CARD.md").read_text()
    assert (EVAL / "eval.md").read_text().strip() in card
    result = json.loads((EVAL / "eval.json").read_text())
    assert Path(result["model"]["path"]).name == MODEL.name and result["split"] == "test"


def test_bundled_model_loads_and_is_small() -> None:
    from avsync.runtime import load_model

    assert load_model(MODEL).card.model_name == "tiny"
    assert load_model(MODEL, precision="int8").card.model_name == "tiny"
    size = sum(p.stat().st_size for p in MODEL.iterdir() if p.is_file())
    assert size < 30e6, f"{MODEL} is {size / 1e6:.1f} MB"
