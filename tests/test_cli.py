"""The one command line: help for every command, errors for unknown ones."""

from __future__ import annotations

import subprocess
import sys

import pytest

from avsync import cli


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in cli.COMMANDS:
        assert command.name in out


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["no-such-command"]) == 2
    assert "avsync --help" in capsys.readouterr().err


@pytest.mark.parametrize("command", [c.name for c in cli.COMMANDS])
def test_every_subcommand_explains_itself(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "avsync.cli", command, "--help"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()
    assert len(result.stdout.splitlines()) >= 3
    # a bare "%" in a help string makes argparse print its own internals
    assert "option_strings" not in result.stdout
