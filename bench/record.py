"""One writer of `bench/results/*.json`: every result names the CPU that made it.

Why: ratios such as int8 vs fp32 depend on the instruction sets (VNNI or not), and the
development machines differ; a figure without its CPU cannot be compared with another.
`bench/summary.py` compares results only within one CPU kind (`CpuInfo.kind`).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from avsync.runtime.cpu import cpu_info


def machine() -> dict[str, Any]:
    """The CPU (model, kind, the flags that matter, onnxruntime version) and core count."""
    return {**cpu_info().to_json(), "cpus": os.cpu_count(),
            "python": platform.python_version()}


def write_result(path: Path, result: dict[str, Any], indent: int = 2) -> dict[str, Any]:
    """Write `result` with its `cpu` record to `path` (folders created); -> what was written."""
    record = {**result, "cpu": machine()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=indent) + "\n", "utf-8")
    return record
