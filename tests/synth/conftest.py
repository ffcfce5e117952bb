"""One tiny synthetic corpus (3 speakers × 2 clips + 1 scene), generated once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from avsync.data.synth.corpus import CorpusSummary, SynthConfig, generate_corpus


@dataclass(frozen=True)
class TinyCorpus:
    root: Path
    config: SynthConfig
    summary: CorpusSummary


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> TinyCorpus:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    config = SynthConfig(out=out, speakers=3, utts_per_speaker=2, val_speakers=1,
                         test_speakers=1, seed=7, scenes=1, workers=1)
    return TinyCorpus(out, config, generate_corpus(config, progress=False))
