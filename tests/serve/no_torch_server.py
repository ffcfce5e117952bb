"""Run a port-0 server on the tone TEST engine with torch made unimportable (a subprocess).

Prints one JSON line {"port": N} when listening; SIGTERM drains and exits 0. Used by the
drain test, which thereby also proves the server runs without torch.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import json
import sys
from pathlib import Path

BLOCKED = ("torch", "torchaudio", "lightning")


class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: serve must run without torch")
        return None


def main() -> None:
    sys.meta_path.insert(0, BlockTorch())
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tone_engine import ToneEngine

    from serve.config import ServerConfig
    from serve.server import run_server

    def ready(server) -> None:
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        print(json.dumps({"port": server.port, "torch_modules": loaded}), flush=True)

    config = ServerConfig(port=0, drain_timeout_s=20.0, close_timeout_s=2.0)
    asyncio.run(run_server(ToneEngine(), config, ready))


if __name__ == "__main__":
    main()
