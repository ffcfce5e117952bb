"""The small exception tree every layer raises from.

Messages name the bad value and say what to do next; callers at the edges (CLI, server)
catch `AvsyncError` and print its message without a traceback.
"""

from __future__ import annotations


class AvsyncError(Exception):
    """Base of every error avsync raises on purpose."""


class ConfigError(AvsyncError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class MediaError(AvsyncError):
    """A media file or stream cannot be decoded, encoded or is not what it claims to be."""


class DataError(AvsyncError):
    """A data set, manifest, annotation file or prepared cache is malformed."""


class ModelLoadError(AvsyncError):
    """A model directory, checkpoint or ONNX file cannot be loaded; says which file and why."""


class ProtocolError(AvsyncError):
    """A websocket client sent something that breaks protocol v1."""

    def __init__(self, code: str, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.fatal = fatal


class DependencyError(AvsyncError, ImportError):
    """An optional dependency (an install extra) is missing."""


def require(module: str, extra: str) -> None:
    """Raise a DependencyError that names the extra to install when `module` is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise DependencyError(
            f"this command needs the Python package {module!r}; "
            f"install it with: pip install 'avsync[{extra}]'"
        )
