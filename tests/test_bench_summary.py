"""bench/summary.py: every row names its CPU kind, and ratios are compared within one kind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUMMARY = REPO / "bench" / "summary.py"
VNNI = {"model": "AMD EPYC", "kind": "x86-64 AVX-512 VNNI", "flags": {"avx512_vnni": True}}
AVX2 = {"model": "Intel Xeon E5", "kind": "x86-64 AVX2 (no VNNI)", "flags": {"avx2": True}}


def _compare(tmp_path: Path, before: dict, after: dict) -> subprocess.CompletedProcess:
    paths = [tmp_path / "before.json", tmp_path / "after.json"]
    for path, data in zip(paths, (before, after), strict=True):
        path.write_text(json.dumps(data))
    return subprocess.run([sys.executable, str(SUMMARY), "--compare", *map(str, paths)],
                          capture_output=True, text=True, timeout=60)


def test_ratios_of_one_cpu_kind_are_compared(tmp_path: Path) -> None:
    done = _compare(tmp_path, {"cpu": VNNI, "one": {"int8_speedup_vs_fp32": 1.25, "ms": 3}},
                    {"cpu": VNNI, "one": {"int8_speedup_vs_fp32": 1.31, "ms": 2}})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "one.int8_speedup_vs_fp32: 1.25 -> 1.31"


def test_ratios_across_cpu_kinds_or_unrecorded_are_refused(tmp_path: Path) -> None:
    for before, after in ((VNNI, AVX2), (None, VNNI)):
        done = _compare(tmp_path, {"cpu": before, "x_ratio": 1.0}, {"cpu": after, "x_ratio": 2.0})
        assert done.returncode != 0 and "not comparable" in done.stderr


def test_every_row_names_a_cpu_kind() -> None:
    done = subprocess.run([sys.executable, str(SUMMARY)], capture_output=True, text=True,
                          timeout=60)
    rows = [line.split(" | ") for line in done.stdout.splitlines()[2:]]
    assert rows and all(len(row) == 5 and row[3].strip() for row in rows)
