"""`RuntimeEngine`: the production `serve.engine.Engine` around `avsync.runtime`.

Pending: `avsync.runtime` (issue 4) is being written; until it lands, loading a model says so
instead of failing obscurely. The adapter follows the runtime contract in
docs/architecture.md: `load_model`, `model.new_state()`, batched `model.advance(...)`, then the
per-stream recogniser, sync estimator and speaker detector on each result.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from avsync.errors import ModelLoadError

if TYPE_CHECKING:
    from serve.engine import Engine


class RuntimeEngine:
    @classmethod
    def load(cls, model_dir: Path, threads: int = 1) -> Engine:
        try:
            from avsync.runtime import load_model  # type: ignore[attr-defined]  # noqa: F401
        except ImportError:
            raise ModelLoadError(
                f"cannot serve {model_dir}: this build of avsync has no ONNX runtime "
                "(avsync.runtime.load_model) yet") from None
        raise ModelLoadError("serve.runtime_engine: the adapter to avsync.runtime is not "
                             "written yet")
