"""bench/serve.py --cpu-only: the server's own CPU seconds per stream second, both modes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_serve_reports_server_cpu_per_stream_second(model_dir: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "serve-cpu.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "serve.py"), "--model",
                          str(model_dir), "--cpu-only", "--cpu-sessions", "2", "--repeats", "1",
                          "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    cpu = result["server_cpu_per_stream_s"]
    assert cpu["sessions"] == 2 and result["cpu"]["kind"]
    for mode in ("batched", "one_inference_per_session"):
        assert 0 < cpu[mode]["median_server_cpu_s_per_stream_s"] < 10
    assert "sessions_held" not in result  # --cpu-only: no search
