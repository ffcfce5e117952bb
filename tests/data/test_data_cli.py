"""`avsync data index|prepare|stats|tokenizer` through the CLI mains."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from avsync import cli as avsync_cli
from avsync.data import cli
from avsync.data.cache import PreparedCache


def test_help_at_every_level_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["index", "--help"], ["prepare", "--help"], ["stats", "--help"],
                 ["tokenizer", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert "usage: avsync data" in out and "avsync data" in out.split("example")[-1]


def test_index_tokenizer_prepare_stats(bad_corpus: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "m.jsonl"
    assert cli.main(["index", str(bad_corpus), "--out", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert "kept 8 clips" in out and "missing-txt" in out and "empty-transcript" in out
    assert len(manifest.read_text().splitlines()) == 8

    prefix = tmp_path / "tok"
    assert cli.main(["tokenizer", str(manifest), "--vocab-size", "500", "--out", str(prefix),
                     "--splits", "train,val,test"]) == 0
    assert "vocab_size" in capsys.readouterr().out and prefix.with_suffix(".model").is_file()

    cache = tmp_path / "cache"
    assert cli.main(["prepare", str(manifest), "--out", str(cache), "--roi-size", "16",
                     "--tokenizer", str(prefix) + ".model", "--workers", "1",
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "kept 3 clips" in out and "wrong-fps" in out and "decoded 8, reused 0" in out
    assert PreparedCache(cache).roi_size == 16
    assert json.loads((cache / "report.json").read_text())["skipped"] == 7

    assert cli.main(["stats", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "vocabulary: 8 distinct words" in out and "0-1 s" in out
    assert cli.main(["stats", str(manifest)]) == 0
    assert "corpus" in capsys.readouterr().out


def test_errors_are_messages_through_the_avsync_command(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert avsync_cli.main(["data", "index", str(tmp_path)]) == 1
    assert "no corpus found" in capsys.readouterr().err
    assert avsync_cli.main(["data", "stats", str(tmp_path / "nothing.jsonl")]) == 1


def test_index_prepare_and_cache_run_without_torch(bad_corpus: Path, tmp_path: Path) -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "from avsync.data import cache, cli, index, prepare, segment, stats\n"
            f"m = index.index_dataset({str(bad_corpus)!r})\n"
            f"r = prepare.prepare_cache(m, {str(tmp_path / 'c')!r}, progress=False)\n"
            f"print(len(cache.PreparedCache({str(tmp_path / 'c')!r})))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3"]
