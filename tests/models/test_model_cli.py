"""`avsync model info`: parameters and FLOPs per step for the presets (counted on meta)."""

from __future__ import annotations

import json

import pytest

from avsync.models.cli import main
from avsync.models.config import load_config
from avsync.models.flops import model_cost
from avsync.models.model import AVSyncModel


def _info(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["info", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_tiny_is_a_few_million_parameters_and_cheap_per_step(
        capsys: pytest.CaptureFixture[str]) -> None:
    info = _info(capsys, "tiny")
    assert 2e6 < info["total_params"] < 8e6
    assert 5 < info["streaming_mflops_per_step"] < 40
    assert info["chunk_size"] == 4 and info["latency_ms"] == 160
    visual = next(p for p in info["parts"] if p["name"] == "visual front end")
    assert visual["mflops"] > 0


def test_base_is_the_size_of_published_avsr_models(capsys: pytest.CaptureFixture[str]) -> None:
    info = _info(capsys, "base")
    assert 150e6 < info["total_params"] < 400e6
    assert info["streaming_mflops_per_step"] > 500  # ResNet-18 on 88 px dominates


def test_counts_match_the_real_model_and_the_table_prints(
        capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config("debug")
    real = sum(p.numel() for p in AVSyncModel(config).parameters())
    assert model_cost(config).total_params == real
    assert main(["info", "debug", "--chunk", "3", "--states"]) == 0
    out = capsys.readouterr().out
    assert "chunk 3 steps (120 ms" in out and f"{real:,}" in out
    assert "blocks.layer0.attn.key" in out and "frontend.samples" in out
