"""`avsync serve` flags → ServerConfig: the access defaults and how origins are listed."""

from __future__ import annotations

import pytest
from avsync.serve.cli import build_parser, config_from_args
from avsync.serve.config import ServerConfig

from avsync.errors import ConfigError


def config(*flags: str) -> ServerConfig:
    return config_from_args(build_parser().parse_args(["--model", "m", *flags]))


def test_by_default_no_foreign_origin_is_listed_and_start_has_a_deadline() -> None:
    cfg = config()
    assert cfg.allowed_origins == () and cfg.start_timeout_s == 10.0 and cfg.token is None


def test_origins_are_listed_comma_separated_or_repeated() -> None:
    cfg = config("--allowed-origins", "https://a.example, https://b.example",
                 "--allowed-origin", "https://c.example", "--start-timeout", "2.5")
    assert cfg.allowed_origins == ("https://a.example", "https://b.example",
                                   "https://c.example")
    assert cfg.start_timeout_s == 2.5
    assert config("--allowed-origins", "*").allowed_origins == ("*",)
    with pytest.raises(ConfigError, match="list it alone"):
        config("--allowed-origins", "*,https://a.example")
