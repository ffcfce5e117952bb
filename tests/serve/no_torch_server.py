"""`avsync serve` (serve.cli.main, the real runtime) with torch, torchaudio and lightning
unimportable, in a subprocess: `python no_torch_server.py --model DIR --port 0 ...`.

Its JSON log on stderr names the port (`"event": "listening"`); SIGTERM drains; on exit it
prints {"exit": code, "torch_modules": [...]} on stdout. Used by the drain test, which thereby
also proves that the server and the runtime serve a model without torch.
"""

from __future__ import annotations

import importlib.abc
import json
import sys

BLOCKED = ("torch", "torchaudio", "lightning")


class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: serve must run without torch")
        return None


def main() -> int:
    sys.meta_path.insert(0, BlockTorch())
    from avsync.serve.cli import main as serve_main

    code = serve_main(sys.argv[1:])
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({"exit": code, "torch_modules": loaded}), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
