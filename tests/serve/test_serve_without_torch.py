"""Every serve module imports with torch, torchaudio and lightning unimportable (the server
itself is run that way by test_server_drain.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVE = HERE.parents[1] / "serve"


def test_every_serve_module_imports_without_torch() -> None:
    modules = sorted(f"avsync.serve.{p.stem}" for p in SERVE.glob("*.py") if p.stem != "__init__")
    assert "avsync.serve.server" in modules and "avsync.serve.client" in modules
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); "
            "from no_torch_server import BlockTorch; sys.meta_path.insert(0, BlockTorch()); "
            "import importlib; "
            f"[importlib.import_module(m) for m in {modules!r}]; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'torchaudio', 'lightning')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
